"""tfds-style percent slices of a source split and the index ranges they resolve to (docs/transfer.md §3.1, §3.4).

VTAB defines each task split as percent slices of tfds splits in tfds's stored record order (``train[:90%]`` ...).
``SourceSlice`` is one such slice with exact fractions; ``resolve_slice`` turns it into a ``SourceRange`` of example
indices with tfds's rounding. The small builders (``pct``, ``whole``, ``official``, ``carve``, ``three_way``) spell
the split rules of the task table.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

__all__ = ["SourceRange", "SourceSlice", "SplitRule", "carve", "official", "pct", "resolve_slice", "three_way", "whole"]


@dataclass(frozen=True)
class SourceSlice:
    """A tfds-style percent slice ``split[start:stop]`` of a source split; ``start``/``stop`` are fractions."""

    split: str
    start: Fraction = Fraction(0)
    stop: Fraction = Fraction(1)


SplitRule = dict[str, tuple[SourceSlice, ...]]  # task split ("train", "val", "test") -> its slices


@dataclass(frozen=True, order=True)
class SourceRange:
    """Resolved example indices ``range(start, stop)`` of one source split (tfds record order)."""

    split: str
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start

    def ids(self) -> list[tuple[str, int]]:
        """Sample ids ``(source split, index)``, unique within an image source."""
        return [(self.split, i) for i in range(self.start, self.stop)]


def pct(a: int, b: int = 100) -> Fraction:
    """The exact fraction ``a / b`` (a percentage by default)."""
    return Fraction(a, b)


def whole(split: str) -> tuple[SourceSlice, ...]:
    """All of tfds split ``split``."""
    return (SourceSlice(split),)


def official() -> SplitRule:
    """The official tfds train / validation / test as VTAB train / val / test."""
    return {"train": whole("train"), "val": whole("validation"), "test": whole("test")}


def carve(frac: Fraction, test: tuple[SourceSlice, ...]) -> SplitRule:
    """Train = tfds train[:frac], val = train[frac:], test as given."""
    return {"train": (SourceSlice("train", stop=frac),), "val": (SourceSlice("train", start=frac),), "test": test}


def three_way(a: Fraction, b: Fraction) -> SplitRule:
    """A single tfds split cut into train[:a], val[a:b], test[b:]."""
    return {
        "train": (SourceSlice("train", stop=a),),
        "val": (SourceSlice("train", start=a, stop=b),),
        "test": (SourceSlice("train", start=b),),
    }


def resolve_slice(s: SourceSlice, n: int) -> SourceRange:
    """The indices of slice ``s`` of a split of ``n`` examples.

    tfds's default percent rounding ("closest"): boundary = round(fraction * n), half to even.
    """
    return SourceRange(s.split, round(s.start * n), round(s.stop * n))
