"""CLIP zero-shot classification head (docs/protocol.md §1.4).

For each class: format the 80 OpenAI templates with the class name, encode them with the text tower,
L2-normalise each embedding, average, L2-normalise the average. Stacked, these give ``W`` [embed_dim, C];
logits are ``100 * normalise(image_embedding) @ W``. The head is built once per (model, class names,
templates) and cached on disk, since encoding 80,000 prompts is the slowest part of loading a CLIP model.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from beyond_imagenet.base.files import atomic_torch_save
from beyond_imagenet.base.progress import RateReporter
from beyond_imagenet.models.backends import backend_for
from beyond_imagenet.models.spec import ModelSpec

log = logging.getLogger(__name__)

TEMPLATE_SET = "openai_imagenet_80"
CLASSES_PER_TEXT_BATCH = 10  # as the official code; batching does not change the result


def openai_templates() -> list:
    """The 80 OpenAI ImageNet prompt templates as shipped with open_clip (callables: name -> prompt)."""
    from open_clip import OPENAI_IMAGENET_TEMPLATES

    if len(OPENAI_IMAGENET_TEMPLATES) != 80:
        raise RuntimeError(f"expected 80 OpenAI templates, open_clip ships {len(OPENAI_IMAGENET_TEMPLATES)}")
    return list(OPENAI_IMAGENET_TEMPLATES)


def openai_imagenet_classnames() -> list[str]:
    """OpenAI's curated names of the 1000 ImageNet classes, in standard index order."""
    from open_clip import IMAGENET_CLASSNAMES

    return list(IMAGENET_CLASSNAMES)


def head_key(spec: ModelSpec, classnames: Sequence[str]) -> str:
    """Hash of everything that determines the head: weights, text-tower config, names, templates.

    A custom config's ``vision_cfg`` is left out: the head is the text tower's, so the resolution sweep's specs
    (``vision_cfg.image_size`` = r) share one cached head instead of building it once per resolution.
    """
    prompts = [template("{}") for template in openai_templates()]
    custom = spec.custom_config
    text_config = None if custom is None else {k: v for k, v in custom.items() if k != "vision_cfg"}
    payload = json.dumps(
        {
            "weights_id": spec.weights_id,
            "custom_config": text_config,
            "classnames": list(classnames),
            "templates": prompts,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@torch.no_grad()
def build_zeroshot_weights(
    clip_model: nn.Module, tokenizer, classnames: Sequence[str], device: torch.device
) -> torch.Tensor:
    """Compute ``W`` [embed_dim, n_classes] in float32 following §1.4 steps 1-5."""
    templates = openai_templates()
    columns = []
    progress = RateReporter(len(classnames), "zero-shot head", "classes")
    progress.start()
    for start in range(0, len(classnames), CLASSES_PER_TEXT_BATCH):
        names = classnames[start : start + CLASSES_PER_TEXT_BATCH]
        prompts = [template(name) for name in names for template in templates]
        tokens = tokenizer(prompts).to(device)
        embeddings = clip_model.encode_text(tokens).float()
        embeddings = nn.functional.normalize(embeddings, dim=-1).view(len(names), len(templates), -1)
        columns.append(nn.functional.normalize(embeddings.mean(dim=1), dim=-1))
        progress.update(len(names))
    return torch.cat(columns).T.contiguous().cpu()


def _head_problem(payload, key: str, n_classes: int) -> str | None:
    """Why a loaded head payload is unusable (wrong key, shape, NaN), or None."""
    if not isinstance(payload, dict) or not isinstance(payload.get("weights"), torch.Tensor):
        return "it holds no weights tensor"
    weights, info = payload["weights"], json.loads(payload.get("info", "{}"))
    if info.get("head_key") != key:
        return f"its head_key {info.get('head_key')!r} is not {key!r}"
    if weights.ndim != 2 or weights.shape[1] != n_classes or not torch.isfinite(weights).all():
        return f"its weights {tuple(weights.shape)} are not a finite [embed_dim, {n_classes}] matrix"
    return None


def read_cached_head(path: Path, key: str, n_classes: int) -> tuple[torch.Tensor, dict] | None:
    """The cached head at ``path``, or None (with a warning) when it is damaged, so the caller rebuilds it."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        problem = _head_problem(payload, key, n_classes)
    except Exception as err:  # truncated zip, unpickling errors, bad JSON: all mean a damaged file
        problem = f"it cannot be read ({type(err).__name__}: {err})"
    if problem is None:
        return payload["weights"], json.loads(payload["info"])
    log.warning("zero-shot head %s is damaged (%s): rebuilding", path, problem)
    return None


def load_or_build_zeroshot_weights(
    spec: ModelSpec,
    clip_model: nn.Module,
    classnames: Sequence[str],
    cache_dir: Path,
    device: torch.device,
) -> tuple[torch.Tensor, dict]:
    """Return the cached head for (spec, classnames) or build and cache it; also return its provenance."""
    key = head_key(spec, classnames)
    path = Path(cache_dir) / "zeroshot_heads" / spec.id.replace(":", "_").replace("/", "_") / f"{key}.pt"
    if path.exists():
        cached = read_cached_head(path, key, len(classnames))
        if cached is not None:
            return cached
    log.info("building zero-shot head for %s: %d classes x 80 templates", spec.id, len(classnames))
    clip_model.to(device)
    weights = build_zeroshot_weights(clip_model, backend_for(spec).tokenizer(spec), classnames, device)
    info = {
        "head_key": key,
        "template_set": TEMPLATE_SET,
        "n_templates": 80,
        "n_classes": len(classnames),
        "logit_scale": 100.0,
        "learned_logit_scale": float(clip_model.logit_scale.exp().item()),
    }
    atomic_torch_save({"weights": weights, "info": json.dumps(info)}, path)
    return weights, info
