"""Stage tool ``mlflow-links``: print the MLflow UI deep links, one per analysis (``make mlflow-ui``, ``make demo``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from beyond_imagenet.stages.params import load_stage_params
from beyond_imagenet.tracking.mlflow_logger import deep_links


def run_mlflow_links(args: argparse.Namespace) -> None:
    """``beyond-imagenet mlflow-links``: one line per analysis with its URL (nothing logged yet: a hint)."""
    params = load_stage_params(args.params)
    uri = params.tracking.tracking_uri
    if not params.tracking.enabled or (
        uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()
    ):
        print("no MLflow runs yet (run `make demo` or `dvc repro` first)")
        return
    links = deep_links(params.tracking, f"http://{args.host}:{args.port}")
    if not links:
        print(f"no analysis runs in experiment {params.tracking.experiment!r} yet")
        return
    print(f"MLflow (`make mlflow-ui`), experiment {params.tracking.experiment!r}: one link per analysis")
    width = max(map(len, links))
    for name, url in links.items():
        print(f"  {name:<{width}}  {url}")
