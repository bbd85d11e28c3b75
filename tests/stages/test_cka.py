"""The CKA stage (PROTOCOL §10): subset, streamed accumulation vs a direct computation, outputs, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from beyond_imagenet.base.config import parse_params
from beyond_imagenet.base.errors import ParamsError, UnknownNameError, UserError
from beyond_imagenet.base.record import read_record
from beyond_imagenet.data.decode import decode_rgb
from beyond_imagenet.data.demo.imagenet_val import generate_demo_split
from beyond_imagenet.data.label_space import imagenet_wnids
from beyond_imagenet.data.registry import resolve_datasets
from beyond_imagenet.data.subsets import stratified_indices, stratified_subset
from beyond_imagenet.metrics.cka import type_matrices, unbiased_hsic
from beyond_imagenet.metrics.resampling import ids_digest
from beyond_imagenet.models.build import build_backbone
from beyond_imagenet.models.catalogue import CATALOGUE
from beyond_imagenet.models.preprocessing import build_transform, resolve_preprocessing
from beyond_imagenet.models.taps import layer_sets, record_activations
from beyond_imagenet.stages.cka import cka as run_cka
from beyond_imagenet.stages.paths import stage_paths

VIT, CONVNEXT = "demo_random_vit_sup", "demo_random_convnext_clip"


def make_params(tmp_path: Path, root: Path, models: list[str], **cka):
    return parse_params(
        {
            "models": models,
            "datasets": {"small": {"path": str(root), "kind": "image_folder"}},
            "inference": {"num_workers": 0, "cache_dir": str(tmp_path / "cache")},
            "analyses": {"cka": {"dataset": "small", **cka}},
            "tracking": {"enabled": False},
            "results_dir": str(tmp_path / "results"),
        }
    )


# --- the class-stratified subset ---------------------------------------------------------------------------------


def test_subset_takes_the_first_images_of_each_class_in_file_name_order(small_demo_root):
    dataset = resolve_datasets("small", make_params(Path("/tmp"), small_demo_root, [VIT]).datasets["small"])[0]
    subset = stratified_subset(dataset, fraction=0.5)  # 3 of 6 per class
    assert len(subset) == 12
    np.testing.assert_array_equal(np.bincount(subset.targets), [3, 3, 3, 3])
    for target in range(4):
        ids = [s.sample_id for s, t in zip(dataset.samples, dataset.targets, strict=True) if t == target]
        chosen = [s.sample_id for s, t in zip(subset.samples, subset.targets, strict=True) if t == target]
        assert chosen == sorted(ids)[:3]
    assert subset.variant == "frac0.5" and not subset.complete
    assert subset.manifest_sha256() != dataset.manifest_sha256()
    np.testing.assert_array_equal(stratified_indices(dataset, per_class=2), stratified_indices(dataset, fraction=1 / 3))
    assert len(stratified_subset(dataset, fraction=0.01)) == 4  # at least one per class
    with pytest.raises(UserError, match="fraction"):
        stratified_indices(dataset, fraction=1.5)


# --- the streamed accumulation equals the formula applied batch by batch ------------------------------------------


def direct_cka(params, model_id: str, other_id: str | None = None) -> tuple[list[str], list[str], np.ndarray]:
    """CKA from full activations: per batch of the subset (in order) the O(n²) HSIC of every layer pair."""
    dataset = stratified_subset(
        resolve_datasets("small", params.datasets["small"])[0], fraction=params.analyses.cka.fraction
    )
    models = {}
    for mid in dict.fromkeys([model_id, other_id or model_id]):
        backbone = build_backbone(CATALOGUE[mid])[0].eval()
        models[mid] = (backbone, layer_sets(backbone)["all"], build_transform(resolve_preprocessing(CATALOGUE[mid])))
    batch = params.analyses.cka.batch_size
    rows, cols = models[model_id][1], models[other_id or model_id][1]
    cross = np.zeros((len(rows), len(cols)))
    row_self, col_self = np.zeros(len(rows)), np.zeros(len(cols))
    n_batches = 0
    for start in range(0, len(dataset), batch):
        samples = dataset.samples[start : start + batch]
        if len(samples) < 4:
            continue
        acts = {}
        for mid, (backbone, names, transform) in models.items():
            images = torch.stack([transform(decode_rgb(s.path)) for s in samples])
            with torch.no_grad(), record_activations(backbone, names, len(samples)) as store:
                backbone.features(images)
            acts[mid] = {k: v.double() for k, v in store.items()}
        grams_r = {n: acts[model_id][n] @ acts[model_id][n].T for n in rows}
        grams_c = {n: acts[other_id or model_id][n] @ acts[other_id or model_id][n].T for n in cols}
        for i, a in enumerate(rows):
            row_self[i] += float(unbiased_hsic(grams_r[a], grams_r[a]))
            for j, b in enumerate(cols):
                cross[i, j] += float(unbiased_hsic(grams_r[a], grams_c[b]))
        for j, b in enumerate(cols):
            col_self[j] += float(unbiased_hsic(grams_c[b], grams_c[b]))
        n_batches += 1
    matrix = (cross / n_batches) / np.sqrt(np.outer(row_self / n_batches, col_self / n_batches))
    return rows, cols, matrix


@pytest.fixture(scope="module")
def cka_run(tmp_path_factory, small_demo_root):
    tmp = tmp_path_factory.mktemp("cka")
    # 5 of 6 per class = 20 images; batches of 6: 6, 6, 6, 2 -> the last (n < 4) is dropped
    params = make_params(tmp, small_demo_root, [VIT, CONVNEXT], fraction=5 / 6, batch_size=6)
    return params, run_cka(params)


def test_within_model_cka_equals_the_formula_batch_by_batch(cka_run):
    params, records = cka_run
    for record in records:
        stored = np.load(record.details["matrices_file"])
        names, _, expected = direct_cka(params, record.model_id)
        np.testing.assert_allclose(stored["all"], expected, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(np.diag(stored["all"]), 1.0, rtol=1e-12)
        np.testing.assert_allclose(stored["all"], stored["all"].T, rtol=1e-12)
        sets = {kind: record.details["layers"][kind] for kind in record.details["layers"]}
        assert sets["all"] == names
        for kind, matrix in type_matrices(names, expected, sets).items():
            np.testing.assert_allclose(stored[f"type_{kind}"], matrix, rtol=1e-9, atol=1e-12)
        assert record.provenance["batch_sizes"] == [6, 6, 6]
        assert record.provenance["dropped_last_batch_images"] == 2
        off = expected[~np.eye(len(names), dtype=bool)].mean()
        assert record.metrics["cka/all/mean_offdiagonal"] == pytest.approx(off, rel=1e-9)


def test_cross_model_cka_equals_the_formula_and_is_reported_both_ways(cka_run):
    params, records = cka_run
    stored = np.load(stage_paths(params).cka.root / "matrices" / "small" / "cross_models.npz")
    matrix = stored[f"{VIT}__vs__{CONVNEXT}"]
    _, _, expected = direct_cka(params, VIT, CONVNEXT)
    np.testing.assert_allclose(matrix, expected, rtol=1e-9, atol=1e-12)
    by_model = {r.model_id: r for r in records}
    assert by_model[VIT].metrics[f"cka_cross/{CONVNEXT}/last_layer"] == pytest.approx(expected[-1, -1], rel=1e-9)
    assert by_model[CONVNEXT].metrics[f"cka_cross/{VIT}/mean_best_match"] == pytest.approx(
        expected.max(axis=0).mean(), rel=1e-9
    )


def test_stage_writes_records_figures_and_metrics_with_provenance(cka_run):
    params, records = cka_run
    out = stage_paths(params).cka.root
    for record in records:
        on_disk = json.loads((out / "records" / "cka" / "small" / f"{record.model_id}.json").read_text())
        assert on_disk["metrics"] == pytest.approx(record.metrics)
        assert on_disk["provenance"]["dataset"]["n_images"] == 20
        assert on_disk["provenance"]["model"]["model_id"] == record.model_id
        assert on_disk["provenance"]["preprocessing"]["key"]
        assert set(on_disk["provenance"]["environment"]) >= {"git_sha", "versions"}
    for name in ("all_models", "cross_models"):
        assert (out / "figures" / "cka" / "small" / f"{name}.png").stat().st_size > 10_000
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {VIT, CONVNEXT}


def test_every_summary_has_a_minibatch_interval_paired_across_models(cka_run):
    params, records = cka_run
    subset = stratified_subset(resolve_datasets("small", params.datasets["small"])[0], fraction=5 / 6)
    plan = f"cka:{ids_digest(subset.sample_ids)}:batch6/minibatches/B{params.statistics.resamples}/s0"
    folder = stage_paths(params).cka.root / "records" / "cka" / "small"
    for record in records:
        summaries = {k for k in record.metrics if not k.endswith("/n_layers")}
        assert any(k.startswith("cka_cross/") for k in summaries) and "cka/all/mean_adjacent" in summaries
        assert set(record.intervals) == summaries
        assert {(i["n"], i["plan"]) for i in record.intervals.values()} == {(3, plan)}
        assert record.details["intervals"]["minibatches"] == 3
        on_disk = read_record(folder / f"{record.model_id}.json", with_replicates=True)
        assert on_disk.intervals == record.intervals and set(on_disk.replicates) == summaries
        assert all(r.shape == (params.statistics.resamples,) for r in on_disk.replicates.values())
    by_model = {r.model_id: r for r in records}
    vit, convnext = by_model[VIT].replicates, by_model[CONVNEXT].replicates
    np.testing.assert_allclose(vit[f"cka_cross/{CONVNEXT}/last_layer"], convnext[f"cka_cross/{VIT}/last_layer"])


# --- bad input fails before any model is built ---------------------------------------------------------------------


def test_bad_cka_configuration_fails_before_any_model_is_built(tmp_path, small_demo_root, monkeypatch):
    def refuse(spec):
        raise AssertionError("no model may be built for a bad configuration")

    monkeypatch.setattr("beyond_imagenet.models.build.build_backbone", refuse)
    with pytest.raises(ParamsError, match="fraction"):
        make_params(tmp_path, small_demo_root, [VIT], fraction=0)
    with pytest.raises(ParamsError, match="batch_size must be >= 4"):
        make_params(tmp_path, small_demo_root, [VIT], batch_size=3)
    with pytest.raises(ParamsError, match="not a key of `datasets`"):
        parse_params({"models": [VIT], "datasets": {}, "analyses": {"cka": {"dataset": "val"}}})
    unset = parse_params({"models": [VIT], "datasets": {"small": {"path": str(small_demo_root)}}})
    with pytest.raises(UserError, match=r"analyses\.cka\.dataset is not set"):
        run_cka(unset)
    tiny = tmp_path / "tiny"
    generate_demo_split(tiny, [imagenet_wnids()[i] for i in (3, 4, 5)], images_per_class=1, seed=1)
    with pytest.raises(UserError, match="has 3 images; the unbiased HSIC needs >= 4"):
        run_cka(make_params(tmp_path, tiny, [VIT]))
    with pytest.raises(UnknownNameError):
        run_cka(make_params(tmp_path, small_demo_root, ["demo_random_vit_sup", "no_such_model"]))


def test_records_point_into_the_final_folder_and_a_failed_rerun_keeps_them(cka_run, monkeypatch):
    """Outputs are written aside and swapped in: no path names the staging folder; a failure deletes nothing."""
    import beyond_imagenet.stages.cka as stage

    params, records = cka_run
    out = stage_paths(params).cka.root
    for record in records:
        assert Path(record.details["matrices_file"]).is_relative_to(out)
        assert all(Path(a).is_relative_to(out) and Path(a).exists() for a in record.artifacts)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    def broken(*args, **kwargs):
        raise RuntimeError("figure backend failed")

    monkeypatch.setattr(stage, "cka_records", broken)
    with pytest.raises(RuntimeError, match="figure backend failed"):
        run_cka(params)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]
