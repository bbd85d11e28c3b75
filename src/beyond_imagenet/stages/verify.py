"""Stage ``data`` (``verify-data``), which writes the dataset manifests, and the ``verify`` command.

``verify-data`` validates every dataset of params.yaml and writes its manifest; ``verify`` checks layout, counts,
side files and a decode of every image, before a run (docs/protocol.md §2, §14).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from beyond_imagenet.base.errors import UnknownNameError, UserError
from beyond_imagenet.base.files import atomic_write_json
from beyond_imagenet.data.registry import resolve_datasets
from beyond_imagenet.data.verify import verify_datasets
from beyond_imagenet.inference.loader import auto_num_workers
from beyond_imagenet.stages.params import load_stage_params
from beyond_imagenet.stages.paths import stage_paths


def run_verify_data(args: argparse.Namespace) -> None:
    """Scan each dataset (all variants) and write ``<manifests>/<name>.json``."""
    params = load_stage_params(args.params)
    out = Path(args.out) if args.out else stage_paths(params).manifests
    for name, config in params.datasets.items():
        manifests = [dataset.manifest() for dataset in resolve_datasets(name, config)]
        atomic_write_json(out / f"{name}.json", manifests[0] if len(manifests) == 1 else manifests)
        n_images = sum(m["n_images"] for m in manifests)
        variants = f" in {len(manifests)} variants" if len(manifests) > 1 else ""
        print(f"{name}: {n_images} images{variants}, {manifests[0]['n_classes']} classes ok")


def run_verify(args: argparse.Namespace) -> None:
    """Check the named datasets (default: all) and decode every image unless ``--no-decode``."""
    params = load_stage_params(args.params)
    failed = False
    for name in args.datasets or list(params.datasets):
        if name not in params.datasets:
            raise UnknownNameError("dataset", name, params.datasets)
        datasets = resolve_datasets(name, params.datasets[name])  # layout, counts, side files
        report = verify_datasets(datasets, auto_num_workers(), decode=not args.no_decode)
        checked = "layout and counts" + ("" if args.no_decode else ", every image decoded")
        print(f"{name}: {report.n_images} images in {len(datasets)} set(s); {checked}")
        for path, reason in report.failures:
            print(f"  cannot decode {path}: {reason}")
        failed = failed or not report.ok
    if failed:
        raise UserError("some images do not decode (listed above); replace them or set inference.bad_images: skip")
