"""Atomic file writes: a crash never leaves a half-written file where a finished one is expected."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


@contextmanager
def atomic_open(path: str | Path) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``; returns ``path``."""
    with atomic_open(path) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Atomically write ``text`` to ``path`` as UTF-8; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON with a final newline; returns ``path``.

    Raises:
        ValueError: ``obj`` holds a NaN or an infinity (strict JSON, ``allow_nan=False``).
    """
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def atomic_save_npy(path: str | Path, array: np.ndarray) -> Path:
    """Atomically save ``array`` as a ``.npy`` file (no pickled objects); returns ``path``."""
    with atomic_open(path) as handle:
        np.save(handle, array, allow_pickle=False)
    return Path(path)


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """Atomically ``torch.save`` ``obj`` to ``path``; returns ``path`` (torch is imported only here)."""
    import torch

    with atomic_open(path) as handle:
        torch.save(obj, handle)
    return Path(path)


def atomic_write_with(path: str | Path, writer: Callable[[BinaryIO], None]) -> Path:
    """Atomically write ``path`` through ``writer(handle)`` (e.g. matplotlib's savefig)."""
    with atomic_open(path) as handle:
        writer(handle)
    return Path(path)
