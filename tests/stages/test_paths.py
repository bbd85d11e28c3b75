"""Every output path is declared once, in params.yaml: dvc.yaml templates it and stages/paths.py joins it alike."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from beyond_imagenet.base.config import load_params, parse_params
from beyond_imagenet.stages.paths import stage_paths
from helpers import REPO_ROOT

TEMPLATE = re.compile(r"\$\{([a-z0-9_.]+)\}")


def _lookup(data: dict, dotted: str):
    for key in dotted.split("."):
        data = data[key]
    return data


def _render(text: str, params: dict) -> str:
    return TEMPLATE.sub(lambda m: str(_lookup(params, m.group(1))), text)


def _declared(stage: dict, section: str) -> list[str]:
    return [next(iter(entry)) if isinstance(entry, dict) else entry for entry in stage.get(section, [])]


@pytest.fixture(scope="module")
def dvc_stages() -> dict:
    return yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("params_file", ["params.yaml", "configs/paper.yaml"])
def test_dvc_yaml_outputs_equal_the_stage_paths(dvc_stages, params_file):
    raw = yaml.safe_load((REPO_ROOT / params_file).read_text())
    paths = stage_paths(load_params(REPO_ROOT / params_file))

    def rendered(stage: str, section: str) -> list[str]:
        return [_render(p, raw) for p in _declared(dvc_stages[stage], section)]

    expected = {
        ("data", "outs"): [paths.manifests],
        ("inference", "outs"): [raw["inference"]["cache_dir"]],
        ("analyze", "outs"): [paths.analyze.records, paths.analyze.metrics],
        ("analyze", "plots"): [paths.analyze.figures],
        ("cka", "outs"): [paths.cka.records, paths.cka_matrices, paths.cka.metrics],
        ("cka", "plots"): [paths.cka.figures],
        ("vtab_features", "outs"): [raw["transfer"]["features_dir"]],
        ("probe", "outs"): [
            paths.vtab_splits, paths.vtab.records, paths.vtab_predictions, paths.vtab_studies, paths.vtab_table3,
            paths.vtab.metrics,
        ],
        ("probe", "plots"): [paths.vtab.figures],
        ("results", "outs"): [paths.results_parquet, paths.results_csv, paths.comparisons, paths.rankings],
        ("results", "metrics"): [paths.headline],
        ("report", "outs"): [paths.reports],
        ("side_studies", "outs"): [paths.side_studies],
    }  # fmt: skip
    for (stage, section), wanted in expected.items():
        assert rendered(stage, section) == [str(p) for p in wanted], (stage, section)


def test_every_output_of_dvc_yaml_is_templated(dvc_stages):
    literal = [
        (name, out)
        for name, stage in dvc_stages.items()
        for section in ("outs", "metrics", "plots")
        for out in _declared(stage, section)
        if "${" not in out
    ]
    assert not literal


def test_moving_results_dir_moves_every_stage_output():
    params = parse_params({"models": ["demo_random_vit_sup"], "datasets": {}, "results_dir": "/scratch/r"})
    paths = stage_paths(params)
    for path in (paths.manifests, paths.analyze.records, paths.cka.metrics, paths.vtab_studies, paths.vtab_table3):
        assert str(path).startswith("/scratch/r/")
    assert str(paths.cka_matrices) == "/scratch/r/cka/matrices"


def test_the_headline_file_is_the_only_dvc_metrics_and_git_keeps_it(dvc_stages):
    """`dvc metrics show` prints the headline file alone; it is uncached and outside every git-ignored folder."""
    metrics = [(name, entry) for name, stage in dvc_stages.items() for entry in stage.get("metrics", [])]
    assert metrics == [("results", {"${outputs.headline}": {"cache": False}})]
    for params_file in ("params.yaml", "configs/paper.yaml"):
        raw = yaml.safe_load((REPO_ROOT / params_file).read_text())
        headline = raw["outputs"]["headline"]
        assert headline == str(stage_paths(load_params(REPO_ROOT / params_file)).headline)
        assert not headline.startswith((raw["results_dir"] + "/", raw["reports_dir"] + "/"))
        ignored = subprocess.run(["git", "check-ignore", "-q", headline], cwd=REPO_ROOT, check=False)
        assert ignored.returncode == 1, f"{headline} is git-ignored"  # 1: not ignored; 0: ignored


def test_every_code_dependency_of_dvc_yaml_exists(dvc_stages):
    # a dependency on a file that was moved away would leave `dvc repro` failing ("does not exist")
    code = {dep for stage in dvc_stages.values() for dep in _declared(stage, "deps") if dep.startswith("src/")}
    assert "src/beyond_imagenet/report" in code
    assert sorted(dep for dep in code if not (REPO_ROOT / dep).exists()) == []


def test_every_stage_params_key_exists_in_params_yaml(dvc_stages):
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    keys = {key for stage in dvc_stages.values() for key in _declared(stage, "params")}
    missing = []
    for key in sorted(keys):
        try:
            _lookup(raw, key)
        except (KeyError, TypeError):
            missing.append(key)
    assert missing == []
