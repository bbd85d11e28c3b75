"""Layer taps for representation similarity (docs/protocol.md §10): which modules, and their flattened outputs.

Layer types per family, as the paper's Fig. 8 panels (forward order within each):

* ViT (timm DeiT III and OpenCLIP ViT): attention = each self-attention module's output after its output
  projection, before the residual add (OpenCLIP's ``nn.MultiheadAttention`` returns a tuple: element 0);
  linear = the two MLP linears per block only; normalisation = the two LayerNorms per block plus the final
  norm (and ``ln_pre`` / ``ln_post`` for OpenCLIP).
* ConvNeXt (timm, and OpenCLIP's timm trunk): conv = each block's 7x7 depthwise conv (stem and downsample
  convs are not included; recorded as the choice); linear = pwconv1/pwconv2 (``mlp.fc1``/``fc2``);
  normalisation = block LayerNorms plus the stem and downsample LayerNorms.

The module-name patterns of each library are its backend's (``ModelBackend.layer_patterns``). ``all`` is the union
in forward (module registration) order. Activations are flattened to one row per image:
tokens [B, T, D] -> [B, T*D], maps [B, C, H, W] -> [B, C*H*W]; sequence-first tokens are made batch-first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from beyond_imagenet.models.backbone import Backbone
from beyond_imagenet.models.backends import backend_for

LAYER_TYPES = ("all", "attention_or_conv", "linear", "normalisation")
CONVNEXT_CONV_CHOICE = "block depthwise 7x7 convs only (no stem / downsample convs)"


def layer_sets(backbone: Backbone) -> dict[str, list[str]]:
    """Module names of the image model per layer type (keys of :data:`LAYER_TYPES`)."""
    patterns = backend_for(backbone.spec).layer_patterns(backbone.spec)
    names = [name for name, _ in backbone.image_model.named_modules()]
    sets = {kind: [n for n in names if pattern.search(n)] for kind, pattern in patterns.items()}
    wanted = {n for layer_names in sets.values() for n in layer_names}
    sets["all"] = [n for n in names if n in wanted]
    empty = [kind for kind, layer_names in sets.items() if not layer_names]
    if empty:
        raise ValueError(f"{backbone.spec.id}: no modules matched the {', '.join(empty)} layer set(s)")
    return {kind: sets[kind] for kind in LAYER_TYPES}


def flatten_activation(output, batch_size: int) -> torch.Tensor:
    """One row per image; tuple outputs (nn.MultiheadAttention) use element 0; [T, B, D] becomes [B, T*D]."""
    tensor = output[0] if isinstance(output, tuple) else output
    if tensor.dim() == 3 and tensor.shape[0] != batch_size and tensor.shape[1] == batch_size:
        tensor = tensor.transpose(0, 1)  # sequence-first (older OpenCLIP transformers)
    if tensor.shape[0] != batch_size:
        raise ValueError(f"cannot find the batch axis of an activation of shape {tuple(tensor.shape)}")
    return tensor.reshape(batch_size, -1)


@contextmanager
def record_activations(
    backbone: Backbone,
    names: Sequence[str],
    batch_size: int,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Iterator[dict[str, torch.Tensor]]:
    """Hook the named modules of ``backbone`` for the duration of the block; the hooks are removed on exit.

    Inside the block, each forward fills the yielded dict with name -> [B, features] (detached), or with
    ``reduce`` of it (the CKA stage keeps only each layer's batch Gram matrix).
    """
    modules = dict(backbone.image_model.named_modules())
    store: dict[str, torch.Tensor] = {}
    handles = []

    def hook_for(name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            activation = flatten_activation(output, batch_size).detach()
            store[name] = activation if reduce is None else reduce(activation)

        return hook

    try:
        for name in names:
            handles.append(modules[name].register_forward_hook(hook_for(name)))
        yield store
    finally:
        for handle in handles:
            handle.remove()
