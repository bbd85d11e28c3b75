"""imagenet-x's per-model predictions CSV (imagenet-x 0.0.7, ``load_model_predictions``; docs/interchange.md).

``file_name,predicted_class,predicted_probability``: one row per ImageNet val image (its base name
``ILSVRC2012_val_XXXXXXXX.JPEG``), the top-1 ImageNet-1k index (-1: a tied top-1, counted wrong as everywhere in
this project) and its softmax probability. The package names the model after the file's stem and needs all 50,000
val images in the order of its ``filename_label.csv`` (class folder, then file name: the order of our caches).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.files import atomic_write_text
from beyond_imagenet.base.hashing import safe_name
from beyond_imagenet.data.imagenet_x import N_IMAGENET_CLASSES, check_val_ids, load_val_labels
from beyond_imagenet.inference.cache import InferenceCache
from beyond_imagenet.inference.interchange.common import (
    INTERCHANGE_KEY,
    Imported,
    ImportOptions,
    bad_rows_error,
    integer_column,
    model_entry,
    read_csv_strings,
    source_entry,
    unique_ids,
)
from beyond_imagenet.inference.interchange.top1_logits import TIED_CLASSES, top1_logits
from beyond_imagenet.metrics.accuracy import NO_PREDICTION
from beyond_imagenet.metrics.imagenet_x import predictions_from_logits

NAME = "imagenet-x"
COLUMNS = ("file_name", "predicted_class", "predicted_probability")
DECIMALS = 10  # probabilities are written rounded to 10 decimals, as in the CSVs released with ImageNet-X
VALID = ("top-1 class", "top-1 probability")
LOGITS_NOTE = (
    "rebuilt from the top-1 class and probability: softmax reproduces them; the other 999 logits are not the "
    "model's (top-5, the full distribution and features are unknown)"
)
ANNOTATIONS_OPTION = "--imagenet-x-annotations"


def default_file_name(model_id: str) -> str:
    """``<model>.csv``: the package names each model after its file's stem."""
    return f"{safe_name(model_id)}.csv"


def format_probability(value: float) -> str:
    """``value`` correctly rounded to 10 decimals, in its shortest form (``0.5530332327``, ``1.0``)."""
    return repr(float(f"{value:.{DECIMALS}f}"))


def _probabilities(path: Path, frame: pd.DataFrame, classes: np.ndarray) -> np.ndarray:
    """The probability column, refusing what no softmax top-1 can be: (1/1000, 1] for a class, [1/1000, 1/2] for -1."""
    values = pd.to_numeric(frame["predicted_probability"], errors="coerce").to_numpy(dtype=np.float64)
    tied = classes == NO_PREDICTION
    low = 1.0 / N_IMAGENET_CLASSES
    ok = np.where(tied, (values >= low) & (values <= 1.0 / len(TIED_CLASSES)), (values > low) & (values <= 1.0))
    bad = np.flatnonzero(~(np.isfinite(values) & ok))
    if bad.size:
        shown = f": {frame['predicted_probability'].iloc[bad[0]]!r} for class {classes[bad[0]]}"
        rule = (
            "predicted_probability is the top-1 softmax probability: above 1/1000 and at most 1 for a class, "
            "1/1000..1/2 for a tied top-1 (-1)"
        )
        raise bad_rows_error(path, bad, rule, "write the maximum softmax probability of each image", shown)
    return values


def _targets(path: Path, names: list[str], annotations: str | Path | None) -> np.ndarray:
    """The standard val label of each file name (imagenet-x's ``filename_label.csv``)."""
    labels = load_val_labels(annotations, ANNOTATIONS_OPTION)
    targets = labels.reindex(names)
    missing = np.flatnonzero(targets.isna().to_numpy())
    if missing.size:
        raise bad_rows_error(
            path, missing, "file_name is one of the 50,000 val images of filename_label.csv", "drop those rows"
        )
    return targets.to_numpy(dtype=np.int64)


def read_imagenet_x(path: Path, options: ImportOptions) -> Imported:
    """The cache an imagenet-x CSV becomes (rows in the file's order); the model id defaults to the file's stem.

    Targets are the standard val labels (``options.imagenet_x_annotations``, default the imagenet-x package's files).
    """
    frame = read_csv_strings(path, COLUMNS, NAME)
    names = frame["file_name"].tolist()
    unique_ids(path, names, "file_name")
    try:
        check_val_ids(names, f"{path}, column file_name")
    except UserError as err:
        raise UserError(f"{err} ({NAME} format: file_name is the val image's base name)") from err
    classes = integer_column(path, frame, "predicted_class", NO_PREDICTION, N_IMAGENET_CLASSES - 1)
    probabilities = _probabilities(path, frame, classes)
    targets = _targets(path, names, options.imagenet_x_annotations)
    meta = {
        "model": model_entry(options.model_id or path.stem, options.family, options.paradigm),
        "dataset": {"name": "imagenet_val", "kind": "imagenet_val", "n_images": len(names)},
        "output_space": {"kind": "imagenet1k", "n_classes": N_IMAGENET_CLASSES},
        "label_space": {"kind": "imagenet1k", "n_classes": N_IMAGENET_CLASSES},
        INTERCHANGE_KEY: source_entry(path, NAME, LOGITS_NOTE, VALID),
    }
    return Imported(top1_logits(classes, probabilities, N_IMAGENET_CLASSES), targets, names, meta)


def write_imagenet_x(cache: InferenceCache, out: Path) -> Path:
    """The cache's top-1 class and probability over the 1000 ImageNet logits, in the imagenet-x CSV format."""
    output = cache.meta.get("output_space", {"kind": "imagenet1k"})
    if output.get("kind") != "imagenet1k" or cache.logits.shape[1] != N_IMAGENET_CLASSES:
        raise UserError(
            f"cache {cache.path}: the {NAME} format holds ImageNet-1k predictions; this cache has "
            f"{cache.logits.shape[1]} logit columns of output space {output.get('kind')!r}. Rule: output_space "
            "imagenet1k with 1000 columns (docs/cache.md). Fix: export an ImageNet val cache, or use --format parquet"
        )
    predictions = predictions_from_logits(cache.logits, cache.sample_ids)
    lines = [",".join(COLUMNS)]
    lines += [
        f"{name},{int(c)},{format_probability(p)}"
        for name, c, p in zip(
            predictions["file_name"], predictions["predicted_class"], predictions["predicted_probability"], strict=True
        )
    ]
    return atomic_write_text(out, "\n".join(lines) + "\n")
