"""Small generated stand-ins for every test set of the paper, each in its real on-disk format (docs/protocol.md §2.1).

``make-demo-data`` writes them under ``data/demo/`` so that ``make demo`` runs every analysis offline:
ImageNetV2 (integer folders), ImageNet-A/-R (wnid folders of their official 200-class lists), Sketch,
ImageNet-C (15 corruptions x 5 severities of 224 px images), PUG-ImageNet (factor folders and a
``class_to_imagenet_idx.json`` with the Shirt/Sweatshirt collision), cue-conflict (``<shape>N-<texture>M.png``
at 224 px), ReaL-style labels (``real.json``) and ImageNet-X-style annotations for the demo val files.
Contents are seeded stand-ins, not the real images: numbers from them mean nothing.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from beyond_imagenet.base.files import atomic_write_text, write_if_changed
from beyond_imagenet.data.demo.imagenet_val import JPEG_SETTINGS, render_demo_pixels

CORRUPTION_SIZE = 224
DEMO_PUG_CLASS_MAP = {  # a few real PUG keys, including the official Shirt/Sweatshirt collision on 841 (§4)
    "Goldfish": [1],
    "Shirt": [841, 610],
    "Sweatshirt": [841],
    "Wolf": [269, 270, 271, 272],
}


def _encode(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    options = JPEG_SETTINGS if fmt == "JPEG" else {"optimize": False}
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _square(pixels: np.ndarray, size: int = CORRUPTION_SIZE) -> np.ndarray:
    """Shorter side to ``size``, centre crop: the geometry of ImageNet-C and cue-conflict images."""
    image = Image.fromarray(pixels)
    scale = size / min(image.size)
    image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))))
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)))


def write_class_folders(
    root: Path, classes: list[str], per_class: int, seed: int, fmt: str, suffix: str, look: Callable | None = None
) -> int:
    """Write ``root/<class>/demo_<k>_<i>.<suffix>`` (3 digits each) and return how many images were written.

    Class ``k`` gets demo look ``k``; ``look`` post-processes the pixels (e.g. ``sketchify``).
    """
    for k, class_id in enumerate(classes):
        for i in range(per_class):
            pixels = render_demo_pixels(k, len(classes), seed, 1000 * k + i)
            pixels = look(pixels) if look else pixels
            write_if_changed(root / class_id / f"demo_{k:03d}_{i:03d}.{suffix}", _encode(pixels, fmt))
    return len(classes) * per_class


def sketchify(pixels: np.ndarray) -> np.ndarray:
    """Grey edge drawing of ``pixels`` (dark lines on white, 3 channels): the demo ImageNet-Sketch look."""
    gray = np.asarray(Image.fromarray(pixels).convert("L"), dtype=np.int32)
    edges = np.abs(np.diff(gray, axis=1, prepend=gray[:, :1])) + np.abs(np.diff(gray, axis=0, prepend=gray[:1]))
    sketch = np.clip(255 - 3 * edges, 0, 255).astype(np.uint8)
    return np.repeat(sketch[..., None], 3, axis=2)


def _corrupt(pixels: np.ndarray, corruption: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A crude, seeded stand-in for each corruption family, stronger with severity."""
    x = pixels.astype(np.float64)
    if "noise" in corruption:
        x = x + rng.normal(0, 12 * severity, x.shape)
    elif "blur" in corruption or corruption in ("elastic_transform", "pixelate"):
        step = 1 + severity
        small = Image.fromarray(pixels).resize((CORRUPTION_SIZE // step,) * 2)
        x = np.asarray(small.resize((CORRUPTION_SIZE,) * 2), dtype=np.float64)
    elif corruption in ("snow", "frost", "fog", "brightness"):
        x = x + 25 * severity
    elif corruption == "contrast":
        x = (x - x.mean()) / (1 + severity) + x.mean()
    else:  # jpeg_compression
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=max(5, 60 - 11 * severity))
        x = np.asarray(Image.open(buffer), dtype=np.float64)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def write_imagenet_c(root: Path, wnids: list[str], per_class: int, seed: int, corruptions, severities) -> int:
    """Write ImageNet-C stand-ins ``<corruption>/<severity>/<wnid>/ILSVRC2012_val_*.JPEG`` at 224 px; return the count.

    Each demo image is squared to 224 px, then degraded by a crude seeded stand-in of each corruption at each severity.
    """
    count = 0
    for corruption in corruptions:
        for severity in severities:
            rng = np.random.default_rng([seed, severity, len(corruption)])
            for k, wnid in enumerate(wnids):
                for i in range(per_class):
                    base = _square(render_demo_pixels(k, len(wnids), seed, 1000 * k + i))
                    pixels = _corrupt(base, corruption, severity, rng)
                    name = f"ILSVRC2012_val_{k * per_class + i + 1:08d}.JPEG"
                    write_if_changed(root / corruption / str(severity) / wnid / name, _encode(pixels, "JPEG"))
                    count += 1
    return count


def write_pug(root: Path, factors, per_class: int, seed: int) -> int:
    """Write PUG-ImageNet stand-ins (``class_to_imagenet_idx.json``, ``<factor>/<class>/*.png``); return the count."""
    write_if_changed(root / "class_to_imagenet_idx.json", json.dumps(DEMO_PUG_CLASS_MAP, indent=1).encode())
    classes = sorted(DEMO_PUG_CLASS_MAP)
    return sum(
        write_class_folders(root / factor, classes, per_class, seed + f, "PNG", "png", _square)
        for f, factor in enumerate(factors)
    )


def write_cue_conflict(root: Path, categories: list[str], per_class: int, seed: int) -> int:
    """``<shape>/<shape>N-<texture>M.png``: the shape's look in the middle, the texture's look around it."""
    n = len(categories)
    yy, xx = np.mgrid[:CORRUPTION_SIZE, :CORRUPTION_SIZE]
    centre = (yy - 112) ** 2 + (xx - 112) ** 2 < 70**2
    for s, shape in enumerate(categories):
        for i in range(per_class):
            t = (s + i) % n  # i = 0 gives the shape == texture (non-conflict) image
            texture = categories[t]
            pixels = _square(render_demo_pixels(t, n, seed, 100 * t + i)).copy()
            pixels[centre] = _square(render_demo_pixels(s, n, seed, 100 * s + i))[centre]
            write_if_changed(root / shape / f"{shape}{i + 1}-{texture}{s + 1}.png", _encode(pixels, "PNG"))
    return n * per_class


def write_real_labels(path: Path, val_files: list[str], wnid_of: dict[str, int], seed: int) -> None:
    """Write ReaL-style labels for the demo val files to ``path``.

    ReaL format: a JSON list of 50,000 lists, entry i for ILSVRC2012_val_{i+1:08d}.JPEG. Demo files get their
    label (some none, some a second one); all other entries are empty, as unlabelled images are in ReaL.
    """
    rng = np.random.default_rng(seed)
    labels = []
    for number in range(1, 50_001):
        name = f"ILSVRC2012_val_{number:08d}.JPEG"
        draw = rng.random()
        if name not in wnid_of or draw < 0.1:
            labels.append([])
        elif draw < 0.25:
            labels.append(sorted({wnid_of[name], int(rng.integers(0, 1000))}))
        else:
            labels.append([wnid_of[name]])
    atomic_write_text(path, json.dumps(labels))


def write_imagenet_x(directory: Path, val_files: dict[str, int], factors: tuple[str, ...], seed: int) -> None:
    """ImageNet-X-style top-factor annotations (one factor per image) and a prototype list for the demo files."""
    rng = np.random.default_rng(seed)
    names = sorted(val_files)
    prototypes = set(rng.choice(names, size=max(1, len(names) // 20), replace=False).tolist())
    lines = []
    for name in names:
        row = {"file_name": name, "class": val_files[name], **dict.fromkeys(factors, 0)}
        row[factors[int(rng.integers(0, len(factors)))]] = 1
        row.update({"justification": "demo", "one_word": "demo"})
        lines.append(json.dumps(row))
    atomic_write_text(directory / "imagenet_x_val_top_factor.jsonl", "\n".join(lines) + "\n")
    atomic_write_text(directory / "prototypical_paths.csv", "\n".join(["file_name", *sorted(prototypes)]) + "\n")
    labels = ["file_name,label", *(f"{name},{val_files[name]}" for name in names)]
    atomic_write_text(directory / "filename_label.csv", "\n".join(labels) + "\n")


def write_imagenet_hard(root: Path, class_indices: list[int], per_class: int, seed: int) -> int:
    """A parquet file in the layout of HF taesiri/imagenet-hard: image {bytes, path}, label (list), origin."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    images, labels, origins = [], [], []
    for k, index in enumerate(class_indices):
        for i in range(per_class):
            pixels = render_demo_pixels(k, len(class_indices), seed, 1000 * k + i)
            images.append({"bytes": _encode(pixels, "JPEG"), "path": f"demo_{k:03d}_{i:03d}.JPEG"})
            extra = [int(rng.integers(0, 1000))] if rng.random() < 0.3 else []
            labels.append([index, *extra])
            origins.append("demo")
    table = pa.table({"image": images, "label": labels, "origin": origins})
    path = root / "data" / "validation-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    write_if_changed(path, buffer.getvalue().to_pybytes())
    return len(labels)
