"""Where the probe stage writes (docs/vtab.md).

Apart from ``probe.run`` so that ``stages.paths``, which every stage imports (the GPU feature stage too), needs no
Optuna (docs/architecture.md; tests/test_import_boundaries.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProbeOutputs:
    """Where the probe stage writes: records, test predictions, studies, split rows (docs/vtab.md)."""

    records: Path
    predictions: Path
    studies: Path
    splits: Path
