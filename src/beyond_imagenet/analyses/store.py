"""Read access to the inference caches of a run, by (dataset, model, variant), for the analysis stage."""

from __future__ import annotations

import json
from pathlib import Path

from beyond_imagenet.base.errors import CacheFormatError
from beyond_imagenet.base.hashing import safe_name
from beyond_imagenet.inference.cache import META_FILE, InferenceCache, cache_path, load_cache


class CacheStore:
    """Finds caches under ``cache_dir`` (including variants such as ImageNet-C's ``fog/3``) and loads each once."""

    def __init__(self, cache_dir: str | Path):
        self.cache_dir = Path(cache_dir)
        self._loaded: dict[Path, InferenceCache] = {}

    def get(self, dataset: str, model_id: str, variant: str | None = None) -> InferenceCache:
        """The cache of ``model_id`` on ``dataset`` (or its ``variant``), loaded on first use and kept."""
        path = cache_path(self.cache_dir, dataset, model_id, variant)
        if path not in self._loaded:
            self._loaded[path] = load_cache(path)
        return self._loaded[path]

    def all_models(self, dataset: str, model_ids: list[str], variant: str | None = None) -> list[InferenceCache]:
        """The caches of every model in ``model_ids`` on ``dataset`` (or its ``variant``), in that order."""
        return [self.get(dataset, model_id, variant) for model_id in model_ids]

    def variants(self, dataset: str, model_id: str) -> list[str]:
        """Variant names recorded in the model's caches of ``dataset`` (empty for a plain dataset).

        The invariance sweeps' caches (``scale/1.25``, ...; their config has a ``sweep``) are not variants of the
        dataset itself and are left out, so e.g. accuracy on ImageNet val still reads the plain cache.
        """
        found = []
        base = self.cache_dir / safe_name(dataset)
        for meta_file in sorted(base.glob(f"*/*/{META_FILE}")):
            meta = json.loads(meta_file.read_text())
            if (meta.get("config") or {}).get("sweep"):
                continue
            if meta.get("model", {}).get("model_id") == model_id and meta.get("dataset", {}).get("variant"):
                found.append(meta["dataset"]["variant"])
        if not found and not base.is_dir():
            raise CacheFormatError(f"no caches for dataset {dataset!r} under {self.cache_dir}; run the inference stage")
        return found
