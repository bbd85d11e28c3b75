"""Fetching the cue-conflict stimuli: checked before installing, never half-installed (PROTOCOL §6).

Uses the 48 real stimuli committed under src/beyond_imagenet/data/demo/cue_conflict_sample (Geirhos et al. 2019,
CC BY 4.0).
"""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path

import pytest

from beyond_imagenet.base.errors import DatasetLayoutError, UserError
from beyond_imagenet.data import cue_conflict
from beyond_imagenet.data.fetch import fetch_cue_conflict, sha256_of
from helpers import CUE_CONFLICT_SAMPLE

SAMPLE = CUE_CONFLICT_SAMPLE


@pytest.fixture()
def sample_archive(tmp_path) -> Path:
    archive = tmp_path / "cue-conflict.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(SAMPLE, arcname="cue-conflict")
    return archive


def test_incomplete_archive_is_refused_and_nothing_is_installed(tmp_path, sample_archive):
    out = tmp_path / "data" / "cue-conflict"
    with pytest.raises(DatasetLayoutError, match="found 48 images, expected 1280"):
        fetch_cue_conflict(out, archive=sample_archive)
    assert not out.exists() and list(out.parent.iterdir()) == []  # no leftovers


def test_complete_archive_is_installed_with_its_sha256(tmp_path, sample_archive, monkeypatch):
    total = sum(p.stat().st_size for p in SAMPLE.glob("*/*.png"))
    monkeypatch.setattr(cue_conflict, "CUE_CONFLICT_EXPECTED", 48)
    monkeypatch.setattr(cue_conflict, "CUE_CONFLICT_PER_CLASS", 3)
    monkeypatch.setattr(cue_conflict, "CUE_CONFLICT_BYTES", total)
    out = fetch_cue_conflict(tmp_path / "cc", url=sample_archive.as_uri())  # the download path, via file://
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == list(cue_conflict.CATEGORIES)
    source = json.loads((out / "SOURCE.json").read_text())
    assert source["archive_sha256"] == sha256_of(sample_archive) and source["n_images"] == 48
    assert (out / "bear").is_dir() and len(cue_conflict.scan_cue_conflict(out)) == 48


def test_unsafe_archive_members_are_refused(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "x.png"
    payload.write_bytes(b"x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(payload, arcname="../escape.png")
    with pytest.raises(UserError, match="unsafe archive member"):
        fetch_cue_conflict(tmp_path / "cc", archive=evil)


def test_unreachable_release_fails_fast_naming_the_fix(tmp_path):
    start = time.perf_counter()
    with pytest.raises(UserError, match="--archive PATH"):
        fetch_cue_conflict(tmp_path / "cc", url="http://127.0.0.1:9/cue-conflict.tar.gz")
    assert time.perf_counter() - start < 10
