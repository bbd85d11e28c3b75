"""Fetch the cue-conflict stimuli (docs/protocol.md §6) from their published release, checked before use.

The archive's sha256 is recorded next to the extracted folder; the content is checked against the published
facts of the set (1,280 PNGs, 80 per class, 136,489,547 bytes). Extraction goes to a temporary folder that is
renamed into place only after the checks pass, so a failed or partial download never looks like a dataset.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.files import atomic_write_json
from beyond_imagenet.data.cue_conflict import check_complete, scan_cue_conflict

CUE_CONFLICT_URL = "https://github.com/bethgelab/model-vs-human/releases/download/v0.1/cue-conflict.tar.gz"
DOWNLOAD_TIMEOUT_S = 30


def sha256_of(path: Path) -> str:
    """SHA-256 hex digest of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, target: Path) -> Path:
    """Download ``url`` to ``target``; an unreachable host fails within the timeout with the fix."""
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as err:
        raise UserError(
            f"cannot download {url}: {err}. On a machine with network run `beyond-imagenet fetch-cue-conflict`, "
            "or download the archive yourself and pass --archive PATH."
        ) from err
    return target


def _safe_extract(archive: Path, destination: Path) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar.getmembers():
            resolved = (destination / member.name).resolve()
            if not resolved.is_relative_to(destination.resolve()) or member.issym() or member.islnk():
                raise UserError(f"{archive}: refusing unsafe archive member {member.name!r}")
        tar.extractall(destination)


def fetch_cue_conflict(out: Path, url: str = CUE_CONFLICT_URL, archive: Path | None = None) -> Path:
    """Download (or take ``archive``), check and install the stimuli as ``out``; return ``out``."""
    out = Path(out)
    if out.exists():
        raise UserError(f"{out} already exists; remove it first or point --out elsewhere")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".cue-conflict-") as work:
        work_dir = Path(work)
        source = str(archive) if archive else url
        archive = archive or download(url, work_dir / "cue-conflict.tar.gz")
        extracted = work_dir / "extracted"
        _safe_extract(archive, extracted)
        entries = scan_cue_conflict(extracted)  # accepts the folder holding cue-conflict/
        check_complete(entries)
        root = entries[0].path.parent.parent
        atomic_write_json(
            root / "SOURCE.json",
            {"source": source, "archive_sha256": sha256_of(archive),
             "n_images": len(entries), "licence": "CC BY 4.0, Geirhos et al. 2019"},
        )  # fmt: skip
        root.rename(out)
    return out
