"""The inference cache: one directory per (dataset, model), format in docs/cache.md.

``<cache_dir>/<dataset>/<model>/`` holds ``logits.npy`` [N, C] float32, ``features.npy`` [N, D] float32,
``targets.npy`` [N] int64, ``sample_ids.json`` (N strings) and ``meta.json``. ``meta.json`` is written last,
so its presence marks a complete cache. While a pass runs, finished chunks of samples go to ``partial/``;
an interrupted pass resumes from them. A cache whose configuration hash differs from the requested one is
recomputed, never reused.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beyond_imagenet.base.errors import CacheFormatError, NonFiniteLogitsError
from beyond_imagenet.base.files import atomic_open, atomic_save_npy, atomic_write_json
from beyond_imagenet.base.hashing import HASH_FORMAT, safe_name

CACHE_FORMAT_VERSION = HASH_FORMAT
META_FILE = "meta.json"
ARRAY_FILES = ("logits.npy", "features.npy", "targets.npy")
IDS_FILE = "sample_ids.json"
LABEL_LISTS_FILE = "label_lists.json"  # multi-label sets only (ImageNet-Hard): valid ImageNet indices per row
PARTIAL_DIR = "partial"


def cache_path(cache_root: str | Path, dataset: str, model_id: str, variant: str | None = None) -> Path:
    """``<cache_root>/<dataset>/[<variant>/]<model>``, each part made file-system safe."""
    parts = [safe_name(dataset)] + ([safe_name(variant)] if variant else []) + [safe_name(model_id)]
    return Path(cache_root).joinpath(*parts)


@dataclass(frozen=True)
class InferenceCache:
    """A loaded cache: arrays aligned by row, plus the provenance in ``meta``."""

    path: Path
    logits: np.ndarray
    features: np.ndarray
    targets: np.ndarray
    sample_ids: list[str]
    meta: dict
    label_lists: list[list[int]] | None = None

    @property
    def model_id(self) -> str:
        """The id of the model whose outputs this cache holds (``meta["model"]["model_id"]``)."""
        return self.meta["model"]["model_id"]

    @property
    def dataset(self) -> str:
        """The name of the dataset this cache covers (``meta["dataset"]["name"]``)."""
        return self.meta["dataset"]["name"]

    def __len__(self) -> int:
        return len(self.sample_ids)


def read_meta(path: str | Path) -> dict | None:
    """Parse the ``meta.json`` of the cache (or feature cache) directory ``path``.

    Returns None when the file is absent, i.e. the cache is not complete; raises ``CacheFormatError`` when it is not
    valid JSON.
    """
    meta_file = Path(path) / META_FILE
    if not meta_file.exists():
        return None
    try:
        return json.loads(meta_file.read_text())
    except json.JSONDecodeError as err:
        raise CacheFormatError(f"{meta_file} is not valid JSON: {err}; delete {path} and rerun") from err


def is_complete(path: str | Path, expected_hash: str) -> bool:
    """True when ``path`` holds a finished cache made with exactly ``expected_hash``."""
    meta = read_meta(path)
    return bool(meta) and meta.get("config_hash") == expected_hash


def _check_finite(logits: np.ndarray, sample_ids: list[str], where: str) -> None:
    bad_rows = np.flatnonzero(~np.isfinite(logits).all(axis=1))
    if bad_rows.size:
        shown = ", ".join(sample_ids[i] for i in bad_rows[:10])
        raise NonFiniteLogitsError(
            f"{where}: {bad_rows.size} sample(s) have NaN or infinite logits (e.g. {shown}). They are not "
            "counted as predictions. Check the model weights, use precision fp32, or inspect these images."
        )


def load_cache(path: str | Path, check_finite: bool = True) -> InferenceCache:
    """Read and validate a cache directory written by us or by hand following docs/cache.md."""
    path = Path(path)
    meta = read_meta(path)
    if meta is None:
        raise CacheFormatError(f"no complete cache at {path}: {META_FILE} is missing (run the inference stage)")
    missing = [f for f in (*ARRAY_FILES, IDS_FILE) if not (path / f).exists()]
    if missing:
        raise CacheFormatError(f"cache {path} lacks {', '.join(missing)} (see docs/cache.md)")
    for key in ("model", "dataset"):
        if key not in meta:
            raise CacheFormatError(f"{path / META_FILE} lacks the required key {key!r} (see docs/cache.md)")
    logits = np.load(path / "logits.npy", allow_pickle=False)
    features = np.load(path / "features.npy", allow_pickle=False)
    targets = np.load(path / "targets.npy", allow_pickle=False)
    sample_ids = json.loads((path / IDS_FILE).read_text())
    n = len(sample_ids)
    shapes = {"logits": logits.shape, "features": features.shape, "targets": targets.shape}
    if logits.ndim != 2 or features.ndim != 2 or targets.ndim != 1 or {len(logits), len(features), len(targets)} != {n}:
        raise CacheFormatError(f"cache {path}: arrays do not align with {n} sample ids: {shapes}")
    if not np.issubdtype(targets.dtype, np.integer):
        raise CacheFormatError(f"cache {path}: targets.npy must hold integers, found {targets.dtype}")
    if check_finite:
        _check_finite(logits, sample_ids, f"cache {path}")
    label_lists = None
    if (path / LABEL_LISTS_FILE).exists():
        label_lists = json.loads((path / LABEL_LISTS_FILE).read_text())
        if len(label_lists) != n:
            raise CacheFormatError(f"cache {path}: {LABEL_LISTS_FILE} has {len(label_lists)} rows for {n} samples")
    logits = logits.astype(np.float32, copy=False)
    return InferenceCache(path, logits, features, targets.astype(np.int64), sample_ids, meta, label_lists)


def write_cache(
    path: str | Path,
    logits: np.ndarray,
    features: np.ndarray,
    targets: np.ndarray,
    sample_ids: list[str],
    meta: dict,
    label_lists: list[list[int]] | None = None,
) -> Path:
    """Write a complete cache atomically: arrays first, ``meta.json`` last, then drop ``partial/``."""
    path = Path(path)
    _check_finite(logits, sample_ids, f"model {meta.get('model', {}).get('model_id', '?')}")
    (path / META_FILE).unlink(missing_ok=True)  # the old cache stops counting as complete first
    atomic_save_npy(path / "logits.npy", np.ascontiguousarray(logits, dtype=np.float32))
    atomic_save_npy(path / "features.npy", np.ascontiguousarray(features, dtype=np.float32))
    atomic_save_npy(path / "targets.npy", np.ascontiguousarray(targets, dtype=np.int64))
    atomic_write_json(path / IDS_FILE, list(sample_ids))
    if label_lists is not None:
        atomic_write_json(path / LABEL_LISTS_FILE, label_lists)
    else:
        (path / LABEL_LISTS_FILE).unlink(missing_ok=True)
    atomic_write_json(path / META_FILE, {"format_version": CACHE_FORMAT_VERSION, **meta})
    shutil.rmtree(path / PARTIAL_DIR, ignore_errors=True)
    return path


class PartialChunks:
    """Finished chunks of an unfinished pass, tied to one configuration hash."""

    def __init__(self, cache_dir: str | Path, config_hash_value: str):
        self.dir = Path(cache_dir) / PARTIAL_DIR
        self.hash = config_hash_value
        stamp = self.dir / "config_hash.txt"
        if self.dir.exists() and (not stamp.exists() or stamp.read_text().strip() != self.hash):
            shutil.rmtree(self.dir)  # chunks from another configuration are never reused
        self.dir.mkdir(parents=True, exist_ok=True)
        if not stamp.exists():
            stamp.write_text(self.hash + "\n")

    def chunk_file(self, chunk: int) -> Path:
        """The ``.npz`` file that holds (or will hold) chunk number ``chunk``."""
        return self.dir / f"chunk_{chunk:06d}.npz"

    def done(self) -> set[int]:
        """Numbers of the chunks already saved, which a resumed pass skips."""
        return {int(p.stem.split("_")[1]) for p in self.dir.glob("chunk_*.npz")}

    def write(self, chunk: int, indices: np.ndarray, logits: np.ndarray, features: np.ndarray, failed: list) -> None:
        """Save one chunk atomically; ``failed`` lists [dataset index, reason] of undecodable images."""
        with atomic_open(self.chunk_file(chunk)) as handle:
            np.savez(
                handle,
                indices=indices.astype(np.int64),
                logits=logits.astype(np.float32),
                features=features.astype(np.float32),
                failed=np.array(json.dumps(failed)),
            )

    def read_all(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
        """Concatenate all chunks in order: (indices, logits, features, failed)."""
        indices, logits, features, failed = [], [], [], []
        for chunk in sorted(self.done()):
            with np.load(self.chunk_file(chunk), allow_pickle=False) as data:
                indices.append(data["indices"])
                logits.append(data["logits"])
                features.append(data["features"])
                failed.extend(json.loads(str(data["failed"])))
        return np.concatenate(indices), np.concatenate(logits), np.concatenate(features), failed


def label_space_logits(cache: InferenceCache) -> np.ndarray:
    """The cache's logits restricted to the dataset's classes, column ``k`` = dataset class ``k``.

    * output space ``label_space``: already per dataset class (CLIP head over the dataset's own names);
    * output space ``imagenet1k`` on an ImageNet-1k dataset: unchanged;
    * output space ``imagenet1k`` on a subset (IN-A/R style): keep the subset's columns in sorted-wnid order,
      before any softmax, exactly as the 200-class masks of §2.2.
    """
    output = cache.meta.get("output_space", {"kind": "imagenet1k"})
    label = cache.meta.get("label_space", {"kind": "imagenet1k"})
    logits = cache.logits
    if output.get("kind") == "label_space":
        return logits
    if output.get("kind") != "imagenet1k":
        raise CacheFormatError(f"{cache.path}: unknown output_space kind {output.get('kind')!r} (docs/cache.md)")
    if logits.shape[1] != 1000:
        raise CacheFormatError(f"{cache.path}: output_space imagenet1k needs 1000 logit columns, has {logits.shape[1]}")
    if label.get("kind") == "imagenet1k":
        return logits
    columns = label.get("imagenet_columns")
    if not columns:
        raise CacheFormatError(
            f"{cache.path}: label space {label.get('kind')!r} has no one-to-one imagenet_columns, so ImageNet "
            "logits cannot be restricted to its classes (docs/cache.md)"
        )
    columns = np.asarray(columns)
    if not np.issubdtype(columns.dtype, np.integer) or columns.min() < 0 or columns.max() >= 1000:
        raise CacheFormatError(f"{cache.path}: label_space.imagenet_columns must be integers in 0..999")
    return logits[:, columns.astype(np.int64)]
