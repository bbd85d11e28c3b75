"""Atomic file writes: a crash never leaves a half-written file where a finished one is expected.

Every writer goes through :func:`atomic_open`: a temporary file beside the target (``.<name>.<random>.tmp``, mode
from the umask like any ``open``, so shared storage stays readable), renamed over the target on success and removed
on failure. A full disk becomes a :class:`DiskFullError` naming the path and how much to free.
:func:`exclusive_lock` serialises writers of one folder across processes (``fcntl.flock``).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from beyond_imagenet.base.errors import UserError

TEMP_SUFFIX = ".tmp"
_NUMPY_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")  # ndarray.tofile on a full disk (no errno)


class DiskFullError(UserError, OSError):
    """A write failed because the file system is full (or the quota is exhausted)."""


def _create_temp(path: Path) -> tuple[int, Path]:
    """Create ``.<name>.<random>.tmp`` beside ``path`` with mode ``0o666`` less the umask (unlike ``mkstemp``)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` reports a full file system or quota (``ENOSPC``, ``EDQUOT``, numpy's short write)."""
    if not isinstance(err, OSError):
        return False
    return err.errno in (errno.ENOSPC, errno.EDQUOT) or bool(_NUMPY_SHORT_WRITE.search(str(err)))


def disk_full_error(path: Path, needed: int) -> DiskFullError:
    """The error for a write of about ``needed`` bytes to ``path`` that found the disk full."""
    free = shutil.disk_usage(path.parent).free
    short = needed - free if needed > free else needed
    return DiskFullError(
        f"disk full at {path}: writing it needs about {needed} bytes and {free} are free; "
        f"free {short} bytes (or more) on that file system and rerun"
    )


@contextmanager
def atomic_open(path: str | Path, size_hint: int = 0) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; rename it over ``path`` on success.

    ``size_hint``: the bytes the write will need, for the message of a full disk. On any failure the temporary file
    is removed; ``ENOSPC`` raises :class:`DiskFullError`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        written = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        if is_disk_full(err) and not isinstance(err, DiskFullError):
            raise disk_full_error(path, max(size_hint, written)) from err
        raise


def remove_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files an interrupted (killed) :func:`atomic_open` left in ``folder``; return them."""
    folder = Path(folder)
    orphans = sorted(folder.glob(f".*{TEMP_SUFFIX}")) if folder.is_dir() else []
    for orphan in orphans:
        orphan.unlink(missing_ok=True)
    return orphans


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``; returns ``path``."""
    with atomic_open(path, len(data)) as handle:
        handle.write(data)
    return Path(path)


def write_if_changed(path: str | Path, data: bytes) -> Path:
    """Atomically write ``data`` unless ``path`` already holds exactly it (reruns leave files and mtimes alone)."""
    path = Path(path)
    if not path.exists() or path.read_bytes() != data:
        atomic_write_bytes(path, data)
    return path


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
    with atomic_open(path, int(array.nbytes) + 128) as handle:
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


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in blocks; about 1 s per GB)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@contextmanager
def exclusive_lock(
    lock_file: str | Path, on_wait: Callable[[], None] | None = None, wait: bool = True
) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` (created if needed); wait for another holder to release it.

    ``on_wait`` is called once when the lock is held elsewhere, before waiting (e.g. to say so on the console);
    with ``wait`` False a held lock raises ``BlockingIOError`` instead. The lock ends with the process, so a killed
    holder never leaves it stuck.
    """
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
