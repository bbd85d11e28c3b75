"""model-vs-human's raw-data CSV: cue-conflict decisions in and out, and the shape bias kept through both."""

from __future__ import annotations

import numpy as np
import pytest

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.cue_conflict import CATEGORIES, CATEGORY_INDICES, parse_cue_conflict_name
from beyond_imagenet.inference.cache import load_cache
from beyond_imagenet.inference.interchange import ImportOptions, export_predictions, import_predictions
from beyond_imagenet.metrics.shape_bias import decision_names, decisions_from_logits, shape_bias

HEADER = "subj,session,trial,rt,object_response,category,condition,imagename"
CUE = {"name": "cue_conflict"}
CUE_LABELS = {"kind": "custom", "n_classes": 16}


def shape_bias_of(cache) -> dict:
    """The shape-bias metric of a cue-conflict cache, exactly as the analysis computes it."""
    shapes = [CATEGORIES[t] for t in cache.targets]
    textures = [parse_cue_conflict_name(s, i.split("/")[-1])[1] for s, i in zip(shapes, cache.sample_ids, strict=True)]
    return shape_bias(decision_names(decisions_from_logits(cache.logits)), shapes, textures)


def model_csv(tmp_path, stimuli, decisions, subject="resnet50"):
    """A CSV as model-vs-human writes it for a model (rt and condition NaN, session 1)."""
    rows = [
        f"{subject},1,{i + 1},NaN,{d},{n.split('-')[0].rstrip('0123456789')},NaN,{n}"
        for i, (n, d) in enumerate(zip(stimuli, decisions, strict=True))
    ]
    path = tmp_path / f"cue-conflict_{subject}_session-1.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def test_import_then_export_gives_the_same_csv(tmp_path, stimuli):
    rng = np.random.default_rng(0)
    decisions = [CATEGORIES[i] for i in rng.integers(0, 16, len(stimuli))]
    decisions[4] = "tie"  # no decision, as this project writes a tied maximum
    source = model_csv(tmp_path, stimuli, decisions)
    cache_dir = import_predictions(source, "model-vs-human", tmp_path / "cache")
    cache = load_cache(cache_dir)
    assert cache.model_id == "resnet50" and cache.sample_ids == stimuli  # model id: the subj column
    assert cache.meta["dataset"] == {"name": "cue_conflict", "kind": "cue_conflict", "n_images": 48}
    assert cache.meta["interchange"]["valid"] == ["16-class decision"]
    assert [CATEGORIES[t] for t in cache.targets] == [n.split("-")[0].rstrip("0123456789") for n in stimuli]
    assert decision_names(decisions_from_logits(cache.logits)) == decisions
    assert decision_names(decisions_from_logits(cache.logits[4:5])) == ["tie"]  # exact tie, even for one row
    exported = export_predictions(cache_dir, "model-vs-human", tmp_path)  # folder: model-vs-human's file name
    assert exported.name == "cue-conflict_resnet50_session-1.csv"
    assert exported.read_bytes() == source.read_bytes()


def test_export_then_import_keeps_the_shape_bias(tmp_path, make_cache, stimuli):
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((len(stimuli), 1000)).astype(np.float32)
    for row, name in enumerate(stimuli):  # lean on shape or texture so S and T are both well populated
        shape, texture = parse_cue_conflict_name(name.split("-")[0].rstrip("0123456789"), name)
        logits[row, list(CATEGORY_INDICES[shape if row % 3 else texture])] += 3.0
    targets = [CATEGORIES.index(name.split("-")[0].rstrip("0123456789")) for name in stimuli]
    ids = [f"{CATEGORIES[t]}/{name}" for t, name in zip(targets, stimuli, strict=True)]  # with shape folders
    original = load_cache(make_cache("cue", logits, targets, ids, CUE, CUE_LABELS, model_id="timm:vit_b.x_in1k"))
    exported = export_predictions(original.path, "model-vs-human", tmp_path)
    assert exported.name == "cue-conflict_timm-vit-b.x-in1k_session-1.csv"
    lines = exported.read_text().splitlines()
    assert lines[0] == HEADER and lines[1].startswith("timm:vit_b.x_in1k,1,1,NaN,")
    assert lines[1].endswith(f",{stimuli[0].split('-')[0].rstrip('0123456789')},NaN,{stimuli[0]}")
    reimported = load_cache(import_predictions(exported, "model-vs-human", tmp_path / "again"))
    assert reimported.model_id == "timm:vit_b.x_in1k"
    before, after = shape_bias_of(original), shape_bias_of(reimported)
    assert after == before and 0 < before["shape_bias"] < 1
    assert decision_names(decisions_from_logits(reimported.logits)) == decision_names(decisions_from_logits(logits))


def test_prefixed_image_names_and_options(tmp_path, stimuli):
    """Names like the texture-vs-shape raw data's keep the stimulus after the last '_' (model-vs-human's rule)."""
    source = model_csv(tmp_path, stimuli[:2], ["bear", "cat"])
    text = source.read_text().replace(f",{stimuli[0]}", f",0001_s5n_dnn_0_airplane_00_{stimuli[0]}")
    source.write_text(text)
    options = ImportOptions(model_id="renamed", family="convnet", paradigm="supervised")
    cache = load_cache(import_predictions(source, "model-vs-human", tmp_path / "cache", options))
    assert cache.sample_ids == stimuli[:2] and cache.model_id == "renamed"
    assert cache.meta["model"]["family"] == "convnet"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace(",airplane,NaN,airplane1", ",bear,NaN,airplane1"), "category is its shape"),
        (lambda t: t.replace("airplane1-bear2.png", "airplane1.png"), "ends in the stimulus"),
        (lambda t: t.replace("airplane1-bear2.png", "airplane1-ship2.png"), "'ship' is not one of the 16"),
        (lambda t: t.replace(",NaN,bear,airplane,", ",NaN,horse,airplane,"), r"object_response .*\(lines 2: 'horse'\)"),
        (lambda t: t.replace("resnet50,1,2,", "alexnet,1,2,"), "subj holds 2 values"),
        (lambda t: t.replace("airplane2-bird3.png", "airplane1-bear2.png"), "each stimulus .* occurs once"),
        (lambda t: t.replace("object_response", "response"), r"header lacks \['object_response'\]"),
    ],
)
def test_bad_rows_are_refused_naming_the_rule(tmp_path, edit, message):
    source = model_csv(tmp_path, ["airplane1-bear2.png", "airplane2-bird3.png"], ["bear", "bird"])
    source.write_text(edit(source.read_text()))
    with pytest.raises(UserError, match=message):
        import_predictions(source, "model-vs-human", tmp_path / "cache")


def test_export_refuses_other_caches(tmp_path, make_cache):
    val = make_cache("val", np.zeros((1, 1000)), [0], ["ILSVRC2012_val_00000001.JPEG"], {"name": "imagenet_val"})
    with pytest.raises(UserError, match=r"dataset\.kind or dataset\.name 'cue_conflict'"):
        export_predictions(val, "model-vs-human", tmp_path / "x.csv")
    wrong = make_cache("cue", np.zeros((1, 1000)), [3], ["cat1-dog2.png"], CUE, CUE_LABELS)
    with pytest.raises(UserError, match=r"row 0 \('cat1-dog2.png', target 3\).*sorted category order"):
        export_predictions(wrong, "model-vs-human", tmp_path / "x.csv")
