"""The model libraries behind the pipeline: one module per library, each exposing ``BACKEND`` (a ModelBackend).

Every module of this package named ``*_backend.py`` is discovered and registered under the ``ModelSpec.source``
values it builds and its id prefix, so a new library is one new module (docs/architecture.md).
"""

from __future__ import annotations

import importlib
import pkgutil

from beyond_imagenet.base.errors import UnknownNameError
from beyond_imagenet.models.backends.base import ModelBackend
from beyond_imagenet.models.spec import ModelSpec


def _discover() -> list[ModelBackend]:
    modules = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_backend"))
    return [importlib.import_module(f"{__name__}.{name}").BACKEND for name in modules]


_ALL = _discover()
BACKENDS: dict[str, ModelBackend] = {source: backend for backend in _ALL for source in backend.sources}
PREFIXES: dict[str, ModelBackend] = {backend.prefix: backend for backend in _ALL if backend.prefix}


def backend_for(spec: ModelSpec) -> ModelBackend:
    """The backend that builds ``spec`` (by its ``source``)."""
    if spec.source not in BACKENDS:
        raise UnknownNameError("model source", spec.source, BACKENDS)
    return BACKENDS[spec.source]


def generic_id_forms() -> list[str]:
    """How generic ids are written, one form per library (``timm:<name>[.<tag>]``, ...)."""
    return [backend.id_help for backend in PREFIXES.values()]
