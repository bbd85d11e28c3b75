"""The model-library backends: each implements the whole ModelBackend protocol, and a new library is one new module."""

from __future__ import annotations

import importlib
import inspect
import os
import textwrap

import pytest

import beyond_imagenet.models.backends as backends
from beyond_imagenet.base.errors import UnknownNameError
from beyond_imagenet.models.backends.base import ModelBackend
from beyond_imagenet.models.catalogue import CATALOGUE, resolve_model

PROTOCOL_METHODS = [
    name for name, member in inspect.getmembers(ModelBackend) if inspect.isfunction(member) and not name.startswith("_")
]
PROTOCOL_ATTRIBUTES = ("sources", "prefix", "id_help", "feature_description")


def test_protocol_lists_what_the_pipeline_needs():
    assert set(PROTOCOL_METHODS) == {
        "resolve", "create", "wrap", "spec_at_resolution", "position_embedding", "locate_weights",
        "native_preprocessing", "tokenizer", "layer_patterns",
    }  # fmt: skip


@pytest.mark.parametrize("source", sorted(backends.BACKENDS))
def test_every_backend_implements_the_protocol(source):
    backend = backends.BACKENDS[source]
    for name in PROTOCOL_METHODS:
        method = getattr(backend, name)
        wanted = list(inspect.signature(getattr(ModelBackend, name)).parameters)[1:]
        assert list(inspect.signature(method).parameters) == wanted, name
    for name in PROTOCOL_ATTRIBUTES:
        assert hasattr(backend, name), name
    assert source in backend.sources


def test_every_catalogue_model_has_a_backend():
    assert {spec.source for spec in CATALOGUE.values()} <= set(backends.BACKENDS)
    assert {"timm", "open_clip"} <= set(backends.PREFIXES)


def test_generic_ids_route_to_their_backend():
    assert resolve_model("timm:resnet18").source == "timm"
    with pytest.raises(UnknownNameError, match="timm:<name>"):
        resolve_model("nolib:resnet18")


def test_a_new_library_is_one_module_dropped_into_the_package():
    """A file ``*_backend.py`` defining BACKEND is registered with its sources and id prefix."""
    folder = backends.__path__[0]
    path = f"{folder}/toy_backend.py"
    code = textwrap.dedent(
        """
        from beyond_imagenet.models.backends.timm_backend import TimmBackend

        class ToyBackend(TimmBackend):
            sources = ("toy",)
            prefix = "toy"
            id_help = "toy:<name>"

        BACKEND = ToyBackend()
        """
    )
    try:
        with open(path, "w") as handle:
            handle.write(code)
        reloaded = importlib.reload(backends)
        assert reloaded.BACKENDS["toy"].prefix == "toy"
        assert "toy:<name>" in reloaded.generic_id_forms()
    finally:
        os.remove(path)
        importlib.reload(backends)
    assert "toy" not in backends.BACKENDS
