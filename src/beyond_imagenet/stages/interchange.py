"""The CLI's interchange commands: predictions of other tools' formats in, and ours out (docs/interchange.md)."""

from __future__ import annotations

import argparse

from beyond_imagenet.inference.cache import load_cache
from beyond_imagenet.inference.interchange import ImportOptions, export_predictions, import_predictions


def run_import_predictions(args: argparse.Namespace) -> None:
    """``beyond-imagenet import-predictions FILE --format F --out DIR``: a cache from another tool's CSV."""
    options = ImportOptions(args.model_id, args.family, args.paradigm, args.imagenet_x_annotations)
    path = import_predictions(args.file, args.format, args.out, options, force=args.force)
    cache = load_cache(path)  # read back through the analyses' loader: checksums, rows, finite logits
    print(
        f"{len(cache):,} rows of {args.file} ({args.format}) written as the cache of model {cache.model_id!r} in "
        f"{path}; only {', '.join(cache.meta['interchange']['valid'])} are the model's (docs/interchange.md)"
    )


def run_export_predictions(args: argparse.Namespace) -> None:
    """``beyond-imagenet export-predictions CACHE_DIR --format F --out FILE``: a cache's predictions in format F."""
    path = export_predictions(args.cache_dir, args.format, args.out, with_logits=args.with_logits)
    print(f"predictions of {args.cache_dir} written to {path} ({args.format})")
