"""A real MLflow server: the deep link's filter returns exactly the configured models, and a copied ``mlruns/``
serves its own artifacts (the store holds no absolute path)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from beyond_imagenet.base.config import TrackingConfig
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.models.display import display_name
from beyond_imagenet.tracking.links import deep_links
from beyond_imagenet.tracking.mlflow_logger import log_records

pytestmark = pytest.mark.slow
MODELS = ["demo_random_vit_sup", "demo_random_convnext_sup", "demo_random_vit_clip"]


def calibration_records(folder: Path) -> list[ResultRecord]:
    """One calibration record per model, each with its own reliability figure."""
    records = []
    for i, model in enumerate(MODELS):
        figure = folder / f"{model}.png"
        Image.new("RGB", (4, 4), (40 * i, 0, 0)).save(figure)
        model_facts = {"model_id": model, "weights_id": f"w:{model}"}
        provenance = {"model": model_facts, "precision": "fp32", "cache_config_hash": f"h{i}"}
        metrics = {"calibration/val/ece": 0.1 * (i + 1)}
        records.append(ResultRecord("calibration", model, "val", metrics, {}, {}, provenance, [str(figure)]))
    return records


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(base: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, "mlflow server exited"
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError("mlflow server did not answer /health")


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.load(reply)


def test_server_link_filter_returns_the_models_and_a_copied_store_serves_its_own_files(tmp_path, monkeypatch):
    original, copy = tmp_path / "original", tmp_path / "copy"
    original.mkdir()
    monkeypatch.chdir(original)
    config = TrackingConfig(experiment="t", tracking_uri="sqlite:///mlruns/mlflow.db")
    log_records(calibration_records(original), config)
    port = _free_port()
    link = deep_links(config, f"http://127.0.0.1:{port}")["calibration"]
    shutil.copytree(original / "mlruns", copy / "mlruns")
    own_figure = (original / f"{MODELS[0]}.png").read_bytes()
    shutil.rmtree(original)
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", "sqlite:///mlruns/mlflow.db"]
    command += ["--artifacts-destination", "mlruns/artifacts", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1"]
    server = subprocess.Popen(command, cwd=copy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(base, server)
        route, _, query = urlsplit(link).fragment.partition("?")
        experiment = route.split("/")[2]
        search_filter = parse_qs(query)["searchFilter"][0]
        found = _post(f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment], "filter": search_filter})
        runs = found["runs"]
        assert sorted(r["info"]["run_name"] for r in runs) == sorted(display_name(m) for m in MODELS)
        run = next(r for r in runs if r["info"]["run_name"] == display_name(MODELS[0]))
        path = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
        with urllib.request.urlopen(
            f"{base}/api/2.0/mlflow-artifacts/artifacts/{path}/figures/val/calibration.png"
        ) as r:
            assert r.read() == own_figure
        assert Path(copy / "mlruns/artifacts" / path / "figures/val/calibration.png").exists()
    finally:
        server.terminate()
        server.wait(timeout=30)
