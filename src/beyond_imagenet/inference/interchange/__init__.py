"""Interchange formats: caches from, and predictions to, the files of the tools this project reproduces.

``import_predictions`` turns an imagenet-x predictions CSV or a model-vs-human raw-data CSV into a cache the
analyses accept; ``export_predictions`` writes any cache in those formats or as a parquet table of per-sample
predictions. The formats are registered in :data:`IMPORT_FORMATS` and :data:`EXPORT_FORMATS`; what each holds
exactly, and what an imported cache can and cannot tell, is docs/interchange.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from beyond_imagenet.base.errors import UnknownNameError, UserError
from beyond_imagenet.inference.cache import InferenceCache, load_cache
from beyond_imagenet.inference.interchange import imagenet_x_csv, model_vs_human_csv, parquet
from beyond_imagenet.inference.interchange.common import (
    Imported,
    ImportOptions,
    check_out_folder,
    write_imported_cache,
)

__all__ = ["EXPORT_FORMATS", "IMPORT_FORMATS", "ImportOptions", "export_predictions", "import_predictions"]


@dataclass(frozen=True)
class ExportFormat:
    """How to write a cache in one format, and the file name the format's tool expects."""

    write: Callable[[InferenceCache, Path, bool], Path]  # (cache, file, with_logits) -> file
    default_file_name: Callable[[str], str]  # model id -> file name, used when --out is a folder
    full_logits: bool = False  # whether the format can hold the logits rows (--with-logits)


IMPORT_FORMATS: dict[str, Callable[[Path, ImportOptions], Imported]] = {
    imagenet_x_csv.NAME: imagenet_x_csv.read_imagenet_x,
    model_vs_human_csv.NAME: model_vs_human_csv.read_model_vs_human,
}
EXPORT_FORMATS: dict[str, ExportFormat] = {
    imagenet_x_csv.NAME: ExportFormat(
        lambda cache, out, _: imagenet_x_csv.write_imagenet_x(cache, out), imagenet_x_csv.default_file_name
    ),
    model_vs_human_csv.NAME: ExportFormat(
        lambda cache, out, _: model_vs_human_csv.write_model_vs_human(cache, out), model_vs_human_csv.default_file_name
    ),
    parquet.NAME: ExportFormat(parquet.write_parquet, parquet.default_file_name, full_logits=True),
}


def _known(table: dict, name: str, kind: str) -> None:
    if name not in table:
        raise UnknownNameError(kind, name, table)


def import_predictions(
    source: str | Path, format_name: str, out: str | Path, options: ImportOptions | None = None, force: bool = False
) -> Path:
    """Read ``source`` in ``format_name`` and write it as the cache folder ``out`` (refusing to overwrite a cache)."""
    _known(IMPORT_FORMATS, format_name, "import format")
    out = Path(out)
    check_out_folder(out, force)
    imported = IMPORT_FORMATS[format_name](Path(source), options or ImportOptions())
    return write_imported_cache(out, imported)


def output_file(out: str | Path, format_name: str, model_id: str) -> Path:
    """``out``, or the format's own file name inside ``out`` when it is a folder."""
    out = Path(out)
    return out / EXPORT_FORMATS[format_name].default_file_name(model_id) if out.is_dir() else out


def export_predictions(cache_dir: str | Path, format_name: str, out: str | Path, with_logits: bool = False) -> Path:
    """Write the cache at ``cache_dir`` in ``format_name`` to ``out`` (a file, or a folder for the default name)."""
    _known(EXPORT_FORMATS, format_name, "export format")
    export = EXPORT_FORMATS[format_name]
    if with_logits and not export.full_logits:
        with_full = [name for name, f in EXPORT_FORMATS.items() if f.full_logits]
        raise UserError(
            f"the {format_name} format holds no logits; --with-logits needs --format {' or '.join(with_full)}"
        )
    cache = load_cache(cache_dir)
    return export.write(cache, output_file(out, format_name, cache.model_id), with_logits)
