"""Label spaces: a dataset's classes and their mapping into ImageNet-1k (docs/protocol.md §2.1-§2.2).

Class index ``k`` of ImageNet-1k is the standard one: sorted WordNet ids, 0 = n01440764 "tench".
A dataset declares one of:

* ``imagenet1k`` - its labels are ImageNet-1k indices (val, V2, Sketch, C);
* ``imagenet_subset`` - its classes are the ImageNet wnid folders present (e.g. the 200 of IN-A / IN-R);
  1000-way logits are restricted to those columns, in sorted order, before any softmax;
* ``custom`` - its own class ids and names, optionally mapped to lists of ImageNet indices. A CLIP model
  classifies it with a zero-shot head over its own class names, so it need not pretend to be ImageNet.
  A user's map file must be one-to-one (``read_imagenet_map_file``, docs/protocol.md §2.2); only the built-in
  cue-conflict and PUG spaces map a class to several indices, and their analyses pool them their own way.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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


# ----------------------------------------------------------------------------------------------------------
# the files of a custom label space (params.yaml: datasets.<name>.classnames_file / imagenet_map_file)

NAMES_EXAMPLE = '{"cat": "tabby cat", "dog": "dog"}'
MAP_EXAMPLE = '{"cat": [281], "dog": [207]}'


def _read_json_object(path: str, key: str, example: str) -> dict:
    """The JSON object in ``path`` (the dataset's ``key``), or a UserError saying exactly what format is expected."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{key} {file} not found; set datasets.<name>.{key} in params.yaml to an existing JSON file")
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{key} {file} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise UserError(
            f"{key} {file} holds a JSON {type(data).__name__}; it must be one JSON object keyed by class folder name, "
            f"e.g. {example}. A list is not accepted: its order could not be matched to the folders unambiguously."
        )
    return data


def _check_classes(data: dict, class_ids: Sequence[str], root: Path, key: str, path: str) -> None:
    """Every class folder has an entry and every entry has a class folder (``root/<class>/``)."""
    extra = [c for c in data if c not in set(class_ids)]
    if extra:
        raise UserError(
            f"{key} {path} names class(es) with no class folder: {', '.join(repr(c) for c in extra[:5])} (expected "
            f"{root / str(extra[0])}/ with images). Add those folders or remove the entries; entries must match the "
            f"folder names exactly (found: {', '.join(class_ids[:5])}{', ...' if len(class_ids) > 5 else ''})."
        )
    missing = [c for c in class_ids if c not in data]
    if missing:
        raise UserError(f"{key} {path} has no entry for the class folder(s) {', '.join(missing[:5])}; add them")


def read_classnames_file(path: str | None, class_ids: Sequence[str], root: Path) -> dict[str, str] | None:
    """``{class folder: display name}`` of a custom label space, checked against the folders (None: no file)."""
    if path is None:
        return None
    data = _read_json_object(path, "classnames_file", NAMES_EXAMPLE)
    _check_classes(data, class_ids, root, "classnames_file", path)
    bad = [c for c, name in data.items() if not (isinstance(name, str) and name.strip())]
    if bad:
        raise UserError(f"classnames_file {path}: the names of {', '.join(bad[:5])} are not non-empty strings")
    return data


def read_imagenet_map_file(path: str | None, class_ids: Sequence[str], root: Path) -> dict[str, list[int]] | None:
    """``{class folder: [one ImageNet index]}`` of a custom label space: one-to-one and checked (None: no file).

    Refused at scan time (docs/protocol.md §2.2, "Custom label spaces"): a class mapped to several ImageNet
    classes (or to none), and an ImageNet class claimed by two dataset classes; the analyses keep exactly one
    logit column per dataset class.
    """
    if path is None:
        return None
    data = _read_json_object(path, "imagenet_map_file", MAP_EXAMPLE)
    _check_classes(data, class_ids, root, "imagenet_map_file", path)
    data = {c: [v] if isinstance(v, int) and not isinstance(v, bool) else v for c, v in data.items()}
    many = [f"{c!r} -> {v}" for c, v in data.items() if not (isinstance(v, list) and len(v) == 1)]
    if many:
        raise UserError(
            f"imagenet_map_file {path} must map each class to exactly one ImageNet index, e.g. {MAP_EXAMPLE}; "
            f"found {', '.join(many[:3])}. A class made of several ImageNet classes is not supported: split its "
            "folder into one folder per ImageNet class, or leave imagenet_map_file unset so CLIP models classify "
            "the dataset zero-shot over its class names."
        )
    owners: dict[object, list[str]] = {}
    for c, (index,) in data.items():
        owners.setdefault(index, []).append(c)
    shared = {i: cs for i, cs in owners.items() if len(cs) > 1}
    if shared:
        index, classes = next(iter(shared.items()))
        raise UserError(
            f"imagenet_map_file {path}: ImageNet index {index} is mapped by {len(classes)} classes "
            f"({', '.join(classes)}); their logits would always tie. Map each class to a different index."
        )
    return data
