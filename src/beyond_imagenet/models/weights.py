"""Where pretrained weights live, whether they are cached, and prefetching them (DESIGN.md, "Offline").

Before any model is built, :func:`ensure_weights_available` checks the local Hugging Face cache for every
pretrained model of a run. A missing file on an offline machine (``HF_HUB_OFFLINE=1`` or no route to the hub)
fails in seconds naming the weights and ``make fetch-weights``, instead of the hub client retrying for ~47 s
per request.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from beyond_imagenet.errors import WeightsUnavailableError
from beyond_imagenet.models.catalogue import ModelSpec

TIMM_HUB_FILES = ("model.safetensors", "pytorch_model.bin")
OPEN_CLIP_HUB_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
HUB_PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class WeightsLocation:
    """Either a Hugging Face hub repo with candidate file names, or a plain URL cached in ``url_cache_dir``."""

    hub_repo: str | None
    hub_files: tuple[str, ...]
    url: str | None
    url_cache_dir: Path | None

    def describe(self) -> str:
        if self.hub_repo:
            return f"hf-hub:{self.hub_repo} ({' or '.join(self.hub_files)})"
        return str(self.url)


def _safe_alternative(filename: str) -> tuple[str, ...]:
    if filename.endswith(".bin"):
        return (filename[: -len(".bin")] + ".safetensors", filename)
    return (filename,)


def locate_weights(spec: ModelSpec) -> WeightsLocation | None:
    """Where the weights of ``spec`` come from; None for random-init models."""
    if not spec.pretrained:
        return None
    if spec.source == "timm":
        import timm
        import torch

        cfg = timm.models.get_pretrained_cfg(f"{spec.architecture}.{spec.weights}")
        if cfg.hf_hub_id:
            files = _safe_alternative(cfg.hf_hub_filename) if cfg.hf_hub_filename else TIMM_HUB_FILES
            return WeightsLocation(cfg.hf_hub_id, files, None, None)
        return WeightsLocation(None, (), cfg.url, Path(torch.hub.get_dir()) / "checkpoints")
    import open_clip

    cfg = open_clip.get_pretrained_cfg(spec.architecture, spec.weights)
    hub = cfg.get("hf_hub", "")
    if hub:
        # open_clip writes 'org/repo/' (default file names) or 'org/repo/file.bin'
        repo, filename = (hub.rstrip("/"), "") if hub.endswith("/") else os.path.split(hub)
        files = _safe_alternative(filename) if filename else OPEN_CLIP_HUB_FILES
        return WeightsLocation(repo, files, None, None)
    return WeightsLocation(None, (), cfg.get("url"), Path.home() / ".cache" / "clip")


def is_cached(location: WeightsLocation) -> bool:
    """True when one of the candidate files is already on this machine."""
    if location.hub_repo:
        from huggingface_hub import try_to_load_from_cache

        return any(isinstance(try_to_load_from_cache(location.hub_repo, f), str) for f in location.hub_files)
    if location.url and location.url_cache_dir:
        return (location.url_cache_dir / Path(urlparse(location.url).path).name).exists()
    return False


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_reachable(timeout_s: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Can we open a TCP connection to the hub endpoint within ``timeout_s``? (No request is sent.)"""
    from huggingface_hub import constants

    parsed = urlparse(constants.ENDPOINT)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def missing_weights(specs: list[ModelSpec]) -> list[tuple[ModelSpec, WeightsLocation]]:
    missing = []
    for spec in specs:
        location = locate_weights(spec)
        if location is not None and not is_cached(location):
            missing.append((spec, location))
    return missing


def ensure_weights_available(specs: list[ModelSpec]) -> None:
    """Raise :class:`WeightsUnavailableError` if a pretrained model's weights can be neither read nor fetched."""
    missing = missing_weights(specs)
    if not missing:
        return
    if not hub_offline() and hub_reachable():
        return  # the libraries will download them into the cache
    lines = "\n".join(f"  - {spec.id}: {spec.weights_id} from {loc.describe()}" for spec, loc in missing)
    ids = " ".join(spec.id for spec, _ in missing)
    reason = "HF_HUB_OFFLINE=1 is set" if hub_offline() else "the Hugging Face hub is not reachable"
    raise WeightsUnavailableError(
        f"pretrained weights are not in the local cache and {reason}:\n{lines}\n"
        f'On a machine with network run `make fetch-weights MODELS="{ids}"` (it fills the Hugging Face cache, '
        "HF_HOME), then copy that cache here, or pick models that are cached."
    )
