"""The registered dataset kinds (docs/protocol.md §2.1): layout, label space and expected size of each test set.

A params entry names a kind with ``kind:`` (or by its own name); ``registry`` scans it with the kind's layout and
checks it against these expectations. Any other folder of class folders is ``image_folder``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from beyond_imagenet.data.pug import CLASS_MAP_FILE

Layout = Literal["class_folders", "imagenet_c", "pug", "parquet"]

IMAGENET_C_CORRUPTIONS: tuple[str, ...] = (  # the 15 standard corruptions, as folder names (docs/protocol.md §7.8)
    "brightness", "contrast", "defocus_blur", "elastic_transform", "fog", "frost", "gaussian_noise", "glass_blur",
    "impulse_noise", "jpeg_compression", "motion_blur", "pixelate", "shot_noise", "snow", "zoom_blur",
)  # fmt: skip
IMAGENET_C_SEVERITIES = (1, 2, 3, 4, 5)
PUG_CLASS_MAP_FILE = CLASS_MAP_FILE


@dataclass(frozen=True)
class DatasetKind:
    """Defaults and expectations for a family of on-disk datasets (docs/protocol.md §2.1)."""

    name: str
    description: str
    label_space: str
    class_folders: str
    layout: Layout = "class_folders"
    expected_images: int | None = None  # per variant for ImageNet-C, in total for PUG
    expected_classes: int | None = None
    official_wnids: str | None = None  # timm's list of the 200 wnids of IN-A / IN-R
    geometry: str = "model"
    side_files: tuple[str, ...] = ()
    balanced: bool = False  # the same number of images in every class by design: intervals resample within class


DATASET_KINDS: dict[str, DatasetKind] = {
    kind.name: kind
    for kind in (
        DatasetKind(
            "imagenet_val",
            "ImageNet-1k validation set, val/<wnid>/ILSVRC2012_val_XXXXXXXX.JPEG (docs/protocol.md §2.1)",
            "imagenet1k",
            "wnid",
            expected_images=50_000,
            expected_classes=1000,
            balanced=True,
        ),
        DatasetKind(
            "imagenet_v2",
            "ImageNetV2 matched-frequency, <k>/*.jpeg with k = 0..999 the ImageNet index (§7.2)",
            "imagenet1k",
            "integer",
            expected_images=10_000,
            expected_classes=1000,
            balanced=True,
        ),
        DatasetKind(
            "imagenet_a",
            "ImageNet-A, <wnid>/*.jpg, 200 classes; logits masked to them (§2.2, §7.3)",
            "imagenet_subset",
            "wnid",
            expected_images=7_500,
            expected_classes=200,
            official_wnids="imagenet_a_synsets.txt",
        ),
        DatasetKind(
            "imagenet_r",
            "ImageNet-R, <wnid>/*.jpg, 200 classes; logits masked to them (§2.2, §7.4)",
            "imagenet_subset",
            "wnid",
            expected_images=30_000,
            expected_classes=200,
            official_wnids="imagenet_r_synsets.txt",
        ),
        DatasetKind(
            "imagenet_hard",
            "ImageNet-Hard, local copy of HF taesiri/imagenet-hard at a pinned revision: "
            "data/validation-*.parquet, multi-label (§7.6)",
            "imagenet1k",
            "any",
            layout="parquet",
            expected_images=10_980,
        ),
        DatasetKind(
            "imagenet_sketch",
            "ImageNet-Sketch, sketch/<wnid>/*, 1000 classes (§7.5)",
            "imagenet1k",
            "wnid",
            expected_images=50_889,
            expected_classes=1000,
        ),
        DatasetKind(
            "imagenet_c",
            "ImageNet-C, <corruption>/<severity 1..5>/<wnid>/*.JPEG, 15 x 5 sets of 224 px images (§7.8)",
            "imagenet1k",
            "wnid",
            layout="imagenet_c",
            expected_images=50_000,
            expected_classes=1000,
            geometry="none",
            balanced=True,
        ),
        DatasetKind(
            "pug_imagenet",
            "PUG-ImageNet, <Factor>/<PUGClass>/<image> + class_to_imagenet_idx.json (§4)",
            "pug",
            "any",
            layout="pug",  # 88,328 renders in all; the factor subsets' sizes are not published, so not checked
            side_files=(PUG_CLASS_MAP_FILE,),
        ),
        DatasetKind(
            "cue_conflict",
            "Geirhos cue-conflict stimuli, <shape>/<shape>N-<texture>M.png, 16 x 80 images at 224 px (§6)",
            "cue_conflict",
            "any",
            expected_images=1_280,
            expected_classes=16,
            geometry="none",
            balanced=True,
        ),
        DatasetKind(
            "demo_val",
            "generated offline demo in the ImageNet-val format (`beyond-imagenet make-demo-data`)",
            "imagenet_subset",
            "wnid",
        ),
        DatasetKind(
            "image_folder",
            "any <root>/<class>/<image> folder; set label_space (imagenet1k, imagenet_subset or custom)",
            "imagenet_subset",
            "wnid",
        ),
    )
}
