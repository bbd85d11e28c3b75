"""ImageNet-X per-factor accuracies and error ratios (PROTOCOL §3, paper Fig. 2).

Reimplements the metric of the ``imagenet-x==0.0.7`` package (facebookresearch/imagenetx, CC BY-NC 4.0) over
our own predictions; only the package's annotation files are read, its modules are never imported here.
Default = package behaviour: top-factor val file, prototypes removed (46,110 images), ``average`` = accuracy on
the joined annotated images. ``denominator="paper"`` uses the full-val accuracy instead (§3 "Discrepancy").
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from beyond_imagenet.errors import NonFiniteLogitsError, UserError

FACTORS: tuple[str, ...] = (
    "pose",
    "background",
    "pattern",
    "color",
    "smaller",
    "shape",
    "partial_view",
    "subcategory",
    "texture",
    "larger",
    "darker",
    "object_blocking",
    "person_blocking",
    "style",
    "brighter",
    "multiple_objects",
)
N_IMAGENET_CLASSES = 1000
N_VAL_IMAGES = 50_000
VAL_NAME = re.compile(r"ILSVRC2012_val_(\d{8})\.JPEG")
PROTOTYPES_FILE = "prototypical_paths.csv"
VAL_LABELS_FILE = "filename_label.csv"
INSTALL_HINT = (
    "pip install imagenet-x==0.0.7 (its annotations are licensed CC BY-NC 4.0: non-commercial use only, PROTOCOL §13)"
)
Denominator = Literal["annotated", "paper"]


def annotations_dir() -> Path:
    """``imagenet_x/annotations`` of the installed package, located without importing it (§3 Inputs)."""
    spec = importlib.util.find_spec("imagenet_x")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise UserError(
            f"the imagenet-x package is not installed; ImageNet-X and ReaL need its annotations: {INSTALL_HINT}"
        )
    for location in locations:
        directory = Path(location) / "annotations"
        if directory.is_dir():
            return directory
    raise UserError(f"the imagenet-x package at {locations[0]} has no annotations/ folder; reinstall: {INSTALL_HINT}")


def _annotation_file(directory: Path, name: str) -> Path:
    path = directory / name
    if not path.is_file():
        raise UserError(
            f"ImageNet-X annotation file {path} is missing. Point directory= at imagenet_x/annotations of "
            f"imagenet-x 0.0.7, or {INSTALL_HINT}."
        )
    return path


def _is_val_name(name: object) -> bool:
    match = VAL_NAME.fullmatch(name) if isinstance(name, str) else None
    return match is not None and 1 <= int(match.group(1)) <= N_VAL_IMAGES


def check_val_ids(sample_ids: Sequence[str], where: str) -> None:
    """Require unique ImageNet val base names ``ILSVRC2012_val_XXXXXXXX.JPEG`` (§2.1: keep original names)."""
    bad = [s for s in sample_ids if not _is_val_name(s)]
    if bad:
        raise UserError(
            f"{where}: {len(bad)} sample id(s) are not ImageNet val file names like ILSVRC2012_val_00000001.JPEG "
            f"(e.g. {', '.join(repr(b) for b in bad[:3])}). Run inference on the IN val folder that keeps the "
            "original file names (PROTOCOL §2.1), with base names, not paths, as sample ids."
        )
    counts = pd.Series(list(sample_ids)).value_counts()
    duplicated = counts[counts > 1].index.tolist()
    if duplicated:
        raise UserError(f"{where}: {len(duplicated)} sample id(s) occur more than once (e.g. {duplicated[:3]})")


def load_annotations(
    which_factor: Literal["top", "multi"] = "top",
    partition: Literal["val", "train"] = "val",
    filter_prototypes: bool = True,
    directory: str | Path | None = None,
) -> pd.DataFrame:
    """``file_name``, ``class`` and the 16 factor columns; prototypes dropped by exact file name (§3)."""
    if which_factor not in ("top", "multi") or partition not in ("val", "train"):
        raise UserError(
            f"unknown ImageNet-X annotation set which_factor={which_factor!r}, partition={partition!r}; "
            "use which_factor 'top' or 'multi' and partition 'val' or 'train'"
        )
    directory = annotations_dir() if directory is None else Path(directory)
    path = _annotation_file(directory, f"imagenet_x_{partition}_{which_factor}_factor.jsonl")
    columns = ["file_name", "class", *FACTORS]
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    frame = pd.DataFrame.from_records(rows)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(
            f"ImageNet-X annotation file {path} lacks columns {missing}; it is not an imagenet-x 0.0.7 file"
        )
    frame = frame[columns].astype({c: np.int64 for c in columns[1:]})
    if not frame["file_name"].is_unique:
        raise UserError(f"ImageNet-X annotation file {path} annotates some images more than once")
    if filter_prototypes:
        prototypes = pd.read_csv(_annotation_file(directory, PROTOTYPES_FILE))
        frame = frame[~frame["file_name"].isin(prototypes["file_name"])]
    return frame.reset_index(drop=True)


def load_val_labels(directory: str | Path | None = None) -> pd.Series:
    """Standard IN label of each of the 50,000 val images (``filename_label.csv``), indexed by file name."""
    directory = annotations_dir() if directory is None else Path(directory)
    frame = pd.read_csv(_annotation_file(directory, VAL_LABELS_FILE))
    return frame.set_index("file_name")["label"].astype(np.int64)


def predictions_from_logits(logits: np.ndarray, sample_ids: Sequence[str], chunk: int = 4096) -> pd.DataFrame:
    """Per-image argmax class and max softmax probability over the 1000 IN logits (§3 Steps 2).

    The probability is ``1 / sum(exp(z - max z))`` in float64, chunked so 50k x 1000 logits stay cheap.
    """
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] != N_IMAGENET_CLASSES:
        raise UserError(
            f"ImageNet-X needs logits of shape [N, {N_IMAGENET_CLASSES}] over the ImageNet-1k classes, got "
            f"{list(logits.shape)}; use a cache with output_space imagenet1k (docs/cache.md)"
        )
    if len(sample_ids) != logits.shape[0]:
        raise UserError(f"{logits.shape[0]} logit rows but {len(sample_ids)} sample ids; they must align row by row")
    check_val_ids(sample_ids, "ImageNet-X predictions")
    predicted = np.empty(logits.shape[0], dtype=np.int64)
    probability = np.empty(logits.shape[0], dtype=np.float64)
    for start in range(0, logits.shape[0], chunk):
        block = logits[start : start + chunk].astype(np.float64)
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            shown = [sample_ids[start + i] for i in np.flatnonzero(~finite)[:5]]
            raise NonFiniteLogitsError(
                f"NaN or infinite logits for {shown}; they cannot be predictions. Recompute the cache (fp32)."
            )
        top = block.argmax(axis=1)
        shifted = block - block[np.arange(len(block)), top][:, None]
        predicted[start : start + chunk] = top
        probability[start : start + chunk] = 1.0 / np.exp(shifted).sum(axis=1)
    return pd.DataFrame(
        {"file_name": list(sample_ids), "predicted_class": predicted, "predicted_probability": probability}
    )


def _check_predictions(predictions: pd.DataFrame, val_names: bool) -> None:
    missing = [c for c in ("file_name", "predicted_class") if c not in predictions.columns]
    if missing:
        raise UserError(f"predictions lack columns {missing}; expected file_name, predicted_class (PROTOCOL §3)")
    classes = predictions["predicted_class"].to_numpy()
    if not np.issubdtype(classes.dtype, np.integer) or (len(classes) and (classes.min() < 0 or classes.max() > 999)):
        raise UserError("predicted_class must hold integer ImageNet-1k indices 0..999")
    if val_names:
        check_val_ids(predictions["file_name"].tolist(), "ImageNet-X predictions")
    elif not predictions["file_name"].is_unique:
        raise UserError("ImageNet-X predictions: some file names occur more than once")


def _coverage_error(n_missing: int, n_total: int, examples: Sequence[str], what: str) -> UserError:
    return UserError(
        f"the predictions cover only {n_total - n_missing:,} of the {n_total:,} {what}: {n_missing:,} are missing "
        f"(e.g. {', '.join(examples[:3])}). Run inference on the full ImageNet val set (50,000 images), or pass "
        "allow_partial=True to score only the covered images (the result is then not comparable to the paper)."
    )


def full_val_accuracy(
    predictions: pd.DataFrame, allow_partial: bool = False, directory: str | Path | None = None
) -> float:
    """Top-1 accuracy (fraction) of the predictions on the IN val images they contain (§3, paper denominator)."""
    _check_predictions(predictions, val_names=True)
    labels = load_val_labels(directory)
    covered = labels.index.isin(predictions["file_name"])
    if not covered.all() and not allow_partial:
        raise _coverage_error(int((~covered).sum()), len(labels), labels.index[~covered].tolist(), "IN val images")
    true = labels.reindex(predictions["file_name"]).to_numpy()
    return int((predictions["predicted_class"].to_numpy() == true).sum()) / len(true)


def factor_accuracies(
    predictions: pd.DataFrame,
    annotations: pd.DataFrame,
    denominator: Denominator = "annotated",
    overall_accuracy: float | None = None,
    allow_partial: bool = False,
    directory: str | Path | None = None,
) -> dict:
    """Per-factor accuracy, error ratio ``(1 - acc(f)) / (1 - average)`` and counts (§3 Steps 3-6).

    ``average`` is the accuracy over all joined annotated images (package default), or with
    ``denominator="paper"`` the full-val accuracy: ``overall_accuracy`` (a fraction) when given, else computed
    from ``predictions`` against ``filename_label.csv`` in ``directory`` (default: the package's). Factors with
    no covered image (possible only with ``allow_partial``) are listed under ``empty_factors`` and have no accuracy.
    """
    if denominator not in ("annotated", "paper"):
        raise UserError(f"denominator must be 'annotated' (package, default) or 'paper', got {denominator!r}")
    annotated_val = bool(annotations["file_name"].str.fullmatch(VAL_NAME.pattern).all())
    _check_predictions(predictions, val_names=annotated_val)
    covered = annotations["file_name"].isin(predictions["file_name"])
    n_missing = int((~covered).sum())
    if n_missing and not allow_partial:
        examples = annotations.loc[~covered, "file_name"].tolist()
        raise _coverage_error(n_missing, len(annotations), examples, "annotated ImageNet-X images")
    joined = annotations.merge(predictions[["file_name", "predicted_class"]], on="file_name", how="inner")
    if joined.empty:
        raise UserError("no prediction matches an annotated ImageNet-X image; check that the sample ids are val names")
    is_correct = (joined["predicted_class"] == joined["class"]).to_numpy()
    annotated_accuracy = int(is_correct.sum()) / len(is_correct)  # exact count ratio
    average = (
        annotated_accuracy
        if denominator == "annotated"
        else _paper_average(predictions, overall_accuracy, allow_partial, directory)
    )
    if average >= 1.0:
        raise UserError("error ratios are undefined when the denominator accuracy is 100% (1 - average = 0)")
    flags = joined[list(FACTORS)].to_numpy() == 1
    counts = flags.sum(axis=0)
    correct = (flags & is_correct[:, None]).sum(axis=0)
    accuracy = {f: float(c / n) for f, c, n in zip(FACTORS, correct, counts, strict=True) if n > 0}
    return {
        "accuracy": accuracy,
        "error_ratio": {f: (1.0 - a) / (1.0 - average) for f, a in accuracy.items()},
        "count": {f: int(n) for f, n in zip(FACTORS, counts, strict=True)},
        "correct": {f: int(c) for f, c in zip(FACTORS, correct, strict=True)},
        "average": average,
        "annotated_accuracy": annotated_accuracy,
        "denominator": denominator,
        "n_joined": len(joined),
        "n_annotated": len(annotations),
        "n_missing": n_missing,
        "coverage": len(joined) / len(annotations),
        "empty_factors": [f for f, n in zip(FACTORS, counts, strict=True) if n == 0],
    }


def _paper_average(
    predictions: pd.DataFrame, overall_accuracy: float | None, allow_partial: bool, directory: str | Path | None
) -> float:
    if overall_accuracy is None:
        return full_val_accuracy(predictions, allow_partial=allow_partial, directory=directory)
    if not 0.0 <= overall_accuracy <= 1.0:
        raise UserError(
            f"overall_accuracy must be a fraction in [0, 1] (e.g. 0.7613, not 76.13), got {overall_accuracy}"
        )
    return float(overall_accuracy)
