"""Import torchvision on machines where its compiled ops do not match the installed torch.

PyPI's torchvision wheel is a CUDA build; against the CPU torch wheel its compiled ops fail to register and
`import torchvision` dies on `torchvision::nms` (docs/architecture.md, environment facts). Nothing here uses those ops,
so when (and only when) the import fails that way, we declare the two op schemas it looks up and retry.
A GPU machine with matching builds imports torchvision untouched.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from types import ModuleType

_SHIM_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_shim_library = None  # kept alive: a torch.library.Library deregisters its ops when collected


def import_torchvision() -> ModuleType:
    """Return the torchvision module, declaring missing op schemas only if the plain import fails."""
    global _shim_library
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as err:
        if "torchvision::nms" not in str(err):
            raise
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _shim_library = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _SHIM_SCHEMAS:
        with contextlib.suppress(RuntimeError):  # already defined by a partial import
            _shim_library.define(schema)
    return importlib.import_module("torchvision")


import_torchvision()
