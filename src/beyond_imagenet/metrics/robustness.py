"""Robustness metrics: multi-label top-1, ImageNet-C summary, Table 2 average, JANuS and testbed metrics.

Implements docs/protocol.md §7 (paper Fig. 6 top and Table 2) and docs/transfer.md §5.2 (average robustness, effective
robustness, effective robustness ratio). Pure numpy/scipy over accuracies; every accuracy here is top-1 in
percent (0-100) unless a docstring says otherwise. Bad input raises ``UserError`` saying what to fix.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import special, stats

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.kinds import IMAGENET_C_CORRUPTIONS, IMAGENET_C_SEVERITIES

# docs/protocol.md §7.8: the 15 standard corruptions (folder names) and 5 severities, defined with the dataset layout.
# The 4 "extra" corruptions are not used (docs/protocol.md §7.8); they are ignored if present.
IMAGENET_C_EXTRA_CORRUPTIONS: tuple[str, ...] = ("gaussian_blur", "saturate", "spatter", "speckle_noise")

# docs/protocol.md §7.8: AlexNet top-1 error (fraction) per corruption, already averaged over severities 1-5.
ALEXNET_ERRORS: dict[str, float] = {
    "gaussian_noise": 0.886428,
    "shot_noise": 0.894468,
    "impulse_noise": 0.922640,
    "defocus_blur": 0.819880,
    "glass_blur": 0.826268,
    "motion_blur": 0.785948,
    "zoom_blur": 0.798360,
    "snow": 0.866816,
    "frost": 0.826572,
    "fog": 0.819324,
    "brightness": 0.564592,
    "contrast": 0.853204,
    "elastic_transform": 0.646056,
    "pixelate": 0.717840,
    "jpeg_compression": 0.606500,
}

# docs/protocol.md §7.9 / §11.2: Table 2's shifted sets in the paper's column order; INet-Val is not one of them.
TABLE2_SHIFTS: tuple[str, ...] = (
    "imagenet_v2",
    "imagenet_a",
    "imagenet_c",
    "imagenet_hard",
    "imagenet_r",
    "imagenet_sketch",
    "imagenet_real",
)
ID_DATASET = "imagenet_val"
# docs/transfer.md §5.2: the shifts of JANuS's average robustness and of effective robustness (imagenet-testbed's axes)
JANUS_SHIFTS: tuple[str, ...] = ("imagenet_v2", "imagenet_sketch", "imagenet_r", "imagenet_a")
TABLE2_COLUMNS: tuple[str, ...] = ("model", ID_DATASET, *TABLE2_SHIFTS, "average")
DATASET_LABELS: dict[str, str] = {
    "imagenet_val": "INet-Val",
    "imagenet_v2": "V2",
    "imagenet_a": "A",
    "imagenet_c": "C",
    "imagenet_hard": "Hard",
    "imagenet_r": "R",
    "imagenet_sketch": "Sketch",
    "imagenet_real": "Real",
}

# docs/transfer.md §5.2: four models cannot define a baseline line; below this many the fit refuses by default.
DEFAULT_MIN_BASELINE_MODELS = 5
_ABSOLUTE_MIN_BASELINE_MODELS = 3


# --------------------------------------------------------------------------------------------------------------
# validation helpers


def _check_percent(name: str, value: Any, *, open_interval: bool = False) -> float:
    """Return ``value`` as a float in [0, 100] (or (0, 100) when ``open_interval``), else raise UserError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UserError(f"{name} must be a number (top-1 accuracy in %), got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise UserError(f"{name} must be finite, got {v}; re-run the evaluation that produced it")
    if open_interval and not 0.0 < v < 100.0:
        raise UserError(f"{name} must lie strictly between 0 and 100 (a logit needs it), got {v}")
    if not 0.0 <= v <= 100.0:
        raise UserError(f"{name} must be a top-1 accuracy in % within [0, 100], got {v}")
    return v


def missing_message(what: str, missing: Sequence[str], given: Sequence[str]) -> str:
    """Message naming the missing keys, with close-match hints from the keys that were given."""
    hints = []
    for key in missing:
        close = difflib.get_close_matches(key, list(given), n=1, cutoff=0.6)
        if close:
            hints.append(f"{close[0]!r} -> {key!r}?")
    hint = f" Possible misspellings: {', '.join(hints)}." if hints else ""
    return f"{what} is missing {', '.join(repr(k) for k in missing)}.{hint} Evaluate those sets or fix the names."


# --------------------------------------------------------------------------------------------------------------
# multi-label top-1 (ImageNet-Hard, ImageNet-ReaL)


def _label_set(labels: Any, index: int) -> set[int]:
    """Valid labels of one image: non-negative integers only (the official -1 padding is dropped)."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise UserError(f"label list of image {index} must be a flat list of class ids, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise UserError(f"label list of image {index} must hold integer class ids, got dtype {arr.dtype}")
    return {int(v) for v in arr.tolist() if v >= 0}


def multilabel_hits(predicted: np.ndarray, label_lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per image: is its top-1 class in its label list, and has it any valid label? Two bool arrays [N].

    ``predicted`` holds one top-1 class id per image; ``label_lists`` one list of valid ids per image, either
    ragged or padded with -1 (negative entries are ignored). See :func:`multilabel_top1_accuracy`.
    """
    pred = np.asarray(predicted)
    if pred.ndim != 1:
        hint = " (pass metrics.accuracy.top1_predictions(logits))" if pred.ndim == 2 else ""
        raise UserError(f"predicted must be a 1-D array of top-1 class ids{hint}, got shape {pred.shape}")
    if pred.size and not np.issubdtype(pred.dtype, np.integer):
        raise UserError(f"predicted must hold integer class ids, got dtype {pred.dtype}")
    if len(label_lists) != len(pred):
        raise UserError(
            f"predicted has {len(pred)} images but label_lists has {len(label_lists)}; "
            "they must be aligned image by image (ReaL: index i is ILSVRC2012_val_{i+1:08d}.JPEG)"
        )
    hit = np.zeros(len(pred), dtype=bool)
    labelled = np.zeros(len(pred), dtype=bool)
    for i, (p, labels) in enumerate(zip(pred.tolist(), label_lists, strict=True)):
        valid = _label_set(labels, i)
        labelled[i] = bool(valid)
        hit[i] = p in valid
    return hit, labelled


def multilabel_top1_accuracy(predicted: np.ndarray, label_lists: Sequence[Sequence[int]]) -> dict[str, float | int]:
    """Top-1 accuracy where an image is correct if its top-1 class is in its label list (docs/protocol.md §7.6, §7.7).

    Images with no valid label are skipped and counted as ``n_unlabeled`` (ReaL: 3,163 of 50,000). Returns ``top1``
    in % over the labelled images plus the counts.
    """
    hit, labelled = multilabel_hits(predicted, label_lists)
    n_evaluated = int(labelled.sum())
    if n_evaluated == 0:
        raise UserError(f"none of the {len(hit)} images has a valid label; check the label file and its padding")
    n_correct = int(hit.sum())
    return {
        "top1": 100.0 * n_correct / n_evaluated,
        "n_correct": n_correct,
        "n_evaluated": n_evaluated,
        "n_unlabeled": len(hit) - n_evaluated,
        "n_images": len(hit),
    }


# --------------------------------------------------------------------------------------------------------------
# ImageNet-C (docs/protocol.md §7.8)


def _is_imagenet_c_key(key: Any) -> bool:
    """True for a (corruption, severity) key with a known corruption (standard or extra) and severity 1-5."""
    if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str)):
        return False
    corruption, severity = key
    known = corruption in IMAGENET_C_CORRUPTIONS or corruption in IMAGENET_C_EXTRA_CORRUPTIONS
    return known and not isinstance(severity, bool) and severity in IMAGENET_C_SEVERITIES


def _imagenet_c_grid(acc: Mapping[tuple[str, int], float]) -> dict[str, list[float]]:
    """Validate the (corruption, severity) table and return the 5 accuracies per standard corruption."""
    unknown = []
    for key in acc:
        if not _is_imagenet_c_key(key):
            unknown.append(key)
    if unknown:
        raise UserError(
            f"ImageNet-C accuracies have unknown keys {unknown[:5]!r}; keys must be (corruption, severity) with "
            f"corruption one of {', '.join(IMAGENET_C_CORRUPTIONS)} and severity an int in 1..5"
        )
    missing = [(c, s) for c in IMAGENET_C_CORRUPTIONS for s in IMAGENET_C_SEVERITIES if (c, s) not in acc]
    if missing:
        listing = ", ".join(f"{c}/{s}" for c, s in missing[:20]) + (" ..." if len(missing) > 20 else "")
        raise UserError(
            f"ImageNet-C is missing {len(missing)} of 75 (corruption, severity) sets: {listing}. "
            "Evaluate all 15 corruptions at severities 1-5; the mean never averages over fewer."
        )
    return {
        c: [_check_percent(f"ImageNet-C {c}/{s}", acc[(c, s)]) for s in IMAGENET_C_SEVERITIES]
        for c in IMAGENET_C_CORRUPTIONS
    }


def mce_from_corruption_accuracies(accuracies: np.ndarray) -> np.ndarray:
    """The mCE (%) from top-1 % per standard corruption (last axis, ``IMAGENET_C_CORRUPTIONS`` order), vectorised."""
    alexnet = np.array([ALEXNET_ERRORS[c] for c in IMAGENET_C_CORRUPTIONS])
    return np.mean(100.0 * (1.0 - np.asarray(accuracies) / 100.0) / alexnet, axis=-1)


def imagenet_c_summary(acc: Mapping[tuple[str, int], float]) -> dict[str, Any]:
    """ImageNet-C mean accuracy (Table 2 "C") and mCE from top-1 % per (corruption, severity) (docs/protocol.md §7.8).

    Accuracy is averaged over severities per corruption, then over the 15 corruptions. The corruption error is
    ``CE_c = 100 * mean_s(err_{c,s}) / ALEXNET_ERRORS[c]`` (errors as fractions; the constants are AlexNet's
    error averaged over severities, so this equals Hendrycks' sum-over-severities ratio), and ``mce`` is the
    mean of ``CE_c`` in % (easyrobust: 76.7 for torchvision ResNet-50). The 4 extra corruptions are ignored.
    """
    grid = _imagenet_c_grid(acc)
    per_corruption = {c: float(np.mean(v)) for c, v in grid.items()}
    errors = {c: 100.0 * (1.0 - per_corruption[c] / 100.0) / ALEXNET_ERRORS[c] for c in IMAGENET_C_CORRUPTIONS}
    return {
        "mean_accuracy": float(np.mean(list(per_corruption.values()))),
        "mce": float(np.mean(list(errors.values()))),
        "per_corruption_accuracy": per_corruption,
        "corruption_errors": errors,
    }


# --------------------------------------------------------------------------------------------------------------
# averages and ratios (docs/protocol.md §7.9, docs/transfer.md §5.2)


def average_robustness(acc: Mapping[str, float], shifts: Sequence[str]) -> float:
    """JANuS average robustness AR = unweighted mean top-1 over the shift sets ``shifts`` (docs/transfer.md §5.2).

    Every named shift must be present: a missing set raises rather than averaging over fewer.
    """
    names = [shifts] if isinstance(shifts, str) else list(shifts)
    if not names:
        raise UserError("average_robustness needs at least one shift set name")
    if len(set(names)) != len(names):
        raise UserError(f"shift set names must be unique, got {names}")
    missing = [s for s in names if s not in acc]
    if missing:
        raise UserError(missing_message("the accuracy table", missing, list(acc)))
    return float(np.mean([_check_percent(f"accuracy on {s}", acc[s]) for s in names]))


def table2_average(acc: Mapping[str, float]) -> float:
    """Table 2 "Average": unweighted mean of the 7 shifted sets in ``TABLE2_SHIFTS``, excluding INet-Val (§7.9)."""
    return average_robustness(acc, TABLE2_SHIFTS)


def effective_robustness_ratio(average_robustness: float, acc_id: float) -> float:
    """ERR = AR / acc_id (docs/transfer.md §5.2, JANuS); both in the same unit (% or fractions)."""
    for name, v in (("average_robustness", average_robustness), ("acc_id", acc_id)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
            raise UserError(f"{name} must be a finite number, got {v!r}")
        if v < 0:
            raise UserError(f"{name} must be non-negative, got {v}")
    if acc_id == 0:
        raise UserError("acc_id is 0; the effective robustness ratio is undefined for a model with no ID accuracy")
    return float(average_robustness) / float(acc_id)


# --------------------------------------------------------------------------------------------------------------
# effective robustness (Taori et al. 2020, docs/transfer.md §5.2)


class LogitLine(NamedTuple):
    """Baseline line ``logit(acc_shift) = slope * logit(acc_id) + intercept`` on fractions."""

    slope: float
    intercept: float


def _logit_percent(values: np.ndarray) -> np.ndarray:
    """logit(p) = ln(p / (1 - p)) of accuracies given in %."""
    p = values / 100.0
    return np.log(p / (1.0 - p))


def _baseline_array(name: str, values: Sequence[float]) -> np.ndarray:
    """Baseline accuracies in % as a 1-D float array, each strictly inside (0, 100)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise UserError(f"{name} must be a 1-D sequence of accuracies in %, got shape {arr.shape}")
    for i, v in enumerate(arr.tolist()):
        _check_percent(f"{name}[{i}]", v, open_interval=True)
    return arr


def fit_effective_robustness_line(
    baseline_id_acc: Sequence[float],
    baseline_shift_acc: Sequence[float],
    *,
    min_models: int = DEFAULT_MIN_BASELINE_MODELS,
) -> LogitLine:
    """OLS fit of the baseline line in logit space, as the imagenet-testbed does (docs/transfer.md §5.2).

    Inputs are top-1 accuracies in % (strictly between 0 and 100) of baseline models trained on ImageNet only,
    one pair per model; the fit is ``scipy.stats.linregress(logit(id), logit(shift))`` on fractions. Fewer than
    ``min_models`` (default 5, never below 3) models raise: a handful of models cannot define the line.
    """
    if isinstance(min_models, bool) or not isinstance(min_models, int) or min_models < _ABSOLUTE_MIN_BASELINE_MODELS:
        raise UserError(f"min_models must be an int >= {_ABSOLUTE_MIN_BASELINE_MODELS}, got {min_models!r}")
    x = _baseline_array("baseline_id_acc", baseline_id_acc)
    y = _baseline_array("baseline_shift_acc", baseline_shift_acc)
    if len(x) != len(y):
        raise UserError(f"baseline_id_acc has {len(x)} models but baseline_shift_acc has {len(y)}; pair them")
    if len(x) < min_models:
        raise UserError(
            f"effective robustness needs a baseline line fitted on at least {min_models} ImageNet-only models, "
            f"got {len(x)}. A few models cannot define the line (docs/transfer.md §5.2): evaluate 10-20 extra timm "
            "ImageNet-1k models with the same transforms, or use a published imagenet-testbed fit (slope, "
            "intercept) and cite it."
        )
    if np.all(x <= 1.0) and np.all(y <= 1.0):
        raise UserError("baseline accuracies are all <= 1: they look like fractions; pass top-1 accuracy in %")
    if np.ptp(x) == 0:
        raise UserError("all baseline models have the same ID accuracy; the line's slope is undefined")
    fit = stats.linregress(_logit_percent(x), _logit_percent(y))
    return LogitLine(float(fit.slope), float(fit.intercept))


def predicted_shift_accuracy(acc_id: float, slope: float, intercept: float) -> float:
    """Shift accuracy in % that the baseline line predicts at ``acc_id`` % (docs/transfer.md §5.2)."""
    x = _check_percent("acc_id", acc_id, open_interval=True)
    for name, v in (("slope", slope), ("intercept", intercept)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
            raise UserError(f"{name} of the baseline line must be a finite number, got {v!r}")
    z = float(slope) * float(_logit_percent(np.asarray(x))) + float(intercept)
    return 100.0 * float(special.expit(z))


def effective_robustness(acc_id: float, acc_shift: float, slope: float, intercept: float) -> float:
    """ER = acc_shift - 100 * sigmoid(slope * logit(acc_id) + intercept), in % points (docs/transfer.md §5.2).

    Accuracies are top-1 in %; ``slope`` and ``intercept`` come from ``fit_effective_robustness_line`` (logits
    of fractions) or from a published imagenet-testbed fit.
    """
    y = _check_percent("acc_shift", acc_shift)
    return y - predicted_shift_accuracy(acc_id, slope, intercept)


# --------------------------------------------------------------------------------------------------------------
# Table 2 and paper Fig. 6 (top)


def robustness_table(per_model: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    """Rows in the Table 2 layout (docs/protocol.md §11.2): model, imagenet_val, the 7 shifts, average.

    ``per_model`` maps a model id to its top-1 % per dataset; every model needs INet-Val and all 7 shifts.
    """
    if not per_model:
        raise UserError("robustness_table needs at least one model's accuracies")
    rows = []
    for model, acc in per_model.items():
        needed = (ID_DATASET, *TABLE2_SHIFTS)
        missing = [d for d in needed if d not in acc]
        if missing:
            raise UserError(missing_message(f"model {model!r}", missing, list(acc)))
        row: dict[str, Any] = {"model": model}
        row.update({d: _check_percent(f"{model} accuracy on {d}", acc[d]) for d in needed})
        row["average"] = table2_average(acc)
        rows.append(row)
    return rows
