"""Layout ``wds``: CLIP_benchmark's WebDataset mirrors of VTAB (docs/transfer.md §3.5, §4, §8.12; docs/vtab.md).

``<root>/wds_vtab-<task>/{train,test}/*.tar`` with ``<key>.<img>`` and ``<key>.cls`` members, plus
``classnames.txt``; one mirror per task (Hugging Face ``clip-benchmark/<mirror_name(task)>``). Train is VTAB train
without val, so ``carve.carve_val`` holds out a stratified val (its rows must be saved); test is VTAB test. Labels
are CLIP_benchmark's (dSprites 32/40 classes, remapped by ``labels.dsprites_label`` to 16 for ``vtab19``). Shards are
indexed by member offsets; ``webdataset`` is not needed.
"""

from __future__ import annotations

import functools
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from beyond_imagenet.base.errors import DatasetLayoutError, UserError
from beyond_imagenet.data.vtab.carve import carved_split_rows
from beyond_imagenet.data.vtab.labels import DSPRITES_RAW_CLASSES, dsprites_label, native_label
from beyond_imagenet.data.vtab.layouts.base import VtabLayout, with_source_notes
from beyond_imagenet.data.vtab.samples import SourceSplit, VtabSample, file_entries, label_rows, make_sample_id
from beyond_imagenet.data.vtab.sources import DSPRITES_SOURCE
from beyond_imagenet.data.vtab.split_rules import check_protocol
from beyond_imagenet.data.vtab.tasks import Protocol, TaskSpec

__all__ = [
    "LAYOUT",
    "WDS_IMAGE_EXTENSIONS",
    "WdsLayout",
    "mirror_name",
    "read_classnames",
    "read_wds_split",
    "wds_shards",
]

NAME = "wds"
WDS_SPLITS = ("train", "test")
WDS_IMAGE_EXTENSIONS = ("webp", "png", "jpg", "jpeg")
WDS_LABEL_EXTENSION = "cls"


def mirror_name(task: TaskSpec) -> str:
    """CLIP_benchmark's WebDataset mirror of ``task`` (Hugging Face ``clip-benchmark/<mirror_name>``)."""
    return "wds_sun397" if task.name == "sun397" else f"wds_vtab-{task.name}"


def _wds_missing(task: TaskSpec, root: Path, what: str) -> DatasetLayoutError:
    """A layout error naming what is wrong, the expected layout and how to get the mirror."""
    return DatasetLayoutError(
        f"VTAB task {task.name!r}: {what}. Expected layout 'wds': {'; '.join(LAYOUT.expected(task, root))}. "
        f"How to get it: {LAYOUT.download_hint(task)}"
    )


def wds_shards(task: TaskSpec, root: str | Path, split: str) -> list[Path]:
    """``<root>/<mirror>/<split>/*.tar``, sorted numerically by stem when all stems are integers, else by name."""
    root = Path(root)
    folder = root / mirror_name(task) / split
    shards = sorted(folder.glob("*.tar")) if folder.is_dir() else []
    if not shards:
        raise _wds_missing(task, root, f"no tar shard in {folder}")
    if all(p.stem.isdigit() for p in shards):
        shards.sort(key=lambda p: int(p.stem))
    return shards


def _split_member_name(name: str) -> tuple[str, str] | None:
    """WebDataset's (key, extension): the key runs up to the first dot of the base name."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    if not dot or not stem:
        return None
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def _parse_cls(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path, key: str) -> int:
    """The integer class of a ``.cls`` member."""
    handle = tar.extractfile(member)
    text = handle.read().decode("ascii", errors="replace").strip() if handle is not None else ""
    try:
        return int(text)
    except ValueError:
        raise DatasetLayoutError(f"{path}: key {key!r} has a .cls member {text!r} that is not an integer") from None


def _scan_members(path: Path) -> tuple[dict[str, tuple[int, int]], dict[str, int], list[str]]:
    """Image locators and classes by key, and the keys in member order, of one shard."""
    images: dict[str, tuple[int, int]] = {}
    labels: dict[str, int] = {}
    order: dict[str, None] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                parsed = _split_member_name(member.name) if member.isfile() else None
                if parsed is None:
                    continue
                key, ext = parsed
                if ext in WDS_IMAGE_EXTENSIONS:
                    if key in images:
                        raise DatasetLayoutError(f"{path}: key {key!r} has more than one image member")
                    images[key] = (member.offset_data, member.size)
                elif ext == WDS_LABEL_EXTENSION:
                    labels[key] = _parse_cls(tar, member, path, key)
                else:
                    continue
                order.setdefault(key, None)
    except tarfile.TarError as exc:
        raise DatasetLayoutError(f"{path} is not a readable uncompressed tar shard ({exc})") from exc
    return images, labels, list(order)


def _index_shard(path: Path, task: TaskSpec) -> list[tuple[str, tuple[int, int], int]]:
    """``(key, (data offset, size) of the image member, class)`` per key of one shard, in member order."""
    images, labels, order = _scan_members(path)
    out = []
    for key in order:
        if key not in images or key not in labels:
            lacking = f"image member (.{'/.'.join(WDS_IMAGE_EXTENSIONS)})" if key not in images else ".cls label member"
            raise _wds_missing(task, path.parents[2], f"shard {path} key {key!r} lacks its {lacking}")
        out.append((key, images[key], labels[key]))
    return out


def read_wds_split(task: TaskSpec, root: str | Path, split: str) -> SourceSplit:
    """All samples of the wds mirror's ``split`` in shard then member order; records are ``{"cls": int}``."""
    if split not in WDS_SPLITS:
        raise UserError(f"a wds mirror has the splits 'train' and 'test', not {split!r}")
    shards = wds_shards(task, root, split)
    binary = task.source.name == DSPRITES_SOURCE
    samples: list[VtabSample] = []
    records: list[dict] = []
    for path in shards:
        for _key, locator, cls in _index_shard(path, task):
            samples.append(VtabSample(path, make_sample_id(split, len(samples)), "tar", locator, binary))
            records.append({"cls": cls})
    name = mirror_name(task)
    return SourceSplit(name, NAME, split, tuple(samples), tuple(records), file_entries(shards), name)


def read_classnames(task: TaskSpec, root: str | Path) -> list[str]:
    """``<root>/<mirror>/classnames.txt``, one class name a line (CLIP_benchmark's labels; dSprites 32/40)."""
    root = Path(root)
    path = root / mirror_name(task) / "classnames.txt"
    if not path.is_file():
        raise _wds_missing(task, root, f"no {path}")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _wds_dsprites_label(record: Mapping[str, Any], n_raw: int, num_classes: int) -> int:
    """CLIP_benchmark's raw dSprites latent ``cls`` binned into the task's classes."""
    return dsprites_label(record["cls"], n_raw, num_classes)


def _wds_native_label(record: Mapping[str, Any], num_classes: int) -> int:
    """CLIP_benchmark's ``cls``, range-checked."""
    return native_label(record["cls"], num_classes)


class WdsLayout:
    """Layout ``wds``: one mirror per task, VTAB train and test, a carved stratified val."""

    name = NAME
    uses_val_seed = True

    def unsupported(self, task: TaskSpec) -> str | None:
        """None: CLIP_benchmark mirrors every VTAB task."""
        return None

    def expected(self, task: TaskSpec, root: Path) -> list[str]:
        """The train and test shards and ``classnames.txt`` of the task's mirror."""
        base = Path(root) / mirror_name(task)
        return [str(base / "train" / "*.tar"), str(base / "test" / "*.tar"), str(base / "classnames.txt")]

    def missing(self, task: TaskSpec, root: Path) -> list[str]:
        """The entries of ``expected`` that are not on disk."""
        base = Path(root) / mirror_name(task)
        checks = [
            any((base / "train").glob("*.tar")),
            any((base / "test").glob("*.tar")),
            (base / "classnames.txt").is_file(),
        ]
        return [w for w, ok in zip(self.expected(task, root), checks, strict=True) if not ok]

    def base_dir(self, task: TaskSpec, root: Path) -> Path:
        """``<root>/<mirror>``."""
        return Path(root) / mirror_name(task)

    def source_name(self, task: TaskSpec) -> str:
        """The mirror name (each task's mirror is its own image set)."""
        return mirror_name(task)

    def split_names(self, task: TaskSpec) -> tuple[str, ...]:
        """("train", "test"): a mirror has no val."""
        return WDS_SPLITS

    def read_split(self, task: TaskSpec, root: Path, split: str) -> SourceSplit:
        """``read_wds_split`` of the task's mirror."""
        return read_wds_split(task, root, split)

    def expected_count(self, task: TaskSpec, split: str) -> int:
        """VTAB's train size for ``train`` (train without val), VTAB's test size otherwise."""
        return task.expected_sizes["train" if split == "train" else "test"]

    def labels(self, task: TaskSpec, split: SourceSplit) -> np.ndarray:
        """CLIP_benchmark's ``cls``: dSprites' raw 32/40 latents binned by ``dsprites_label``, others range-checked."""
        if task.source.name == DSPRITES_SOURCE:
            n_raw = DSPRITES_RAW_CLASSES[task.label_rule.fields[0]]
            rule = functools.partial(_wds_dsprites_label, n_raw=n_raw, num_classes=task.num_classes)
        else:
            rule = functools.partial(_wds_native_label, num_classes=task.num_classes)
        return label_rows(task, split, mirror_name(task), rule)

    def split_rows(
        self,
        task: TaskSpec,
        splits: Mapping[str, SourceSplit],
        protocol: Protocol = "full",
        seed: int = 0,
        labels: np.ndarray | None = None,
    ) -> dict[str, dict[str, np.ndarray]]:
        """Train / val carved from the mirror's train by ``carve_val`` with ``seed``, test = all of its test.

        ``labels`` default to ``labels`` of the train split; trainval = train ∪ val; VTAB-1k takes the first 800 of
        train and the first 200 of val (§3.4).
        """
        check_protocol(protocol)
        return carved_split_rows(task, NAME, splits, protocol, seed, labels, self.labels)

    def download_hint(self, task: TaskSpec) -> str:
        """Download the task's Hugging Face mirror, and check its counts."""
        where = (
            f"Download the Hugging Face dataset clip-benchmark/{mirror_name(task)} (WebDataset tars train/*.tar and "
            "test/*.tar plus classnames.txt; train = VTAB train without val, test = VTAB test; verify the counts "
            "after download)."
        )
        return with_source_notes(where, task)


LAYOUT: VtabLayout = WdsLayout()
