"""Linear-probe metrics and the checks of their inputs (docs/transfer.md §2.5).

``top1`` (%) and ``mean_per_class_recall`` (%): the recall of each class *present in the targets*, averaged with
equal weight. Classes that never occur in ``y`` are left out of the mean (a predicted but absent class only lowers
the recall of the true classes it steals from). This equals scikit-learn's ``balanced_accuracy_score`` and
CLIP_benchmark's ``lp_mean_per_class_recall``.
"""

from __future__ import annotations

import torch

from beyond_imagenet.base.errors import NonFiniteLogitsError, UserError


def check_features(x: torch.Tensor, name: str = "features") -> None:
    """Check that ``x`` is a non-empty, finite, floating-point [n_samples, dim] tensor; raises ``UserError``."""
    if not isinstance(x, torch.Tensor):
        raise UserError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise UserError(f"{name} must be a non-empty 2-D tensor [n_samples, dim], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise UserError(f"{name} must be floating point, got dtype {x.dtype}")
    finite = torch.cat([torch.isfinite(chunk).all(dim=1) for chunk in x.split(65536)])  # bounded temporaries
    if not bool(finite.all()):
        bad = torch.nonzero(~finite).flatten()
        rows = ", ".join(str(int(i)) for i in bad[:10])
        raise UserError(f"{name}: {bad.numel()} row(s) contain NaN or infinite values (rows {rows}, ...)")


def check_labels(y: torch.Tensor, n_classes: int, name: str = "labels") -> None:
    """Check that ``y`` is a non-empty 1-D tensor of integer class indices in [0, n_classes); raises ``UserError``."""
    if not isinstance(y, torch.Tensor):
        raise UserError(f"{name} must be a torch.Tensor, got {type(y).__name__}")
    if y.ndim != 1 or y.numel() == 0:
        raise UserError(f"{name} must be a non-empty 1-D tensor of class indices, got shape {tuple(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise UserError(f"{name} must be integer class indices, got dtype {y.dtype}")
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= n_classes:
        raise UserError(
            f"{name} must lie in [0, {n_classes - 1}] for n_classes={n_classes}, found values in [{low}, {high}]"
        )


def check_n_classes(n_classes: int) -> None:
    """Check that ``n_classes`` is an integer >= 2 (a probe needs two classes at least); raises ``UserError``."""
    if isinstance(n_classes, bool) or int(n_classes) != n_classes or n_classes < 2:
        raise UserError(f"a probe needs n_classes >= 2, got {n_classes!r}")


def check_split(x: torch.Tensor, y: torch.Tensor, n_classes: int, name: str = "train") -> None:
    """Shapes, dtypes, finiteness and label range of one split; raises ``UserError`` naming the split."""
    check_n_classes(n_classes)
    check_features(x, f"{name} features")
    check_labels(y, n_classes, f"{name} labels")
    if x.shape[0] != y.shape[0]:
        raise UserError(f"{name}: {x.shape[0]} feature rows but {y.shape[0]} labels")


# ---------------------------------------------------------------------------------------------------------------
# fit / predict / evaluate


def evaluate(logits: torch.Tensor, y: torch.Tensor, n_classes: int) -> dict[str, float]:
    """``top1`` and ``mean_per_class_recall`` in percent (mean over the classes present in ``y``; see module doc).

    Non-finite logits raise ``NonFiniteLogitsError``: such rows are never counted as predictions.
    """
    logits = torch.as_tensor(logits)
    y = torch.as_tensor(y)
    check_n_classes(n_classes)
    check_labels(y, n_classes, "labels")
    if logits.ndim != 2 or logits.shape != (len(y), n_classes):
        raise UserError(f"logits must have shape ({len(y)}, {n_classes}), got {tuple(logits.shape)}")
    if not bool(torch.isfinite(logits).all()):
        bad = int((~torch.isfinite(logits).all(dim=1)).sum())
        raise NonFiniteLogitsError(f"{bad} sample(s) have NaN or infinite probe logits; they are never counted")
    y = y.to(logits.device, dtype=torch.long)
    # ties count as wrong (metrics.accuracy.topk_correct with k = 1, docs/protocol.md §2.3)
    correct = (logits >= logits.gather(1, y[:, None])).sum(dim=1) == 1
    support = torch.bincount(y, minlength=n_classes)
    hits = torch.bincount(y[correct], minlength=n_classes)
    present = support > 0
    recall = hits[present].double() / support[present].double()
    return {
        "top1": 100.0 * float(correct.double().mean()),
        "mean_per_class_recall": 100.0 * float(recall.mean()),
    }
