"""Shape / texture bias on the cue-conflict stimuli (docs/protocol.md §6, paper Fig. 5).

1000-way softmax -> 16 categories by the **mean** probability over each category's ImageNet indices -> decision.
Shape bias = S / (S + T) over the cue-conflict images (shape != texture); decisions matching neither are ignored.
A tie for the highest mean probability is no decision (``NO_DECISION``: ties count as wrong, docs/protocol.md §2.3).
This follows bethgelab/model-vs-human (``ImageNetProbabilitiesTo16ClassesMapping``, ``analyses.ShapeBias``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from beyond_imagenet.base.errors import NonFiniteLogitsError, UserError
from beyond_imagenet.data.cue_conflict import CATEGORIES, CATEGORY_INDICES, check_category
from beyond_imagenet.metrics.accuracy import NO_PREDICTION, top1_predictions
from beyond_imagenet.metrics.resampling import LinearStatistic, ratio

MEAN_TIE_RTOL = 1e-9
"""Category means this close (relative) to the highest tie with it (rounding of the mean, not a real difference)."""
NO_DECISION = "tie"
"""The decision name of a stimulus whose highest mean probability is shared: neither shape nor texture."""


def _check_rows(values: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != 1000:
        raise UserError(f"shape bias needs [N, 1000] ImageNet {what}, got an array of shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad.size:
        raise NonFiniteLogitsError(f"{bad.size} rows have NaN/inf {what} (first rows: {bad[:5].tolist()})")
    return values


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (docs/protocol.md §6 step 1)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def category_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """[N, 16] arithmetic mean of the 1000-way probabilities over each category's indices.

    docs/protocol.md §6 step 2: the mean, not the sum (dog has 109 indices, knife 1).
    """
    p = _check_rows(probabilities, "probabilities")
    return np.stack([p[:, list(CATEGORY_INDICES[c])].mean(axis=1) for c in CATEGORIES], axis=1)


def category_decisions(probabilities: np.ndarray) -> np.ndarray:
    """[N] index into ``CATEGORIES`` of the category with the highest mean probability (docs/protocol.md §6 step 3).

    A shared highest mean gives ``NO_PREDICTION`` (-1), the tie rule of ``metrics.accuracy.top1_predictions``.
    Means within ``MEAN_TIE_RTOL`` of the highest count as shared: a mean over up to 109 indices carries rounding
    of order 1e-14 that depends on the batch's memory layout (equal probabilities gave a decision in a batch of
    one and a tie in a batch of two), while real differences between category means are far larger.
    """
    means = category_probabilities(probabilities)
    decisions = top1_predictions(means)
    highest = means.max(axis=1, keepdims=True)
    shared = np.isclose(means, highest, rtol=MEAN_TIE_RTOL, atol=0.0).sum(axis=1) > 1
    decisions[shared] = NO_PREDICTION
    return decisions


def decisions_from_logits(logits: np.ndarray) -> np.ndarray:
    """``category_decisions`` of the float64 softmax of [N, 1000] logits (CLIP: the zero-shot head's logits)."""
    return category_decisions(softmax(_check_rows(logits, "logits")))


def decision_names(decisions: np.ndarray) -> list[str]:
    """Category names of decision indices; ``NO_PREDICTION`` (a tie) becomes ``NO_DECISION``."""
    return [NO_DECISION if int(i) == NO_PREDICTION else CATEGORIES[int(i)] for i in np.asarray(decisions).ravel()]


def _bias_counts(decisions: np.ndarray, shapes: np.ndarray, textures: np.ndarray) -> dict:
    conflict = shapes != textures
    s = int((decisions[conflict] == shapes[conflict]).sum())
    t = int((decisions[conflict] == textures[conflict]).sum())
    defined = s + t > 0
    return {
        "shape_bias": s / (s + t) if defined else math.nan,
        "shape_bias_defined": defined,
        "n_shape_decisions": s,
        "n_texture_decisions": t,
        "n_other_decisions": int(conflict.sum()) - s - t,
        "n_conflict": int(conflict.sum()),
    }


def shape_bias(decisions: Sequence[str], shapes: Sequence[str], textures: Sequence[str]) -> dict:
    """Pooled and per-shape-class shape bias (docs/protocol.md §6 Metric; Fig. 5 dashed line and markers).

    Images with shape == texture are excluded; S + T == 0 gives NaN with ``shape_bias_defined`` False.
    ``fraction_correct_*`` divide by all images (model-vs-human); ``accuracy_16`` = decision == shape over all.
    """
    if not (len(decisions) == len(shapes) == len(textures)):
        raise UserError(
            f"shape_bias: {len(decisions)} decisions, {len(shapes)} shapes and {len(textures)} textures; "
            "pass one decision per stimulus, in the order of scan_cue_conflict()"
        )
    if len(decisions) == 0:
        raise UserError("shape_bias: no stimuli given; scan the cue-conflict folder first")
    for what, names in (("decision", decisions), ("shape", shapes), ("texture", textures)):
        for name in sorted(set(names) - ({NO_DECISION} if what == "decision" else set())):
            check_category(name, f"shape_bias {what}")
    d, s, t = (np.asarray(x, dtype=object) for x in (decisions, shapes, textures))
    n_all = len(d)
    result = _bias_counts(d, s, t)
    result |= {
        "texture_bias": 1.0 - result["shape_bias"],
        "fraction_correct_shape": result["n_shape_decisions"] / n_all,
        "fraction_correct_texture": result["n_texture_decisions"] / n_all,
        "accuracy_16": int((d == s).sum()) / n_all,
        "n_images": n_all,
        "n_excluded": n_all - result["n_conflict"],
    }
    result["per_class"] = {c: _bias_counts(d[s == c], s[s == c], t[s == c]) for c in CATEGORIES if (s == c).any()}
    return result


def shape_bias_statistics(
    decisions: Sequence[str], shapes: Sequence[str], textures: Sequence[str]
) -> dict[str, LinearStatistic]:
    """``shape_bias``'s metrics as statistics of per-stimulus columns, for intervals over the stimuli (§6).

    Keys: ``overall`` (S / (S + T) over cue-conflict stimuli), ``fraction_correct_shape``,
    ``fraction_correct_texture``, ``accuracy_16`` (%) and ``<class>/shape_bias`` per shape class present.
    """
    d, s, t = (np.asarray(x, dtype=object) for x in (decisions, shapes, textures))
    conflict = s != t
    shape_hit, texture_hit = conflict & (d == s), conflict & (d == t)
    columns = np.stack([shape_hit, texture_hit, np.ones(len(d), dtype=bool), d == s], axis=1).astype(np.float64)

    def bias(sums: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return sums[:, 0] / (sums[:, 0] + sums[:, 1])

    statistics = {
        "overall": LinearStatistic(columns[:, :2], bias),
        "fraction_correct_shape": LinearStatistic(columns[:, [0, 2]], ratio(0, 1)),
        "fraction_correct_texture": LinearStatistic(columns[:, [1, 2]], ratio(0, 1)),
        "accuracy_16": LinearStatistic(columns[:, [3, 2]], ratio(0, 1, 100.0)),
    }
    for category in CATEGORIES:
        mine = s == category
        if mine.any():
            statistics[f"{category}/shape_bias"] = LinearStatistic(columns[:, :2] * mine[:, None], bias)
    return statistics
