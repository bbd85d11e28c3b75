"""Calibration metrics: max-softmax confidence, reliability bins and ECE (docs/protocol.md §5, paper Fig. 4).

Pure numpy, float64 internally. Bins follow the official code: ``edges = linspace(0, 1, n_bins + 1)``
and a sample goes in bin ``i`` when ``edges[i] < conf <= edges[i + 1]`` (left-open, right-closed), so a
confidence of exactly 1.0 lands in the last bin. A confidence of exactly 0.0 cannot come from a softmax
but may come from a hand-written cache; it is put in bin 0 rather than dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from beyond_imagenet.metrics.accuracy import top1_predictions
from beyond_imagenet.metrics.resampling import LinearStatistic, ratio

DEFAULT_N_BINS = 15  # paper and official code (docs/protocol.md §5)


def softmax_confidence(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max-softmax confidence and top-1 prediction of ``[N, C]`` logits (docs/protocol.md §5, per-sample quantities).

    The prediction follows the tie rule of ``metrics.accuracy.top1_predictions``: a tied maximum gives -1 (wrong);
    its confidence is still the max-softmax probability. The softmax is computed in float64 after subtracting the
    row maximum, so huge logits do not overflow.
    Non-finite logits raise: a NaN logit is never counted as a prediction (docs/architecture.md, principle 6).
    """
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"logits must be a 2-D [N, C] array, got shape {x.shape}")
    if x.shape[1] == 0:
        raise ValueError(f"logits must have at least one class column, got shape {x.shape}")
    bad_rows = ~np.isfinite(x).all(axis=1)
    if bad_rows.any():
        raise ValueError(
            f"logits contain NaN or infinite values in {int(bad_rows.sum())} of {x.shape[0]} rows "
            f"(first at row {int(np.argmax(bad_rows))}); drop or fix those samples first"
        )
    prediction = top1_predictions(x)
    shifted = x - x.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    # The max entry of `shifted` is 0, so its exp is exactly 1 and the confidence is 1 / row sum.
    confidence = 1.0 / exp.sum(axis=1)
    return confidence, prediction


def _as_vector(name: str, values: np.ndarray) -> np.ndarray:
    """Return ``values`` as a 1-D array, or raise ValueError naming the argument."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    return arr


def _validate_confidence(confidence: np.ndarray) -> np.ndarray:
    """Return confidences as float64, checking that they are finite and within [0, 1]."""
    conf = _as_vector("confidence", confidence)
    if conf.size and not np.issubdtype(conf.dtype, np.number):
        raise ValueError(f"confidence must be numeric, got dtype {conf.dtype}")
    conf = conf.astype(np.float64)
    if not np.isfinite(conf).all():
        n_bad = int((~np.isfinite(conf)).sum())
        raise ValueError(f"confidence contains {n_bad} NaN or infinite values")
    if conf.size and (conf.min() < 0.0 or conf.max() > 1.0):
        raise ValueError(f"confidence must lie in [0, 1], got values in [{conf.min():.6g}, {conf.max():.6g}]")
    return conf


def _validate_correct(correct: np.ndarray) -> np.ndarray:
    """Return ``correct`` as a bool array; numeric input must contain only 0 and 1."""
    corr = _as_vector("correct", correct)
    if corr.dtype == np.bool_:
        return corr
    if corr.size and not np.isin(corr, (0, 1)).all():
        raise ValueError("correct must be boolean or contain only 0 and 1")
    return corr.astype(bool)


def bin_edges(n_bins: int = DEFAULT_N_BINS) -> np.ndarray:
    """Equal-width confidence bin edges ``linspace(0, 1, n_bins + 1)`` (docs/protocol.md §5)."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1, got {n_bins!r}")
    return np.linspace(0.0, 1.0, int(n_bins) + 1, dtype=np.float64)


def bin_indices(confidence: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index per sample: ``i`` with ``edges[i] < conf <= edges[i + 1]``; exactly 0.0 goes in bin 0."""
    # searchsorted(side="left") gives the first j with edges[j] >= conf: conf in (edges[j-1], edges[j]].
    idx = np.searchsorted(edges, confidence, side="left") - 1
    return np.clip(idx, 0, len(edges) - 2).astype(np.int64)


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    """Plain floats with NaN replaced by None, for JSON."""
    return [None if math.isnan(v) else float(v) for v in values.tolist()]


@dataclass(frozen=True, eq=False)
class CalibrationBins:
    """Per-bin reliability statistics (docs/protocol.md §5): counts, accuracy, mean confidence and proportion.

    ``accuracy`` and ``confidence`` are NaN for empty bins. ``eq=False`` because array fields make the
    generated ``__eq__`` ambiguous; compare fields with numpy instead.
    """

    edges: np.ndarray
    counts: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray
    proportion: np.ndarray
    n: int

    @property
    def n_bins(self) -> int:
        """Number of bins."""
        return len(self.counts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable copy: plain lists, NaN (empty bins) as None."""
        return {
            "n_bins": self.n_bins,
            "n": int(self.n),
            "edges": [float(e) for e in self.edges.tolist()],
            "counts": [int(c) for c in self.counts.tolist()],
            "accuracy": _nan_to_none(self.accuracy),
            "confidence": _nan_to_none(self.confidence),
            "proportion": [float(p) for p in self.proportion.tolist()],
        }


def _readonly(arr: np.ndarray) -> np.ndarray:
    """Mark an array read-only so a frozen record stays frozen."""
    arr.setflags(write=False)
    return arr


def calibration_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = DEFAULT_N_BINS) -> CalibrationBins:
    """Bin samples by confidence into left-open, right-closed bins (docs/protocol.md §5, paper Fig. 4).

    Confidence exactly 1.0 lands in the last bin; exactly 0.0 (only possible from a hand-written cache) in
    bin 0. Raises ValueError on non-1-D input, length mismatch, no samples, confidences outside [0, 1] or
    non-finite, and ``n_bins < 1``.
    """
    edges = bin_edges(n_bins)
    conf = _validate_confidence(confidence)
    corr = _validate_correct(correct)
    if conf.shape != corr.shape:
        raise ValueError(f"confidence and correct differ in length: {conf.shape[0]} vs {corr.shape[0]}")
    n = conf.shape[0]
    if n == 0:
        raise ValueError("calibration needs at least one sample, got 0")
    idx = bin_indices(conf, edges)
    k = len(edges) - 1
    counts = np.bincount(idx, minlength=k).astype(np.int64)
    sum_correct = np.bincount(idx, weights=corr.astype(np.float64), minlength=k)
    sum_conf = np.bincount(idx, weights=conf, minlength=k)
    nonempty = counts > 0
    accuracy = np.full(k, np.nan)
    mean_conf = np.full(k, np.nan)
    accuracy[nonempty] = sum_correct[nonempty] / counts[nonempty]
    mean_conf[nonempty] = sum_conf[nonempty] / counts[nonempty]
    return CalibrationBins(
        edges=_readonly(edges),
        counts=_readonly(counts),
        accuracy=_readonly(accuracy),
        confidence=_readonly(mean_conf),
        proportion=_readonly(counts / n),
        n=int(n),
    )


def ece_from_bins(bins: CalibrationBins) -> float:
    """ECE = Σ_i prop_i · |acc_i − conf_i| over non-empty bins; empty bins contribute 0 (docs/protocol.md §5)."""
    nonempty = bins.counts > 0
    gaps = np.abs(bins.accuracy[nonempty] - bins.confidence[nonempty])
    return float(np.sum(bins.proportion[nonempty] * gaps))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = DEFAULT_N_BINS) -> float:
    """Expected calibration error with ``n_bins`` equal-width left-open bins (docs/protocol.md §5, paper Fig. 4)."""
    return ece_from_bins(calibration_bins(confidence, correct, n_bins))


def top1_accuracy(prediction: np.ndarray, target: np.ndarray) -> float:
    """Fraction of samples whose prediction equals the target, in [0, 1] (docs/protocol.md §5, ``correct``)."""
    pred = _as_vector("prediction", prediction)
    tgt = _as_vector("target", target)
    if pred.shape != tgt.shape:
        raise ValueError(f"prediction and target differ in length: {pred.shape[0]} vs {tgt.shape[0]}")
    if pred.shape[0] == 0:
        raise ValueError("accuracy needs at least one sample, got 0")
    return float(np.mean(pred == tgt))


def calibration_statistics(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = DEFAULT_N_BINS
) -> dict[str, LinearStatistic]:
    """ECE, top-1 (%), mean confidence and over-confidence as statistics of per-sample columns (for intervals).

    Per sample and bin: [in bin, correct and in bin, confidence if in bin]; ECE = Σ_b |Σ correct_b - Σ conf_b| / N,
    which equals ``ece_from_bins`` (Σ_b n_b/N · |acc_b - conf_b|) on the data and on every resample.
    """
    conf = _validate_confidence(confidence)
    corr = _validate_correct(correct).astype(np.float64)
    member = np.eye(len(bin_edges(n_bins)) - 1)[bin_indices(conf, bin_edges(n_bins))]
    columns = np.concatenate([member, member * corr[:, None], member * conf[:, None]], axis=1)
    k = member.shape[1]

    def ece(sums: np.ndarray) -> np.ndarray:
        total = sums[:, :k].sum(axis=1)
        return np.abs(sums[:, k : 2 * k] - sums[:, 2 * k :]).sum(axis=1) / total

    totals = np.stack([np.ones_like(conf), corr, conf], axis=1)
    return {
        "ece": LinearStatistic(columns, ece),
        "top1": LinearStatistic(totals, ratio(1, 0, 100.0)),
        "mean_confidence": LinearStatistic(totals, ratio(2, 0)),
        "overconfidence": LinearStatistic(totals, lambda s: (s[:, 2] - s[:, 1]) / s[:, 0]),
    }
