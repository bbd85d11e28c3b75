"""Which caches each analysis reads: its input contract, one entry per analysis (docs/cache.md, "Per-dataset rules").

A contract says which dataset kinds an analysis takes, whether it reads the invariance sweep caches, why a cache of
such a kind may still not fit (``fit``), which side files it needs (``side``), and how its params section is
filled from the caches and the command-line options (``configure``). ``analyses.registry`` attaches one to every
analysis; ``analyses.foreign`` plans ``beyond-imagenet analyze-cache`` from them (docs/architecture.md, principle 1).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from beyond_imagenet.analyses.contracts import RULES_DOC, check_imagenet_x_join, imagenet_x_join, sweep_variant_of
from beyond_imagenet.base.errors import CacheFormatError, UserError
from beyond_imagenet.data.imagenet_x import check_val_ids, load_annotations
from beyond_imagenet.data.pug import CLASS_MAP_FILE, PUG_FACTORS
from beyond_imagenet.data.real_labels import load_real_labels
from beyond_imagenet.inference.cache import InferenceCache, label_space_logits
from beyond_imagenet.metrics.robustness import ID_DATASET, TABLE2_SHIFTS


@dataclass(frozen=True)
class CacheEntry:
    """A given cache as the planner sees it: the cache, its registered dataset kind, variant and sweep point."""

    cache: InferenceCache
    kind: str | None
    variant: str | None
    sweep: dict | None

    @property
    def dataset(self) -> str:
        """``dataset.name`` of the cache."""
        return self.cache.dataset


@dataclass
class ToolOptions:
    """What the command line adds to the defaults of base/config.py; side files are read once, when needed."""

    n_bins: int = 15
    imagenet_x_annotations: str | None = None  # default: the annotations in the imagenet-x package
    allow_partial_imagenet_x: bool = False
    real_labels: str | None = None  # default: the ReaL labels in the imagenet-x package
    pug_class_map: str | None = None  # default: <dataset.root>/class_to_imagenet_idx.json
    roots: dict[str, str] = field(default_factory=dict)  # dataset name -> folder its side files are read from

    @functools.cached_property
    def annotations(self) -> pd.DataFrame | str:
        """The ImageNet-X annotations, or why they cannot be read."""
        try:
            return load_annotations(directory=self.imagenet_x_annotations)
        except UserError as err:
            return str(err)

    @functools.cached_property
    def real(self) -> dict[str, list[int]] | str:
        """The ReaL label lists by val file name, or why they cannot be read."""
        try:
            return load_real_labels(self.real_labels)
        except UserError as err:
            return str(err)


Fit = Callable[[CacheEntry, ToolOptions], str | None]
Side = Callable[[Sequence[CacheEntry], ToolOptions], str | None]
Configure = Callable[[Any, list[str], Sequence[CacheEntry], ToolOptions], Any]
Check = Callable[[Any, Sequence[CacheEntry], ToolOptions], list[str]]  # report lines; raises UserError


def _fits(entry: CacheEntry, options: ToolOptions) -> str | None:
    return None


def _no_side(entries: Sequence[CacheEntry], options: ToolOptions) -> str | None:
    return None


def _no_check(section: Any, entries: Sequence[CacheEntry], options: ToolOptions) -> list[str]:
    return []


def _name_datasets(section: Any, names: list[str], entries: Sequence[CacheEntry], options: ToolOptions) -> Any:
    """The section's ``datasets`` (a list) or ``dataset`` (one) set to ``names``."""
    if hasattr(section, "datasets"):
        return dataclasses.replace(section, datasets=list(names))
    return dataclasses.replace(section, dataset=names[0])


@dataclass(frozen=True)
class InputContract:
    """The caches one analysis reads, and how its params section is filled from them."""

    takes: str  # what it reads, in words: "a cue-conflict cache"
    rule: str  # how a cache qualifies: "dataset.kind or dataset.name 'cue_conflict'"
    kinds: tuple[str, ...] | None = None  # the dataset kinds it reads; None: any dataset
    sweep: bool = False  # reads the invariance sweep caches (config.sweep) instead of the plain ones
    together: bool = False  # one run over all its datasets (Table 2), else one run per dataset
    fit: Fit = _fits  # why a cache of a fitting kind cannot be used; None when it can
    side: Side = _no_side  # why the side files it needs are missing (then it is skipped)
    configure: Configure = _name_datasets
    check: Check = _no_check  # up-front checks across its caches; raises UserError


def restrictable(entry: CacheEntry, options: ToolOptions) -> str | None:
    """Single-label, and its logits restrict to the dataset's classes (docs/cache.md ``imagenet_columns``)."""
    if entry.cache.label_lists is not None:
        return "it is multi-label (label_lists.json); only robustness scores it, against every valid label"
    try:
        label_space_logits(entry.cache)
    except CacheFormatError as err:
        return str(err).removeprefix(f"{entry.cache.path}: ")
    return None


def imagenet_logits(entry: CacheEntry, options: ToolOptions) -> str | None:
    """The 1000 ImageNet-1k logits (``output_space.kind imagenet1k``)."""
    output = entry.cache.meta.get("output_space") or {"kind": "imagenet1k"}
    if output.get("kind") != "imagenet1k" or entry.cache.logits.shape[1] != 1000:
        return f"it needs the 1000 ImageNet-1k logits (output_space.kind imagenet1k), has {entry.cache.logits.shape[1]}"
    return None


def _val_names(entry: CacheEntry) -> str | None:
    try:
        check_val_ids(entry.cache.sample_ids, "its sample ids")
    except UserError as err:
        return str(err)
    return None


def _plain_imagenet(entry: CacheEntry, options: ToolOptions) -> str | None:
    if entry.variant:
        return f"it is variant {entry.variant!r}; this analysis reads the plain dataset"
    return imagenet_logits(entry, options)


def _imagenet_x_fit(entry: CacheEntry, options: ToolOptions) -> str | None:
    return _plain_imagenet(entry, options) or _val_names(entry)


def _imagenet_x_side(entries: Sequence[CacheEntry], options: ToolOptions) -> str | None:
    annotations = options.annotations
    return annotations if isinstance(annotations, str) else None


def _calibration_configure(section: Any, names: list[str], entries: Sequence[CacheEntry], options: ToolOptions):
    return dataclasses.replace(_name_datasets(section, names, entries, options), n_bins=options.n_bins)


def _imagenet_x_configure(section: Any, names: list[str], entries: Sequence[CacheEntry], options: ToolOptions):
    section = _name_datasets(section, names, entries, options)
    return dataclasses.replace(
        section, annotations_dir=options.imagenet_x_annotations, allow_partial=options.allow_partial_imagenet_x
    )


def _imagenet_x_check(section: Any, entries: Sequence[CacheEntry], options: ToolOptions) -> list[str]:
    """Each cache's join with the annotations; a partial or mislabelled one is refused."""
    lines = []
    for entry in entries:
        join = imagenet_x_join(entry.cache, options.annotations)
        check_imagenet_x_join(entry.cache, join, section.allow_partial)
        lines.append(f"imagenet_x: {entry.cache.path}: {join.describe()}")
    return lines


def _real_coverage(entry: CacheEntry, options: ToolOptions) -> str | None:
    """Every id has a ReaL entry and every labelled val image a prediction (robustness scores ReaL on val)."""
    real = options.real
    if isinstance(real, str):
        return f"ImageNet val is also scored on its ReaL labels, which cannot be read: {real}"
    missing = sum(1 for s in entry.cache.sample_ids if s not in real)
    ids = set(entry.cache.sample_ids)
    unpredicted = sum(1 for name, labels in real.items() if labels and name not in ids)
    if missing or unpredicted:
        return (
            f"ReaL (scored on ImageNet val) needs the full val set: {missing:,} sample id(s) have no ReaL entry and "
            f"{unpredicted:,} labelled image(s) no prediction"
        )
    return None


def _hard_fit(entry: CacheEntry, options: ToolOptions) -> str | None:
    return None if entry.cache.label_lists is not None else "ImageNet-Hard is scored multi-label: label_lists.json"


def _imagenet_c_fit(entry: CacheEntry, options: ToolOptions) -> str | None:
    if not entry.variant:
        return "ImageNet-C caches need dataset.variant '<corruption>/<severity>'"
    return restrictable(entry, options)


def _val_fit(entry: CacheEntry, options: ToolOptions) -> str | None:
    return _plain_imagenet(entry, options) or _val_names(entry) or _real_coverage(entry, options)


# robustness: the fit of each Table 2 set with rules of its own (the others: ``restrictable``)
ROBUSTNESS_FITS: dict[str, Fit] = {"imagenet_hard": _hard_fit, "imagenet_c": _imagenet_c_fit, ID_DATASET: _val_fit}


def _robustness_fit(entry: CacheEntry, options: ToolOptions) -> str | None:
    return ROBUSTNESS_FITS.get(entry.kind, restrictable)(entry, options)


def _robustness_configure(section: Any, names: list[str], entries: Sequence[CacheEntry], options: ToolOptions):
    """Its datasets and ReaL labels; no effective robustness without ImageNet val (the baseline's x axis)."""
    section = dataclasses.replace(section, datasets=list(names), real_labels=options.real_labels)
    if not any(e.kind == ID_DATASET for e in entries):
        section = dataclasses.replace(section, baseline="none")
    return section


def _pug_fit(entry: CacheEntry, options: ToolOptions) -> str | None:
    if entry.variant not in PUG_FACTORS:
        return f"dataset.variant must be one of the 10 PUG factors {', '.join(PUG_FACTORS)}, got {entry.variant!r}"
    return imagenet_logits(entry, options)


def pug_class_map(entries: Sequence[CacheEntry], options: ToolOptions) -> Path | None:
    """The PUG class map: ``--pug-class-map``, else ``<dataset.root>/class_to_imagenet_idx.json``; None if neither."""
    if options.pug_class_map:
        return Path(options.pug_class_map)
    roots = {(e.cache.meta["dataset"].get("root") or "") for e in entries}
    found = [Path(r) / CLASS_MAP_FILE for r in sorted(roots) if r and (Path(r) / CLASS_MAP_FILE).is_file()]
    return found[0] if found else None


def _pug_side(entries: Sequence[CacheEntry], options: ToolOptions) -> str | None:
    path = pug_class_map(entries, options)
    if path is None:
        return f"PUG needs its {CLASS_MAP_FILE} (github.com/facebookresearch/PUG): pass --pug-class-map FILE"
    if path.name != CLASS_MAP_FILE or not path.is_file():
        return f"--pug-class-map must be an existing file named {CLASS_MAP_FILE}, got {path}"
    return None


def _pug_configure(section: Any, names: list[str], entries: Sequence[CacheEntry], options: ToolOptions) -> Any:
    options.roots[names[0]] = str(pug_class_map(entries, options).parent)
    return _name_datasets(section, names, entries, options)


def _pug_check(section: Any, entries: Sequence[CacheEntry], options: ToolOptions) -> list[str]:
    """Every model has all 10 factor subsets (the average needs them)."""
    for model in dict.fromkeys(e.cache.model_id for e in entries):
        missing = [f for f in PUG_FACTORS if f not in {e.variant for e in entries if e.cache.model_id == model}]
        if missing:
            raise UserError(
                f"pug: model {model!r} has no cache of the PUG factor subset(s) {', '.join(missing)} on "
                f"{section.dataset!r}. Rule: one cache per factor (dataset.variant = the factor) for all 10. Fix: "
                f"give those caches, or leave pug out (--analyses ...). {RULES_DOC}"
            )
    return []


def _sweep_values(entries: Sequence[CacheEntry], kind: str) -> list[float]:
    return sorted({float(e.sweep["value"]) for e in entries if e.sweep.get("kind") == kind})


def _invariance_configure(section: Any, names: list[str], entries: Sequence[CacheEntry], options: ToolOptions):
    """Dataset, the sweep points found and the subset (``per_class<k>/...`` variants)."""
    prefix = (sweep_variant_of(entries[0].cache.meta) or "").split("/")[:-2]
    per_class = int(prefix[0].removeprefix("per_class")) if prefix and prefix[0].startswith("per_class") else None
    values = {kind: _sweep_values(entries, kind) for kind in ("scale", "shift", "resolution")}
    return dataclasses.replace(
        section,
        dataset=names[0],
        scales=values["scale"],
        shifts=[int(v) for v in values["shift"]],
        resolutions=[int(v) for v in values["resolution"]],
        images_per_class=per_class,
    )


def _invariance_check(section: Any, entries: Sequence[CacheEntry], options: ToolOptions) -> list[str]:
    """The three sweeps are there, each with its reference point (scale 1, shift 0)."""
    points = (section.scales, section.shifts, section.resolutions)
    if not all(points) or 1.0 not in section.scales or 0 not in section.shifts:
        raise UserError(
            f"invariance on {section.dataset!r}: the sweep caches must hold all three sweeps (scale, shift, "
            "resolution), with the reference points scale 1 and shift 0 and the model's input size "
            f"(meta.json model.input_size, default 224); found scales {section.scales}, shifts {section.shifts}, "
            f"resolutions {section.resolutions}. Fix: give the missing sweep caches. {RULES_DOC}"
        )
    return []


ROBUSTNESS_KINDS = (ID_DATASET, *[s for s in TABLE2_SHIFTS if s != "imagenet_real"])
ANY_DATASET = "any dataset whose logits restrict to its label space"

ACCURACY_INPUTS = InputContract("a single-label cache", ANY_DATASET, fit=restrictable)
CALIBRATION_INPUTS = InputContract(
    "a single-label cache", ANY_DATASET, fit=restrictable, configure=_calibration_configure
)
ROBUSTNESS_INPUTS = InputContract(
    "cache of a robustness set",
    f"dataset.kind or dataset.name one of {', '.join(ROBUSTNESS_KINDS)}",
    kinds=ROBUSTNESS_KINDS,
    together=True,
    fit=_robustness_fit,
    configure=_robustness_configure,
)
IMAGENET_X_INPUTS = InputContract(
    "ImageNet val cache",
    "dataset.kind or dataset.name 'imagenet_val', sample ids the val file names",
    kinds=(ID_DATASET,),
    fit=_imagenet_x_fit,
    side=_imagenet_x_side,
    configure=_imagenet_x_configure,
    check=_imagenet_x_check,
)
PUG_INPUTS = InputContract(
    "PUG-ImageNet cache",
    "dataset.kind or dataset.name 'pug_imagenet', dataset.variant the factor subset",
    kinds=("pug_imagenet",),
    fit=_pug_fit,
    side=_pug_side,
    configure=_pug_configure,
    check=_pug_check,
)
SHAPE_BIAS_INPUTS = InputContract(
    "cue-conflict cache",
    "dataset.kind or dataset.name must be 'cue_conflict'",
    kinds=("cue_conflict",),
    fit=_plain_imagenet,
)
INVARIANCE_INPUTS = InputContract(
    "invariance sweep cache",
    'meta.json config.sweep {"kind": "scale" | "shift" | "resolution", "value": ...}',
    sweep=True,
    fit=restrictable,
    configure=_invariance_configure,
    check=_invariance_check,
)
