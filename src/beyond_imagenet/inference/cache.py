"""The inference cache: one directory per (dataset, model), format in docs/cache.md.

``<cache_dir>/<dataset>/<model>/`` holds ``logits.npy`` [N, C] float32, ``features.npy`` [N, D] float32,
``targets.npy`` [N] int64, ``sample_ids.json`` (N strings) and ``meta.json``. ``meta.json`` is written last,
so its presence marks a complete cache. While a pass runs, finished chunks of samples go to ``partial/``;
an interrupted pass resumes from them. A cache whose configuration hash differs from the requested one is
recomputed, never reused. ``meta.json``'s ``checksums`` (sha256 per file) are verified whenever a cache is judged up to
date or loaded; caches without them (written by other tools) get the shape and row-count checks only. A cache is
written by one process at a time (:func:`cache_lock`).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beyond_imagenet.base.errors import CacheFormatError, NonFiniteLogitsError
from beyond_imagenet.base.files import (
    TEMP_SUFFIX,
    atomic_open,
    atomic_save_npy,
    atomic_write_json,
    exclusive_lock,
    remove_temp_files,
    sha256_file,
)
from beyond_imagenet.base.hashing import HASH_FORMAT, safe_name

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = HASH_FORMAT
META_FILE = "meta.json"
ARRAY_FILES = ("logits.npy", "features.npy", "targets.npy")
IDS_FILE = "sample_ids.json"
LABEL_LISTS_FILE = "label_lists.json"  # multi-label sets only (ImageNet-Hard): valid ImageNet indices per row
PARTIAL_DIR = "partial"
LOCK_FILE = ".lock"  # flock'ed while a process writes the cache (never part of the cache's content)
CHECKSUMS_KEY = "checksums"  # meta.json: {file name: sha256 hex} of every file written before meta.json
REFRESH_HINT = "rerun `beyond-imagenet infer` (or `dvc repro inference`) to recompute it, or delete {path}"


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


def checksum_problems(path: str | Path, meta: dict) -> list[str]:
    """What differs from ``meta["checksums"]`` (missing files, changed bytes); empty when none are recorded."""
    problems = []
    for name, digest in (meta.get(CHECKSUMS_KEY) or {}).items():
        file = Path(path) / name
        if not file.is_file():
            problems.append(f"{name} is missing")
        elif sha256_file(file) != digest:
            problems.append(f"{name} does not match its sha256 in {META_FILE} (truncated or overwritten)")
    return problems


def _array_shape(file: Path) -> tuple[int, ...] | str:
    """The shape of a ``.npy`` file read from its header (memory-mapped, cheap), or why it cannot be read."""
    try:
        return tuple(np.load(file, mmap_mode="r", allow_pickle=False).shape)
    except (ValueError, OSError, EOFError) as err:
        return f"{file.name} is unreadable ({err})"


def _json_rows(file: Path) -> int | str:
    """The length of a JSON list file, or why it cannot be read."""
    try:
        rows = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        return f"{file.name} is unreadable ({err})"
    return len(rows) if isinstance(rows, list) else f"{file.name} does not hold a JSON list"


def _row_problems(path: Path, meta: dict) -> list[str]:
    """Shape and row-count consistency of the four files (and ``n_samples``, ``label_lists.json`` if present)."""
    shapes = {name: _array_shape(path / name) for name in ARRAY_FILES}
    n = _json_rows(path / IDS_FILE)
    unreadable = [v for v in (*shapes.values(), n) if isinstance(v, str)]
    if unreadable:
        return unreadable
    dims = {"logits.npy": 2, "features.npy": 2, "targets.npy": 1}
    if any(len(shapes[name]) != dims[name] for name in ARRAY_FILES) or {s[0] for s in shapes.values()} != {n}:
        return [f"arrays do not align with {n} sample ids: {shapes}"]
    problems = []
    if "n_samples" in meta and meta["n_samples"] != n:
        problems.append(f"{IDS_FILE} has {n} rows but {META_FILE} records n_samples {meta['n_samples']}")
    if (path / LABEL_LISTS_FILE).exists() and _json_rows(path / LABEL_LISTS_FILE) != n:
        problems.append(f"{LABEL_LISTS_FILE} does not have {n} rows")
    return problems


def cache_problems(path: str | Path, meta: dict) -> list[str]:
    """Why the complete-looking cache at ``path`` cannot be trusted: missing files, checksums, rows; empty if fine."""
    path = Path(path)
    missing = [f for f in (*ARRAY_FILES, IDS_FILE) if not (path / f).is_file()]
    if missing:
        return [f"it lacks {', '.join(missing)} (see docs/cache.md)"]
    return checksum_problems(path, meta) or _row_problems(path, meta)


def is_complete(
    path: str | Path,
    expected_hash: str,
    problems: Callable[[Path, dict], list[str]] = cache_problems,
    report: bool = True,
) -> bool:
    """True when ``path`` holds an intact finished cache made with exactly ``expected_hash``.

    A cache with the right hash that fails ``problems`` (checksums, shapes) counts as missing, so the inference
    stage recomputes it; with ``report`` it is logged as damaged.
    """
    meta = read_meta(path)
    if not meta or meta.get("config_hash") != expected_hash:
        return False
    found = problems(Path(path), meta)
    if found and report:
        log.warning("cache %s is damaged (%s): recomputing it", path, "; ".join(found))
    return not found


@contextmanager
def cache_lock(path: str | Path) -> Iterator[None]:
    """Hold the write lock of the cache folder ``path``, waiting (and saying so) while another process holds it."""
    path = Path(path)

    def waiting() -> None:
        log.warning("another process is writing %s; waiting for it to finish", path)

    with exclusive_lock(path / LOCK_FILE, on_wait=waiting):
        yield


def tidy_finished_cache(path: str | Path) -> list[Path]:
    """Remove temporary files a killed write left in the finished cache ``path`` (unless a writer holds its lock).

    Nothing is locked or created when there are none (read-only foreign caches stay untouched).
    """
    if not any(Path(path).glob(f".*{TEMP_SUFFIX}")):
        return []
    try:
        with exclusive_lock(Path(path) / LOCK_FILE, wait=False):
            removed = remove_temp_files(path)
    except OSError:  # held by a writer (BlockingIOError), or a read-only folder
        return []
    if removed:
        log.info("removed %d leftover temporary file(s) from %s", len(removed), path)
    return removed


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
    for key in ("model", "dataset"):
        if key not in meta:
            raise CacheFormatError(f"{path / META_FILE} lacks the required key {key!r} (see docs/cache.md)")
    problems = cache_problems(path, meta)
    if problems:
        raise CacheFormatError(
            f"cache {path} is damaged: {'; '.join(problems)}. Do not analyse it: " + REFRESH_HINT.format(path=path)
        )
    logits = np.load(path / "logits.npy", allow_pickle=False)
    features = np.load(path / "features.npy", allow_pickle=False)
    targets = np.load(path / "targets.npy", allow_pickle=False)
    sample_ids = json.loads((path / IDS_FILE).read_text())
    if not np.issubdtype(targets.dtype, np.integer):
        raise CacheFormatError(f"cache {path}: targets.npy must hold integers, found {targets.dtype}")
    if check_finite:
        _check_finite(logits, sample_ids, f"cache {path}")
    label_lists = None
    if (path / LABEL_LISTS_FILE).exists():
        label_lists = json.loads((path / LABEL_LISTS_FILE).read_text())
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
    """Write a complete cache atomically: arrays first, ``meta.json`` (with each file's sha256) last.

    Then ``partial/`` is dropped. Temporary files of an earlier, killed write are removed first; callers that may
    race with another process hold :func:`cache_lock`.
    """
    path = Path(path)
    _check_finite(logits, sample_ids, f"model {meta.get('model', {}).get('model_id', '?')}")
    (path / META_FILE).unlink(missing_ok=True)  # the old cache stops counting as complete first
    remove_temp_files(path)
    files = {
        "logits.npy": atomic_save_npy(path / "logits.npy", np.ascontiguousarray(logits, dtype=np.float32)),
        "features.npy": atomic_save_npy(path / "features.npy", np.ascontiguousarray(features, dtype=np.float32)),
        "targets.npy": atomic_save_npy(path / "targets.npy", np.ascontiguousarray(targets, dtype=np.int64)),
        IDS_FILE: atomic_write_json(path / IDS_FILE, list(sample_ids)),
    }
    if label_lists is not None:
        files[LABEL_LISTS_FILE] = atomic_write_json(path / LABEL_LISTS_FILE, label_lists)
    else:
        (path / LABEL_LISTS_FILE).unlink(missing_ok=True)
    checksums = {name: sha256_file(file) for name, file in files.items()}
    atomic_write_json(path / META_FILE, {"format_version": CACHE_FORMAT_VERSION, **meta, CHECKSUMS_KEY: checksums})
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

    def drop_rows(self, rows: np.ndarray) -> list[Path]:
        """Delete the chunks holding any of the dataset indices ``rows`` (so a rerun recomputes them)."""
        dropped = []
        for chunk in sorted(self.done()):
            file = self.chunk_file(chunk)
            with np.load(file, allow_pickle=False) as data:
                hit = np.isin(data["indices"], rows).any()
            if hit:
                file.unlink()
                dropped.append(file)
        return dropped

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
    * output space ``model_classes``: the model's own classes; ``columns`` picks the dataset's, in its order;
    * output space ``imagenet1k`` on an ImageNet-1k dataset: unchanged;
    * output space ``imagenet1k`` on a subset (IN-A/R style): keep the subset's columns in sorted-wnid order,
      before any softmax, exactly as the 200-class masks of §2.2.
    """
    output = cache.meta.get("output_space", {"kind": "imagenet1k"})
    label = cache.meta.get("label_space", {"kind": "imagenet1k"})
    logits = cache.logits
    if output.get("kind") == "label_space":
        return logits
    if output.get("kind") == "model_classes":
        columns = np.asarray(output.get("columns") or [], dtype=np.int64)
        if columns.size == 0 or columns.min() < 0 or columns.max() >= logits.shape[1]:
            raise CacheFormatError(f"{cache.path}: output_space model_classes needs columns within the logits")
        return logits[:, columns]
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
