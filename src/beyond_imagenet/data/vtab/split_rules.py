"""The VTAB split rules as pure functions on index ranges, and the disjointness check (docs/transfer.md §3.4, §4).

``split_indices(task, ...)`` resolves a task's percent slices of its source's tfds splits (``train[:90%]`` ...) into
``SourceRange`` s, for the full protocol (train / val / test / trainval) or VTAB-1k (train800 / val200 /
train800val200 / test). ``check_disjoint`` refuses splits that share a sample id, naming the ids, so a val carved
from a source that also feeds test (or a stale index list) cannot leak into selection (docs/transfer.md leak list).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from itertools import combinations

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.vtab.slices import SourceRange, resolve_slice
from beyond_imagenet.data.vtab.tasks import VTAB1K_TRAIN, VTAB1K_VAL, Protocol, TaskSpec

__all__ = [
    "MAX_SHOWN_IDS",
    "PROTOCOLS",
    "check_disjoint",
    "check_protocol",
    "image_sources",
    "sample_ids",
    "source_images_used",
    "split_indices",
    "split_sizes",
]

MAX_SHOWN_IDS = 10
PROTOCOLS: tuple[Protocol, ...] = ("full", "1k")


def check_protocol(protocol: str) -> None:
    """``UserError`` unless ``protocol`` is ``"full"`` or ``"1k"``."""
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown split protocol {protocol!r}; use 'full' or '1k'")


def _take_first(pieces: Sequence[SourceRange], k: int, task: str, split: str) -> tuple[SourceRange, ...]:
    """The first ``k`` examples of ``pieces``; ``UserError`` when they hold fewer."""
    total = sum(len(p) for p in pieces)
    if total < k:
        raise UserError(f"task {task!r}: split {split!r} has {total} examples, fewer than the {k} VTAB-1k needs")
    out = []
    for p in pieces:
        if k <= 0:
            break
        take = min(k, len(p))
        out.append(SourceRange(p.split, p.start, p.start + take))
        k -= take
    return tuple(out)


def split_indices(
    task: TaskSpec,
    source_sizes: Mapping[str, int] | None = None,
    protocol: Protocol = "full",
) -> dict[str, tuple[SourceRange, ...]]:
    """Resolve the task's split rules into example-index ranges of its source's tfds splits.

    ``source_sizes`` maps tfds split names to their number of examples (defaults to the real tfds sizes; pass
    the counts actually found on disk, or small numbers in tests). ``protocol="full"`` gives train / val / test /
    trainval (= train followed by val); ``"1k"`` gives VTAB-1k's train800 (first 800 of train), val200 (first 200
    of val), train800val200 and the full test (§3.4).
    """
    sizes = task.source.split_sizes if source_sizes is None else source_sizes
    missing = [s for s in task.source_splits() if s not in sizes]
    if missing:
        raise UserError(f"task {task.name!r} needs the size of source split(s) {missing}; got {sorted(sizes)}")
    full = {
        name: tuple(resolve_slice(s, int(sizes[s.split])) for s in task.splits[name])
        for name in ("train", "val", "test")
    }
    full["trainval"] = full["train"] + full["val"]
    if protocol == "full":
        return full
    check_protocol(protocol)
    train = _take_first(full["train"], VTAB1K_TRAIN, task.name, "train")
    val = _take_first(full["val"], VTAB1K_VAL, task.name, "val")
    return {"train800": train, "val200": val, "train800val200": train + val, "test": full["test"]}


def split_sizes(
    task: TaskSpec, source_sizes: Mapping[str, int] | None = None, protocol: Protocol = "full"
) -> dict[str, int]:
    """Number of examples in each split of ``split_indices``."""
    return {k: sum(len(r) for r in v) for k, v in split_indices(task, source_sizes, protocol).items()}


def sample_ids(ranges: Iterable[SourceRange]) -> list[tuple[str, int]]:
    """The ``(source split, index)`` ids of some ranges, for ``check_disjoint`` and the feature-cache index."""
    return [i for r in ranges for i in r.ids()]


def image_sources(tasks: Iterable[TaskSpec]) -> dict[str, list[str]]:
    """Distinct image sources of ``tasks`` (first-use order) -> the task names reading them: featurise each once."""
    out: dict[str, list[str]] = {}
    for t in tasks:
        out.setdefault(t.source.name, []).append(t.name)
    return out


def source_images_used(tasks: Iterable[TaskSpec], protocol: Protocol = "full") -> dict[str, int]:
    """Unique images per source over all splits of ``tasks`` (shared sources counted once), at tfds sizes."""
    covered: dict[str, dict[str, set[int]]] = {}
    for t in tasks:
        per_split = covered.setdefault(t.source.name, {})
        for ranges in split_indices(t, protocol=protocol).values():
            for r in ranges:
                per_split.setdefault(r.split, set()).update(range(r.start, r.stop))
    return {src: sum(len(v) for v in splits.values()) for src, splits in covered.items()}


def _shown(ids: Iterable[Hashable]) -> str:
    """At most ``MAX_SHOWN_IDS`` of ``ids``, sorted, with a count of the rest."""
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
