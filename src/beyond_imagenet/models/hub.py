"""Where a checkpoint lives (a Hugging Face hub repo or a URL) and whether this machine has it cached.

The backends say where their weights come from (:class:`WeightsLocation`); ``models.weights`` checks every model
of a run against the local cache before anything is built (docs/architecture.md, "Offline").
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

HUB_PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class WeightsLocation:
    """Either a Hugging Face hub repo with candidate file names, or a plain URL cached in ``url_cache_dir``."""

    hub_repo: str | None
    hub_files: tuple[str, ...]
    url: str | None
    url_cache_dir: Path | None

    def describe(self) -> str:
        """``hf-hub:<repo> (<files>)`` or the URL."""
        if self.hub_repo:
            return f"hf-hub:{self.hub_repo} ({' or '.join(self.hub_files)})"
        return str(self.url)


def safe_alternative(filename: str) -> tuple[str, ...]:
    """A ``.bin`` checkpoint name and its ``.safetensors`` twin, the safe one first."""
    if filename.endswith(".bin"):
        return (filename[: -len(".bin")] + ".safetensors", filename)
    return (filename,)


def is_cached(location: WeightsLocation) -> bool:
    """True when one of the candidate files is already on this machine."""
    if location.hub_repo:
        from huggingface_hub import try_to_load_from_cache

        return any(isinstance(try_to_load_from_cache(location.hub_repo, f), str) for f in location.hub_files)
    if location.url and location.url_cache_dir:
        return (location.url_cache_dir / Path(urlparse(location.url).path).name).exists()
    return False


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is set."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_reachable(timeout_s: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub endpoint opens within ``timeout_s`` (no request is sent)."""
    from huggingface_hub import constants

    parsed = urlparse(constants.ENDPOINT)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False
