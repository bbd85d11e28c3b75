"""Compare the numbers of two results folders (e.g. `make demo` before and after a change): exit 1 on a difference.

    python scripts/compare_results.py OLD_RESULTS NEW_RESULTS [--tolerance 0]

Compared: ``metrics.json``, ``cka/metrics.json`` and ``vtab/metrics.json`` (DVC metrics), and the ``metrics`` of
every result record (``records/**``, ``cka/records/**``, ``vtab/records/**``; a probe record's metrics may live in
a ResultRecord or in the older plain probe dict). Provenance, paths, timestamps and environment are ignored.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

METRICS_FILES = ("metrics.json", "cka/metrics.json", "vtab/metrics.json")
RECORD_FOLDERS = ("records", "cka/records", "vtab/records")


def _numbers(value, prefix: str = "") -> dict[str, object]:
    """Flatten nested dicts/lists to ``{dotted.key: leaf}``."""
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in _numbers(sub, f"{prefix}{key}.").items()}
    if isinstance(value, list):
        return {k: v for i, sub in enumerate(value) for k, v in _numbers(sub, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): value}


def _record_metrics(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    if "metrics" in data:
        return data["metrics"]
    task = data["task"]  # the older probe record
    return {f"vtab/{task}/{k}": data[k] for k in ("top1", "mean_per_class_recall")}


def collect(results: Path) -> dict[str, object]:
    """Every compared number of one results folder, keyed by file and metric."""
    found: dict[str, object] = {}
    for name in METRICS_FILES:
        if (results / name).exists():
            found.update({f"{name}:{k}": v for k, v in _numbers(json.loads((results / name).read_text())).items()})
    for folder in RECORD_FOLDERS:
        for path in sorted((results / folder).rglob("*.json")):
            relative = path.relative_to(results).as_posix()
            found.update({f"{relative}:{k}": v for k, v in _record_metrics(path).items()})
    return found


def differences(old: dict, new: dict, tolerance: float) -> list[str]:
    """Lines naming every key missing on one side or whose values differ by more than ``tolerance``."""
    lines = [f"only in old: {k}" for k in sorted(set(old) - set(new))]
    lines += [f"only in new: {k}" for k in sorted(set(new) - set(old))]
    for key in sorted(set(old) & set(new)):
        a, b = old[key], new[key]
        if isinstance(a, float) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=0, abs_tol=tolerance):
            continue
        if a != b:
            lines.append(f"differs: {key}: {a!r} -> {b!r}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print the comparison; 0 when every number matches."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--tolerance", type=float, default=0.0, help="absolute tolerance on floats (default 0)")
    args = parser.parse_args(argv)
    old, new = collect(args.old), collect(args.new)
    lines = differences(old, new, args.tolerance)
    print("\n".join(lines) if lines else f"identical: {len(old)} numbers compared")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
