"""Atomic writes: file modes from the umask, full disks, temporary files, and the folder lock."""

from __future__ import annotations

import errno
import os
import stat
import threading
import time

import numpy as np
import pytest

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.files import (
    DiskFullError,
    atomic_save_npy,
    atomic_write_json,
    atomic_write_text,
    atomic_write_with,
    exclusive_lock,
    remove_temp_files,
)


@pytest.fixture()
def umask():
    """Set the process umask for one test, restoring it afterwards."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_get_the_umask_mode_not_0600(tmp_path, umask, mask, mode):
    umask(mask)
    paths = [
        atomic_write_text(tmp_path / "a.txt", "x"),
        atomic_write_json(tmp_path / "b.json", {"a": 1}),
        atomic_save_npy(tmp_path / "c.npy", np.arange(3)),
    ]
    assert [stat.S_IMODE(p.stat().st_mode) for p in paths] == [mode] * 3


def _full_disk(handle):
    handle.write(b"x" * 10)
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_names_the_path_and_what_to_free_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "out" / "figure.png"
    with pytest.raises(DiskFullError) as err:
        atomic_write_with(target, _full_disk)
    message = str(err.value)
    assert message.startswith(f"disk full at {target}: ") and "free " in message and message.endswith("and rerun")
    assert isinstance(err.value, UserError)
    assert list(target.parent.iterdir()) == []


def test_numpy_short_write_on_a_full_disk_is_a_disk_full_error(tmp_path, monkeypatch):
    def short_write(handle, array, allow_pickle):
        raise OSError("200000 requested and 71648 written")

    monkeypatch.setattr("beyond_imagenet.base.files.np.save", short_write)
    array = np.zeros(50_000, dtype=np.float32)
    with pytest.raises(DiskFullError, match=r"disk full at .*logits\.npy: writing it needs about 200128 bytes"):
        atomic_save_npy(tmp_path / "logits.npy", array)
    assert list(tmp_path.iterdir()) == []


def test_other_write_errors_are_not_reported_as_disk_full(tmp_path):
    def broken(handle):
        raise OSError(errno.EIO, "I/O error")

    with pytest.raises(OSError) as err:
        atomic_write_with(tmp_path / "x.bin", broken)
    assert not isinstance(err.value, DiskFullError) and list(tmp_path.iterdir()) == []


def test_remove_temp_files_deletes_only_leftovers(tmp_path):
    (tmp_path / ".logits.npy.1a2b3c4d.tmp").write_bytes(b"half")
    (tmp_path / "logits.npy").write_bytes(b"whole")
    assert [p.name for p in remove_temp_files(tmp_path)] == [".logits.npy.1a2b3c4d.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["logits.npy"]


def test_exclusive_lock_makes_a_second_holder_wait(tmp_path):
    lock, events = tmp_path / "d" / ".lock", []

    def second() -> None:
        with exclusive_lock(lock, on_wait=lambda: events.append("waiting")):
            events.append("second holds")

    with exclusive_lock(lock):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        events.append("first releases")
        with pytest.raises(BlockingIOError), exclusive_lock(lock, wait=False):
            pass
    thread.join(timeout=10)
    assert events == ["waiting", "first releases", "second holds"]
