"""The CLI's helper commands: analyses on foreign caches, and fetching data or weights on a machine with network."""

from __future__ import annotations

import argparse
from pathlib import Path

from beyond_imagenet.analyses.accuracy import analyse_accuracy
from beyond_imagenet.analyses.calibration import analyse_calibration, save_calibration_figures
from beyond_imagenet.base.config import load_params
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.fetch import fetch_cue_conflict
from beyond_imagenet.inference.cache import load_cache
from beyond_imagenet.models.build import build_backbone
from beyond_imagenet.models.catalogue import PAPER_MODELS, resolve_model
from beyond_imagenet.models.hub import hub_offline
from beyond_imagenet.models.weights import locate_weights
from beyond_imagenet.records import write_records
from beyond_imagenet.stages.common import print_record


def run_analyze_cache(args: argparse.Namespace) -> None:
    """``beyond-imagenet analyze-cache DIR...``: accuracy and calibration of caches written by another tool."""
    out = Path(args.out)
    caches = [load_cache(path) for path in args.cache_dirs]
    records = [analyse_accuracy(cache) for cache in caches]
    for dataset in dict.fromkeys(c.dataset for c in caches):
        results = [analyse_calibration(c, args.n_bins) for c in caches if c.dataset == dataset]
        batch = [record for record, _ in results]
        save_calibration_figures([panel for _, panel in results], batch, dataset, out / "figures")
        records += batch
    write_records(records, out / "records")
    for record in records:
        print_record(record)


def run_fetch_cue_conflict(args: argparse.Namespace) -> None:
    """``beyond-imagenet fetch-cue-conflict``: download (or take ``--archive``), check and install the stimuli."""
    out = fetch_cue_conflict(Path(args.out), archive=Path(args.archive) if args.archive else None)
    print(f"cue-conflict stimuli checked and installed in {out} (source and sha256 in {out / 'SOURCE.json'})")


def run_fetch_weights(args: argparse.Namespace) -> None:
    """``beyond-imagenet fetch-weights``: fill the Hugging Face cache with the weights of the models."""
    if args.models:
        ids = args.models
    elif Path(args.params).exists():
        ids = load_params(args.params).models
    else:
        ids = list(PAPER_MODELS)
    specs = [resolve_model(m) for m in ids]
    if hub_offline():
        raise UserError("HF_HUB_OFFLINE is set; unset it on a machine with network to fetch weights")
    for spec in specs:
        location = locate_weights(spec)
        if location is None:
            print(f"{spec.id}: random init, nothing to fetch")
            continue
        print(f"{spec.id}: fetching {spec.weights_id} from {location.describe()}", flush=True)
        build_backbone(spec)  # the libraries download into the Hugging Face cache
    print("done; the weights are in the Hugging Face cache (HF_HOME); copy it to offline machines")
