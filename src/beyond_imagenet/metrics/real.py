"""ImageNet-ReaL accuracy: top-1 in the reassessed label set, images with no label skipped (docs/protocol.md §7.7).

The label lists are read by ``data.real_labels``; entry ``i`` belongs to ``ILSVRC2012_val_{i+1:08d}.JPEG``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.imagenet_x import check_val_ids

LIBRARY_SETTING = "allow_partial=True"  # how a library caller allows partial coverage; analyses name their key


def real_accuracy(
    predicted_class: np.ndarray,
    sample_ids: Sequence[str],
    labels: dict[str, list[int]],
    allow_partial: bool = False,
    partial_setting: str = LIBRARY_SETTING,
) -> dict:
    """ReaL top-1 accuracy in percent over predicted images with a non-empty label list (§7.7).

    ``n_missing`` counts ids with no entry in ``labels``; ``n_unpredicted`` counts labelled images with no
    prediction. Either is an error (a partial val set is not comparable to the paper) unless ``allow_partial``;
    the error names ``partial_setting`` as the way to allow it (the robustness analysis: its params.yaml key).
    """
    predicted_class = np.asarray(predicted_class)
    if predicted_class.ndim != 1 or len(predicted_class) != len(sample_ids):
        raise UserError(
            f"predicted_class must be 1-D and align with the {len(sample_ids)} sample ids, got shape "
            f"{list(predicted_class.shape)}"
        )
    if not np.issubdtype(predicted_class.dtype, np.integer):
        raise UserError(f"predicted_class must hold integer ImageNet-1k indices, got dtype {predicted_class.dtype}")
    check_val_ids(sample_ids, "ReaL predictions")
    missing = [s for s in sample_ids if s not in labels]
    predicted = set(sample_ids)
    unpredicted = [name for name, lab in labels.items() if lab and name not in predicted]
    if (missing or unpredicted) and not allow_partial:
        raise UserError(
            f"ReaL: {len(missing):,} sample id(s) have no label entry (e.g. {missing[:3]}) and {len(unpredicted):,} "
            f"labelled image(s) have no prediction (e.g. {unpredicted[:3]}). Score the full ImageNet val set with "
            f"the full real.json, or set {partial_setting} to score only the overlap (not comparable to the paper)."
        )
    hit, labelled = real_hits(predicted_class, sample_ids, labels)
    if not labelled.any():
        raise UserError("ReaL: no predicted image has a non-empty label list, so the accuracy is undefined")
    n_unlabeled = sum(1 for s in sample_ids if s in labels and not labels[s])
    return {
        "accuracy": 100.0 * int(hit.sum()) / int(labelled.sum()),
        "n_correct": int(hit.sum()),
        "n_scored": int(labelled.sum()),
        "n_unlabeled_skipped": n_unlabeled,
        "n_missing": len(missing),
        "n_unpredicted": len(unpredicted),
    }


def real_hits(
    predicted_class: np.ndarray, sample_ids: Sequence[str], labels: dict[str, list[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Per image: is its prediction one of its ReaL labels, and has it any label? Two bool arrays [N] (§7.7)."""
    labelled = np.array([bool(labels.get(s)) for s in sample_ids], dtype=bool)
    hit = np.array(
        [bool(labels.get(s)) and int(k) in labels[s] for s, k in zip(sample_ids, predicted_class, strict=True)],
        dtype=bool,
    )
    return hit, labelled
