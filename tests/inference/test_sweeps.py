"""Invariance sweeps as cached inference (PROTOCOL §9): shift as a preprocessing mode, sweep planning, the cached
run on demo models, and the Fig. 7 analysis checked against values computed directly from the cached logits."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from PIL import Image

from beyond_imagenet.analyses.common import AnalysisContext
from beyond_imagenet.analyses.invariance import run_invariance
from beyond_imagenet.analyses.registry import ANALYSES
from beyond_imagenet.analyses.store import CacheStore
from beyond_imagenet.base.compat import import_torchvision
from beyond_imagenet.base.config import Params, parse_params
from beyond_imagenet.base.errors import UnknownNameError, UserError, WeightsUnavailableError
from beyond_imagenet.data.decode import decode_rgb
from beyond_imagenet.data.registry import resolve_dataset
from beyond_imagenet.data.subsets import stratified_subset
from beyond_imagenet.inference.cache import cache_path, load_cache, write_cache
from beyond_imagenet.inference.sweeps import (
    SweepPoint,
    format_sweep_value,
    plan_sweep_jobs,
    run_invariance_sweeps,
    sweep_dataset,
    sweep_points,
)
from beyond_imagenet.metrics.invariance import correct_class_probability, prediction_consistency
from beyond_imagenet.models.build import build_at_resolution, build_backbone
from beyond_imagenet.models.catalogue import CATALOGUE
from beyond_imagenet.models.preprocessing import ShiftCrop, build_transform, resolve_preprocessing
from beyond_imagenet.models.sweep_transforms import (
    resolution_preprocess,
    scale_preprocess,
    scale_transform,
    shift_preprocess,
    shift_transform,
)
from beyond_imagenet.models.zeroshot import load_or_build_zeroshot_weights, openai_imagenet_classnames
from beyond_imagenet.stages.analyze import analyze
from beyond_imagenet.stages.params import dataset_variants
from beyond_imagenet.stages.paths import stage_paths

TF = import_torchvision().transforms
SUP = resolve_preprocessing(CATALOGUE["vit_sup"])
CLIP = resolve_preprocessing(CATALOGUE["vit_clip"])
DEMO_MODELS = ["demo_random_vit_sup", "demo_random_vit_clip"]


def make_params(tmp_path: Path, root: Path, models: list[str], dataset: dict | None = None, **invariance):
    sweeps = {"scales": [1.5], "shifts": [30], "resolutions": [112], "images_per_class": 1, **invariance}
    return parse_params(
        {
            "models": models,
            "datasets": {"inv": dataset or {"path": str(root), "kind": "imagenet_val", "check_size": False,
                                            "label_space": "imagenet_subset"}},
            "inference": {"batch_size": 4, "chunk_size": 8, "num_workers": 0, "cache_dir": str(tmp_path / "cache")},
            "analyses": {"invariance": {"dataset": "inv", **sweeps}},
            "tracking": {"enabled": False},
            "results_dir": str(tmp_path / "results"),
        }
    )  # fmt: skip


def plan(params: Params) -> list:
    """The sweep jobs of params: its invariance dataset scanned and checked, every model, nothing built."""
    config = params.analyses.invariance
    dataset = sweep_dataset(config.dataset, dataset_variants(params, config.dataset), config)
    return plan_sweep_jobs(dataset, params.models, config, params.inference)


def run_sweeps(params: Params, callbacks: list | None = None) -> list:
    """What ``infer(params)`` runs for the sweeps: every sweep cache of every model of params."""
    config = params.analyses.invariance
    dataset = sweep_dataset(config.dataset, dataset_variants(params, config.dataset), config)
    return run_invariance_sweeps(dataset, params.models, config, params.inference, callbacks or [])


def context(params: Params, store: CacheStore | None = None) -> AnalysisContext:
    """What the analyze stage hands an analysis: the models, the caches of params, its figures folder."""
    store = store or CacheStore(params.inference.cache_dir)
    return AnalysisContext(list(params.models), store, stage_paths(params).analyze.figures, params.datasets)


def ramp_image(width: int = 500, height: int = 375) -> Image.Image:
    ys, xs = np.mgrid[0:height, 0:width]
    pixels = np.stack([xs % 256, ys % 256, (xs + ys) % 256], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


# Shift as a preprocessing mode ---------------------------------------------------------------------------------


def test_existing_preprocessing_keys_and_records_are_unchanged():
    # Golden keys computed before `shift` existed: every cache made before keeps its configuration hash.
    assert SUP.key() == "02e5924eabd1" and CLIP.key() == "c0c77c61e16e"
    assert dataclasses.replace(SUP, resize=SUP.crop, resize_mode="none").key() == "f30979118c56"
    assert dataclasses.replace(SUP, resize_mode="squash").key() == "fcb5c4bc32d2"
    assert json.dumps(SUP.as_record(), sort_keys=True) == (
        '{"antialias": true, "backend": "pil", "crop": 224, "interpolation": "bilinear", "key": "02e5924eabd1", '
        '"mean": [0.485, 0.456, 0.406], "mode": "paper", "resize": 256, "resize_mode": "shortest", '
        '"std": [0.229, 0.224, 0.225]}'
    )
    shifted = shift_preprocess(SUP, 30)
    assert shifted.as_record()["shift"] == 30.0 and shifted.as_record()["resize_mode"] == "shift"
    assert len({shifted.key(), shift_preprocess(SUP, 5).key(), SUP.key()}) == 3
    assert shift_preprocess(SUP, 30) == shift_preprocess(SUP, 30.0)  # int and float d: one spec, one key
    with pytest.raises(ValueError, match="shift"):
        dataclasses.replace(SUP, resize_mode="shift")
    with pytest.raises(ValueError, match="shift"):
        dataclasses.replace(SUP, shift=5.0)


@pytest.mark.parametrize(
    "spec,d,window", [(SUP, 100, (23, 185, 328)), (CLIP, 100, (0, 162, 375)), (SUP, 0, (23, 85, 328))]
)
def test_shift_spec_transform_is_the_protocol_pipeline_pixel_for_pixel(spec, d, window):
    img = ramp_image()
    prep = shift_preprocess(spec, d)
    assert (prep.resize, prep.crop, prep.interpolation, prep.shift) == (spec.resize, 224, "bilinear", float(d))
    top, left, size = window  # PROTOCOL §9.2, computed by hand (see tests/models/test_sweep_transforms.py)
    crop = TF.functional.crop(img, top, left, size, size)  # zero-padded past the border
    resized = TF.Resize((224, 224), interpolation=TF.InterpolationMode.BILINEAR, antialias=True)(crop)
    expected = TF.Normalize(spec.mean, spec.std)(TF.ToTensor()(resized))
    assert torch.equal(build_transform(prep)(img), expected)
    assert torch.equal(shift_transform(spec, d)(img), expected)
    by_hand = TF.Compose([ShiftCrop(spec.resize, 224, d), TF.ToTensor(), TF.Normalize(spec.mean, spec.std)])
    assert torch.equal(by_hand(img), expected)


def test_scale_spec_transform_is_bilinear_resize_and_centre_crop_even_for_clip():
    img = ramp_image(400, 300)
    prep = scale_preprocess(CLIP, 1.5)
    assert (prep.resize, prep.crop, prep.interpolation, prep.resize_mode) == (336, 224, "bilinear", "shortest")
    expected = TF.Compose(
        [
            TF.Resize(336, interpolation=TF.InterpolationMode.BILINEAR, antialias=True),
            TF.CenterCrop(224),
            TF.ToTensor(),
            TF.Normalize(CLIP.mean, CLIP.std),
        ]
    )(img)
    assert torch.equal(build_transform(prep)(img), expected) and torch.equal(scale_transform(CLIP, 1.5)(img), expected)
    assert scale_preprocess(SUP, 1) == SUP  # s = 1 is the standard supervised evaluation, same key


# Planning ------------------------------------------------------------------------------------------------------


def test_sweep_points_add_the_reference_and_name_variants():
    params = make_params(Path("/tmp"), Path("/tmp"), ["vit_sup"], scales=[3, 1.25], shifts=[100], resolutions=[336])
    labels = [p.label for p in sweep_points(params.analyses.invariance, CATALOGUE["vit_sup"])]
    assert labels == ["scale/1", "scale/1.25", "scale/3", "shift/0", "shift/100", "resolution/224", "resolution/336"]
    assert [format_sweep_value(v) for v in (1.0, 1.25, 30, 2.0, 0.1)] == ["1", "1.25", "30", "2", "0.1"]
    assert SweepPoint("resolution", 336.0).as_record() == {"kind": "resolution", "value": 336}
    assert SweepPoint("shift", 30).as_record() == {"kind": "shift", "value": 30.0}


def test_plan_sweep_jobs_variants_preprocessing_and_config(tmp_path, small_demo_root):
    params = make_params(tmp_path, small_demo_root, ["vit_sup", "vit_clip"], images_per_class=2)
    jobs = plan(params)  # the paper models: planned without weights, nothing is built
    by = {(j.spec.id, j.dataset.variant): j for j in jobs}
    variants = ["scale/1", "scale/1.5", "shift/0", "shift/30", "resolution/112", "resolution/224"]
    assert set(by) == {(m, f"per_class2/{v}") for m in ("vit_sup", "vit_clip") for v in variants}
    assert all(not j.complete and len(j.dataset) == 8 for j in jobs)  # 4 classes x the first 2 images

    def prep(model, variant):
        return by[(model, f"per_class2/{variant}")].preprocessing

    assert (prep("vit_sup", "scale/1.5").resize, prep("vit_sup", "scale/1.5").crop) == (384, 224)
    assert (prep("vit_clip", "scale/1.5").resize, prep("vit_clip", "scale/1.5").interpolation) == (336, "bilinear")
    assert prep("vit_sup", "scale/1") == SUP
    assert prep("vit_clip", "shift/30") == shift_preprocess(CLIP, 30) and prep("vit_clip", "shift/30").resize == 224
    assert prep("vit_sup", "shift/30").resize == 256
    assert (prep("vit_sup", "resolution/112").resize, prep("vit_sup", "resolution/112").crop) == (128, 112)
    assert prep("vit_clip", "resolution/112") == resolution_preprocess(CLIP, "clip", 112)
    assert prep("vit_sup", "resolution/224") == SUP and prep("vit_clip", "resolution/224") == CLIP
    job = by[("vit_sup", "per_class2/scale/1.5")]
    full = resolve_dataset("inv", params.datasets["inv"])
    subset = stratified_subset(full, per_class=2)
    assert job.config["sweep"] == {"kind": "scale", "value": 1.5}
    assert job.config["dataset_files_sha256"] == subset.manifest_sha256() != full.manifest_sha256()
    assert job.config["preprocessing"] == job.preprocessing.as_record()
    assert job.path == cache_path(tmp_path / "cache", "inv", "vit_sup", "per_class2/scale/1.5")
    assert job.path.parent.name == "per_class2_scale_1.5"
    resolution_job = by[("vit_sup", "per_class2/resolution/112")]
    assert resolution_job.spec.input_size == 112 and resolution_job.config["sweep"]["value"] == 112
    assert len({j.hash for j in jobs}) == len(jobs) and len({j.path for j in jobs}) == len(jobs)


def test_plan_sweep_jobs_with_paper_resolutions_matches_resolution_preprocess(tmp_path, small_demo_root):
    params = make_params(tmp_path, small_demo_root, ["vit_sup", "convnext_clip"], resolutions=[112, 336, 512, 640])
    jobs = [j for j in plan(params) if j.config["sweep"]["kind"] == "resolution"]
    for job in jobs:
        r, paradigm = job.config["sweep"]["value"], job.spec.paradigm
        base = SUP if paradigm == "supervised" else CLIP
        assert job.preprocessing == resolution_preprocess(base, paradigm, r)
    sup = {j.config["sweep"]["value"]: j.preprocessing.resize for j in jobs if j.spec.id == "vit_sup"}
    assert sup == {112: 128, 224: 256, 336: 384, 512: 585, 640: 731}


def test_invariance_dataset_must_be_imagenet_val_like(tmp_path, small_demo_root):
    with pytest.raises(UnknownNameError, match="'inv'"):
        plan(dataclasses.replace(make_params(tmp_path, small_demo_root, ["vit_sup"]), datasets={}))
    geometry_none = {"path": str(small_demo_root), "kind": "image_folder", "geometry": "none"}
    with pytest.raises(UserError, match="cannot be swept: its images are fed without resize"):
        plan(make_params(tmp_path, small_demo_root, ["vit_sup"], dataset=geometry_none))
    custom = {"path": str(small_demo_root), "kind": "image_folder", "label_space": "custom"}
    with pytest.raises(UserError, match="not each exactly one ImageNet-1k class"):
        plan(make_params(tmp_path, small_demo_root, ["vit_clip"], dataset=custom))
    unset = make_params(tmp_path, small_demo_root, ["vit_sup"])
    unset = dataclasses.replace(
        unset, analyses=dataclasses.replace(unset.analyses, invariance=type(unset.analyses.invariance)())
    )
    with pytest.raises(UserError, match=r"analyses\.invariance\.dataset is not set"):
        run_invariance(unset.analyses.invariance, context(unset))


def test_native_preprocessing_is_resolved_at_each_resolution(tmp_path, small_demo_root):
    params = make_params(tmp_path, small_demo_root, ["vit_sup"], resolutions=[336])
    params = dataclasses.replace(params, inference=dataclasses.replace(params.inference, preprocessing="native"))
    by = {j.dataset.variant: j.preprocessing for j in plan(params)}
    native = resolve_preprocessing(CATALOGUE["vit_sup"], "native")  # timm's DeiT III cfg: 224, crop_pct 1, bicubic
    assert (by["per_class1/resolution/336"].resize, by["per_class1/resolution/336"].crop) == (336, 336)
    assert by["per_class1/resolution/224"] == native and by["per_class1/scale/1.5"].resize == int(1.5 * native.resize)


def test_missing_weights_fail_before_any_model_is_built(tmp_path, small_demo_root, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.try_to_load_from_cache", lambda *a, **k: None)

    def refuse(*args):
        raise AssertionError("no model may be built when weights are missing")

    monkeypatch.setattr("beyond_imagenet.inference.run.build_backbone", refuse)
    monkeypatch.setattr("beyond_imagenet.inference.sweeps.build_at_resolution", refuse)
    with pytest.raises(WeightsUnavailableError, match="deit3_base_patch16_224"):
        run_sweeps(make_params(tmp_path, small_demo_root, ["demo_random_vit_sup", "vit_sup"]))
    assert not list((tmp_path / "cache").rglob("meta.json"))


# Running and analysing ------------------------------------------------------------------------------------------


class CountImages(Callback):
    def __init__(self):
        self.images = 0

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.images += len(outputs["index"])


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory, small_demo_root):
    tmp = tmp_path_factory.mktemp("sweeps")
    params = make_params(tmp, small_demo_root, DEMO_MODELS)
    counter = CountImages()
    jobs = run_sweeps(params, callbacks=[counter])
    return params, jobs, counter


def _files(root: Path, per_class: int) -> list[Path]:
    by_class: dict[str, list[Path]] = {}
    for path in sorted(root.glob("*/*.JPEG"), key=lambda p: (p.parent.name, p.name)):
        by_class.setdefault(path.parent.name, []).append(path)
    return [p for paths in by_class.values() for p in paths[:per_class]]


def test_sweep_caches_hold_the_transformed_forward_of_each_model(sweep_run, small_demo_root):
    params, jobs, counter = sweep_run
    assert len(jobs) == 12 and all(len(load_cache(j.path)) == 4 for j in jobs)
    assert counter.images == 6 * 4  # 6 passes (4 scale/shift points, 2 resolutions), 4 images, both models each
    files = _files(small_demo_root, 1)
    cache_dir = Path(params.inference.cache_dir)

    def direct(spec, backbone, clip_model, transform):
        if clip_model is not None:
            weights, _ = load_or_build_zeroshot_weights(
                backbone.spec, clip_model, openai_imagenet_classnames(), cache_dir, torch.device("cpu")
            )
            backbone.set_zeroshot_weights(weights)
        with torch.no_grad():
            return backbone(torch.stack([transform(decode_rgb(p)) for p in files]))[0].numpy()

    sup, clip = CATALOGUE["demo_random_vit_sup"], CATALOGUE["demo_random_vit_clip"]
    sup_112, clip_112 = resolution_preprocess(SUP, "supervised", 112), resolution_preprocess(CLIP, "clip", 112)
    cases = [
        (sup, "shift/30", build_backbone(sup), shift_transform(resolve_preprocessing(sup), 30)),
        (clip, "scale/1.5", build_backbone(clip), scale_transform(resolve_preprocessing(clip), 1.5)),
        (clip, "resolution/112", build_at_resolution(clip, 112), build_transform(clip_112)),
        (sup, "resolution/112", build_at_resolution(sup, 112), build_transform(sup_112)),
    ]
    for spec, variant, (backbone, clip_model), transform in cases:
        cache = load_cache(cache_path(cache_dir, "inv", spec.id, f"per_class1/{variant}"))
        assert cache.sample_ids == [p.name for p in files]
        assert cache.meta["dataset"]["variant"] == f"per_class1/{variant}"
        np.testing.assert_allclose(cache.logits, direct(spec, backbone, clip_model, transform), rtol=1e-4, atol=1e-4)
    # Supervised: resolution 224 is the standard transform on the same network as scale 1 (pos embed resized
    # from the demo ViT's native 10x10 grid exactly as timm resamples it on the fly).
    scale_1 = load_cache(cache_path(cache_dir, "inv", sup.id, "per_class1/scale/1"))
    res_224 = load_cache(cache_path(cache_dir, "inv", sup.id, "per_class1/resolution/224"))
    assert scale_1.meta["preprocessing"] == res_224.meta["preprocessing"]
    np.testing.assert_allclose(scale_1.logits, res_224.logits, rtol=1e-4, atol=1e-4)


def test_rerun_builds_nothing_and_a_new_point_runs_alone(sweep_run, monkeypatch):
    params, jobs, _ = sweep_run

    def refuse(*args):
        raise AssertionError("a complete sweep cache must not rebuild its model")

    monkeypatch.setattr("beyond_imagenet.inference.run.build_backbone", refuse)
    monkeypatch.setattr("beyond_imagenet.inference.sweeps.build_at_resolution", refuse)
    counter = CountImages()
    again = run_sweeps(params, callbacks=[counter])
    assert counter.images == 0 and all(j.complete for j in again) and [j.hash for j in again] == [j.hash for j in jobs]
    monkeypatch.undo()
    monkeypatch.setattr("beyond_imagenet.inference.sweeps.build_at_resolution", refuse)
    more = dataclasses.replace(
        params, analyses=dataclasses.replace(
            params.analyses, invariance=dataclasses.replace(params.analyses.invariance, shifts=[30, 5])
        )
    )  # fmt: skip
    run_sweeps(more, callbacks=[counter])
    assert counter.images == 4  # one pass (shift 5) over the 4 images, both models in it
    assert all(j.complete for j in plan(more))


def test_run_invariance_values_from_the_cached_logits(sweep_run):
    params, _, _ = sweep_run
    records = {r.model_id: r for r in run_invariance(params.analyses.invariance, context(params))}
    assert set(records) == set(DEMO_MODELS)
    labels = ["scale/1", "scale/1.5", "shift/0", "shift/30", "resolution/112", "resolution/224"]
    columns = np.array([1, 250, 500, 999])  # the 4 demo classes' ImageNet columns, targets 0..3
    names = ("top1", "correct_class_prob", "consistency")
    for model_id, record in records.items():
        assert set(record.metrics) == {f"invariance/{p}/{m}" for p in labels for m in names}
        reference = {}
        for label in labels:
            cache = load_cache(cache_path(params.inference.cache_dir, "inv", model_id, f"per_class1/{label}"))
            logits = cache.logits[:, columns].astype(np.float64)
            np.testing.assert_array_equal(cache.targets, [0, 1, 2, 3])
            predictions = logits.argmax(axis=1)
            kind = label.split("/")[0]
            reference.setdefault(kind, predictions)  # the first point of each sweep is its reference here
            probability = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            m = {k.rsplit("/", 1)[1]: v for k, v in record.metrics.items() if k.startswith(f"invariance/{label}/")}
            assert m["top1"] == pytest.approx(100 * np.mean(predictions == cache.targets))
            assert m["correct_class_prob"] == pytest.approx(probability[np.arange(4), cache.targets].mean(), rel=1e-9)
            assert 0 <= m["correct_class_prob"] <= 1
            assert m["consistency"] == pytest.approx(100 * np.mean(predictions == reference[kind]))
        assert record.metrics["invariance/scale/1/consistency"] == 100.0
        assert record.metrics["invariance/shift/0/consistency"] == 100.0
        assert record.metrics["invariance/resolution/224/consistency"] == 100.0
        curves = record.details["curves"]
        assert curves["scale"]["values"] == [1.0, 1.5] and curves["resolution"]["values"] == [112, 224]
        shift_top1 = [record.metrics[f"invariance/shift/{d}/top1"] for d in (0, 30)]
        assert curves["shift"]["top1"] == shift_top1
        assert record.params["reference"] == {"scale": 1.0, "shift": 0.0, "resolution": 224}
        points = record.provenance["points"]
        assert points["shift/30"]["preprocessing"]["shift"] == 30.0
        assert points["resolution/112"]["preprocessing"]["crop"] == 112
        assert record.provenance["dataset"]["n_images"] == 4 and record.provenance["model"]["model_id"] == model_id
        assert {Path(a).name for a in record.artifacts} == {"all_models.png", "consistency_all_models.png"}
        assert all(Path(a).stat().st_size > 0 for a in record.artifacts)
    # The sweep caches are not variants of the dataset itself (accuracy on it would read the plain cache).
    assert CacheStore(params.inference.cache_dir).variants("inv", DEMO_MODELS[0]) == []


def test_invariance_is_registered_and_a_missing_sweep_names_the_command(sweep_run, tmp_path):
    params, _, _ = sweep_run
    assert ANALYSES["invariance"].paper_section == "§9, Fig. 7" and ANALYSES["invariance"].configured(params.analyses)
    more = dataclasses.replace(
        params, analyses=dataclasses.replace(
            params.analyses, invariance=dataclasses.replace(params.analyses.invariance, scales=[2.0])
        )
    )  # fmt: skip
    with pytest.raises(UserError, match=r"scale/2 .*beyond-imagenet infer"):
        run_invariance(more.analyses.invariance, context(params))
    records = analyze(dataclasses.replace(params, results_dir=str(tmp_path / "results")), ["invariance"])
    assert len(records) == 2 and (tmp_path / "results/records/invariance/inv/demo_random_vit_clip.json").exists()


def test_metric_functions_golden_values():
    assert correct_class_probability(np.array([[0.0, np.log(3.0)], [np.log(3.0), 0.0]]), np.array([1, 1])) == (
        pytest.approx(0.5)
    )  # 0.75 and 0.25
    assert correct_class_probability(np.array([[1000.0, 0.0]]), np.array([0])) == pytest.approx(1.0)  # no overflow
    assert prediction_consistency(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 75.0
    with pytest.raises(ValueError):
        prediction_consistency(np.array([1, 2]), np.array([1]))


def _write_point(cache_dir: Path, model_id: str, variant: str, sweep: dict, predictions: list[int]) -> None:
    """A hand-made sweep cache (docs/cache.md): 1000 ImageNet logits, 5 at the prediction, 0 elsewhere."""
    logits = np.zeros((len(predictions), 1000), dtype=np.float32)
    logits[np.arange(len(predictions)), predictions] = 5.0
    meta = {
        "model": {"model_id": model_id},
        "dataset": {"name": "val", "variant": variant, "n_images": len(predictions)},
        "label_space": {"kind": "imagenet1k"},
        "output_space": {"kind": "imagenet1k", "n_classes": 1000},
        "preprocessing": {"sweep": sweep},
        "config": {"sweep": sweep},
        "config_hash": "hand",
    }
    ids = [f"img{i}" for i in range(len(predictions))]
    path = cache_path(cache_dir, "val", model_id, variant)
    write_cache(path, logits, np.zeros((len(ids), 2)), np.arange(len(ids)), ids, meta)


def test_run_invariance_hand_computed_values_on_hand_written_caches(tmp_path):
    """Targets 0..3; each point's predictions chosen so top-1, probability and consistency are known by hand."""
    predictions = {
        ("scale", 1.0): [0, 1, 2, 3],
        ("scale", 2.0): [0, 1, 9, 9],  # top-1 50, consistency 50
        ("shift", 0.0): [0, 1, 2, 7],  # reference: top-1 75
        ("shift", 30.0): [0, 1, 2, 3],  # top-1 100, consistency 75 (the last image changed its prediction)
        ("resolution", 224): [5, 5, 5, 5],  # reference: top-1 0
        ("resolution", 112): [5, 5, 5, 3],  # top-1 25, consistency 75
    }
    for (kind, value), preds in predictions.items():
        point = SweepPoint(kind, value)
        _write_point(tmp_path / "cache", "vit_sup", point.label, point.as_record(), preds)
    params = parse_params(
        {
            "models": ["vit_sup"],
            "datasets": {"val": {"path": str(tmp_path / "nowhere"), "kind": "imagenet_val"}},
            "inference": {"cache_dir": str(tmp_path / "cache")},
            "analyses": {"invariance": {"dataset": "val", "scales": [2], "shifts": [30], "resolutions": [112]}},
            "results_dir": str(tmp_path / "results"),
        }
    )
    # caches only: no dataset, no model
    (record,) = run_invariance(params.analyses.invariance, context(params, CacheStore(tmp_path / "cache")))
    hit, miss = np.exp(5) / (np.exp(5) + 999), 1 / (np.exp(5) + 999)  # softmax of 5 among 999 zeros
    expected = {
        "scale/1": (100, hit, 100),
        "scale/2": (50, (2 * hit + 2 * miss) / 4, 50),
        "shift/0": (75, (3 * hit + miss) / 4, 100),
        "shift/30": (100, hit, 75),
        "resolution/112": (25, (hit + 3 * miss) / 4, 75),
        "resolution/224": (0, miss, 100),
    }
    for label, (top1, probability, consistency) in expected.items():
        assert record.metrics[f"invariance/{label}/top1"] == pytest.approx(top1)
        assert record.metrics[f"invariance/{label}/correct_class_prob"] == pytest.approx(probability, rel=1e-6)
        assert record.metrics[f"invariance/{label}/consistency"] == pytest.approx(consistency)
    assert record.details["curves"]["resolution"] == {
        "values": [112, 224],
        "top1": [25.0, 0.0],
        "correct_class_prob": pytest.approx([(hit + 3 * miss) / 4, miss]),
        "consistency": [75.0, 100.0],
    }
    assert record.dataset == "val" and record.params["images_per_class"] is None
