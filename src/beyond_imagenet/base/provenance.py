"""Where a result came from: code version, library versions, machine (docs/architecture.md, principle 8)."""

from __future__ import annotations

import functools
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

TRACKED_PACKAGES = (
    "torch",
    "torchvision",
    "timm",
    "open_clip_torch",
    "lightning",
    "torchmetrics",
    "numpy",
    "pillow",
    "mlflow",
    "dvc",
    "optuna",
)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=True, cwd=Path.cwd())
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


# What the pipeline itself writes (default folder names of params.yaml): a change there is output, not code, so a
# fresh clone after `make demo` (which rewrites dvc.lock) is still clean.
PIPELINE_OUTPUTS = ("dvc.lock", "metrics/", "results/", "reports/", "cache/", "features/", "mlruns/", "data/demo/")


def changed_paths(status: str, ignore: tuple[str, ...] = PIPELINE_OUTPUTS) -> list[str]:
    """The paths of ``git status --porcelain`` output, without those under ``ignore`` (a file or a folder/)."""
    paths = []
    for line in status.splitlines():
        path = re.sub(r"^\s*\S+\s+", "", line).split(" -> ")[-1].strip('"')  # "XY path" (first line stripped)
        if not any(path == i or (i.endswith("/") and path.startswith(i)) for i in ignore):
            paths.append(path)
    return paths


@functools.lru_cache(maxsize=1)
def git_state() -> dict[str, str | bool | None]:
    """Commit sha of the working tree (None outside git); uncommitted changes outside :data:`PIPELINE_OUTPUTS`."""
    sha = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_sha": sha, "git_dirty": bool(changed_paths(status)) if status is not None else None}


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Installed versions of Python, each tracked package ("not installed" if absent) and this package."""
    versions = {"python": platform.python_version()}
    for package in TRACKED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    try:
        versions["beyond_imagenet"] = metadata.version("beyond-imagenet")
    except metadata.PackageNotFoundError:
        from beyond_imagenet import __version__

        versions["beyond_imagenet"] = __version__
    return versions


def environment_record() -> dict:
    """Code, libraries and machine: recorded with every cache and result."""
    import torch

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu"
    record = {
        **git_state(),
        "versions": library_versions(),
        "platform": platform.platform(),
        "device_name": device,
    }
    if cuda:
        record["cuda_fp32_math"] = cuda_fp32_math()
    return record


def cuda_fp32_math() -> dict:
    """Whether float32 matmuls and convolutions on the GPU may use TF32: what ``precision: fp32`` really computed.

    PyTorch's defaults are full fp32 matmuls and TF32 cuDNN convolutions, and any library in the process may
    change them, so the flags in force are recorded rather than assumed.
    """
    import torch

    return {
        "matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
