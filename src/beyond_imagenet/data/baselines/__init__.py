"""Baselines of effective robustness: top-1 (%) of models trained on ImageNet only, one row per model.

``testbed`` is the shipped table of imagenet-testbed's 85 standard models (``SOURCE.md`` says where it comes from and
how the rows were chosen); ``file`` reads a user's CSV of the same form: a ``model`` column and one column per
dataset kind (``imagenet_val``, ``imagenet_v2``, ``imagenet_a``, ``imagenet_r``, ``imagenet_sketch``, ...), with
``imagenet_val_on_<kind>_classes`` where the ID accuracy is measured on a shift's classes only (ImageNet-A and -R).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from beyond_imagenet.base.errors import UserError

TESTBED_FILE = Path(__file__).with_name("imagenet_testbed_standard.csv")
TESTBED_SOURCE = (
    "imagenet-testbed (Taori et al. 2020), robustness_top1s.csv at 0170eec: 85 standard ImageNet models (MIT)"
)


def on_classes_column(shift_kind: str) -> str:
    """The baseline column of the ID top-1 measured on a shift's classes: ``imagenet_val_on_<kind>_classes``."""
    return f"imagenet_val_on_{shift_kind}_classes"


@dataclass(frozen=True)
class Baseline:
    """Top-1 (%) of the baseline models per column, and where they come from.

    Attributes:
        source: a citation (the testbed) or the file's path.
        models: the baseline model names, in file order.
        columns: top-1 % per column name, one value per model (NaN where the file has none).
        digest: hash of the table: names the baseline in the records and seeds its resampling.
    """

    source: str
    models: tuple[str, ...]
    columns: dict[str, np.ndarray]
    digest: str

    def points(self, columns: list[str]) -> np.ndarray:
        """[len(columns), M] accuracies of the models with every column strictly between 0 and 100.

        A 0% or 100% has no logit, so that model is left out of the fit (ResNet-50 scores 0% on ImageNet-A, which was
        filtered against it).
        """
        table = np.stack([self.columns[c] for c in columns])
        return table[:, (np.isfinite(table) & (table > 0) & (table < 100)).all(axis=0)]


def load_baseline_file(path: str | Path, source: str | None = None) -> Baseline:
    """A baseline CSV: ``model`` plus top-1 % columns (0 < value < 100); raises naming what to fix."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"baseline file {path} does not exist; give a CSV with a `model` column and top-1 % columns")
    table = pd.read_csv(path)
    if "model" not in table.columns:
        raise UserError(f"{path}: the baseline CSV needs a `model` column (got {list(table.columns)})")
    columns = {}
    for name in table.columns.drop("model"):
        values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=np.float64)
        given = values[np.isfinite(values)]
        if given.size and (given.min() < 0 or given.max() > 100):
            raise UserError(f"{path}: column {name!r} must hold top-1 accuracy in %, between 0 and 100")
        if given.size and given.max() <= 1:
            raise UserError(f"{path}: column {name!r} looks like fractions; give top-1 accuracy in %")
        columns[str(name)] = values
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return Baseline(source or str(path), tuple(table["model"].astype(str)), columns, digest)


def testbed_baseline() -> Baseline:
    """The shipped imagenet-testbed baseline (85 standard ImageNet models)."""
    return load_baseline_file(TESTBED_FILE, TESTBED_SOURCE)
