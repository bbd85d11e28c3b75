"""Time of probe tuning + probing: our linear probe and search vs scikit-learn LogisticRegression (paper §6).

Both sides get the same synthetic features (Gaussian class means plus noise, raw; both L2-normalise) split into
train / val / test, and do the same work: one fit per candidate on train, scored by val top-1; then a refit on
train+val with the best candidate and one test evaluation (docs/transfer.md §2.3, §4).

- ours: ``search_hyperparameters`` (``--method grid``: the coarse-to-fine wd grid, <= 15 fits; ``tpe``:
  ``--trials`` seeded TPE trials) then ``refit_and_test``, with AdamW / cosine / ``--epochs`` / ``--batch-size``;
  once per ``--engines`` entry (the Lightning Trainer, and the plain loop with the same steps);
- sklearn: ``LogisticRegression(solver="lbfgs")`` over the *same* candidate list, each weight decay mapped to
  ``C = 1 / (wd * n_train)``: the C of an L2 penalty ``wd/2 ||W||^2`` on the mean loss (tests/test_probe.py). The
  mapping is nominal: AdamW's decoupled decay is not an L2 penalty, so the two sides' accuracies are reported
  for context only, and the timing compares the same number of fits on the same data.

Usage: ``.venv/bin/python benchmarks/probe_speed.py [--train 10000 --val 2000 --test 2000 --dim 768 --classes 100]
[--method grid|tpe --trials 19] [--device cpu|cuda] [--threads N]``. Writes benchmarks/probe_speed.json and prints
a side-by-side table with the sklearn / ours time ratio (> 1: ours is faster).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

OUTPUT = Path(__file__).with_name("probe_speed.json")


def synthetic_split(n: int, dim: int, classes: int, sep: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced classes; the class means are fixed (seed 1234), ``seed`` draws the samples."""
    means = torch.randn(classes, dim, generator=torch.Generator().manual_seed(1234)) * sep
    y = torch.arange(n) % classes
    x = means[y] + torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)) + 0.2
    return x, y


def run_ours(splits, classes: int, args: argparse.Namespace, engine: str) -> dict:
    from beyond_imagenet.probe.linear import ProbeConfig
    from beyond_imagenet.probe.search import refit_and_test, search_hyperparameters

    train, val, test = splits
    config = ProbeConfig(lr=args.lr, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    if args.device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    outcome = search_hyperparameters(
        train, val, classes, config=config, method=args.method, n_trials=args.trials, accelerator=args.device,
        engine=engine, on_trial=lambda t: print(f"  {engine} trial {t.number}: wd {t.params['weight_decay']:.3g} "
                                                f"val {t.score} ({t.fit_seconds:.2f}s)", flush=True),
    )  # fmt: skip
    searched = time.perf_counter()
    _, test_metrics, _ = refit_and_test(
        train, val, test, classes, config.with_params(**outcome.best_params), args.device, engine
    )
    if args.device == "cuda":
        torch.cuda.synchronize()
    done = time.perf_counter()
    return {
        "name": f"ours ({engine})",
        "fits": outcome.n_trials + 1,
        "search_s": searched - start,
        "final_s": done - searched,
        "total_s": done - start,
        "candidates_wd": [t.params["weight_decay"] for t in outcome.trials],
        "best": outcome.best_params,
        "val_top1": outcome.val_score,
        "test_top1": test_metrics["top1"],
    }


def run_sklearn(splits, wds: list[float], args: argparse.Namespace) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    train, val, test = splits
    normalise = lambda x: F.normalize(x.double(), dim=-1).numpy()  # noqa: E731
    start = time.perf_counter()
    xtr, xva, xte = normalise(train.x), normalise(val.x), normalise(test.x)
    ytr, yva, yte = train.y.numpy(), val.y.numpy(), test.y.numpy()
    unconverged, iterations, scores = 0, [], []
    for wd in wds:
        c = 1.0 / (wd * len(ytr))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model = LogisticRegression(C=c, max_iter=args.max_iter).fit(xtr, ytr)
        unconverged += any(issubclass(w.category, ConvergenceWarning) for w in caught)
        iterations.append(int(np.max(model.n_iter_)))
        scores.append(100.0 * float((model.predict(xva) == yva).mean()))
        print(f"  sklearn C {c:.3g}: val {scores[-1]:.2f}, {iterations[-1]} iterations", flush=True)
    searched = time.perf_counter()
    best = int(np.argmax(scores))  # first-best, as ours
    final = LogisticRegression(C=1.0 / (wds[best] * len(ytr)), max_iter=args.max_iter)
    final.fit(np.concatenate([xtr, xva]), np.concatenate([ytr, yva]))
    test_top1 = 100.0 * float((final.predict(xte) == yte).mean())
    done = time.perf_counter()
    return {
        "name": "sklearn lbfgs",
        "fits": len(wds) + 1,
        "search_s": searched - start,
        "final_s": done - searched,
        "total_s": done - start,
        "best": {"weight_decay": wds[best], "C": 1.0 / (wds[best] * len(ytr))},
        "val_top1": scores[best],
        "test_top1": test_top1,
        "lbfgs_iterations": iterations,
        "unconverged_fits": unconverged,
        "max_iter": args.max_iter,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=10_000)
    parser.add_argument("--val", type=int, default=2_000)
    parser.add_argument("--test", type=int, default=2_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--sep", type=float, default=0.15, help="scale of the class means (difficulty)")
    parser.add_argument("--method", choices=["grid", "tpe"], default="grid")
    parser.add_argument("--trials", type=int, default=19, help="TPE budget (the grid makes <= 15 distinct fits)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--engines", nargs="+", choices=["lightning", "loop"], default=["lightning", "loop"])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch and BLAS threads, both sides")
    parser.add_argument("--max-iter", type=int, default=1000, help="lbfgs iteration cap per sklearn fit")
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    import beyond_imagenet.base.compat  # noqa: F401  (torchvision shim before lightning/torchmetrics import it)
    from beyond_imagenet.base.files import atomic_write_json
    from beyond_imagenet.base.provenance import library_versions
    from beyond_imagenet.probe.splits import FeatureSplit

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU visible")
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # sklearn depends on threadpoolctl; without it BLAS keeps its default
        threadpool_limits = None
    limiter = threadpool_limits(args.threads) if threadpool_limits else None

    sizes = {"train": args.train, "val": args.val, "test": args.test}
    splits = [
        FeatureSplit(*synthetic_split(n, args.dim, args.classes, args.sep, seed), name=name)
        for seed, (name, n) in enumerate(sizes.items(), start=1)
    ]
    rows = [run_ours(splits, args.classes, args, engine) for engine in args.engines]
    if not args.skip_sklearn:
        rows.append(run_sklearn(splits, rows[0]["candidates_wd"], args))
    if limiter is not None:
        limiter.unregister()

    reference = next((r for r in rows if r["name"].startswith("sklearn")), None)
    for row in rows:
        row["sklearn_over_this"] = reference["total_s"] / row["total_s"] if reference else None
    record = {
        "setup": {
            **sizes,
            "dim": args.dim,
            "classes": args.classes,
            "sep": args.sep,
            "method": args.method,
            "trials": args.trials,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "seed": args.seed,
            "device": args.device,
            "device_name": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu",
            "threads": args.threads,
            "cpu_count": os.cpu_count(),
        },
        "results": rows,
        "versions": library_versions(),
    }
    atomic_write_json(args.output, record)

    print(
        f"{args.train}/{args.val}/{args.test} x {args.dim}, {args.classes} classes; {args.method} search; "
        f"{args.epochs} epochs, batch {args.batch_size}; {args.device}, {args.threads} threads"
    )
    print(f"{'':<18} {'fits':>5} {'search s':>9} {'final s':>8} {'total s':>8} {'val top1':>9} {'test top1':>9} "
          f"{'sklearn/this':>12}")  # fmt: skip
    for row in rows:
        ratio = f"{row['sklearn_over_this']:.2f}x" if row["sklearn_over_this"] else "-"
        print(
            f"{row['name']:<18} {row['fits']:>5} {row['search_s']:>9.2f} {row['final_s']:>8.2f} {row['total_s']:>8.2f}"
            f" {row['val_top1']:>9.2f} {row['test_top1']:>9.2f} {ratio:>12}"
        )
    if reference:
        print(f"sklearn: {reference['unconverged_fits']} of {reference['fits'] - 1} search fits hit max_iter")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
