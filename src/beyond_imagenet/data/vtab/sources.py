"""The VTAB image sources (docs/transfer.md §3.1, §3.5, §3.6): one set of images as tfds stores it.

Tasks that share images (CLEVR count/distance, dSprites location/orientation, smallNORB azimuth/elevation) name
the same ``ImageSource``, so features are extracted once per (backbone, source, split) (docs/transfer.md §0.5, §6).
``SOURCES`` is the declarative table: tfds builder, tfds split sizes in stored record order, the source-specific
download notes, whether the download is manual, and a torchvision loader as a hint only (its splits may differ from
VTAB's). Data only: nothing here reads a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["DSPRITES_SOURCE", "SOURCES", "ImageSource"]

DSPRITES_SOURCE = "dsprites"  # binary {0, 1} images, scaled to {0, 255} when decoded (docs/transfer.md §3.2)


@dataclass(frozen=True)
class ImageSource:
    """One set of images as tfds stores it; its tfds splits and their sizes (examples), in stored record order."""

    name: str
    tfds_builder: str
    split_sizes: Mapping[str, int]
    download: str  # how to obtain it (source-specific part of the instructions)
    manual: bool = False  # True: cannot be fetched automatically (account, licence, dead link)
    torchvision: str | None = None  # a torch loader, as a hint only (splits may differ from VTAB)
    notes: str = ""  # pre-processing that changes numbers (§3.6)

    def __hash__(self) -> int:  # the mapping fields are unhashable; names identify specs
        return hash((type(self).__name__, self.name))


def _source(name: str, builder: str, sizes: Mapping[str, int], download: str, **kw: Any) -> ImageSource:
    """One table entry, with its split sizes frozen."""
    return ImageSource(name, builder, MappingProxyType(dict(sizes)), download, **kw)


SOURCES: Mapping[str, ImageSource] = MappingProxyType(
    {
        s.name: s
        for s in (
            _source(
                "caltech101",
                "caltech101:3.*",
                {"train": 3060, "test": 6084},
                "tfds downloads it; the upstream URL has churned, check it.",
                torchvision="Caltech101 (no split; VTAB's 30-per-class train set is tfds-specific)",
            ),
            _source(
                "cifar100",
                "cifar100:3.*",
                {"train": 50000, "test": 10000},
                "tfds downloads it.",
                torchvision="CIFAR100",
            ),
            _source(
                "cifar10", "cifar10:3.*", {"train": 50000, "test": 10000}, "tfds downloads it.", torchvision="CIFAR10"
            ),
            _source(
                "dtd",
                "dtd:3.*",
                {"train": 1880, "validation": 1880, "test": 1880},
                "tfds downloads it (official fold 1).",
                torchvision="DTD(partition=1) (exact)",
            ),
            _source(
                "oxford_flowers102",
                "oxford_flowers102:2.*",
                {"train": 1020, "validation": 1020, "test": 6149},
                "tfds downloads it.",
                torchvision="Flowers102 (exact)",
            ),
            _source(
                "oxford_iiit_pet",
                "oxford_iiit_pet:3.*",
                {"train": 3680, "test": 3669},
                "tfds downloads it.",
                torchvision="OxfordIIITPet (trainval / test exact; val carved)",
            ),
            _source(
                "svhn_cropped",
                "svhn_cropped:3.*",
                {"train": 73257, "test": 26032},
                "tfds downloads it (the `extra` split is not used).",
                torchvision="SVHN",
            ),
            _source(
                "sun397",
                "sun397/tfds:4.*",
                {"train": 76128, "validation": 10875, "test": 21750},
                "tfds downloads it (about 37 GB; tfds has a known undecodable image). Never use torchvision's "
                "SUN397 for a probe: it has no split, so train and test would be the same images.",
            ),
            _source(
                "patch_camelyon",
                "patch_camelyon:2.*",
                {"train": 262144, "validation": 32768, "test": 32768},
                "tfds downloads it (7.48 GiB).",
                torchvision="PCAM (exact; needs h5py and a Google-Drive download)",
            ),
            _source(
                "eurosat_rgb",
                "eurosat/rgb:2.*",
                {"train": 27000},
                "tfds downloads it.",
                torchvision="EuroSAT (no split)",
            ),
            _source(
                "resisc45",
                "resisc45:3.*",
                {"train": 31500},
                "MANUAL: download NWPU-RESISC45.rar from the authors' OneDrive into tfds's manual_dir and run "
                "`download_and_prepare` (CLIP_benchmark's auto-wget link may be dead; the torchgeo mirror is "
                "CC-BY-NC and uses its own split), or use the clip-benchmark/wds_vtab-resisc45 mirror (layout 'wds').",
                manual=True,
            ),
            _source(
                "diabetic_retinopathy",
                "diabetic_retinopathy_detection/btgraham-300:3.*",
                {"train": 35126, "validation": 10906, "test": 42670},
                "MANUAL: needs a Kaggle account and acceptance of the diabetic-retinopathy-detection competition "
                "rules; put the Kaggle files in tfds's manual_dir and run `download_and_prepare` of the "
                "btgraham-300 config (B. Graham preprocessing; needs OpenCV and hours of CPU; about 80-90 GB raw), "
                "or use the clip-benchmark/wds_vtab-diabetic_retinopathy mirror (layout 'wds').",
                manual=True,
            ),
            _source(
                "clevr",
                "clevr:3.*",
                {"train": 70000, "validation": 15000, "test": 15000},
                "tfds downloads it (17.7 GiB). The test split has no scene labels and is not used.",
                torchvision="CLEVRClassification (count only; distance needs pixel_coords from the scenes JSON)",
                notes="480x320: the centre crop loses the sides.",
            ),
            _source(
                "dmlab",
                "dmlab:2.0.1",
                {"train": 65550, "validation": 22628, "test": 22735},
                "tfds downloads it (about 3 GB; about 14 GB as PNG parquet). No torch loader exists.",
                notes="480x360: the centre crop loses the sides.",
            ),
            _source(
                "kitti",
                "kitti:3.3.0",
                {"train": 6347, "validation": 423, "test": 711},
                "tfds downloads it (about 12 GB). VTAB used kitti:3.1.0, CLIP_benchmark pins kitti:3.3.0.",
                torchvision="Kitti (7,481 labelled frames; tfds's split must be ported)",
                notes="1242x375: the centre crop keeps only the central ~30 % of the width.",
            ),
            _source(
                "dsprites",
                "dsprites:2.*",
                {"train": 737280},
                "tfds downloads it (27 MB). No torch loader; the raw npz is deepmind/dsprites-dataset.",
                notes="64x64x1 in {0,1}: tile to 3 channels and multiply by 255. Store the raw 32/40 latents.",
            ),
            _source(
                "smallnorb",
                "smallnorb:2.*",
                {"train": 24300, "test": 24300},
                "tfds downloads it (about 250 MB). No torch loader (raw NYU binary files).",
                notes="96x96x1 left-camera image tiled to 3 channels.",
            ),
        )
    }
)
