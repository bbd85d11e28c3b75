"""The GPU work runs where MLflow, DVC and Optuna are not installed (DESIGN.md; GPU machines often lack them).

A fresh interpreter refuses to import ``mlflow``, ``dvc`` and ``optuna`` (and ``open_clip``, since these are timm
models), then runs the commands that do GPU work: ``infer``, ``fidelity`` and ``vtab-features``, plus the import
of the throughput benchmark. They must finish and write their caches, and none of the refused packages may end
up imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from helpers import REPO_ROOT, small_pass_params

REFUSED = ("mlflow", "dvc", "optuna", "open_clip")

SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys
    refused = set(json.loads(sys.argv[1]))

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in refused:
                raise ModuleNotFoundError(f"No module named {name!r} (refused by the test)", name=name)
            return None

    sys.meta_path.insert(0, Refuse())
    from beyond_imagenet.cli import main

    params = sys.argv[2]
    assert main(["infer", "--params", params]) == 0
    assert main(["fidelity", "--params", params, "--dataset", "small", "--out", sys.argv[3]]) == 0
    assert main(["vtab-features", "--params", params]) == 0
    spec = importlib.util.spec_from_file_location("throughput", sys.argv[4])
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    try:  # the refusal itself works
        import optuna  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("optuna was importable: the refusal hook does not work")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in refused)
    print("LOADED", json.dumps(loaded))
    """
)


@pytest.mark.slow
def test_gpu_work_needs_no_mlflow_dvc_or_optuna(tmp_path, small_demo_root):
    from beyond_imagenet.data.demo.vtab import make_demo_vtab

    vtab_root = tmp_path / "vtab"
    make_demo_vtab(vtab_root, seed=1, sources=["dtd"])
    models = ["demo_random_vit_sup", "demo_random_convnext_sup"]
    params = {
        **small_pass_params(small_demo_root, tmp_path / "cache", models, device="cpu"),
        "transfer": {
            "root": str(vtab_root),
            "check_size": False,
            "tasks": ["dtd"],
            "features_dir": str(tmp_path / "features"),
            "device": "cpu",
        },
        "results_dir": str(tmp_path / "results"),
        "reports_dir": str(tmp_path / "reports"),
    }
    params_file = tmp_path / "params.yaml"
    params_file.write_text(json.dumps(params))
    argv = [
        json.dumps(REFUSED),
        str(params_file),
        str(tmp_path / "fidelity"),
        str(REPO_ROOT / "benchmarks/throughput.py"),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *argv], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "LOADED []" in done.stdout
    assert len(list((tmp_path / "cache").rglob("meta.json"))) >= 2  # one cache per model on the small set
    assert len(list((tmp_path / "fidelity").glob("*.json"))) == 1
    features = sorted(p.parent.relative_to(tmp_path / "features") for p in (tmp_path / "features").rglob("meta.json"))
    assert [p.parts[0] for p in features].count("demo_random_vit_sup") == 3, features  # dtd train, val and test
