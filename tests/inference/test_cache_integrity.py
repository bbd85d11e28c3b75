"""Damaged, foreign and concurrently written caches; bad images found early; NaN in one model (issue 15)."""

from __future__ import annotations

import io
import json
import logging
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from PIL import Image
from torch import nn

from beyond_imagenet.base.config import Params
from beyond_imagenet.base.errors import CacheFormatError, NonFiniteLogitsError, UserError
from beyond_imagenet.base.files import sha256_file
from beyond_imagenet.inference.cache import cache_path, load_cache
from beyond_imagenet.inference.jobs import plan_jobs
from beyond_imagenet.inference.run import run_inference, run_jobs
from beyond_imagenet.models.build import build_backbone
from beyond_imagenet.models.catalogue import CATALOGUE
from beyond_imagenet.models.zeroshot import load_or_build_zeroshot_weights
from beyond_imagenet.stages.infer import infer
from beyond_imagenet.stages.params import dataset_variants
from helpers import image_folder_params

SUP, CLIP = "demo_random_vit_sup", "demo_random_vit_clip"


make_params = image_folder_params


def jobs_of(params: Params, models: list[str] | None = None) -> list:
    return plan_jobs(dataset_variants(params, "small"), models or params.models, params.inference)


def run_with(params: Params, callbacks: list) -> list:
    return run_inference(dataset_variants(params, "small"), params.models, params.inference, callbacks)


class CountImages(Callback):
    """Counts images that reach the models; optionally interrupts the pass after ``stop_after`` batches."""

    def __init__(self, stop_after: int | None = None):
        self.images, self.batches, self.stop_after = 0, 0, stop_after

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.images += len(outputs["index"])
        self.batches += 1
        if self.stop_after is not None and self.batches >= self.stop_after:
            raise RuntimeError("simulated crash")


def refuse_builds(monkeypatch) -> None:
    def refuse(spec):
        raise AssertionError(f"model {spec.id} must not be built")

    monkeypatch.setattr("beyond_imagenet.inference.run.build_backbone", refuse)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, small_demo_root):
    """A finished SUP cache (kept pristine: tests copy it)."""
    tmp = tmp_path_factory.mktemp("finished")
    params = make_params(tmp, small_demo_root, [SUP])
    infer(params)
    return cache_path(params.inference.cache_dir, "small", SUP)


@pytest.fixture()
def copied(tmp_path, small_demo_root, finished):
    """Params whose cache dir holds a copy of the finished SUP cache, and that copy's path."""
    params = make_params(tmp_path, small_demo_root, [SUP])
    path = cache_path(params.inference.cache_dir, "small", SUP)
    shutil.copytree(finished, path)
    return params, path


def test_meta_records_the_sha256_of_every_file(finished):
    meta = json.loads((finished / "meta.json").read_text())
    names = ["logits.npy", "features.npy", "targets.npy", "sample_ids.json"]
    assert meta["checksums"] == {name: sha256_file(finished / name) for name in names}


def _truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[:-200])


def _zero(file: Path) -> None:
    file.write_bytes(bytes(file.stat().st_size))


def _drop_last_id(file: Path) -> None:
    file.write_text(json.dumps(json.loads(file.read_text())[:-1]))


@pytest.mark.parametrize(
    ("damage", "file"),
    [(_truncate, "logits.npy"), (_zero, "logits.npy"), (_drop_last_id, "sample_ids.json")],
)
def test_damaged_cache_is_refused_on_load_and_recomputed_by_infer(copied, finished, damage, file, caplog):
    params, path = copied
    damage(path / file)
    with pytest.raises(CacheFormatError) as err:
        load_cache(path)
    message = str(err.value)
    assert str(path) in message and file in message
    assert "beyond-imagenet infer" in message and f"delete {path}" in message
    caplog.set_level(logging.WARNING, logger="beyond_imagenet")
    (job,) = jobs_of(params)
    assert not job.complete
    assert f"cache {path} is damaged" in caplog.text and "recomputing" in caplog.text
    counter = CountImages()
    run_with(params, [counter])
    assert counter.images == 24
    np.testing.assert_allclose(load_cache(path).logits, load_cache(finished).logits, rtol=1e-5, atol=1e-5)


def _write_foreign(path: Path, n_ids: int = 6) -> Path:
    """A cache written by another tool: plain arrays and a meta.json without checksums."""
    path.mkdir(parents=True)
    np.save(path / "logits.npy", np.eye(6, 1000, dtype=np.float32))
    np.save(path / "features.npy", np.zeros((6, 3), dtype=np.float32))
    np.save(path / "targets.npy", np.arange(6))
    (path / "sample_ids.json").write_text(json.dumps([f"img{i}.JPEG" for i in range(n_ids)]))
    meta = {"model": {"model_id": "mine", "family": "other", "paradigm": "supervised"}, "dataset": {"name": "d"}}
    (path / "meta.json").write_text(json.dumps(meta))
    return path


def test_foreign_cache_without_checksums_is_accepted_after_row_checks(tmp_path):
    cache = load_cache(_write_foreign(tmp_path / "ok"))
    assert len(cache) == 6 and cache.logits[2, 2] == 1.0
    with pytest.raises(CacheFormatError, match=r"do not align with 5 sample ids"):
        load_cache(_write_foreign(tmp_path / "short", n_ids=5))
    truncated = _write_foreign(tmp_path / "truncated")
    _truncate(truncated / "logits.npy")
    with pytest.raises(CacheFormatError, match=r"logits\.npy is unreadable"):
        load_cache(truncated)


def test_orphan_temp_file_in_a_finished_cache_is_removed_without_recomputing(copied, monkeypatch):
    params, path = copied
    orphan = path / ".logits.npy.0badf00d.tmp"
    orphan.write_bytes(b"half a file")
    assert len(load_cache(path)) == 24  # ignored on load
    refuse_builds(monkeypatch)
    (job,) = infer(params)
    assert job.complete and not orphan.exists()


def test_second_run_waits_for_the_first_and_reuses_its_cache(tmp_path, small_demo_root, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="beyond_imagenet")
    params = make_params(tmp_path, small_demo_root, [SUP])
    second: dict = {}

    def second_run() -> None:
        try:
            second["counter"] = CountImages()
            second["jobs"] = run_with(params, [second["counter"]])
        except BaseException as err:  # reported by the main thread
            second["error"] = err

    class StartSecondRun(Callback):
        def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
            if batch_idx:
                return
            refuse_builds(monkeypatch)  # the first run has built its model; the second must not
            second["thread"] = threading.Thread(target=second_run)
            second["thread"].start()
            deadline = time.monotonic() + 30
            while "waiting for it to finish" not in caplog.text and "error" not in second:
                assert time.monotonic() < deadline, "the second run neither waited nor failed"
                time.sleep(0.05)

    run_with(params, [StartSecondRun()])
    second["thread"].join(timeout=60)
    assert "error" not in second, second.get("error")
    assert second["counter"].images == 0 and [job.complete for job in second["jobs"]] == [True]
    assert "finished by another run meanwhile, reused" in caplog.text
    assert len(load_cache(cache_path(params.inference.cache_dir, "small", SUP))) == 24


def _problem_root(tmp_path: Path, small_demo_root: Path) -> Path:
    root = tmp_path / "problem"
    shutil.copytree(small_demo_root, root)
    class_dir = next(p for p in sorted(root.iterdir()) if p.is_dir())
    (class_dir / "empty.JPEG").write_bytes(b"")
    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 50, 3), 90, dtype=np.uint8)).save(buffer, "JPEG")
    (class_dir / "truncated.JPEG").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return root


def test_bad_images_are_refused_before_any_model_is_built(tmp_path, small_demo_root, monkeypatch):
    params = make_params(tmp_path, _problem_root(tmp_path, small_demo_root), [SUP])
    refuse_builds(monkeypatch)
    with pytest.raises(UserError) as err:
        infer(params)
    message = str(err.value)
    assert "2 image(s)" in message and "empty.JPEG" in message and "truncated.JPEG" in message
    assert "inference.bad_images: skip" in message


def test_bad_image_policy_only_matters_for_caches_that_skipped_images(tmp_path, small_demo_root, caplog):
    clean = make_params(tmp_path / "clean", small_demo_root, [SUP])
    infer(clean)
    (job,) = jobs_of(make_params(tmp_path / "clean", small_demo_root, [SUP], bad_images="skip"))
    assert job.complete  # nothing was skipped: valid under either policy
    caplog.set_level(logging.INFO, logger="beyond_imagenet")
    root = _problem_root(tmp_path, small_demo_root)
    skip = make_params(tmp_path / "run", root, [SUP], bad_images="skip")
    infer(skip)
    meta_file = cache_path(skip.inference.cache_dir, "small", SUP) / "meta.json"
    assert f'2 undecodable image(s) skipped (inference.bad_images: skip); listed under "skipped" in {meta_file}' in (
        caplog.text
    )
    (job,) = jobs_of(make_params(tmp_path / "run", root, [SUP]))
    assert not job.complete  # left images out: not reused under bad_images: error


def _poison_sup(spec):
    """``build_backbone``, with row 1 of every batch of SUP's logits set to NaN."""
    backbone, clip_model = build_backbone(spec)
    if spec.id == SUP:
        forward = backbone.forward

        def poisoned(images):
            logits, features = forward(images)
            logits = logits.clone()
            logits[1] = float("nan")
            return logits, features

        backbone.forward = poisoned
    return backbone, clip_model


def test_nan_in_one_model_still_writes_the_other_models_cache(tmp_path, small_demo_root):
    params = make_params(tmp_path, small_demo_root, [SUP, CLIP])
    with pytest.raises(NonFiniteLogitsError) as err:
        run_jobs(jobs_of(params), params.inference, build=_poison_sup)
    message = str(err.value)
    ids = [s.sample_id for s in dataset_variants(params, "small")[0].samples]
    assert f"model {SUP} on small: 6 sample(s)" in message and f"(e.g. {ids[1]}, {ids[5]}," in message
    assert "no cache was written for this model" in message and f"caches were written ({CLIP})" in message
    assert "inference.precision: fp32" in message
    assert len(load_cache(cache_path(params.inference.cache_dir, "small", CLIP))) == 24
    assert not (cache_path(params.inference.cache_dir, "small", SUP) / "meta.json").exists()


def test_nan_stored_in_a_partial_chunk_is_dropped_and_recomputed(tmp_path, small_demo_root):
    params = make_params(tmp_path, small_demo_root, [SUP, CLIP])
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_with(params, [CountImages(stop_after=3)])  # chunk 0 saved for both models
    chunk = cache_path(params.inference.cache_dir, "small", SUP) / "partial" / "chunk_000000.npz"
    with np.load(chunk) as data:
        arrays = dict(data)
    arrays["logits"][2, 7] = np.nan
    with open(chunk, "wb") as handle:
        np.savez(handle, **arrays)
    with pytest.raises(NonFiniteLogitsError) as err:
        run_with(params, [])
    sample = dataset_variants(params, "small")[0].samples[int(arrays["indices"][2])].sample_id
    assert f"model {SUP} on small: 1 sample(s)" in str(err.value) and sample in str(err.value)
    assert len(load_cache(cache_path(params.inference.cache_dir, "small", CLIP))) == 24
    assert not chunk.exists()
    counter = CountImages()
    run_with(params, [counter])
    assert counter.images == 8  # only the dropped chunk
    assert np.isfinite(load_cache(cache_path(params.inference.cache_dir, "small", SUP)).logits).all()


class _FakeClip(nn.Module):
    def __init__(self):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(np.log(50.0)))


def test_truncated_zero_shot_head_is_rebuilt(tmp_path, monkeypatch, caplog):
    builds = []

    def fake_build(clip_model, tokenizer, classnames, device):
        builds.append(list(classnames))
        return torch.arange(8 * len(classnames), dtype=torch.float32).view(8, len(classnames))

    class FakeBackend:
        def tokenizer(self, spec):
            return None

    monkeypatch.setattr("beyond_imagenet.models.zeroshot.build_zeroshot_weights", fake_build)
    monkeypatch.setattr("beyond_imagenet.models.zeroshot.backend_for", lambda spec: FakeBackend())
    spec, names, cpu = CATALOGUE[CLIP], ["apple", "boat", "cloud"], torch.device("cpu")
    weights, info = load_or_build_zeroshot_weights(spec, _FakeClip(), names, tmp_path, cpu)
    (head,) = (tmp_path / "zeroshot_heads").rglob("*.pt")
    head.write_bytes(head.read_bytes()[: head.stat().st_size // 2])
    caplog.set_level(logging.WARNING, logger="beyond_imagenet")
    rebuilt, rebuilt_info = load_or_build_zeroshot_weights(spec, _FakeClip(), names, tmp_path, cpu)
    assert f"zero-shot head {head} is damaged" in caplog.text and "rebuilding" in caplog.text
    assert len(builds) == 2 and torch.equal(rebuilt, weights) and rebuilt_info == info
    again, _ = load_or_build_zeroshot_weights(spec, _FakeClip(), names, tmp_path, cpu)
    assert len(builds) == 2 and torch.equal(again, weights)  # the rebuilt file is read back
