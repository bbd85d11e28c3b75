"""The CLI's helper commands: analyses on foreign caches, and fetching data or weights on a machine with network."""

from __future__ import annotations

import argparse
from pathlib import Path

from beyond_imagenet.analyses.foreign import check_plan, load_store, plan_analyses, run_plan
from beyond_imagenet.analyses.inputs import ToolOptions
from beyond_imagenet.base.config import load_params
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.fetch import fetch_cue_conflict
from beyond_imagenet.models.build import build_backbone
from beyond_imagenet.models.catalogue import PAPER_MODELS, resolve_model
from beyond_imagenet.models.hub import hub_offline
from beyond_imagenet.models.weights import locate_weights
from beyond_imagenet.records import write_records
from beyond_imagenet.stages.common import print_record


def tool_options(args: argparse.Namespace) -> ToolOptions:
    """The options of ``analyze-cache`` (everything else is the defaults of base/config.py)."""
    return ToolOptions(
        n_bins=args.n_bins,
        imagenet_x_annotations=args.imagenet_x_annotations,
        allow_partial_imagenet_x=args.allow_partial_imagenet_x,
        real_labels=args.real_labels,
        pug_class_map=args.pug_class_map,
    )


def run_analyze_cache(args: argparse.Namespace) -> None:
    """``beyond-imagenet analyze-cache DIR...``: every analysis whose input contract caches of another tool meet.

    All caches are loaded and checked (docs/cache.md, per-dataset rules) and every analysis planned and checked
    before the first runs; the plan says which caches each analysis uses and why it skips any.
    """
    out, options = Path(args.out), tool_options(args)
    store, entries = load_store(args.cache_dirs)
    plan = plan_analyses(entries, options, args.analyses)
    for line in [*plan.lines, *check_plan(plan, options)]:
        print(line)
    records = run_plan(plan, store, entries, options, out / "figures")
    write_records(records, out / "records")
    for record in records:
        print_record(record)
    print(f"{len(records)} records in {out / 'records'}, figures in {out / 'figures'}")


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
