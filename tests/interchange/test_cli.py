"""The interchange commands end to end: imported caches go through analyze-cache, errors exit 2 with the rule."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json

import numpy as np
import pandas as pd
import pytest

from beyond_imagenet.cli import main
from beyond_imagenet.data import imagenet_x as ix_data
from beyond_imagenet.data.cue_conflict import CATEGORIES, parse_cue_conflict_name
from beyond_imagenet.metrics.calibration import expected_calibration_error
from beyond_imagenet.metrics.shape_bias import shape_bias

HAS_PACKAGE = importlib.util.find_spec("imagenet_x") is not None


def run(argv: list[str]) -> tuple[int, str]:
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        code = main(argv)
    return code, console.getvalue()


def shape_of(name: str) -> str:
    return name.split("-")[0].rstrip("0123456789")


@pytest.mark.skipif(not HAS_PACKAGE, reason="imagenet-x==0.0.7 is not installed (val labels)")
def test_imported_caches_run_through_analyze_cache(tmp_path, stimuli):
    rng = np.random.default_rng(5)
    labels = ix_data.load_val_labels()
    names, targets = labels.index[:500].tolist(), labels.to_numpy()[:500]
    classes = np.where(rng.random(500) < 0.6, targets, rng.integers(0, 1000, 500))
    probabilities = rng.uniform(0.01, 1.0, 500).round(10)
    csv = tmp_path / "mine.csv"
    pd.DataFrame({"file_name": names, "predicted_class": classes, "predicted_probability": probabilities}).to_csv(
        csv, index=False
    )
    decisions = [CATEGORIES[i] for i in rng.integers(0, 16, len(stimuli))]
    rows = [
        f"mine,1,{i + 1},NaN,{d},{shape_of(n)},NaN,{n}" for i, (n, d) in enumerate(zip(stimuli, decisions, strict=True))
    ]
    mvh = tmp_path / "cue-conflict_mine_session-1.csv"
    mvh.write_text("\n".join(["subj,session,trial,rt,object_response,category,condition,imagename", *rows]) + "\n")
    code, out = run(["import-predictions", str(csv), "--format", "imagenet-x", "--out", str(tmp_path / "c" / "val")])
    assert code == 0 and "500 rows" in out and "only top-1 class, top-1 probability are the model's" in out
    code, _ = run(["import-predictions", str(mvh), "--format", "model-vs-human", "--out", str(tmp_path / "c" / "cue")])
    assert code == 0
    results = tmp_path / "results"
    code, out = run(
        [
            "analyze-cache",
            str(tmp_path / "c"),
            "--analyses",
            "accuracy",
            "calibration",
            "shape_bias",
            "--out",
            str(results),
        ]
    )
    assert code == 0, out
    accuracy = json.loads((results / "records" / "accuracy" / "imagenet_val" / "mine.json").read_text())["metrics"]
    assert accuracy["accuracy/imagenet_val/top1"] == pytest.approx(100 * np.mean(classes == targets))
    assert "accuracy/imagenet_val/top5" not in accuracy  # the CSV holds the top-1 class only
    calibration = json.loads((results / "records" / "calibration" / "imagenet_val" / "mine.json").read_text())
    expected = expected_calibration_error(probabilities, classes == targets)
    assert calibration["metrics"]["calibration/imagenet_val/ece"] == pytest.approx(expected, abs=1e-12)
    assert calibration["metrics"]["calibration/imagenet_val/top1"] == pytest.approx(100 * np.mean(classes == targets))
    record = json.loads((results / "records" / "shape_bias" / "cue_conflict" / "mine.json").read_text())
    textures = [parse_cue_conflict_name(shape_of(n), n)[1] for n in stimuli]
    expected = shape_bias(decisions, [shape_of(n) for n in stimuli], textures)["shape_bias"]
    assert record["metrics"]["shape_bias/overall"] == pytest.approx(expected, abs=1e-15)


def test_export_command_and_errors_exit_2_naming_the_rule(tmp_path, make_cache, capsys):
    logits = np.zeros((1, 1000), dtype=np.float32)
    logits[0, 282] = 3.0  # a cat index: the decision is cat (the shape)
    cache = make_cache("cue", logits, [7], ["cat1-dog2.png"], {"name": "cue_conflict"})
    assert run(["export-predictions", str(cache), "--format", "parquet", "--out", str(tmp_path / "p.parquet")])[0] == 0
    assert (tmp_path / "p.parquet").is_file()
    code, _ = run(["export-predictions", str(cache), "--format", "model-vs-human", "--out", str(tmp_path)])
    assert code == 0 and (tmp_path / "cue-conflict_my-model_session-1.csv").is_file()
    assert (tmp_path / "cue-conflict_my-model_session-1.csv").read_text().splitlines()[1] == (
        "my_model,1,1,NaN,cat,cat,NaN,cat1-dog2.png"
    )
    capsys.readouterr()
    assert main(["export-predictions", str(cache), "--format", "parket", "--out", str(tmp_path / "x")]) == 2
    assert "unknown export format 'parket'. Did you mean 'parquet'?" in capsys.readouterr().err
    assert main(["export-predictions", str(cache), "--format", "imagenet-x", "--out", str(tmp_path / "x")]) == 2
    assert "are not ImageNet val file names" in capsys.readouterr().err  # 1000 logits, but stimuli, not val images
    missing = tmp_path / "none.csv"
    assert main(["import-predictions", str(missing), "--format", "model-vs-human", "--out", str(tmp_path / "c")]) == 2
    assert f"{missing} does not exist" in capsys.readouterr().err
