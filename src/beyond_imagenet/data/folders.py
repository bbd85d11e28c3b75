"""Scan and validate ImageFolder-style datasets, ``<root>/<class_id>/<image>`` (docs/protocol.md §2.1).

Used for IN val, ImageNetV2, IN-A, IN-R, Sketch and each ImageNet-C set. The layout is validated before
anything is returned, so a wrong ``--root`` fails before a model is loaded (docs/architecture.md, principle 6), and
ImageNetV2's integer folders are ordered numerically, never lexicographically (docs/protocol.md §14).
Original file names are kept as sample ids because ImageNet-X and ReaL join on them.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image

from beyond_imagenet.base.errors import DatasetLayoutError
from beyond_imagenet.data.decode import decode_rgb

__all__ = [
    "IMAGE_EXTENSIONS",
    "WNID_PATTERN",
    "ClassIdRule",
    "FolderSample",
    "is_image_file",
    "scan_class_folders",
]

ClassIdRule = Literal["wnid", "integer", "any"]

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm"}
)
"""Lower-case suffixes of the files read as images; matched case-insensitively (``.JPEG`` counts)."""

WNID_PATTERN = re.compile(r"n\d{8}")
"""A WordNet id such as ``n01440764``; use ``fullmatch``."""

_INTEGER_PATTERN = re.compile(r"\d+")
_SHOW = 5  # how many offending names an error message lists

_EXAMPLES: dict[str, tuple[str, str]] = {
    "wnid": ("<wnid>", "n01440764/ILSVRC2012_val_00000293.JPEG"),
    "integer": ("<k>", "0/7e1b8c4a5f0d2e3b9a6c1d8f4e2b7a9c0d3e5f1a.jpeg"),
    "any": ("<class>", "n01440764/ILSVRC2012_val_00000293.JPEG"),
}


@dataclass(frozen=True)
class FolderSample:
    """One image of a class-folder dataset; ``sample_id`` is the original file name."""

    path: Path
    class_id: str
    sample_id: str

    @property
    def name(self) -> str:
        """How errors name the sample: its file."""
        return str(self.path)

    @property
    def plain_file(self) -> Path:
        """The file holding exactly this image's encoded bytes (batched tensor decoding reads it)."""
        return self.path

    def decode(self) -> Image.Image:
        """8-bit RGB image; ``ImageDecodeError`` naming the file (``data.decode.decode_rgb``)."""
        return decode_rgb(self.path)


@dataclass
class _ClassFolder:
    """What one candidate class folder holds (visible entries only)."""

    path: Path
    images: list[str]
    others: list[str]
    subdirs: list[str]


def is_image_file(name: str | Path) -> bool:
    """True when the file name has one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def scan_class_folders(root: str | Path, class_id_rule: ClassIdRule = "wnid") -> list[FolderSample]:
    """List the images of ``<root>/<class_id>/<image>``, sorted by (class_id, file name), after validation.

    ``class_id_rule``: ``"wnid"`` (``n01440764``), ``"integer"`` (ImageNetV2's ``0``..``999``, sorted by
    value) or ``"any"`` (sorted as strings, like torchvision's ImageFolder). Hidden entries (``.name``)
    and non-image files directly in ``root`` are ignored. Raises ``DatasetLayoutError`` naming the path
    and the expected layout when the root is missing, flat, nested one level too high, has misnamed or
    empty class folders, non-image files inside class folders, or no images.
    """
    if class_id_rule not in _EXAMPLES:
        raise ValueError(f"class_id_rule must be one of {sorted(_EXAMPLES)}, got {class_id_rule!r}")
    root = Path(root)
    folders = _read_class_folders(root, class_id_rule)
    _check_nesting(root, folders, class_id_rule)
    _check_class_names(root, [f.path.name for f in folders], class_id_rule)
    _check_contents(root, folders, class_id_rule)
    # Sample ids are the original file names (ImageNet-X and ReaL join on them); where names repeat across
    # class folders (ImageNet-R's art_0.jpg, PUG renders), they are <class>/<file name> instead.
    bare = _names_are_unique(folders)
    samples = [
        FolderSample(
            path=folder.path / name, class_id=folder.path.name, sample_id=name if bare else f"{folder.path.name}/{name}"
        )
        for folder in folders
        for name in folder.images
    ]
    return sorted(samples, key=lambda s: (_class_sort_key(s.class_id, class_id_rule), s.sample_id))


def _layout_error(root: Path, problem: str, rule: str, hint: str = "") -> DatasetLayoutError:
    """Build an error that names the path, says what is wrong and shows the expected layout."""
    placeholder, example = _EXAMPLES[rule]
    message = (
        f"{problem}. Expected layout: {root}/{placeholder}/<image>, e.g. {root}/{example} "
        f"(one folder per class, images directly inside)."
    )
    return DatasetLayoutError(f"{message} {hint}".strip())


def _visible_entries(directory: Path) -> list[os.DirEntry[str]]:
    """Entries of ``directory`` whose names do not start with '.', sorted by name."""
    with os.scandir(directory) as entries:
        return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """True for a directory or a symlink to one."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _read_class_folders(root: Path, rule: str) -> list[_ClassFolder]:
    """Check the root itself and read every visible sub-directory as a candidate class folder."""
    if not root.exists():
        raise _layout_error(root, f"dataset root {root} does not exist", rule)
    if not root.is_dir():
        raise _layout_error(root, f"dataset root {root} is not a directory", rule)
    entries = _visible_entries(root)
    loose_images = [e.name for e in entries if not _is_dir(e) and is_image_file(e.name)]
    if loose_images:
        raise _layout_error(
            root,
            f"{root} is a flat folder: {len(loose_images)} image(s) lie directly in it "
            f"({_preview(loose_images)}), but images must be inside one sub-folder per class",
            rule,
        )
    folders = []
    for entry in entries:
        if not _is_dir(entry):
            continue
        children = _visible_entries(Path(entry.path))
        subdirs = [c.name for c in children if _is_dir(c)]
        files = [c.name for c in children if not _is_dir(c)]
        folders.append(
            _ClassFolder(
                path=root / entry.name,
                images=[n for n in files if is_image_file(n)],
                others=[n for n in files if not is_image_file(n)],
                subdirs=subdirs,
            )
        )
    if not folders:
        raise _layout_error(root, f"no images and no class folders found in {root}", rule)
    return folders


def _check_nesting(root: Path, folders: list[_ClassFolder], rule: str) -> None:
    """Reject class folders that contain sub-directories, suggesting the root that was probably meant."""
    nested = [f for f in folders if f.subdirs]
    if not nested:
        return
    shown = ", ".join(f"{f.path.name}/{f.subdirs[0]}/" for f in nested[:_SHOW])
    if any(f.images for f in folders):
        raise _layout_error(
            root,
            f"{len(nested)} class folder(s) in {root} contain sub-directories ({shown})",
            rule,
            "Class folders must hold image files directly, without further nesting.",
        )
    candidates = _candidate_roots(root, rule)
    hint = "Did you mean to pass " + " or ".join(str(c) for c in candidates) + " as the root?" if candidates else ""
    raise _layout_error(
        root,
        f"{root} has no class folders with images, only folders of folders ({shown}): "
        "the root is probably one or more levels too high",
        rule,
        hint,
    )


def _candidate_roots(root: Path, rule: str, max_depth: int = 3, limit: int = 3) -> list[Path]:
    """Directories below ``root`` whose sub-folders match ``rule`` and directly hold images."""
    found: list[Path] = []
    frontier = [root]
    for _ in range(max_depth):
        next_frontier: list[Path] = []
        for directory in frontier:
            for entry in _visible_entries(directory):
                if not _is_dir(entry):
                    continue
                child = Path(entry.path)
                if _looks_like_dataset_root(child, rule):
                    found.append(child)
                    if len(found) >= limit:
                        return found
                else:
                    next_frontier.append(child)
        frontier = next_frontier
    return found


def _looks_like_dataset_root(directory: Path, rule: str) -> bool:
    """True when some sub-folder of ``directory`` has a class-like name and directly holds an image."""
    for entry in _visible_entries(directory):
        if _is_dir(entry) and _name_ok(entry.name, rule):
            with os.scandir(entry.path) as files:
                if any(is_image_file(f.name) and not _is_dir(f) for f in files):
                    return True
    return False


def _name_ok(name: str, rule: str) -> bool:
    """Whether a class folder name follows ``rule``."""
    if rule == "wnid":
        return WNID_PATTERN.fullmatch(name) is not None
    if rule == "integer":
        return _INTEGER_PATTERN.fullmatch(name) is not None
    return True


def _check_class_names(root: Path, names: list[str], rule: str) -> None:
    """Reject class folder names that break ``rule`` (and integer names that collide, like 1 and 01)."""
    bad = [n for n in names if not _name_ok(n, rule)]
    if bad:
        hint = ""
        if rule == "wnid" and all(_INTEGER_PATTERN.fullmatch(n) for n in bad):
            hint = (
                "These look like ImageNetV2-style integer class folders (0..999); "
                'scan them with class_id_rule="integer" so they are ordered numerically.'
            )
        elif rule == "integer" and all(WNID_PATTERN.fullmatch(n) for n in bad):
            hint = 'These look like WordNet ids; scan them with class_id_rule="wnid".'
        expected = "WordNet ids like n01440764" if rule == "wnid" else "non-negative integers like 0, 1, 10"
        raise _layout_error(
            root,
            f"{len(bad)} class folder name(s) in {root} are not {expected}: {_preview(bad)}",
            rule,
            hint,
        )
    if rule == "integer":
        by_value: dict[int, list[str]] = defaultdict(list)
        for name in names:
            by_value[int(name)].append(name)
        clashes = [" and ".join(v) for v in by_value.values() if len(v) > 1]
        if clashes:
            raise _layout_error(root, f"class folders in {root} name the same integer class: {_preview(clashes)}", rule)


def _check_contents(root: Path, folders: list[_ClassFolder], rule: str) -> None:
    """Reject non-image files in class folders, a dataset without images, and empty class folders."""
    others = [f"{f.path.name}/{n}" for f in folders for n in f.others]
    if others:
        raise _layout_error(
            root,
            f"{len(others)} non-image file(s) inside class folders of {root}: {_preview(others)}; "
            f"only {', '.join(sorted(IMAGE_EXTENSIONS))} files (any case) are read, so move or remove them",
            rule,
        )
    if not any(f.images for f in folders):
        raise _layout_error(root, f"no images found in any of the {len(folders)} class folder(s) of {root}", rule)
    empty = [f.path.name for f in folders if not f.images]
    if empty:
        raise _layout_error(root, f"{len(empty)} empty class folder(s) in {root}: {_preview(empty)}", rule)


def _names_are_unique(folders: list[_ClassFolder]) -> bool:
    """Whether every file name occurs once in the dataset (ImageNet val: yes; ImageNet-R, PUG: no)."""
    names = [name for folder in folders for name in folder.images]
    return len(names) == len(set(names))


def _class_sort_key(class_id: str, rule: str) -> tuple[int, str]:
    """Numeric order for integer class folders, string order otherwise."""
    return (int(class_id), class_id) if rule == "integer" else (0, class_id)


def _preview(items: Iterable[str]) -> str:
    """The first few items, comma-separated, with a count of the rest."""
    items = list(items)
    shown = ", ".join(items[:_SHOW])
    return shown if len(items) <= _SHOW else f"{shown}, ... ({len(items) - _SHOW} more)"
