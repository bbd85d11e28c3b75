"""A checkpoint file's tensors put into a timm architecture: by name (default) or by order, shapes checked.

Used by the ``timm-file`` model source (``models/backends/timm_file_backend.py``). Every mismatch is refused with the
first offending key and both shapes, before any image is read.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Literal

import torch

from beyond_imagenet.base.errors import UserError

KeyMap = Literal["name", "order"]
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")  # where training scripts nest the weights


def read_state_dict(path: Path) -> OrderedDict[str, torch.Tensor]:
    """The tensors of a ``.pth``/``.pt``/``.bin`` (``torch.load``, weights only) or ``.safetensors`` file, in order.

    A dict nesting them under one of ``WRAPPER_KEYS`` (``{"state_dict": ...}``, ``{"model": ...}``) is unwrapped.
    """
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; give the path of a .pth or .safetensors file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        loaded: object = load_file(str(path))
    else:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # pickles with code, truncated files: all unreadable as plain weights
            raise UserError(f"checkpoint {path} cannot be read as a weights-only torch file: {err}") from err
    while isinstance(loaded, dict) and not _is_tensor_dict(loaded):
        key = next((k for k in WRAPPER_KEYS if k in loaded), None)
        if key is None:
            raise UserError(
                f"checkpoint {path} holds no tensor dict: its keys are {sorted(map(str, loaded))[:8]}; save "
                f"model.state_dict(), or nest it under one of {', '.join(WRAPPER_KEYS)}"
            )
        loaded = loaded[key]
    if not isinstance(loaded, dict) or not loaded:
        raise UserError(f"checkpoint {path} holds no tensors (found {type(loaded).__name__})")
    return OrderedDict(loaded)


def _is_tensor_dict(value: dict) -> bool:
    return bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def strip_prefix(state: OrderedDict[str, torch.Tensor], prefix: str) -> OrderedDict[str, torch.Tensor]:
    """Keys without ``prefix`` (e.g. ``module.`` of DataParallel); keys without it are kept as they are."""
    if not prefix:
        return state
    return OrderedDict((k[len(prefix) :] if k.startswith(prefix) else k, v) for k, v in state.items())


def map_by_name(
    state: OrderedDict[str, torch.Tensor], target: dict[str, torch.Tensor], path: Path
) -> OrderedDict[str, torch.Tensor]:
    """``state`` as is, after checking it has exactly the target's keys with the target's shapes."""
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    if missing or unexpected:
        raise UserError(
            f"checkpoint {path} does not match the architecture by name: {len(missing)} key(s) missing (first "
            f"{missing[:1]}), {len(unexpected)} unexpected (first {unexpected[:1]}). Fix: strip a prefix "
            "(?strip=module.), or map by order (?map=order) if the tensors come in the architecture's order"
        )
    for key, tensor in target.items():
        if state[key].shape != tensor.shape:
            raise UserError(
                f"checkpoint {path}: key {key!r} has shape {list(state[key].shape)}, the architecture expects "
                f"{list(tensor.shape)}. Fix: the right architecture, or ?num_classes=N for another head size"
            )
    return state


def map_by_order(
    state: OrderedDict[str, torch.Tensor], target: dict[str, torch.Tensor], path: Path
) -> OrderedDict[str, torch.Tensor]:
    """The checkpoint's tensors renamed to the target's keys pairwise in order, after checking counts and shapes."""
    if len(state) != len(target):
        raise UserError(
            f"checkpoint {path} has {len(state)} tensors, the architecture {len(target)}: they cannot be mapped by "
            "order. Fix: the right architecture, or map by name (?map=name)"
        )
    mapped = OrderedDict()
    for (source, tensor), (key, expected) in zip(state.items(), target.items(), strict=True):
        if tensor.shape != expected.shape:
            raise UserError(
                f"checkpoint {path}: by order, tensor {source!r} {list(tensor.shape)} would go to {key!r}, which "
                f"has shape {list(expected.shape)}. Fix: the right architecture, or map by name (?map=name)"
            )
        mapped[key] = tensor
    return mapped


def load_checkpoint_into(model: torch.nn.Module, path: Path, key_map: KeyMap, prefix: str) -> None:
    """Load ``path`` into ``model`` (every parameter and buffer, nothing left at its random init)."""
    state = strip_prefix(read_state_dict(path), prefix)
    target = model.state_dict()
    mapped = map_by_order(state, target, path) if key_map == "order" else map_by_name(state, target, path)
    model.load_state_dict(mapped, strict=True)
