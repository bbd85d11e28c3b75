"""The CLI's log level survives Lightning's import: no line twice, no litlogger advert, device lines only at -v."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from helpers import small_pass_params

DEVICE_LINES = ("GPU available", "TPU available")


def run_infer(tmp_path, small_demo_root, verbose: bool) -> list[str]:
    """``beyond-imagenet [-v] infer`` on the small demo set with two demo models (one pass); its stderr lines."""
    root = tmp_path / ("verbose" if verbose else "quiet")
    root.mkdir()
    params = small_pass_params(small_demo_root, root / "cache", ["demo_random_vit_sup", "demo_random_convnext_sup"])
    params |= {"results_dir": str(root / "results"), "tracking": {"enabled": False}}
    (root / "params.yaml").write_text(json.dumps(params))
    argv = [sys.executable, "-m", "beyond_imagenet", *(["-v"] if verbose else []), "infer"]
    done = subprocess.run([*argv, "--params", "params.yaml"], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr.splitlines()


@pytest.mark.slow
def test_lightning_lines_print_once_and_only_when_verbose(tmp_path, small_demo_root):
    quiet = run_infer(tmp_path, small_demo_root, verbose=False)
    assert not [line for line in quiet if any(d in line for d in DEVICE_LINES)]
    assert not [line for line in quiet if "litlogger" in line]

    verbose = run_infer(tmp_path, small_demo_root, verbose=True)
    lightning = [line for line in verbose if line.startswith("INFO") and "lightning" in line]
    (gpu,) = [line for line in verbose if "GPU available" in line]  # one pass, printed once
    assert gpu.startswith("INFO lightning.pytorch.utilities.rank_zero: GPU available: ")  # the CLI's format
    assert len([line for line in verbose if "TPU available" in line]) == 1
    assert not [line for line in verbose if line.startswith("INFO: ")]
    assert not [line for line in verbose if "litlogger" in line]
    assert max(Counter(lightning).values()) == 1
