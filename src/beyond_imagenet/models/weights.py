"""Fail fast on missing weights: every pretrained model of a run is checked before any model is built.

A missing checkpoint on an offline machine (``HF_HUB_OFFLINE=1`` or no route to the hub) fails in seconds naming
the weights and ``make fetch-weights``, instead of the hub client retrying for about 47 s per request
(docs/architecture.md, "Offline"). Where the weights of a spec live is its backend's knowledge.
"""

from __future__ import annotations

from beyond_imagenet.base.errors import WeightsUnavailableError
from beyond_imagenet.models.backends import backend_for
from beyond_imagenet.models.hub import WeightsLocation, hub_offline, hub_reachable, is_cached
from beyond_imagenet.models.spec import ModelSpec


def locate_weights(spec: ModelSpec) -> WeightsLocation | None:
    """Where the weights of ``spec`` come from; None for random-init models."""
    return backend_for(spec).locate_weights(spec)


def missing_weights(specs: list[ModelSpec]) -> list[tuple[ModelSpec, WeightsLocation]]:
    """The pretrained specs whose weights are not in the local cache, with where they would come from."""
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
