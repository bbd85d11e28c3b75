"""The headline file as DVC metrics in a throwaway git + DVC repository: `dvc metrics diff` shows numeric deltas.

The repository mirrors this one in miniature: the tidy table lies in a git-ignored ``results/``, the stage's headline
file (written here in-process by ``results.headline``, as the stage would, to spare a slow ``dvc repro``) in
``metrics/``, declared ``metrics`` with ``cache: false``; git keeps it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from beyond_imagenet.base.files import atomic_write_json
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.results.headline import headline_metrics
from beyond_imagenet.results.tidy import results_table

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(
    not (BIN / "dvc").exists() or shutil.which("git") is None, reason="needs git and dvc beside the interpreter"
)

DVC_YAML = """
stages:
  results:
    cmd: beyond-imagenet results
    deps:
      - results/results.csv
    metrics:
      - metrics/headline.json:
          cache: false
"""


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_CONFIG_NOSYSTEM": "1"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


def _write_run(repo: Path, top1: float, ece: float) -> None:
    """The tidy table of a small run in ``results/`` and its headline file, as the results stage writes them."""
    records = [
        ResultRecord("accuracy", model, "v", {"accuracy/v/top1": top1 - i, "accuracy/v/top5": 99.0})
        for i, model in enumerate(("vit_sup", "convnext_clip"))
    ]
    records.append(ResultRecord("calibration", "vit_sup", "v", {"calibration/v/ece": ece}))
    table = results_table(records)
    (repo / "results").mkdir(exist_ok=True)
    table.to_csv(repo / "results" / "results.csv", index=False)
    atomic_write_json(repo / "metrics" / "headline.json", headline_metrics(table, {"v": "imagenet_val"}))


@pytest.fixture
def repo(tmp_path) -> Path:
    """A committed git + DVC repository whose one stage has written its headline file once (the first commit)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _run(["git", "init", "-q"], repo)
    _run(["git", "config", "user.name", "Headline Test"], repo)
    _run(["git", "config", "user.email", "headline@example.invalid"], repo)
    _run([str(BIN / "dvc"), "init", "-q"], repo)
    (repo / ".gitignore").write_text("/results/\n")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    _write_run(repo, top1=80.0, ece=0.05)
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-q", "-m", "first run"], repo)
    return repo


def test_dvc_metrics_diff_between_commits_shows_the_change_of_each_headline(repo):
    assert "metrics/headline.json" in _run(["git", "ls-files"], repo)  # git keeps it; results/ is ignored
    _write_run(repo, top1=81.5, ece=0.04)
    _run(["git", "commit", "-q", "-a", "-m", "second run"], repo)

    diff = json.loads(_run([str(BIN / "dvc"), "metrics", "diff", "HEAD~1", "HEAD", "--json"], repo))
    diff = diff["metrics/headline.json"]
    assert diff == {
        "imagenet_top1/vit_sup": {"old": 80.0, "new": 81.5, "diff": pytest.approx(1.5)},
        "imagenet_top1/convnext_clip": {"old": 79.0, "new": 80.5, "diff": pytest.approx(1.5)},
        "ece_val/vit_sup": {"old": 0.05, "new": 0.04, "diff": pytest.approx(-0.01)},
    }
    table = _run([str(BIN / "dvc"), "metrics", "diff", "HEAD~1", "HEAD"], repo)
    row = next(line.split() for line in table.splitlines() if "imagenet_top1/vit_sup" in line)
    assert row == ["metrics/headline.json", "imagenet_top1/vit_sup", "80.0", "81.5", "1.5"]
