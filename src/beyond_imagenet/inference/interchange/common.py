"""What the interchange formats share: reading a CSV strictly, naming bad rows, and writing an imported cache.

An imported cache is an ordinary cache (docs/cache.md) written with ``inference.cache.write_cache`` (so it carries
its checksums), whose ``meta.json`` says under ``interchange`` where it came from and which of its numbers are
real (docs/interchange.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.files import sha256_file
from beyond_imagenet.inference.cache import META_FILE, cache_lock, write_cache

INTERCHANGE_KEY = "interchange"  # meta.json: {format, source_file, source_sha256, logits, valid, ...}
DOC = "docs/interchange.md"
FAMILIES = ("vit", "convnet", "other")
PARADIGMS = ("supervised", "clip")


@dataclass(frozen=True)
class ImportOptions:
    """How to describe an imported model: id (default: what the file says), family, paradigm, side files."""

    model_id: str | None = None
    family: str = "other"
    paradigm: str = "supervised"
    imagenet_x_annotations: str | Path | None = None  # folder with filename_label.csv (default: the package's)


class Imported(NamedTuple):
    """What a read CSV becomes: the cache's arrays, sample ids and meta.json (rows in the file's order)."""

    logits: np.ndarray
    targets: np.ndarray
    sample_ids: list[str]
    meta: dict


def line_numbers(rows: np.ndarray | Sequence[int]) -> list[int]:
    """1-based line numbers in the CSV file of 0-based data rows (line 1 is the header)."""
    return [int(r) + 2 for r in rows]


def bad_rows_error(path: Path, rows: np.ndarray | Sequence[int], rule: str, fix: str, shown: str = "") -> UserError:
    """A ``UserError`` naming the file, how many rows break ``rule`` (and the first lines), and the fix."""
    lines = line_numbers(list(rows)[:5])
    example = f" (lines {', '.join(map(str, lines))}{', ...' if len(rows) > 5 else ''}{shown})"
    return UserError(f"{path}: {len(rows)} row(s) break the rule: {rule}{example}. Fix: {fix} ({DOC})")


def read_csv_strings(path: Path, columns: Sequence[str], format_name: str) -> pd.DataFrame:
    """The CSV at ``path`` with every cell as text (nothing guessed), after checking it has ``columns``."""
    if not path.is_file():
        raise UserError(f"{path} does not exist (or is not a file): give the {format_name} CSV to import")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not a readable CSV ({err}); expected the {format_name} format ({DOC})") from err
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(
            f"{path}: the header lacks {missing}. Rule: a {format_name} CSV has the columns {', '.join(columns)} "
            f"(found {', '.join(frame.columns)}). Fix: write that header ({DOC})"
        )
    if frame.empty:
        raise UserError(f"{path} holds no rows; a {format_name} CSV has one row per image ({DOC})")
    return frame


def integer_column(path: Path, frame: pd.DataFrame, column: str, low: int, high: int) -> np.ndarray:
    """``frame[column]`` as int64, refusing cells that are not integers in ``low..high`` (naming the lines)."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)) | (values < low) | (values > high))
    if bad.size:
        shown = f": {frame[column].iloc[bad[0]]!r}"
        raise bad_rows_error(path, bad, f"{column} is an integer in {low}..{high}", f"correct {column}", shown)
    return values.astype(np.int64)


def unique_ids(path: Path, ids: Sequence[str], column: str) -> None:
    """Refuse a column that names an image twice (a cache has one row per image)."""
    duplicated = pd.Series(list(ids)).duplicated(keep="first").to_numpy()
    if duplicated.any():
        rows = np.flatnonzero(duplicated)
        shown = f": {ids[int(rows[0])]!r}"
        raise bad_rows_error(path, rows, f"each {column} occurs once", "keep one row per image", shown)


def source_entry(path: Path, format_name: str, logits: str, valid: Sequence[str]) -> dict:
    """The ``interchange`` entry of an imported cache's meta.json: the source file and what the logits mean."""
    return {
        "format": format_name,
        "direction": "import",
        "source_file": str(path.resolve()),
        "source_sha256": sha256_file(path),
        "logits": logits,
        "valid": list(valid),
        "features": "none: features.npy has 0 columns",
        "doc": DOC,
    }


def model_entry(model_id: str, family: str, paradigm: str) -> dict:
    """``meta["model"]`` of an imported cache; family and paradigm checked against the accepted values."""
    if not model_id:
        raise UserError("the model id is empty; give --model-id")
    if family not in FAMILIES or paradigm not in PARADIGMS:
        raise UserError(
            f"family {family!r} / paradigm {paradigm!r}: family is one of {', '.join(FAMILIES)} and paradigm one of "
            f"{', '.join(PARADIGMS)} (docs/cache.md)"
        )
    return {"model_id": model_id, "family": family, "paradigm": paradigm, "source": "imported"}


def check_out_folder(out: Path, force: bool) -> None:
    """Refuse to write over a file, or over a cache unless ``force`` (checked before any work)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give the folder the cache goes to")
    if (out / META_FILE).exists() and not force:
        raise UserError(f"{out} already holds a cache ({META_FILE}); give another --out, or --force to replace it")


def write_imported_cache(out: Path, imported: Imported) -> Path:
    """Write the cache with the project's writer (checksums, meta.json last), holding the folder's lock."""
    out.mkdir(parents=True, exist_ok=True)
    n = len(imported.sample_ids)
    meta = {**imported.meta, "n_samples": n, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    features = np.zeros((n, 0), dtype=np.float32)
    with cache_lock(out):
        return write_cache(out, imported.logits, features, imported.targets, imported.sample_ids, meta)
