"""Position embeddings of ViTs at another input resolution (docs/protocol.md §9.3).

The patch grid of a learned position embedding is resized bicubically (antialias, ``align_corners=False``); the
prefix rows (class token) are kept. Used to evaluate one network at several resolutions.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def resize_vit_position_embedding(
    pos_embed: torch.Tensor, old_grid: int, new_grid: int, num_prefix_tokens: int
) -> torch.Tensor:
    """§9.3: resize a square patch-grid position embedding, bicubic, antialias=True, align_corners=False.

    ``pos_embed`` is ``[N, D]`` (open_clip) or ``[1, N, D]`` (timm) with ``N = num_prefix_tokens + old_grid²``;
    the prefix rows (class token) are kept unchanged. DeiT III has 0 prefix rows (timm ``no_embed_class``);
    open_clip's ViT has 1. The result has the input's rank and dtype; the native grid returns an exact copy.
    """
    batched = pos_embed.dim() == 3
    rows = pos_embed[0] if batched else pos_embed
    if rows.dim() != 2 or rows.shape[0] != num_prefix_tokens + old_grid * old_grid:
        raise ValueError(
            f"position embedding of shape {tuple(pos_embed.shape)} is not {num_prefix_tokens} prefix rows "
            f"+ a {old_grid}x{old_grid} grid"
        )
    if new_grid == old_grid:
        return pos_embed.clone()
    prefix, grid = rows[:num_prefix_tokens], rows[num_prefix_tokens:]
    dim = grid.shape[-1]
    image = grid.float().reshape(1, old_grid, old_grid, dim).permute(0, 3, 1, 2)
    image = nn.functional.interpolate(
        image, size=(new_grid, new_grid), mode="bicubic", antialias=True, align_corners=False
    )
    grid = image.permute(0, 2, 3, 1).reshape(new_grid * new_grid, dim).to(rows.dtype)
    resized = torch.cat([prefix, grid], dim=0)
    return resized.unsqueeze(0) if batched else resized


def _grid_of(rows: int, prefix: int) -> int:
    """Side of the square patch grid of ``rows`` position rows, ``prefix`` of them not in the grid."""
    grid = math.isqrt(rows - prefix)
    if grid * grid != rows - prefix:
        raise ValueError(f"{rows} position rows minus {prefix} prefix rows is not a square grid")
    return grid


def transplant_weights(native: nn.Module, model: nn.Module, key: str, prefix: int) -> None:
    """Copy every weight of ``native`` into ``model``, the position embedding ``key`` resized to its grid (§9.3)."""
    state = native.state_dict()
    target = model.state_dict()[key]
    rows = target.shape[-2]
    state[key] = resize_vit_position_embedding(
        state[key], _grid_of(state[key].shape[-2], prefix), _grid_of(rows, prefix), prefix
    )
    model.load_state_dict(state, strict=True)
