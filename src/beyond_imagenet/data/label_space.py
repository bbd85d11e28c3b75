"""Label spaces: a dataset's classes and their mapping into ImageNet-1k (docs/protocol.md §2.1-§2.2).

Class index ``k`` of ImageNet-1k is the standard one: sorted WordNet ids, 0 = n01440764 "tench".
A dataset declares one of:

* ``imagenet1k`` - its labels are ImageNet-1k indices (val, V2, Sketch, C);
* ``imagenet_subset`` - its classes are the ImageNet wnid folders present (e.g. the 200 of IN-A / IN-R);
  1000-way logits are restricted to those columns, in sorted order, before any softmax;
* ``custom`` - its own class ids and names, optionally mapped to lists of ImageNet indices. A CLIP model
  classifies it with a zero-shot head over its own class names, so it need not pretend to be ImageNet.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from beyond_imagenet.base.errors import UserError

IMAGENET1K = "imagenet1k"


@functools.lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k wnids in standard index order (shipped with timm, so available offline)."""
    from timm.data import ImageNetInfo

    wnids = tuple(ImageNetInfo().label_names())
    if len(wnids) != 1000 or list(wnids) != sorted(wnids) or wnids[0] != "n01440764":
        raise RuntimeError("timm's ImageNet-1k synset list is not the standard sorted 1000 wnids")
    return wnids


@functools.lru_cache(maxsize=1)
def imagenet_names() -> tuple[str, ...]:
    """Short human names (first WordNet lemma) of the 1000 classes, for tables and plots."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return tuple(info.index_to_description(i).split(",")[0] for i in range(1000))


@dataclass(frozen=True)
class LabelSpace:
    """Classes of a dataset and, per class, the ImageNet-1k indices it corresponds to (None: no mapping)."""

    kind: str
    class_ids: tuple[str, ...]
    class_names: tuple[str, ...]
    imagenet_indices: tuple[tuple[int, ...], ...] | None

    def __post_init__(self) -> None:
        if len(self.class_ids) != len(self.class_names):
            raise ValueError("class_ids and class_names differ in length")
        if self.imagenet_indices is not None and len(self.imagenet_indices) != len(self.class_ids):
            raise ValueError("imagenet_indices must have one entry per class")

    @property
    def n_classes(self) -> int:
        """Number of classes of the dataset."""
        return len(self.class_ids)

    @property
    def maps_to_imagenet(self) -> bool:
        """Whether the classes map into ImageNet-1k indices (so ImageNet-1k heads can score the dataset)."""
        return self.imagenet_indices is not None

    def one_to_one_imagenet_columns(self) -> np.ndarray | None:
        """ImageNet column per class when every class is exactly one ImageNet class, else None."""
        if self.imagenet_indices is None or any(len(ix) != 1 for ix in self.imagenet_indices):
            return None
        return np.array([ix[0] for ix in self.imagenet_indices], dtype=np.int64)

    def digest(self) -> str:
        """Short stable hash of the kind, class ids, names and ImageNet mapping: identifies a label space in records."""
        payload = json.dumps([self.kind, self.class_ids, self.class_names, self.imagenet_indices])
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def as_record(self) -> dict:
        """The label space as recorded in manifests and cache metadata: kind, number of classes and :meth:`digest`."""
        return {"kind": self.kind, "n_classes": self.n_classes, "digest": self.digest()}


def imagenet1k_space() -> LabelSpace:
    """The full ImageNet-1k label space: the 1000 wnids in standard order, each mapped to its own index."""
    return LabelSpace(IMAGENET1K, imagenet_wnids(), imagenet_names(), tuple((i,) for i in range(1000)))


def imagenet_subset_space(wnids: Sequence[str]) -> LabelSpace:
    """The §2.2 subset: the given wnids in sorted order, each mapped to its ImageNet index."""
    index = {w: i for i, w in enumerate(imagenet_wnids())}
    unknown = [w for w in wnids if w not in index]
    if unknown:
        raise UserError(
            f"{len(unknown)} class folder(s) are not ImageNet-1k wnids: {', '.join(unknown[:5])}. "
            "Use label_space: custom for datasets whose classes are not ImageNet classes."
        )
    ordered = sorted(set(wnids))
    names = imagenet_names()
    return LabelSpace(
        "imagenet_subset",
        tuple(ordered),
        tuple(names[index[w]] for w in ordered),
        tuple((index[w],) for w in ordered),
    )


def custom_space(
    class_ids: Sequence[str],
    names: dict[str, str] | None = None,
    imagenet_map: dict[str, list[int]] | None = None,
) -> LabelSpace:
    """A dataset's own classes; names default to the class ids with '_' as spaces."""
    names = names or {}
    missing_names = [c for c in class_ids if names and c not in names]
    if missing_names:
        raise UserError(f"classnames file lacks names for classes: {', '.join(missing_names[:5])}")
    indices = None
    if imagenet_map is not None:
        missing = [c for c in class_ids if c not in imagenet_map]
        if missing:
            raise UserError(f"imagenet map file lacks classes: {', '.join(missing[:5])}")
        bad = [c for c in class_ids if not all(isinstance(i, int) and 0 <= i < 1000 for i in imagenet_map[c])]
        if bad:
            raise UserError(f"imagenet map file has indices outside 0..999 for classes: {', '.join(bad[:5])}")
        indices = tuple(tuple(imagenet_map[c]) for c in class_ids)
    return LabelSpace(
        "custom",
        tuple(class_ids),
        tuple(names.get(c, c.replace("_", " ")) for c in class_ids),
        indices,
    )
