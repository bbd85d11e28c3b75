"""Peak memory of streaming minibatch CKA vs the number of images (docs/protocol.md §10): it must not grow with N.

Each N runs in a fresh subprocess. ``tracemalloc`` only sees Python's allocator, not torch's CPU tensors, so we
measure the process's resident memory from the kernel instead: after imports and a tiny warm-up batch (8 images)
the child writes "5" to /proc/self/clear_refs, which resets the peak-RSS counter VmHWM to the current RSS
(Linux >= 4.0), then streams N images and reads VmHWM from /proc/self/status. "peak growth" = VmHWM - RSS at the
reset, i.e. the extra memory the accumulation loop ever held, torch buffers included. Features are synthesised
per batch (as a forward hook would hand them over) and dropped after ``update``.

Usage: ``.venv/bin/python benchmarks/cka_memory.py [--images 2048 4096] [--layers 12] [--features 3136]``;
add ``--retain --output /tmp/control.json`` for the control run in which memory must grow with N.
Writes benchmarks/cka_memory.json and prints a table with peak(2N)/peak(N).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

OUTPUT = Path(__file__).with_name("cka_memory.json")


def read_status_kib(field: str) -> int:
    """A ``kB`` field (VmRSS, VmHWM) of /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS; False where the kernel does not allow it (then VmHWM includes imports)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child(
    images: int, layers: int, features: int, batch: int, threads: int, retain: bool
) -> dict[str, float | int | bool]:
    """Stream ``images`` synthetic images through MinibatchCKA over ``layers`` layers; report memory and time.

    ``retain`` keeps every batch's features alive (a control: memory then must grow with N, which shows that the
    VmHWM measure really sees torch's allocations)."""
    import torch

    from beyond_imagenet.metrics.cka import MinibatchCKA

    torch.set_num_threads(threads)
    names = [f"layer{i:02d}" for i in range(layers)]
    generator = torch.Generator().manual_seed(0)

    def make_batch(size: int) -> dict[str, torch.Tensor]:
        base = torch.randn(size, features, generator=generator)
        return {name: base + 0.5 * i * torch.randn(size, features, generator=generator) for i, name in enumerate(names)}

    MinibatchCKA(names).update(make_batch(8))  # tiny warm-up: lazy imports, BLAS init; leaves little freed slack
    was_reset = reset_peak_rss()
    rss_before = read_status_kib("VmRSS")
    start = time.perf_counter()
    cka = MinibatchCKA(names)
    kept = []
    for _ in range(0, images, batch):
        feats = make_batch(batch)
        cka.update(feats)
        if retain:
            kept.append(feats)
    _, matrix = cka.result()
    seconds = time.perf_counter() - start
    peak = read_status_kib("VmHWM")
    return {
        "images": images,
        "batches": cka.batches,
        "layers": layers,
        "features": features,
        "batch_size": batch,
        "peak_rss_mib": peak / 1024,
        "peak_growth_mib": (peak - rss_before) / 1024,
        "peak_reset": was_reset,
        "retained_features": retain,
        "seconds": seconds,
        "cka_mean": float(matrix.mean()),
    }


def run_child(images: int, args: argparse.Namespace) -> dict[str, float | int | bool]:
    """Run one measurement in a fresh interpreter so earlier runs do not inflate the peak."""
    command = [sys.executable, __file__, "--child", str(images), "--layers", str(args.layers)]
    command += ["--features", str(args.features), "--batch", str(args.batch), "--threads", str(args.threads)]
    command += ["--retain"] if args.retain else []
    # A fixed mmap threshold stops glibc's dynamic threshold from parking freed per-batch tensors on the heap,
    # which otherwise makes the peak wander by tens of MiB between runs, whatever N.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--features", type=int, default=64 * 7 * 7)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--retain", action="store_true", help="control: keep all features (memory grows with N)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument(
        "--max-ratio", type=float, default=1.25, help="fail when peak growth at the largest N exceeds this x the first"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.layers, args.features, args.batch, args.threads, args.retain)))
        return
    rows = [run_child(images, args) for images in args.images]
    args.output.write_text(json.dumps(rows, indent=2) + "\n")
    first = rows[0]
    mode = "CONTROL: all features retained" if args.retain else "streaming"
    print(f"{args.layers} layers x {args.features} features, batch {args.batch}, {args.threads} threads, {mode}")
    print(f"{'N':>7} {'batches':>7} {'peak RSS MiB':>13} {'peak growth MiB':>16} {'seconds':>8} {'growth/first':>12}")
    for row in rows:
        ratio = row["peak_growth_mib"] / first["peak_growth_mib"]
        print(
            f"{row['images']:>7} {row['batches']:>7} {row['peak_rss_mib']:>13.1f} {row['peak_growth_mib']:>16.1f}"
            f" {row['seconds']:>8.2f} {ratio:>12.3f}"
        )
    print(f"wrote {args.output}")
    worst = max(row["peak_growth_mib"] for row in rows[1:]) / first["peak_growth_mib"] if len(rows) > 1 else 1.0
    if not args.retain and worst > args.max_ratio:
        sys.exit(f"FAIL: CKA peak memory grew {worst:.2f}x with the number of images (limit {args.max_ratio}x)")


if __name__ == "__main__":
    main()
