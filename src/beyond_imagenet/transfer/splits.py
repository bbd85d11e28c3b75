"""In-memory feature splits for the probe, and the train/val/test disjointness check (TRANSFER.md §4, leak list).

A ``FeatureSplit`` is one split's cached features ``x`` [n, d], labels ``y`` [n] and, optionally, the sample ids
that the feature cache stores beside them. ``check_disjoint`` refuses splits that share a sample id, naming the
ids, so a val carved from a source that also feeds test (or a stale index list) cannot leak into selection.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import torch

from beyond_imagenet.errors import UserError

MAX_SHOWN_IDS = 10


@dataclass(frozen=True)
class FeatureSplit:
    """One split of cached features: ``x`` [n, d] (raw; the probe L2-normalises), ``y`` [n] class indices."""

    x: torch.Tensor
    y: torch.Tensor
    ids: Sequence[Hashable] | None = None  # sample ids, for the disjointness check
    name: str = "split"

    def __len__(self) -> int:
        return len(self.x)


def _shown(ids: Iterable[Hashable]) -> str:
    ids = sorted(ids, key=str)
    more = f", ... ({len(ids) - MAX_SHOWN_IDS} more)" if len(ids) > MAX_SHOWN_IDS else ""
    return ", ".join(repr(i) for i in ids[:MAX_SHOWN_IDS]) + more


def check_disjoint(ids_by_split: Mapping[str, Iterable[Hashable]]) -> None:
    """Raise ``UserError`` if any two splits share a sample id, or a split lists an id twice; names the ids.

    ``ids_by_split`` maps a split name ("train", "val", "test") to its sample ids.
    """
    sets: dict[str, set[Hashable]] = {}
    problems = []
    for name, ids in ids_by_split.items():
        ids = list(ids)
        repeated = [i for i, count in Counter(ids).items() if count > 1]
        if repeated:
            problems.append(f"split {name!r} lists {len(repeated)} sample id(s) more than once: {_shown(repeated)}")
        sets[name] = set(ids)
    for (a, ids_a), (b, ids_b) in combinations(sets.items(), 2):
        shared = ids_a & ids_b
        if shared:
            problems.append(f"splits {a!r} and {b!r} share {len(shared)} sample id(s): {_shown(shared)}")
    if problems:
        raise UserError(
            "train/val/test splits must be disjoint (a shared sample leaks into model selection or the test "
            "score): " + "; ".join(problems)
        )
