"""Stable content hashes and file-system-safe names, shared by every cache and record (docs/cache.md)."""

from __future__ import annotations

import hashlib
import json

HASH_FORMAT = 1  # folded into every configuration hash; bumping it invalidates every cache and record


def config_hash(config: dict) -> str:
    """Short stable hash of everything that determines a cache's or a record's contents."""
    payload = json.dumps({"format": HASH_FORMAT, **config}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def safe_name(name: str) -> str:
    """A model or dataset id as a directory name (``timm:a.b`` -> ``timm_a.b``)."""
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)
