"""Per-sample predictions of any cache as one parquet file (docs/interchange.md).

Columns: ``sample_id`` (string), ``target`` (int64), ``top1`` (int64; -1: a tied maximum, counted wrong),
``top1_probability`` (float64 softmax), ``top5`` (fixed-size list of int64, best first, ties by lower index) and,
with ``with_logits``, ``logits`` (fixed-size list of float32: the cache's row, bit for bit). top-1 and top-5 are over
the dataset's classes where the cache restricts to them (``label_space_logits``; then ``top1 == target`` is a hit), else
over the output columns (cue-conflict, PUG); the file's key-value metadata ``beyond_imagenet`` (JSON) says which, and
holds the cache's meta.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from beyond_imagenet.base.errors import CacheFormatError
from beyond_imagenet.base.files import atomic_open
from beyond_imagenet.base.hashing import safe_name
from beyond_imagenet.inference.cache import InferenceCache, label_space_logits
from beyond_imagenet.metrics.accuracy import top1_predictions

NAME = "parquet"
METADATA_KEY = b"beyond_imagenet"
PARQUET_FORMAT_VERSION = 1
TOP_K = 5


def default_file_name(model_id: str) -> str:
    """``<model>.parquet``."""
    return f"{safe_name(model_id)}.parquet"


def scored_logits(cache: InferenceCache) -> tuple[np.ndarray, str]:
    """The logits top-1 and top-5 are taken over, and their space: ``label_space`` if the cache allows, else output."""
    try:
        return label_space_logits(cache), "label_space"
    except CacheFormatError:
        return cache.logits, "output_space"


def top1_probability(logits: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Row-wise maximum softmax probability, float64 (``1 / sum(exp(z - max z))``), chunked."""
    out = np.empty(len(logits), dtype=np.float64)
    for start in range(0, len(logits), chunk):
        block = logits[start : start + chunk].astype(np.float64)
        out[start : start + chunk] = 1.0 / np.exp(block - block.max(axis=1, keepdims=True)).sum(axis=1)
    return out


def top_k(logits: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """[N, min(k, C)] column indices of the largest logits, best first; equal logits in column order."""
    return np.argsort(-logits, axis=1, kind="stable")[:, : min(k, logits.shape[1])].astype(np.int64)


def _fixed_lists(values: np.ndarray):
    """A pyarrow fixed-size list column from a 2-d array (one list per row)."""
    import pyarrow as pa

    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(values).ravel()), values.shape[1])


def prediction_table(cache: InferenceCache, with_logits: bool = False):
    """The pyarrow table of the cache's per-sample predictions (module docstring)."""
    import pyarrow as pa

    scored, space = scored_logits(cache)
    columns = {
        "sample_id": pa.array(cache.sample_ids, type=pa.string()),
        "target": pa.array(cache.targets.astype(np.int64)),
        "top1": pa.array(top1_predictions(scored)),
        "top1_probability": pa.array(top1_probability(scored)),
        "top5": _fixed_lists(top_k(scored)),
    }
    if with_logits:
        columns["logits"] = _fixed_lists(cache.logits.astype(np.float32, copy=False))
    info = {
        "format_version": PARQUET_FORMAT_VERSION,
        "columns": space,
        "n_classes": int(scored.shape[1]),
        "cache_meta": cache.meta,
    }
    return pa.table(columns).replace_schema_metadata({METADATA_KEY: json.dumps(info).encode()})


def write_parquet(cache: InferenceCache, out: Path, with_logits: bool = False) -> Path:
    """Write :func:`prediction_table` to ``out`` (atomically)."""
    import pyarrow.parquet as pq

    table = prediction_table(cache, with_logits)
    with atomic_open(out) as handle:
        pq.write_table(table, handle)
    return out


def read_metadata(path: str | Path) -> dict:
    """The ``beyond_imagenet`` metadata of a parquet file this module wrote."""
    import pyarrow.parquet as pq

    return json.loads(pq.read_schema(path).metadata[METADATA_KEY])
