"""beyond-imagenet: compare vision backbones on what ImageNet accuracy hides.

Reproduces and extends Vishniakov, Shen & Liu, "ConvNet vs Transformer, Supervised vs CLIP:
Beyond ImageNet Accuracy" (ICML 2024). See README.md for the data flow.
"""

__version__ = "0.1.0"
