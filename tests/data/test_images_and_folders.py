"""Tests for image decoding, class-folder scanning and the seeded demo dataset (PROTOCOL.md §1.3, §2.1)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from beyond_imagenet.base.errors import DatasetLayoutError, ImageDecodeError
from beyond_imagenet.data.decode import decode_rgb
from beyond_imagenet.data.demo import imagenet_val
from beyond_imagenet.data.demo.imagenet_val import generate_demo_split
from beyond_imagenet.data.folders import (
    IMAGE_EXTENSIONS,
    WNID_PATTERN,
    FolderSample,
    scan_class_folders,
)

WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361", "n01494475", "n01496331"]


# --------------------------------------------------------------------------------------------- helpers


def _png16(array: np.ndarray, color_type: int) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB or LA): 0 gray, 2 RGB, 4 gray+alpha."""
    height, width = array.shape[:2]
    rows = array.reshape(height, -1).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _save(image: Image.Image, path: Path, fmt: str, **kwargs: object) -> Path:
    image.save(path, format=fmt, **kwargs)
    return path


def _rgb(path: Path) -> np.ndarray:
    image = decode_rgb(path)
    assert image.mode == "RGB"
    return np.asarray(image)


def _gradient16(height: int = 4, width: int = 256) -> np.ndarray:
    """16-bit values covering the full range: v[r, c] = (c * 257 + r * 64) clipped to 65535."""
    values = np.arange(width)[None, :] * 257 + np.arange(height)[:, None] * 64
    return np.clip(values, 0, 65535).astype(np.uint16)


def _touch_images(root: Path, relative: list[str]) -> None:
    for rel in relative:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not decoded by the scanner")


def _sha256_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------------------------------------- decode


def test_truncated_images_are_not_tolerated_globally() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_rgb_jpeg_keeps_size_and_colour(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (31, 17), (200, 30, 90)), tmp_path / "a.JPEG", "JPEG", quality=95)
    out = decode_rgb(path)
    assert out.size == (31, 17)
    assert np.abs(np.asarray(out).astype(int) - [200, 30, 90]).max() <= 3


def test_grayscale_l_is_replicated(tmp_path: Path) -> None:
    gray = np.arange(35, dtype=np.uint8).reshape(5, 7) * 7
    out = _rgb(_save(Image.fromarray(gray), tmp_path / "l.png", "PNG"))
    assert out.shape == (5, 7, 3)
    assert (out == gray[..., None]).all()


def test_la_drops_alpha_without_compositing(tmp_path: Path) -> None:
    image = Image.new("LA", (6, 4), (100, 0))
    image.putpixel((1, 2), (37, 255))
    out = _rgb(_save(image, tmp_path / "la.png", "PNG"))
    assert out[0, 0].tolist() == [100, 100, 100]  # fully transparent, not composited on black or white
    assert out[2, 1].tolist() == [37, 37, 37]


def test_one_bit_becomes_black_and_white(tmp_path: Path) -> None:
    bits = np.zeros((4, 8), dtype=bool)
    bits[:, ::2] = True
    out = _rgb(_save(Image.fromarray(bits), tmp_path / "bits.png", "PNG"))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [0, 0, 0]


def _palette_image() -> Image.Image:
    image = Image.new("P", (4, 2), 0)
    image.putpalette([10, 20, 30, 200, 100, 50, 0, 255, 0] + [0] * (253 * 3))
    image.putpixel((1, 0), 1)
    image.putpixel((2, 1), 2)
    return image


@pytest.mark.parametrize(
    ("name", "fmt", "transparency"),
    [
        ("p.png", "PNG", 1),
        ("p_bytes.png", "PNG", b"\x00\x80\xff"),
        ("p.gif", "GIF", 1),
        ("p_none.png", "PNG", None),
    ],
)
def test_palette_with_and_without_transparency(
    tmp_path: Path, name: str, fmt: str, transparency: int | bytes | None
) -> None:
    kwargs = {} if transparency is None else {"transparency": transparency}
    path = _save(_palette_image(), tmp_path / name, fmt, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "transparency expressed in bytes" warning either
        out = _rgb(path)
    assert out[0, 0].tolist() == [10, 20, 30]
    assert out[0, 1].tolist() == [200, 100, 50]  # the transparent index keeps its palette colour
    assert out[1, 2].tolist() == [0, 255, 0]


def test_rgba_drops_alpha_like_convert(tmp_path: Path) -> None:
    rgba = np.zeros((3, 5, 4), dtype=np.uint8)
    rgba[..., :3] = [10, 20, 30]
    rgba[1, 1] = [250, 128, 1, 255]
    path = _save(Image.fromarray(rgba), tmp_path / "rgba.png", "PNG")
    out = _rgb(path)
    assert out[0, 0].tolist() == [10, 20, 30]  # alpha 0 ignored
    assert out[1, 1].tolist() == [250, 128, 1]
    with Image.open(path) as reference:
        assert (out == np.asarray(reference.convert("RGB"))).all()


def test_cmyk_jpeg_matches_official_convert(tmp_path: Path) -> None:
    path = _save(Image.new("CMYK", (16, 8), (0, 255, 0, 0)), tmp_path / "cmyk.jpg", "JPEG", quality=95)
    with Image.open(path) as raw:
        assert raw.mode == "CMYK"
        reference = np.asarray(raw.convert("RGB"))
    out = _rgb(path)
    assert out.shape == (8, 16, 3)
    assert (out == reference).all()
    assert np.abs(out[4, 8].astype(int) - [255, 0, 255]).max() <= 3  # zero magenta ink absent -> magenta


def test_ycbcr_jpeg_is_rgb(tmp_path: Path) -> None:
    source = Image.new("RGB", (16, 16), (30, 160, 220))
    path = _save(source.convert("YCbCr"), tmp_path / "ycc.jpg", "JPEG", quality=95)
    out = _rgb(path)
    assert np.abs(out.astype(int) - [30, 160, 220]).max() <= 4


def test_sixteen_bit_gray_png_scales_by_bit_depth(tmp_path: Path) -> None:
    values = _gradient16()
    path = _save(Image.fromarray(values), tmp_path / "g16.png", "PNG")
    with Image.open(path) as raw:
        assert raw.mode == "I;16"
        clipped = np.asarray(raw.convert("L"))
    assert (clipped == 255).mean() > 0.9  # why Pillow's convert is not used
    out = _rgb(path)
    for row, col in [(0, 0), (0, 1), (1, 100), (2, 128), (3, 255)]:
        assert out[row, col].tolist() == [int(values[row, col]) >> 8] * 3
    assert (out[..., 0] == values >> 8).all()


def test_sixteen_bit_big_endian_tiff(tmp_path: Path) -> None:
    values = _gradient16()
    image = Image.frombytes("I;16B", (values.shape[1], values.shape[0]), values.astype(">u2").tobytes())
    path = _save(image, tmp_path / "g16b.tif", "TIFF")
    with Image.open(path) as raw:
        assert raw.mode == "I;16B"
    assert (_rgb(path)[..., 1] == values >> 8).all()


def test_thirty_two_bit_integer_tiff_uses_declared_depth(tmp_path: Path) -> None:
    values = np.array([[0, 1 << 23, 200 << 23, 2**31 - 1, -5]], dtype=np.int32)
    path = _save(Image.fromarray(values), tmp_path / "i32.tif", "TIFF")
    with Image.open(path) as raw:
        assert raw.mode == "I"
        assert (raw.tag_v2[258], raw.tag_v2[339]) == ((32,), (2,))  # Pillow writes mode I as signed 32-bit
    assert _rgb(path)[0, :, 0].tolist() == [0, 1, 200, 255, 0]


def test_sixteen_bit_pgm_arrives_as_mode_i(tmp_path: Path) -> None:
    values = _gradient16(2, 16)
    path = tmp_path / "g16.pgm"
    path.write_bytes(b"P5\n16 2\n65535\n" + values.astype(">u2").tobytes())
    with Image.open(path) as raw:
        assert raw.mode == "I"
    assert (_rgb(path)[..., 2] == values >> 8).all()


def test_float_tiff_in_unit_range_and_beyond(tmp_path: Path) -> None:
    unit = np.array([[0.0, 0.25, 0.5, 1.0]], dtype=np.float32)
    out = _rgb(_save(Image.fromarray(unit), tmp_path / "f.tif", "TIFF"))
    assert out[0, :, 0].tolist() == [0, 64, 128, 255]
    wide = np.array([[-3.0, 12.4, 200.6, 300.0]], dtype=np.float32)
    out = _rgb(_save(Image.fromarray(wide), tmp_path / "w.tif", "TIFF"))
    assert out[0, :, 0].tolist() == [0, 12, 201, 255]


def test_sixteen_bit_rgb_png_keeps_high_byte(tmp_path: Path) -> None:
    rgb = np.stack([_gradient16(), _gradient16()[:, ::-1], np.full((4, 256), 0x1234, np.uint16)], axis=-1)
    path = tmp_path / "rgb16.png"
    path.write_bytes(_png16(rgb, color_type=2))
    with Image.open(path) as raw:
        assert raw.mode == "RGB"  # Pillow reads 16-bit truecolour PNGs as 8-bit RGB
    out = _rgb(path)
    assert (out == (rgb >> 8)).all()
    assert out[0, 0].tolist() == [0, 255, 0x12]


def test_sixteen_bit_gray_alpha_png(tmp_path: Path) -> None:
    gray = _gradient16(2, 8)
    path = tmp_path / "la16.png"
    path.write_bytes(_png16(np.stack([gray, np.zeros_like(gray)], axis=-1), color_type=4))
    out = _rgb(path)
    assert (out == (gray >> 8)[..., None]).all()


def test_png_named_jpeg_decodes_by_content(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    png = _save(Image.fromarray(pixels), tmp_path / "x.png", "PNG")
    disguised = tmp_path / "x.JPEG"
    disguised.write_bytes(png.read_bytes())
    assert (_rgb(disguised) == pixels).all()
    assert (_rgb(disguised) == _rgb(png)).all()


def test_exif_orientation_is_not_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = _save(Image.new("RGB", (40, 20), (0, 0, 255)), tmp_path / "rot.jpg", "JPEG", exif=exif)
    assert decode_rgb(path).size == (40, 20)


def test_animated_gif_reads_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert _rgb(path)[0, 0].tolist() == [255, 0, 0]


@pytest.fixture
def jpeg_bytes() -> bytes:
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("empty.JPEG", lambda jpeg: b"", "empty"),
        ("half.JPEG", lambda jpeg: jpeg[: len(jpeg) // 2], "truncated"),
        ("garbage.JPEG", lambda jpeg: np.random.default_rng(2).bytes(4096), "not a recognised image"),
        ("text.png", lambda jpeg: b"hello, I am not a PNG\n" * 10, "not a recognised image"),
    ],
)
def test_bad_files_raise_with_path(tmp_path: Path, jpeg_bytes: bytes, name: str, make, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(make(jpeg_bytes))
    with pytest.raises(ImageDecodeError) as info:
        decode_rgb(path)
    assert info.value.path == str(path)
    assert reason in info.value.reason
    assert str(path) in str(info.value)


def test_truncated_png_raises(tmp_path: Path) -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (80, 80, 3), dtype=np.uint8)
    data = _save(Image.fromarray(pixels), tmp_path / "full.png", "PNG").read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError) as info:
        decode_rgb(path)
    assert info.value.path == str(path)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="file not found"):
        decode_rgb(tmp_path / "nope.JPEG")


def test_decompression_bomb_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(Image.new("L", (100, 100)), tmp_path / "bomb.png", "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 pixels > 2 x limit
    with pytest.raises(ImageDecodeError, match="decompression bomb") as info:
        decode_rgb(path)
    assert info.value.path == str(path)


# --------------------------------------------------------------------------------------------- folders


def test_constants() -> None:
    assert WNID_PATTERN.fullmatch("n01440764")
    assert not WNID_PATTERN.fullmatch("n0144076")
    assert {".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm"} == IMAGE_EXTENSIONS


def test_scan_sorted_samples_and_ids(tmp_path: Path) -> None:
    root = tmp_path / "val"
    _touch_images(
        root,
        [
            "n01443537/ILSVRC2012_val_00000003.JPEG",
            "n01440764/ILSVRC2012_val_00000293.JPEG",
            "n01440764/ILSVRC2012_val_00000002.jpeg",
            "n01440764/.DS_Store",
            ".cache/ignored.JPEG",
            "n01443537/b.PNG",
            "LICENSE.txt",  # non-image files at the root are not classes: ignored
        ],
    )
    samples = scan_class_folders(root)
    assert [(s.class_id, s.sample_id) for s in samples] == [
        ("n01440764", "ILSVRC2012_val_00000002.jpeg"),
        ("n01440764", "ILSVRC2012_val_00000293.JPEG"),
        ("n01443537", "ILSVRC2012_val_00000003.JPEG"),
        ("n01443537", "b.PNG"),
    ]
    assert samples[1] == FolderSample(
        root / "n01440764/ILSVRC2012_val_00000293.JPEG", "n01440764", "ILSVRC2012_val_00000293.JPEG"
    )
    assert scan_class_folders(str(root)) == samples


def test_integer_rule_sorts_numerically(tmp_path: Path) -> None:
    root = tmp_path / "imagenetv2-matched-frequency-format-val"
    _touch_images(root, [f"{k}/img{k}.jpeg" for k in [10, 2, 0, 1, 9, 100, 11]])
    samples = scan_class_folders(root, class_id_rule="integer")
    assert [s.class_id for s in samples] == ["0", "1", "2", "9", "10", "11", "100"]
    assert sorted(s.class_id for s in samples) != [s.class_id for s in samples]  # not lexicographic


def test_integer_rule_rejects_clashing_names(tmp_path: Path) -> None:
    _touch_images(tmp_path / "v2", ["1/a.jpeg", "01/b.jpeg"])
    with pytest.raises(DatasetLayoutError, match="same integer class"):
        scan_class_folders(tmp_path / "v2", class_id_rule="integer")


def test_any_rule_accepts_any_names(tmp_path: Path) -> None:
    _touch_images(tmp_path / "cue", ["knife/k1.png", "airplane/a1.png"])
    assert [s.class_id for s in scan_class_folders(tmp_path / "cue", "any")] == ["airplane", "knife"]


def _layout_error(root: Path, rule: str = "wnid") -> str:
    with pytest.raises(DatasetLayoutError) as info:
        scan_class_folders(root, rule)  # type: ignore[arg-type]
    message = str(info.value)
    assert str(root) in message
    assert "Expected layout" in message
    return message


def test_missing_root(tmp_path: Path) -> None:
    message = _layout_error(tmp_path / "absent")
    assert "does not exist" in message
    assert "<wnid>/<image>" in message
    assert "n01440764/ILSVRC2012_val_00000293.JPEG" in message


def test_root_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "val.tar"
    path.write_bytes(b"x")
    assert "not a directory" in _layout_error(path)


def test_flat_folder(tmp_path: Path) -> None:
    _touch_images(tmp_path / "flat", ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"])
    message = _layout_error(tmp_path / "flat")
    assert "flat folder" in message
    assert "ILSVRC2012_val_00000001.JPEG" in message


def test_empty_root(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert "no images" in _layout_error(tmp_path / "empty")


def test_integer_folders_under_wnid_rule_suggest_integer(tmp_path: Path) -> None:
    _touch_images(tmp_path / "v2", ["0/a.jpeg", "1/b.jpeg", "10/c.jpeg"])
    message = _layout_error(tmp_path / "v2")
    assert "ImageNetV2" in message
    assert 'class_id_rule="integer"' in message


def test_misnamed_class_folders(tmp_path: Path) -> None:
    _touch_images(tmp_path / "val", ["n01440764/a.JPEG", "goldfish/b.JPEG"])
    message = _layout_error(tmp_path / "val")
    assert "goldfish" in message
    assert "integer" not in message


def test_wnid_folders_under_integer_rule(tmp_path: Path) -> None:
    _touch_images(tmp_path / "val", ["n01440764/a.JPEG"])
    assert 'class_id_rule="wnid"' in _layout_error(tmp_path / "val", "integer")


def test_root_one_level_too_high_suggests_right_root(tmp_path: Path) -> None:
    _touch_images(tmp_path / "imagenet", ["val/n01440764/a.JPEG", "val/n01443537/b.JPEG"])
    message = _layout_error(tmp_path / "imagenet")
    assert "too high" in message
    assert f"Did you mean to pass {tmp_path / 'imagenet' / 'val'} as the root?" in message


def test_imagenet_c_root_suggests_a_severity_folder(tmp_path: Path) -> None:
    _touch_images(tmp_path / "imagenet-c", ["fog/3/n01440764/a.JPEG", "fog/5/n01440764/a.JPEG"])
    message = _layout_error(tmp_path / "imagenet-c")
    assert str(tmp_path / "imagenet-c" / "fog" / "3") in message


def test_nesting_inside_class_folder(tmp_path: Path) -> None:
    _touch_images(tmp_path / "val", ["n01440764/a.JPEG", "n01443537/extra/b.JPEG"])
    message = _layout_error(tmp_path / "val", "any")
    assert "1 class folder(s)" in message
    assert "n01443537/extra/" in message
    assert "Did you mean" not in message


def test_empty_class_folder(tmp_path: Path) -> None:
    _touch_images(tmp_path / "val", ["n01440764/a.JPEG"])
    (tmp_path / "val" / "n01443537").mkdir()
    message = _layout_error(tmp_path / "val")
    assert "empty class folder" in message
    assert "n01443537" in message


def test_class_folders_without_any_image(tmp_path: Path) -> None:
    for wnid in WNIDS[:2]:
        (tmp_path / "val" / wnid).mkdir(parents=True)
    assert "no images found in any of the 2 class folder" in _layout_error(tmp_path / "val")


def test_non_image_files_are_listed(tmp_path: Path) -> None:
    _touch_images(tmp_path / "val", ["n01440764/a.JPEG", "n01440764/labels.txt", "n01443537/b.JPEG.part"])
    message = _layout_error(tmp_path / "val")
    assert "2 non-image file(s)" in message
    assert "n01440764/labels.txt" in message
    assert "n01443537/b.JPEG.part" in message


def test_file_names_repeated_across_classes_get_class_qualified_ids(tmp_path: Path) -> None:
    # ImageNet-R has art_0.jpg in many class folders: ids become <class>/<file> for every sample
    _touch_images(tmp_path / "r", ["n01440764/same.JPEG", "n01443537/same.JPEG", "n01443537/other.JPEG"])
    ids = [s.sample_id for s in scan_class_folders(tmp_path / "r")]
    assert ids == ["n01440764/same.JPEG", "n01443537/other.JPEG", "n01443537/same.JPEG"]


# ------------------------------------------------------------------------------------------------ demo

NAME = re.compile(r"ILSVRC2012_val_(\d{8})\.JPEG")


@pytest.fixture(scope="module")
def demo_split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("demo") / "val"
    return root, generate_demo_split(root, WNIDS, images_per_class=8, seed=7)


def test_demo_layout_names_and_counts(demo_split: tuple[Path, list[Path]]) -> None:
    root, paths = demo_split
    assert len(paths) == len(WNIDS) * 8
    assert sorted(p.name for p in root.iterdir()) == WNIDS
    indices = sorted(int(NAME.fullmatch(p.name).group(1)) for p in paths)  # type: ignore[union-attr]
    assert indices == list(range(1, len(paths) + 1))
    for wnid in WNIDS:
        assert len(list((root / wnid).iterdir())) == 8
    first_class = sorted(int(p.name[15:23]) for p in paths if p.parent.name == WNIDS[0])
    assert first_class != list(range(1, 9))  # indices are dealt in a shuffled order across classes
    samples = scan_class_folders(root)
    assert [s.path for s in samples] == paths


def test_demo_files_are_plain_jpegs_of_imagenet_sizes(demo_split: tuple[Path, list[Path]]) -> None:
    for path in demo_split[1]:
        assert path.read_bytes()[:3] == b"\xff\xd8\xff"
        with Image.open(path) as image:
            assert (image.format, image.mode) == ("JPEG", "RGB")
            assert 250 <= image.width <= 500 and 250 <= image.height <= 500
            assert len(image.getexif()) == 0
            assert "exif" not in image.info


def test_demo_size_mix_has_portrait_and_square() -> None:
    rng = np.random.default_rng(0)
    sizes = [imagenet_val._image_size(rng) for _ in range(300)]
    assert all(250 <= w <= 500 and 250 <= h <= 500 for w, h in sizes)
    landscape = sum(w > h for w, h in sizes)
    portrait = sum(w < h for w, h in sizes)
    square = sum(w == h for w, h in sizes)
    assert landscape > portrait > square > 0


def test_demo_content_depends_on_class(demo_split: tuple[Path, list[Path]]) -> None:
    means: dict[str, list[np.ndarray]] = {}
    for path in demo_split[1]:
        means.setdefault(path.parent.name, []).append(np.asarray(decode_rgb(path), dtype=float).mean((0, 1)))
    centroids = {k: np.mean(v, axis=0) for k, v in means.items()}
    within = np.mean([np.linalg.norm(m - centroids[k]) for k, v in means.items() for m in v])
    keys = sorted(centroids)
    between = min(np.linalg.norm(centroids[a] - centroids[b]) for i, a in enumerate(keys) for b in keys[i + 1 :])
    assert between > 2 * within
    nearest = [min(keys, key=lambda c: np.linalg.norm(m - centroids[c])) == k for k, v in means.items() for m in v]
    assert np.mean(nearest) >= 0.95


def test_demo_is_byte_deterministic_and_seed_dependent(tmp_path: Path) -> None:
    first = generate_demo_split(tmp_path / "a", WNIDS[:3], 3, seed=11)
    generate_demo_split(tmp_path / "b", WNIDS[:3], 3, seed=11)
    generate_demo_split(tmp_path / "c", WNIDS[:3], 3, seed=12)
    hashes = {name: _sha256_tree(tmp_path / name) for name in "abc"}
    assert len(hashes["a"]) == len(first) == 9
    assert hashes["a"] == hashes["b"]
    assert set(hashes["a"].values()).isdisjoint(hashes["c"].values())


def test_demo_first_index(tmp_path: Path) -> None:
    paths = generate_demo_split(tmp_path / "v", WNIDS[:2], 2, seed=0, first_index=49_999)
    assert sorted(p.name for p in paths) == [
        "ILSVRC2012_val_00049999.JPEG",
        "ILSVRC2012_val_00050000.JPEG",
        "ILSVRC2012_val_00050001.JPEG",
        "ILSVRC2012_val_00050002.JPEG",
    ]


def test_demo_rerun_is_idempotent_and_resumes(tmp_path: Path) -> None:
    root = tmp_path / "val"
    paths = generate_demo_split(root, WNIDS[:2], 3, seed=5)
    before = {p: p.stat().st_mtime_ns for p in paths}
    hashes = _sha256_tree(root)
    paths[0].unlink()
    stale = paths[1].with_name(f".{paths[1].name}.999.tmp")
    stale.write_bytes(b"partial")
    assert generate_demo_split(root, WNIDS[:2], 3, seed=5) == paths
    assert _sha256_tree(root) == hashes  # the deleted file is back, byte-identical; the temp file is gone
    assert all(p.stat().st_mtime_ns == before[p] for p in paths[1:])  # untouched


def test_demo_refuses_foreign_directory(tmp_path: Path) -> None:
    root = tmp_path / "val"
    _touch_images(root, ["n09999999/mine.JPEG"])
    with pytest.raises(DatasetLayoutError, match="refusing to mix"):
        generate_demo_split(root, WNIDS[:2], 2, seed=0)
    assert sorted(os.listdir(root)) == ["n09999999"]  # nothing was written


def test_demo_refuses_other_parameters_in_same_directory(tmp_path: Path) -> None:
    root = tmp_path / "val"
    generate_demo_split(root, WNIDS[:1], 2, seed=0)
    with pytest.raises(DatasetLayoutError, match="different content"):
        generate_demo_split(root, WNIDS[:1], 2, seed=1)  # same file names, other pixels
    with pytest.raises(DatasetLayoutError, match="refusing to mix"):
        generate_demo_split(root, WNIDS[:1], 1, seed=0)


@pytest.mark.parametrize(
    ("wnids", "per_class", "seed", "first"),
    [
        (["cat"], 1, 0, 1),
        (WNIDS[:1] * 2, 1, 0, 1),
        (WNIDS[:1], 0, 0, 1),
        (WNIDS[:1], 1, -1, 1),
        (WNIDS[:1], 2, 0, 0),
    ],
)
def test_demo_rejects_bad_arguments(tmp_path: Path, wnids: list[str], per_class: int, seed: int, first: int) -> None:
    with pytest.raises(ValueError):
        generate_demo_split(tmp_path / "v", wnids, per_class, seed, first_index=first)
