"""ImageNet-X per-factor accuracies and error ratios (docs/protocol.md §3, paper Fig. 2).

Reimplements the metric of the ``imagenet-x==0.0.7`` package (facebookresearch/imagenetx, CC BY-NC 4.0) over
our own predictions (pure functions: the annotations are read by ``data.imagenet_x``).
Default = package behaviour: top-factor val file, prototypes removed (46,110 images), ``average`` = accuracy on
the joined annotated images. ``denominator="paper"`` uses the full-val accuracy instead (§3 "Discrepancy").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from beyond_imagenet.base.errors import NonFiniteLogitsError, UserError
from beyond_imagenet.data.imagenet_x import FACTORS, N_IMAGENET_CLASSES, VAL_NAME, check_val_ids
from beyond_imagenet.metrics.accuracy import NO_PREDICTION, top1_predictions
from beyond_imagenet.metrics.resampling import LinearStatistic, ratio

Denominator = Literal["annotated", "paper"]
LIBRARY_SETTING = "allow_partial=True"  # how a library caller allows partial coverage; the analysis names its key


def predictions_from_logits(logits: np.ndarray, sample_ids: Sequence[str], chunk: int = 4096) -> pd.DataFrame:
    """Per-image top-1 class and max softmax probability over the 1000 IN logits (§3 Steps 2).

    The class follows the tie rule of ``metrics.accuracy.top1_predictions`` (a tied maximum gives -1, wrong).
    The probability is ``1 / sum(exp(z - max z))`` in float64, chunked so 50k x 1000 logits stay cheap.
    """
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] != N_IMAGENET_CLASSES:
        raise UserError(
            f"ImageNet-X needs logits of shape [N, {N_IMAGENET_CLASSES}] over the ImageNet-1k classes, got "
            f"{list(logits.shape)}; use a cache with output_space imagenet1k (docs/cache.md)"
        )
    if len(sample_ids) != logits.shape[0]:
        raise UserError(f"{logits.shape[0]} logit rows but {len(sample_ids)} sample ids; they must align row by row")
    check_val_ids(sample_ids, "ImageNet-X predictions")
    predicted = np.empty(logits.shape[0], dtype=np.int64)
    probability = np.empty(logits.shape[0], dtype=np.float64)
    for start in range(0, logits.shape[0], chunk):
        block = logits[start : start + chunk].astype(np.float64)
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            shown = [sample_ids[start + i] for i in np.flatnonzero(~finite)[:5]]
            raise NonFiniteLogitsError(
                f"NaN or infinite logits for {shown}; they cannot be predictions. Recompute the cache (fp32)."
            )
        shifted = block - block.max(axis=1, keepdims=True)
        predicted[start : start + chunk] = top1_predictions(block)
        probability[start : start + chunk] = 1.0 / np.exp(shifted).sum(axis=1)
    return pd.DataFrame(
        {"file_name": list(sample_ids), "predicted_class": predicted, "predicted_probability": probability}
    )


def _check_predictions(predictions: pd.DataFrame, val_names: bool) -> None:
    missing = [c for c in ("file_name", "predicted_class") if c not in predictions.columns]
    if missing:
        raise UserError(
            f"predictions lack columns {missing}; expected file_name, predicted_class (docs/protocol.md §3)"
        )
    classes = predictions["predicted_class"].to_numpy()
    low = NO_PREDICTION  # a tied top-1 (docs/protocol.md §2.3): counted wrong
    if not np.issubdtype(classes.dtype, np.integer) or (len(classes) and (classes.min() < low or classes.max() > 999)):
        raise UserError(f"predicted_class must hold integer ImageNet-1k indices 0..999 ({low}: a tied top-1)")
    if val_names:
        check_val_ids(predictions["file_name"].tolist(), "ImageNet-X predictions")
    elif not predictions["file_name"].is_unique:
        raise UserError("ImageNet-X predictions: some file names occur more than once")


def _coverage_error(n_missing: int, n_total: int, examples: Sequence[str], what: str, setting: str) -> UserError:
    return UserError(
        f"the predictions cover only {n_total - n_missing:,} of the {n_total:,} {what}: {n_missing:,} are missing "
        f"(e.g. {', '.join(examples[:3])}). Run inference on the full ImageNet val set (50,000 images), or set "
        f"{setting} to score only the covered images (the result is then not comparable to the paper)."
    )


def full_val_accuracy(
    predictions: pd.DataFrame,
    val_labels: pd.Series,
    allow_partial: bool = False,
    partial_setting: str = LIBRARY_SETTING,
) -> float:
    """Top-1 accuracy (fraction) of the predictions on the IN val images they contain (§3, paper denominator).

    ``val_labels`` is the standard label of each val image by file name (``data.imagenet_x.load_val_labels``).
    A coverage error names ``partial_setting`` as the way to allow partial coverage.
    """
    _check_predictions(predictions, val_names=True)
    covered = val_labels.index.isin(predictions["file_name"])
    if not covered.all() and not allow_partial:
        missing = val_labels.index[~covered].tolist()
        raise _coverage_error(int((~covered).sum()), len(val_labels), missing, "IN val images", partial_setting)
    true = val_labels.reindex(predictions["file_name"]).to_numpy()
    return int((predictions["predicted_class"].to_numpy() == true).sum()) / len(true)


def factor_accuracies(
    predictions: pd.DataFrame,
    annotations: pd.DataFrame,
    denominator: Denominator = "annotated",
    overall_accuracy: float | None = None,
    allow_partial: bool = False,
    val_labels: pd.Series | None = None,
    partial_setting: str = LIBRARY_SETTING,
) -> dict:
    """Per-factor accuracy, error ratio ``(1 - acc(f)) / (1 - average)`` and counts (§3 Steps 3-6).

    ``average`` is the accuracy over all joined annotated images (package default), or with
    ``denominator="paper"`` the full-val accuracy: ``overall_accuracy`` (a fraction) when given, else computed
    from ``predictions`` against ``val_labels`` (``data.imagenet_x.load_val_labels``). Factors with
    no covered image (possible only with ``allow_partial``) are listed under ``empty_factors`` and have no accuracy.
    A coverage error names ``partial_setting`` (the analysis: its params.yaml key) as the way to allow it.
    """
    if denominator not in ("annotated", "paper"):
        raise UserError(f"denominator must be 'annotated' (package, default) or 'paper', got {denominator!r}")
    joined, n_missing = _join(predictions, annotations, allow_partial, partial_setting)
    is_correct = (joined["predicted_class"] == joined["class"]).to_numpy()
    annotated_accuracy = int(is_correct.sum()) / len(is_correct)  # exact count ratio
    average = (
        annotated_accuracy
        if denominator == "annotated"
        else _paper_average(predictions, overall_accuracy, allow_partial, val_labels, partial_setting)
    )
    if average >= 1.0:
        raise UserError("error ratios are undefined when the denominator accuracy is 100% (1 - average = 0)")
    result = _per_factor(joined[list(FACTORS)].to_numpy() == 1, is_correct, average)
    return {
        **result,
        "average": average,
        "annotated_accuracy": annotated_accuracy,
        "denominator": denominator,
        "n_joined": len(joined),
        "n_annotated": len(annotations),
        "n_missing": n_missing,
        "coverage": len(joined) / len(annotations),
    }


def _join(
    predictions: pd.DataFrame, annotations: pd.DataFrame, allow_partial: bool, setting: str = LIBRARY_SETTING
) -> tuple[pd.DataFrame, int]:
    """Annotated images joined with their predictions, and how many annotated images have none."""
    annotated_val = bool(annotations["file_name"].str.fullmatch(VAL_NAME.pattern).all())
    _check_predictions(predictions, val_names=annotated_val)
    covered = annotations["file_name"].isin(predictions["file_name"])
    n_missing = int((~covered).sum())
    if n_missing and not allow_partial:
        examples = annotations.loc[~covered, "file_name"].tolist()
        raise _coverage_error(n_missing, len(annotations), examples, "annotated ImageNet-X images", setting)
    joined = annotations.merge(predictions[["file_name", "predicted_class"]], on="file_name", how="inner")
    if joined.empty:
        raise UserError("no prediction matches an annotated ImageNet-X image; check that the sample ids are val names")
    return joined, n_missing


def _per_factor(flags: np.ndarray, is_correct: np.ndarray, average: float) -> dict:
    """Accuracy, error ratio, count and correct count of each factor; factors without images listed apart."""
    counts = flags.sum(axis=0)
    correct = (flags & is_correct[:, None]).sum(axis=0)
    accuracy = {f: float(c / n) for f, c, n in zip(FACTORS, correct, counts, strict=True) if n > 0}
    return {
        "accuracy": accuracy,
        "error_ratio": {f: (1.0 - a) / (1.0 - average) for f, a in accuracy.items()},
        "count": {f: int(n) for f, n in zip(FACTORS, counts, strict=True)},
        "correct": {f: int(c) for f, c in zip(FACTORS, correct, strict=True)},
        "empty_factors": [f for f, n in zip(FACTORS, counts, strict=True) if n == 0],
    }


def _paper_average(
    predictions: pd.DataFrame,
    overall_accuracy: float | None,
    allow_partial: bool,
    val_labels: pd.Series | None,
    setting: str,
) -> float:
    if overall_accuracy is None:
        if val_labels is None:
            raise UserError("the paper denominator needs the full-val accuracy: give overall_accuracy or val_labels")
        return full_val_accuracy(predictions, val_labels, allow_partial, setting)
    if not 0.0 <= overall_accuracy <= 1.0:
        raise UserError(
            f"overall_accuracy must be a fraction in [0, 1] (e.g. 0.7613, not 76.13), got {overall_accuracy}"
        )
    return float(overall_accuracy)


def factor_rows(
    predictions: pd.DataFrame,
    annotations: pd.DataFrame,
    denominator: Denominator = "annotated",
    val_labels: pd.Series | None = None,
    allow_partial: bool = False,
    partial_setting: str = LIBRARY_SETTING,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The images an interval resamples: (file names, factor flags [n, 16], correct [n], true class [n]).

    ``annotated``: the joined annotated images. ``paper``: every predicted val image (the denominator is the full-val
    accuracy), with no factor flag on the images outside the annotations.
    """
    if denominator == "annotated":
        joined, _ = _join(predictions, annotations, allow_partial, partial_setting)
        correct = (joined["predicted_class"] == joined["class"]).to_numpy()
        flags = joined[list(FACTORS)].to_numpy() == 1
        return joined["file_name"].tolist(), flags, correct, joined["class"].to_numpy()
    if val_labels is None:
        raise UserError("the paper denominator needs the val labels (data.imagenet_x.load_val_labels)")
    _join(predictions, annotations, allow_partial, partial_setting)  # the same coverage checks
    merged = predictions[["file_name", "predicted_class"]].merge(
        annotations[["file_name", *FACTORS]], on="file_name", how="left"
    )
    true = val_labels.reindex(merged["file_name"]).to_numpy()
    flags = merged[list(FACTORS)].fillna(0).to_numpy() == 1
    return merged["file_name"].tolist(), flags, merged["predicted_class"].to_numpy() == true, true


def _error_ratio(sums: np.ndarray) -> np.ndarray:
    """(1 - factor accuracy) / (1 - denominator accuracy) from sums [flag, flag & correct, den, den & correct]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (1.0 - sums[:, 1] / sums[:, 0]) / (1.0 - sums[:, 3] / sums[:, 2])


def error_ratio_statistics(
    flags: np.ndarray, correct: np.ndarray, denominator: np.ndarray
) -> dict[str, LinearStatistic]:
    """Per factor its accuracy (%) and error ratio, the denominator accuracy and the mean error ratio (§3, Fig. 2).

    ``flags`` [n, 16] marks each image's factors (all False for an image outside the annotations), ``correct`` [n]
    its top-1 correctness and ``denominator`` [n] the images of the error ratios' denominator accuracy (the joined
    annotated images, or every val image for the paper's denominator). Factors without images are left out; the
    mean error ratio averages the factors present in the data.
    """
    flags = np.asarray(flags, dtype=bool)
    correct = np.asarray(correct, dtype=bool)
    den = np.stack([denominator, np.asarray(denominator, dtype=bool) & correct], axis=1).astype(np.float64)
    present = [i for i in range(flags.shape[1]) if flags[:, i].any()]
    statistics: dict[str, LinearStatistic] = {"average": LinearStatistic(den, ratio(1, 0, 100.0))}
    pairs = []
    for i in present:
        pair = np.stack([flags[:, i], flags[:, i] & correct], axis=1).astype(np.float64)
        pairs.append(pair)
        statistics[f"{FACTORS[i]}/accuracy"] = LinearStatistic(pair, ratio(1, 0, 100.0))
        statistics[f"{FACTORS[i]}/error_ratio"] = LinearStatistic(np.concatenate([pair, den], axis=1), _error_ratio)
    if pairs:
        stacked = np.concatenate([*pairs, den], axis=1)

        def mean_error_ratio(sums: np.ndarray) -> np.ndarray:
            ratios = [
                _error_ratio(np.concatenate([sums[:, 2 * j : 2 * j + 2], sums[:, -2:]], axis=1))
                for j in range(len(pairs))
            ]
            return np.mean(ratios, axis=0)

        statistics["mean_error_ratio"] = LinearStatistic(stacked, mean_error_ratio)
    return statistics
