"""beyond-imagenet: compare vision backbones on what ImageNet accuracy hides.

Reproduces and extends Vishniakov, Shen & Liu, "ConvNet vs Transformer, Supervised vs CLIP:
Beyond ImageNet Accuracy" (ICML 2024). See README.md for the data flow.
"""

__version__ = "0.1.0"

# torchvision's compiled ops may not match a CPU torch build; the shim must run before timm, open_clip or
# torchmetrics import torchvision, so every entry point into the package gets it.
from beyond_imagenet.base import compat  # noqa: F401
