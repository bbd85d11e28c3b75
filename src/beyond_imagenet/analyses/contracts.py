"""The per-dataset rules a cache must meet before an analysis reads it (docs/cache.md, "Per-dataset rules").

Cheap checks on every loaded cache (``check_cache``: distinct sample ids, targets inside the label space, ImageNet
label lists, and the rules of its dataset kind in :data:`KIND_RULES`), and the ImageNet-X join report. They catch
what would otherwise give wrong numbers silently: a cue-conflict cache whose targets follow another category order
scores the shape class of the wrong images. Row counts across the files are checked when the cache is loaded
(``inference.cache.load_cache``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from beyond_imagenet.base.errors import CacheFormatError, UserError
from beyond_imagenet.data.cue_conflict import CATEGORIES
from beyond_imagenet.data.kinds import DATASET_KINDS
from beyond_imagenet.inference.cache import IDS_FILE, LABEL_LISTS_FILE, META_FILE, InferenceCache
from beyond_imagenet.inference.sweeps import SWEEP_KINDS, SweepPoint
from beyond_imagenet.models.spec import ModelSpec

RULES_DOC = 'docs/cache.md, "Per-dataset rules for a foreign cache"'
SHOWN = 3  # examples per problem
# <shape><i>-<texture><j>.png, optionally under its shape folder: "cat1-dog2.png" or "cat/cat1-dog2.png"
CUE_CONFLICT_ID = re.compile(r"^(?:(?P<folder>[a-z]+)/)?(?P<shape>[a-z]+)\d+-(?P<texture>[a-z]+)\d+\.png$")
CATEGORY_ORDER = ", ".join(f"{i}={c}" for i, c in enumerate(CATEGORIES))


def cache_kind(meta: dict) -> str | None:
    """The registered dataset kind of a cache: ``dataset.kind``, else ``dataset.name``; None for other datasets."""
    dataset = meta.get("dataset") or {}
    for candidate in (dataset.get("kind"), dataset.get("name")):
        if candidate in DATASET_KINDS:
            return candidate
    return None


def label_space_size(cache: InferenceCache) -> int | None:
    """How many classes the targets index: ``label_space.n_classes``, else what the spaces imply; None if unknown."""
    label = cache.meta.get("label_space") or {"kind": "imagenet1k"}
    output = cache.meta.get("output_space") or {"kind": "imagenet1k"}
    if isinstance(label.get("n_classes"), int):
        return label["n_classes"]
    if output.get("kind") == "label_space":
        return int(cache.logits.shape[1])
    if label.get("kind") == "imagenet1k":
        return 1000
    return len(label["imagenet_columns"]) if label.get("imagenet_columns") else None


def meta_problems(cache: InferenceCache) -> list[str]:
    """The keys every analysis reads: ``model.model_id`` and ``dataset.name`` (strings)."""
    meta = cache.meta
    missing = [
        key
        for key, value in (
            ("model.model_id", meta["model"].get("model_id")),
            ("dataset.name", meta["dataset"].get("name")),
        )
        if not isinstance(value, str) or not value
    ]
    if not missing:
        return []
    return [
        f"{cache.path / META_FILE} lacks {' and '.join(missing)}. Rule: every cache names its model and dataset "
        "(they key the records and the metric names). Fix: add them (docs/cache.md, meta.json)"
    ]


def duplicate_problems(cache: InferenceCache) -> list[str]:
    """Sample ids that occur more than once (each row must be a distinct image)."""
    counts = Counter(cache.sample_ids)
    repeated = [sample for sample, n in counts.items() if n > 1]
    if not repeated:
        return []
    rows = [i for i, sample in enumerate(cache.sample_ids) if sample == repeated[0]]
    return [
        f"{cache.path / IDS_FILE}: {len(repeated)} sample id(s) occur more than once (e.g. {repeated[0]!r} at rows "
        f"{rows[:SHOWN]}). Rule: one row per image, ids distinct. Fix: drop the repeated rows from every file, or "
        'use "<class>/<file name>" where file names repeat across class folders'
    ]


def target_problems(cache: InferenceCache) -> list[str]:
    """Targets outside ``0..n_classes-1`` of the cache's label space."""
    n_classes = label_space_size(cache)
    targets = cache.targets
    if n_classes is None or not targets.size:
        return []
    bad = np.flatnonzero((targets < 0) | (targets >= n_classes))
    if not bad.size:
        return []
    row = int(bad[0])
    return [
        f"{cache.path / 'targets.npy'}: {bad.size} target(s) lie outside the label space 0..{n_classes - 1} (e.g. "
        f"row {row}, {cache.sample_ids[row]!r}: {int(targets[row])}). Rule: targets.npy holds each image's index "
        f"in the dataset's label space of {n_classes} classes (label_space.n_classes). Fix: relabel those rows, or "
        "record the right n_classes in meta.json"
    ]


def label_list_problems(cache: InferenceCache) -> list[str]:
    """Multi-label rows that are not lists of ImageNet indices 0..999."""
    if cache.label_lists is None:
        return []
    for row, labels in enumerate(cache.label_lists):
        valid = isinstance(labels, list) and all(isinstance(k, int) and 0 <= k < 1000 for k in labels)
        if not valid:
            return [
                f"{cache.path / LABEL_LISTS_FILE}: row {row} ({cache.sample_ids[row]!r}) is {labels!r}. Rule: each "
                "row is a list of the valid ImageNet indices 0..999 of its image. Fix: rewrite that row"
            ]
    return []


def sweep_variant_of(meta: dict) -> str | None:
    """The variant a sweep cache is looked up by: its subset prefix, then ``<kind>/<value>`` of ``config.sweep``."""
    sweep = (meta.get("config") or {}).get("sweep")
    variant = (meta.get("dataset") or {}).get("variant") or ""
    if not sweep:
        return variant or None
    prefix = "/".join(variant.split("/")[:-2])
    label = SweepPoint(sweep["kind"], float(sweep["value"])).label
    return f"{prefix}/{label}" if prefix else label


def sweep_problems(cache: InferenceCache) -> list[str]:
    """``config.sweep`` is ``{"kind": scale | shift | resolution, "value": number}`` (docs/protocol.md §9)."""
    sweep = (cache.meta.get("config") or {}).get("sweep")
    if sweep is None:
        return []
    value = sweep.get("value") if isinstance(sweep, dict) else None
    if isinstance(sweep, dict) and sweep.get("kind") in SWEEP_KINDS and isinstance(value, (int, float)):
        return []
    return [
        f"{cache.path / META_FILE}: config.sweep is {sweep!r}. Rule: an invariance sweep cache records "
        f'{{"kind": {" | ".join(SWEEP_KINDS)}, "value": a number}}. Fix: write that, or drop config.sweep from a '
        "cache that is no sweep point"
    ]


def _cue_conflict_mismatches(cache: InferenceCache) -> tuple[list[int], list[int]]:
    """Rows whose sample id is no cue-conflict name, and rows whose target is not the name's shape category."""
    bad_names, mismatched = [], []
    for row, (sample, target) in enumerate(zip(cache.sample_ids, cache.targets.tolist(), strict=True)):
        match = CUE_CONFLICT_ID.match(sample)
        names = [match.group("shape"), match.group("texture")] if match else []
        folder = match.group("folder") if match else None
        if not match or any(n not in CATEGORIES for n in names) or folder not in (None, names[0]):
            bad_names.append(row)
        elif not 0 <= target < len(CATEGORIES) or CATEGORIES[target] != names[0]:
            mismatched.append(row)
    return bad_names, mismatched


def cue_conflict_problems(cache: InferenceCache) -> list[str]:
    """Cue-conflict rules: ids ``[<shape>/]<shape><i>-<texture><j>.png``; target = the shape's sorted index (§6)."""
    bad_names, mismatched = _cue_conflict_mismatches(cache)
    problems = []
    if bad_names:
        shown = [cache.sample_ids[r] for r in bad_names[:SHOWN]]
        problems.append(
            f"{cache.path / IDS_FILE}: {len(bad_names)} sample id(s) are not cue-conflict file names (e.g. row "
            f"{bad_names[0]}: {shown[0]!r}). Rule: each id is '<shape><i>-<texture><j>.png' (or "
            "'<shape>/<shape><i>-<texture><j>.png') with shape and texture among the 16 categories. Fix: write the "
            "original file names of the stimuli (docs/protocol.md §6)"
        )
    if mismatched:
        row = mismatched[0]
        target = int(cache.targets[row])
        found = CATEGORIES[target] if 0 <= target < len(CATEGORIES) else "none"
        problems.append(
            f"{cache.path / 'targets.npy'}: {len(mismatched)} of {len(cache)} rows disagree with the shape category "
            f"in their file name (e.g. row {row}: {cache.sample_ids[row]!r} has target {target} = {found!r}). Rule: "
            f"the target is the shape category's index in the sorted order {CATEGORY_ORDER}. Fix: rewrite "
            "targets.npy with that index of each file name's shape (the letters before its first digits)"
        )
    return problems


# dataset kind -> the extra rules its caches must meet (the generic ones apply to every cache)
KIND_RULES: dict[str, Callable[[InferenceCache], list[str]]] = {"cue_conflict": cue_conflict_problems}
GENERIC_RULES: tuple[Callable[[InferenceCache], list[str]], ...] = (
    sweep_problems,
    duplicate_problems,
    target_problems,
    label_list_problems,
)


def contract_problems(cache: InferenceCache, kind: str | None) -> list[str]:
    """Every rule ``cache`` breaks: the generic ones, then those of its dataset ``kind``; empty when it meets all."""
    missing_keys = meta_problems(cache)
    if missing_keys:  # the other rules name the model and dataset
        return missing_keys
    rules = (*GENERIC_RULES, *([KIND_RULES[kind]] if kind in KIND_RULES else []))
    return [problem for rule in rules for problem in rule(cache)]


def check_cache(cache: InferenceCache, kind: str | None) -> None:
    """Raise ``CacheFormatError`` listing every broken rule (each naming the file, the rule and the fix)."""
    problems = contract_problems(cache, kind)
    if problems:
        raise CacheFormatError(f"cache {cache.path} breaks the cache rules ({RULES_DOC}): " + "; ".join(problems))


@dataclass(frozen=True)
class ImageNetXJoin:
    """How a cache's sample ids join the ImageNet-X annotations (file names, prototypes removed; §3)."""

    n_ids: int  # rows of the cache
    n_annotated: int  # annotated images
    n_found: int  # cache ids that are annotated (= annotated images with a prediction)
    mislabelled: list[tuple[int, str, int, int]] = field(default_factory=list)  # (row, id, target, annotated class)

    @property
    def id_fraction(self) -> float:
        """Fraction of the cache's sample ids found in the annotations (≈ 0.92 for the full val set)."""
        return self.n_found / self.n_ids if self.n_ids else 0.0

    @property
    def coverage(self) -> float:
        """Fraction of the annotated images the cache predicts (must be 1 unless partial runs are allowed)."""
        return self.n_found / self.n_annotated if self.n_annotated else 0.0

    def describe(self) -> str:
        """One line: both fractions."""
        return (
            f"{self.n_found:,} of {self.n_ids:,} sample ids ({100 * self.id_fraction:.1f}%) are in the ImageNet-X "
            f"annotations; they cover {self.n_found:,} of {self.n_annotated:,} annotated images "
            f"({100 * self.coverage:.1f}%)"
        )


def imagenet_targets(cache: InferenceCache) -> list[int] | None:
    """The cache's targets as ImageNet-1k indices: mapped through ``imagenet_columns`` for a subset; None if unknown.

    A custom label space without ImageNet columns cannot be compared with ImageNet-X's classes (its targets are
    ignored there, docs/cache.md).
    """
    label = cache.meta.get("label_space") or {"kind": "imagenet1k"}
    targets = cache.targets.tolist()
    if label.get("kind") == "imagenet1k":
        return targets
    columns = label.get("imagenet_columns")
    if not columns:
        return None
    return [int(columns[t]) if 0 <= t < len(columns) else -1 for t in targets]


def imagenet_x_join(cache: InferenceCache, annotations: pd.DataFrame) -> ImageNetXJoin:
    """Join ``cache``'s sample ids with the annotations; rows whose target differs from the annotated class."""
    classes = dict(zip(annotations["file_name"], annotations["class"].astype(int), strict=True))
    targets = imagenet_targets(cache)
    found, mislabelled = 0, []
    for row, sample in enumerate(cache.sample_ids):
        if sample in classes:
            found += 1
            target = None if targets is None else targets[row]
            if target is not None and target != classes[sample]:
                mislabelled.append((row, sample, target, classes[sample]))
    return ImageNetXJoin(len(cache), len(annotations), found, mislabelled)


def check_imagenet_x_join(cache: InferenceCache, join: ImageNetXJoin, allow_partial: bool) -> None:
    """Refuse a join that misses annotated images (unless ``allow_partial``) or disagrees on labels."""
    where = f"ImageNet-X on {cache.path / IDS_FILE}: {join.describe()}"
    if join.n_found == 0:
        raise UserError(
            f"{where}. Rule: sample ids are ImageNet val base names like ILSVRC2012_val_00000001.JPEG. Fix: write "
            "the original file names, not paths or indices"
        )
    if join.coverage < 1.0 and not allow_partial:
        raise UserError(
            f"{where}. Rule: ImageNet-X needs a prediction for every annotated image (the full val set). Fix: give "
            "the cache of all 50,000 val images, or accept a partial score that is not comparable to the paper: "
            "analyses.imagenet_x.allow_partial: true (analyze-cache: --allow-partial-imagenet-x)"
        )
    if join.mislabelled:
        row, sample, target, annotated = join.mislabelled[0]
        raise UserError(
            f"{where}; but {len(join.mislabelled)} target(s) differ from the annotated class (e.g. row {row}, "
            f"{sample!r}: target {target}, ImageNet-X class {annotated}). Rule: ImageNet-X scores the argmax of the "
            "1000 logits against its own annotated class, so labels and logit columns must be in the standard "
            "ImageNet index order (sorted wnids). Fix: write targets.npy and the logit columns in that order"
        )


def foreign_model_spec(model_id: str, meta: dict | None) -> ModelSpec:
    """A stand-in spec for a model outside the catalogue: its caches' ``model`` entry, ``input_size`` default 224."""
    model = (meta or {}).get("model") or {}
    family = model.get("family") if model.get("family") in ("vit", "convnet") else "other"
    paradigm = "clip" if model.get("paradigm") == "clip" else "supervised"
    return ModelSpec(
        id=model_id,
        source="foreign",
        architecture=model.get("architecture", "unknown"),
        weights=None,
        family=family,
        paradigm=paradigm,
        description="a model whose caches another tool wrote (docs/cache.md)",
        weights_id=str(model.get("weights_id", "unknown")),
        input_size=int(model.get("input_size", 224)),
    )
