"""In-memory feature splits for the probe (docs/transfer.md §4).

A ``FeatureSplit`` is one split's cached features ``x`` [n, d], labels ``y`` [n] and, optionally, the sample ids
that the feature cache stores beside them, so the search can refuse splits that share a sample
(``data.vtab.split_rules.check_disjoint``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FeatureSplit:
    """One split of cached features: ``x`` [n, d] (raw; the probe L2-normalises), ``y`` [n] class indices."""

    x: torch.Tensor
    y: torch.Tensor
    ids: Sequence[Hashable] | None = None  # sample ids, for the disjointness check
    name: str = "split"

    def __len__(self) -> int:
        return len(self.x)
