"""Stage ``probe`` (paper §6, Table 3; docs/transfer.md): tune and fit the VTAB linear probes, then Table 3.

Per (model, task): seeded search on train -> val only, refit on train ∪ val, test once; one record each, reused
when its protocol hash matches. Then Table 3, Fig. 6 bottom and ``metrics.json`` from the records of every model
of params.yaml (a one-model run, ``make probe MODEL=...``, still shows the others' results) and the MLflow runs.
Every task record then gets its intervals (params ``statistics``) and each model a summary record with the Table 3
numbers and their intervals, ``<vtab records>/<model>/<preset>.json``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from beyond_imagenet.base.config import Params
from beyond_imagenet.models.catalogue import resolve_model
from beyond_imagenet.probe.aggregate import aggregate
from beyond_imagenet.probe.features import extract_features, require_features
from beyond_imagenet.probe.run import collect_records, probe_models
from beyond_imagenet.stages.params import load_stage_params
from beyond_imagenet.stages.paths import stage_paths
from beyond_imagenet.stages.vtab_features import transfer_plan
from beyond_imagenet.tracking.mlflow_logger import log_vtab_summary, tracker_factory


def _tracker_factory(params: Params, enabled: bool):
    return tracker_factory(params.tracking) if enabled else None


def run_probe(args: argparse.Namespace) -> None:
    """``beyond-imagenet probe``: tune and probe every task (features first unless ``--require-features``)."""
    params = load_stage_params(args.params)
    plan = transfer_plan(params)
    if plan is None:
        return
    models = args.models or params.models
    extract = require_features if args.require_features else extract_features
    features = extract(plan, models, params.inference)
    paths = stage_paths(params)
    probe_models(plan, features, models, paths.probe_outputs, _tracker_factory(params, not args.no_mlflow))
    shown = list(dict.fromkeys([*models, *params.models]))  # a one-model run still shows the others' results
    out = replace(paths.aggregate_outputs, records=paths.vtab.records)
    result = aggregate(plan, collect_records(plan, shown, paths.vtab.records), shown, out, params.statistics)
    print(result["markdown"].read_text())
    print(f"Table 3: {result['markdown']}; Fig. 6 bottom: {result['figure']}")
    if not args.no_mlflow:
        specs = [resolve_model(m) for m in models]
        artifacts = [result["markdown"], result["figure"]]
        run_ids = log_vtab_summary(params.tracking, result["summary"], artifacts, specs)
        print(f"logged {len(run_ids)} MLflow summary runs to {params.tracking.tracking_uri} (`make mlflow-ui`)")
