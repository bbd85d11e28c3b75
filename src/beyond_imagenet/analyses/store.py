"""Read access to the inference caches of a run, by (dataset, model, variant), for the analysis stage.

Every cache is checked against the per-dataset rules (``analyses.contracts.check_cache``) when it is loaded, so
a cache that would give wrong numbers silently is refused before an analysis reads it. A store is either a
``cache_dir`` laid out as docs/cache.md describes, or (``CacheStore.of_caches``) caches found anywhere on disk.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from beyond_imagenet.analyses.contracts import cache_kind, check_cache, sweep_variant_of
from beyond_imagenet.base.errors import CacheFormatError, UserError
from beyond_imagenet.base.hashing import safe_name
from beyond_imagenet.inference.cache import META_FILE, InferenceCache, cache_path, load_cache

CacheKey = tuple[str, str, str | None]  # (dataset name, model id, variant)


def cache_key(cache: InferenceCache) -> CacheKey:
    """(dataset.name, model.model_id, variant) of a checked cache; a sweep point's variant as the analysis names it."""
    return cache.dataset, cache.model_id, sweep_variant_of(cache.meta)


class CacheStore:
    """Finds caches under ``cache_dir`` (including variants such as ImageNet-C's ``fog/3``) and loads each once."""

    def __init__(self, cache_dir: str | Path, kinds: Mapping[str, str | None] | None = None):
        self.cache_dir = Path(cache_dir)
        self.kinds = dict(kinds or {})  # dataset name -> its kind (default: the kind its meta.json records)
        self._loaded: dict[Path, InferenceCache] = {}
        self._index: dict[CacheKey, InferenceCache] | None = None

    @classmethod
    def of_caches(cls, caches: Sequence[InferenceCache], kinds: Mapping[str, str | None]) -> CacheStore:
        """A store of already loaded caches (anywhere on disk), each checked now; two with one key are refused."""
        store = cls(Path("."), kinds)
        store._index = {}
        for cache in caches:
            check_cache(cache, store.kind(cache))
            key = cache_key(cache)
            if key in store._index:
                raise UserError(
                    f"{cache.path} and {store._index[key].path} both hold model {key[1]!r} on dataset {key[0]!r}"
                    f"{f' (variant {key[2]!r})' if key[2] else ''}; give only one of them"
                )
            store._index[key] = cache
        return store

    def kind(self, cache: InferenceCache) -> str | None:
        """The dataset kind whose rules ``cache`` must meet."""
        return self.kinds.get(cache.meta["dataset"].get("name")) or cache_kind(cache.meta)

    def caches(self) -> list[InferenceCache]:
        """Every cache loaded so far (for ``of_caches``: every cache of the store)."""
        return list(self._index.values()) if self._index is not None else list(self._loaded.values())

    def has(self, dataset: str, model_id: str, variant: str | None = None) -> bool:
        """Whether the store holds a complete cache of ``model_id`` on ``dataset`` (or its ``variant``)."""
        if self._index is not None:
            return (dataset, model_id, variant) in self._index
        return (cache_path(self.cache_dir, dataset, model_id, variant) / META_FILE).exists()

    def get(self, dataset: str, model_id: str, variant: str | None = None) -> InferenceCache:
        """The cache of ``model_id`` on ``dataset`` (or its ``variant``), loaded and checked on first use and kept."""
        if self._index is not None:
            if (dataset, model_id, variant) not in self._index:
                where = f" variant {variant!r}" if variant else ""
                raise CacheFormatError(f"no cache of model {model_id!r} on dataset {dataset!r}{where} was given")
            return self._index[(dataset, model_id, variant)]
        path = cache_path(self.cache_dir, dataset, model_id, variant)
        if path not in self._loaded:
            cache = load_cache(path)
            check_cache(cache, self.kind(cache))
            self._loaded[path] = cache
        return self._loaded[path]

    def all_models(self, dataset: str, model_ids: list[str], variant: str | None = None) -> list[InferenceCache]:
        """The caches of every model in ``model_ids`` on ``dataset`` (or its ``variant``), in that order."""
        return [self.get(dataset, model_id, variant) for model_id in model_ids]

    def model_meta(self, model_id: str) -> dict | None:
        """The ``meta.json`` of some cache of ``model_id`` (its ``model`` entry is the same in all), or None."""
        if self._index is not None:
            return next((c.meta for c in self._index.values() if c.model_id == model_id), None)
        meta_file = next(self.cache_dir.glob(f"**/{safe_name(model_id)}/{META_FILE}"), None)
        return json.loads(meta_file.read_text()) if meta_file else None

    def variants(self, dataset: str, model_id: str) -> list[str]:
        """Variant names recorded in the model's caches of ``dataset`` (empty for a plain dataset).

        The invariance sweeps' caches (``scale/1.25``, ...; their config has a ``sweep``) are not variants of the
        dataset itself and are left out, so e.g. accuracy on ImageNet val still reads the plain cache.
        """
        if self._index is not None:
            return sorted(
                key[2]
                for key, cache in self._index.items()
                if key[:2] == (dataset, model_id) and key[2] and not (cache.meta.get("config") or {}).get("sweep")
            )
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
