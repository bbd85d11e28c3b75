"""Stage ``fidelity``: the same models on the same images under two inference settings (e.g. fp32 vs bf16).

Each side fills its own caches (``<cache_dir>/fidelity/<side>/``), then agreement, accuracy and ECE changes and
logit differences are reported per model and written as JSON.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from beyond_imagenet.base.files import atomic_write_json
from beyond_imagenet.inference.fidelity import parse_side, run_fidelity, side_label
from beyond_imagenet.stages.common import print_table
from beyond_imagenet.stages.params import dataset_variants, load_stage_params


def _rows(report: dict) -> list[dict[str, str]]:
    return [
        {
            "dataset/model": key,
            "top1 agreement %": f"{r['top1_agreement']:.2f}",
            "top1 a": f"{r['top1_a']:.2f}",
            "top1 b": f"{r['top1_b']:.2f}",
            "delta top1": f"{r['delta_top1']:+.2f}",
            "ECE a": f"{r['ece_a']:.4f}",
            "ECE b": f"{r['ece_b']:.4f}",
            "delta ECE": f"{r['delta_ece']:+.4f}",
            "max |logit diff|": f"{r['max_abs_logit_diff']:.3g}",
        }
        for key, r in report["results"].items()
    ]


def run_fidelity_stage(args: argparse.Namespace) -> None:
    """``beyond-imagenet fidelity``: fill or reuse both sides' caches, compare, print and write the JSON report."""
    params = load_stage_params(args.params)
    side_a, side_b = parse_side(args.a), parse_side(args.b)
    datasets = dataset_variants(params, args.dataset)
    report = run_fidelity(datasets, args.models or params.models, params.inference, side_a, side_b)
    out = Path(args.out) / f"{args.dataset}__{side_label(side_a)}__vs__{side_label(side_b)}.json"
    atomic_write_json(out, report)
    print(f"a = {args.a}   b = {args.b}")
    print_table(_rows(report))
    print(f"written: {out}")
