"""A local OpenCLIP checkpoint with its own model config: ``open_clip-file:<config.json>@<checkpoint>``.

For CLIP models trained with open_clip outside its pretrained list (the procedural world's CLIP-style pair,
training/world.py, or a user's own run). The config is open_clip's model-config JSON (``embed_dim``,
``vision_cfg``, ``text_cfg``) plus an optional ``preprocess_cfg`` with ``mean`` / ``std``; the checkpoint's
tensors load by name onto ``CLIP(**config)`` (``state_dict`` wrappers unwrapped, shapes checked). Logits come from
the zero-shot head of the 80 OpenAI templates, tokenised at the text tower's own ``context_length``
(docs/protocol.md §1.4). The weights id recorded is the checkpoint's sha256.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.files import sha256_file
from beyond_imagenet.models.backends.open_clip_backend import OpenClipBackend
from beyond_imagenet.models.backends.timm_backend import timm_module
from beyond_imagenet.models.checkpoint import load_checkpoint_into
from beyond_imagenet.models.hub import WeightsLocation
from beyond_imagenet.models.spec import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, ModelSpec, guess_family

FORM = "open_clip-file:<model config .json>@<checkpoint .pth|.pt|.bin|.safetensors>"
CONFIG_KEYS = ("embed_dim", "vision_cfg", "text_cfg")


def _read_config(model_id: str, path: Path) -> dict[str, Any]:
    """The model config at ``path``, refused with the reason when it is not one open_clip can build."""
    if not path.is_file():
        raise UserError(f"model {model_id!r}: config {path} does not exist (a path relative to where you run)")
    try:
        config = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"model {model_id!r}: config {path} is not JSON ({err})") from err
    missing = [key for key in CONFIG_KEYS if not isinstance(config, dict) or key not in config]
    if missing:
        raise UserError(
            f"model {model_id!r}: config {path} lacks {missing}; an open_clip model config has "
            f"{', '.join(CONFIG_KEYS)} (e.g. open_clip/model_configs/ViT-B-16.json)"
        )
    return config


def _image_size(config: dict[str, Any]) -> int:
    size = config["vision_cfg"].get("image_size", 224)
    return int(size if isinstance(size, int) else size[0])


class OpenClipFileBackend(OpenClipBackend):
    """OpenCLIP built from a config file, with the weights of a checkpoint file (never fetched)."""

    sources = ("open_clip_file",)
    prefix = "open_clip-file"
    id_help = "open_clip-file:<config.json>@<checkpoint>"

    def resolve(self, model_id: str, name: str) -> ModelSpec:
        """The spec: config, preprocessing (``preprocess_cfg`` or OpenAI's mean/std), the checkpoint's sha256."""
        config_text, at, checkpoint_text = name.partition("@")
        if not at or not config_text or not checkpoint_text:
            raise UserError(f"model id {model_id!r}: write {FORM}")
        config_path, checkpoint = Path(config_text).expanduser(), Path(checkpoint_text).expanduser()
        config = _read_config(model_id, config_path)
        if not checkpoint.is_file():
            raise UserError(f"model {model_id!r}: checkpoint {checkpoint} does not exist (a path from where you run)")
        preprocess = config.get("preprocess_cfg", {})
        tower = config["vision_cfg"].get("timm_model_name") or config_path.stem
        model_config = {key: config[key] for key in CONFIG_KEYS}
        return ModelSpec(
            id=model_id,
            source="open_clip_file",
            architecture=config_path.stem,
            weights=str(checkpoint.resolve()),
            family=guess_family(tower),
            paradigm="clip",
            weights_id=f"sha256:{sha256_file(checkpoint)} ({checkpoint.name})",
            input_size=_image_size(config),
            mean=tuple(preprocess.get("mean", OPENAI_CLIP_MEAN)),
            std=tuple(preprocess.get("std", OPENAI_CLIP_STD)),
            description=f"OpenCLIP {config_path.stem} with the weights of {checkpoint.name}",
            custom_config=model_config,
        )

    def create(self, spec: ModelSpec, image_size: int | None = None) -> nn.Module:
        """``CLIP(**config)`` (a timm image tower registered first), then every tensor of the checkpoint by name."""
        timm_module()  # registers the world architectures a config may name as its timm tower
        model = super().create(spec, image_size)
        load_checkpoint_into(model, Path(spec.weights or ""), "name", "")
        return model.eval()

    def locate_weights(self, spec: ModelSpec) -> WeightsLocation | None:
        """None: the weights are a local file (checked when the id is resolved)."""
        return None

    def native_preprocessing(self, spec: ModelSpec) -> dict[str, Any]:
        """The config's own input: resize and crop to its image size, bicubic, its mean and std."""
        size = spec.input_size
        return {"resize": size, "crop": size, "interpolation": "bicubic", "mean": spec.mean, "std": spec.std,
                "resize_mode": "shortest"}  # fmt: skip


BACKEND = OpenClipFileBackend()
