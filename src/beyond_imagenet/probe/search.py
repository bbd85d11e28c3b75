"""Hyper-parameter search for the linear probe: select on val only, refit on train+val, test once.

Implements docs/transfer.md §2.3 (CLIP_benchmark's coarse-to-fine weight-decay grid) and §4 (the Optuna equivalent):

- ``search_hyperparameters(train, val, ...)`` fits on **train**, scores on **val** and never receives the test
  split. ``method="tpe"``: seeded ``TPESampler`` (``n_startup_trials`` 7) over weight decay, log-uniform on
  [1e-6, 1e2]; optionally lr (log-uniform, e.g. [1e-3, 1]) and epochs (categorical, e.g. {10, 20, 40}); 19 trials
  by default, the grid's budget. ``method="grid"``: the 97-point log grid 1e-6..1e2 (12 per decade); coarse pass on
  indices 0, 16, ..., 96 (= ``logspace(-6, 2, 7)``), then spans 8, 4, 2, 1 around the peak. Each grid point is fitted
  at most once per study (fits are deterministic, so re-evaluating the peak as CLIP_benchmark does would return
  the same score): at most 7 + 4 x 2 = 15 fits instead of 19, same selection.
- Ties: the first-best wins (strict ``>`` in evaluation order, as CLIP_benchmark; for TPE the lowest trial number).
- The selection metric (``top1`` by default, or ``mean_per_class_recall``) is fixed up front (§4) and stored
  with the study.
- ``refit_and_test(train, val, test, ...)`` refits on train ∪ val with the chosen parameters (same epochs, so
  more steps) and evaluates test once (§2.3 step 4, §4 "After the study"). ``tune_and_evaluate`` chains the two;
  the test split is touched only by input validation and by ``refit_and_test``.
- Studies live in a SQLite file (Optuna RDB storage) given by the caller and are resumable: a rerun with the same
  study name reuses finished trials and runs only the missing ones (a TPE study with ``n_trials`` finished runs
  none). The study records its protocol (method, metric, fixed probe settings, search space, a fingerprint of
  the train/val data); reopening it with a different protocol is an error rather than a silent reuse of stale
  trials (the CLIP_benchmark cache-staleness pitfall, §8.6). A resumed TPE run conditions on the stored trials,
  but its sampler RNG restarts from the seed, so its later proposals may differ from an uninterrupted run's.
- ``on_trial`` is called with a ``TrialRecord`` after every newly finished trial, so the caller can log trials
  (e.g. as MLflow child runs of an explicit parent); this module does not import mlflow.
- A fit whose val logits are not finite marks its trial failed (it never wins); it counts towards the budget.
  Expect this at the top of the grid: PyTorch's AdamW scales the weights by ``1 - lr_t * wd`` every step, so with
  lr 0.1 any wd > 20 (grid points 21.5, 46.4, 100) oscillates and blows up, as it does in CLIP_benchmark, where such
  fits simply lose. Trials left RUNNING by an interrupted run are marked failed on reopening (one process per study).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna
import torch

from beyond_imagenet.base.errors import NonFiniteLogitsError, UserError
from beyond_imagenet.data.vtab.split_rules import check_disjoint
from beyond_imagenet.metrics.probe import check_n_classes, check_split, evaluate
from beyond_imagenet.probe.linear import LinearProbe, ProbeConfig, accelerator_device, fit_probe, predict
from beyond_imagenet.probe.splits import FeatureSplit
from beyond_imagenet.probe.study import (
    WD_GRID_POINTS,
    WD_RANGE,
    SearchOutcome,
    SearchSpace,
    best_trial,
    coarse_indices,
    counts_towards_budget,
    data_fingerprint,
    open_study,
    quiet_optuna,
    run_grid,
    storage_url,
    trial_record,
    wd_grid,
)
from beyond_imagenet.probe.trial import TrialRecord

log = logging.getLogger(__name__)

METHODS = ("tpe", "grid")
METRICS = ("top1", "mean_per_class_recall")
DEFAULT_TPE_TRIALS = 19  # the grid's budget (§4)
__all__ = ["SearchSpace", "TrialRecord", "coarse_indices", "search_hyperparameters", "tune_and_evaluate", "wd_grid"]


@dataclass(frozen=True)
class ProbeSearchResult:
    """The search outcome plus the test metrics of the probe refitted on train+val."""

    method: str
    metric: str
    seed: int
    best_params: dict[str, float | int]
    val_score: float
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    n_trials: int
    n_new_trials: int
    study_name: str
    storage: str | None
    final_config: dict[str, Any]
    n_train: int
    n_val: int
    n_test: int
    trials: tuple[TrialRecord, ...] = ()
    probe: LinearProbe | None = field(default=None, repr=False, compare=False)
    test_predictions: torch.Tensor | None = field(default=None, repr=False, compare=False)  # argmax per test row

    def to_record(self) -> dict[str, Any]:
        """A JSON-able record (no probe weights)."""
        skipped = ("probe", "trials", "test_predictions")
        record = {k: v for k, v in asdict(self).items() if k not in skipped}
        record["trials"] = [asdict(t) for t in self.trials]
        return record


# ---------------------------------------------------------------------------------------------------------------
# the search (train and val only)


def _check_search(train: FeatureSplit, val: FeatureSplit, n_classes: int, method, metric, n_trials, space) -> None:
    """Refuse bad settings and bad train/val inputs before any fit."""
    if method not in METHODS:
        raise UserError(f"probe search method must be one of {METHODS}, got {method!r}")
    if metric not in METRICS:
        raise UserError(f"probe selection metric must be one of {METRICS}, got {metric!r}")
    if method == "grid" and space.tuned != ("weight_decay",):
        raise UserError("the coarse-to-fine grid searches weight decay only (§2.3); use method='tpe' to tune lr/epochs")
    if method == "tpe" and (int(n_trials) != n_trials or n_trials < 1):
        raise UserError(f"n_trials must be a positive integer, got {n_trials!r}")
    check_n_classes(n_classes)
    check_split(train.x, train.y, n_classes, "train")
    check_split(val.x, val.y, n_classes, "val")
    if train.x.shape[1] != val.x.shape[1]:
        raise UserError(f"train features have dim {train.x.shape[1]} but val features dim {val.x.shape[1]}")


def _protocol(method: str, metric: str, n_classes: int, config: ProbeConfig, space: SearchSpace, data, startup) -> dict:
    """What a study must have been run with for its trials to be reused."""
    fixed = {k: v for k, v in config.to_dict().items() if k not in space.tuned}
    grid = {"weight_decay_grid": [WD_RANGE[0], WD_RANGE[1], WD_GRID_POINTS]}
    protocol = {
        "method": method,
        "metric": metric,
        "n_classes": int(n_classes),
        "fixed": fixed,
        "space": space.to_dict() if method == "tpe" else grid,
        "train": data_fingerprint(data[0]),
        "val": data_fingerprint(data[1]),
    }
    if method == "tpe":
        protocol["n_startup_trials"] = int(startup)
    return protocol


@dataclass
class _Trials:
    """Fits and scores one trial at a time on the resident train/val features; reports each finished trial."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val: FeatureSplit
    n_classes: int
    config: ProbeConfig
    metric: str
    study_name: str
    method: str
    space: SearchSpace
    accelerator: str
    engine: str
    on_trial: Callable[[TrialRecord], None] | None

    def fit_and_score(self, params: dict[str, float | int]) -> tuple[dict[str, float] | None, float]:
        """Val metrics of a probe fitted on train with ``params`` (None when its val logits are not finite)."""
        start = time.perf_counter()
        probe = fit_probe(
            self.train_x, self.train_y, self.n_classes, self.config.with_params(**params), self.accelerator, self.engine
        )
        try:
            device = accelerator_device(self.accelerator)
            metrics = evaluate(predict(probe, self.val_x, device=device), self.val.y, self.n_classes)
        except NonFiniteLogitsError as err:
            log.info("probe search %s: the fit with %s diverged: %s", self.study_name, params, err)
            metrics = None
        return metrics, time.perf_counter() - start

    def finished(self, frozen: optuna.trial.FrozenTrial) -> optuna.trial.FrozenTrial:
        """Hand a finished trial to ``on_trial``."""
        if self.on_trial is not None:
            self.on_trial(trial_record(frozen, self.study_name, self.method))
        return frozen

    def tpe_trial(self, study: optuna.Study) -> optuna.trial.FrozenTrial:
        """Ask the sampler, fit, tell."""
        trial = study.ask()
        params = self.space.suggest(trial)
        metrics, seconds = self.fit_and_score(params)
        trial.set_user_attr("params", params)
        trial.set_user_attr("fit_seconds", seconds)
        if metrics is None:
            trial.set_user_attr("non_finite", True)
            return self.finished(study.tell(trial, state=optuna.trial.TrialState.FAIL))
        trial.set_user_attr("val_metrics", metrics)
        return self.finished(study.tell(trial, metrics[self.metric]))

    def grid_trial(self, study: optuna.Study, index: int) -> optuna.trial.FrozenTrial:
        """Fit grid point ``index`` first, then add the finished trial: an interrupted fit leaves nothing behind."""
        grid = wd_grid()
        params: dict[str, float | int] = {"weight_decay": grid[index]}
        metrics, seconds = self.fit_and_score(params)
        attrs = {"params": params, "fit_seconds": seconds, "grid_index": index}
        attrs.update({"non_finite": True} if metrics is None else {"val_metrics": metrics})
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions={"weight_decay": optuna.distributions.FloatDistribution(grid[0], grid[-1], log=True)},
                value=None if metrics is None else metrics[self.metric],
                state=optuna.trial.TrialState.FAIL if metrics is None else optuna.trial.TrialState.COMPLETE,
                user_attrs=attrs,
            )
        )
        return self.finished(study.get_trials(deepcopy=False)[-1])


def _outcome(study: optuna.Study, best, trials: _Trials, done_before: int, url: str | None) -> SearchOutcome:
    if best is None or best.value is None or not math.isfinite(best.value):
        raise UserError(
            f"probe search {trials.study_name!r}: no trial produced finite val logits; lower lr or check the features"
        )
    counted = [t for t in study.trials if counts_towards_budget(t)]
    record = trial_record(best, trials.study_name, trials.method)
    return SearchOutcome(
        method=trials.method,
        metric=trials.metric,
        seed=trials.config.seed,
        best_params=record.params,
        val_score=float(best.value),
        val_metrics=record.val_metrics,
        best_trial=best.number,
        n_trials=len(counted),
        n_new_trials=len(counted) - done_before,
        study_name=trials.study_name,
        storage=url,
        trials=tuple(trial_record(t, trials.study_name, trials.method) for t in counted),
    )


def search_hyperparameters(
    train: FeatureSplit,
    val: FeatureSplit,
    n_classes: int,
    *,
    config: ProbeConfig | None = None,
    method: Literal["tpe", "grid"] = "tpe",
    n_trials: int = DEFAULT_TPE_TRIALS,
    space: SearchSpace | None = None,
    storage: str | Path | None = None,
    study_name: str = "linear_probe",
    metric: Literal["top1", "mean_per_class_recall"] = "top1",
    n_startup_trials: int = 7,
    on_trial: Callable[[TrialRecord], None] | None = None,
    accelerator: str = "auto",
    engine: Literal["lightning", "loop"] = "lightning",
) -> SearchOutcome:
    """Choose probe hyper-parameters by fitting on ``train`` and scoring on ``val``. Takes no test split.

    ``config`` holds the fixed settings (lr, epochs, batch size, seed, ...); its seed also seeds the sampler.
    ``n_trials`` is the TPE budget (ignored by ``method="grid"``, whose sequence is fixed by §2.3).
    """
    config, space = config or ProbeConfig(), space or SearchSpace()
    _check_search(train, val, n_classes, method, metric, n_trials, space)
    device = accelerator_device(accelerator)
    trials = _Trials(
        train.x.to(device), train.y.to(device), val.x.to(device), val, n_classes, config, metric,
        study_name, method, space, accelerator, engine, on_trial,
    )  # fmt: skip
    protocol = _protocol(method, metric, n_classes, config, space, (train, val), n_startup_trials)
    url = storage_url(storage)
    with quiet_optuna():
        study = open_study(study_name, url, method, config.seed, n_startup_trials, len(space.tuned) > 1, protocol)
        done_before = sum(counts_towards_budget(t) for t in study.trials)
        if method == "tpe":
            for _ in range(max(0, int(n_trials) - done_before)):
                trials.tpe_trial(study)
            best = best_trial(study.trials)
        else:
            best = run_grid(study, trials.grid_trial)
        return _outcome(study, best, trials, done_before, url)


# ---------------------------------------------------------------------------------------------------------------
# the final fit (the only place the test split is used)


def refit_and_test(
    train: FeatureSplit,
    val: FeatureSplit,
    test: FeatureSplit,
    n_classes: int,
    config: ProbeConfig,
    accelerator: str = "auto",
    engine: Literal["lightning", "loop"] = "lightning",
) -> tuple[LinearProbe, dict[str, float], torch.Tensor]:
    """Refit on train ∪ val with ``config`` (the chosen parameters) and evaluate on test, once.

    Returns the probe, the test metrics and the test predictions (argmax per row, for the saved predictions).
    """
    x = torch.cat([train.x, val.x.to(train.x.device, train.x.dtype)])
    y = torch.cat([train.y, val.y.to(train.y.device)])
    probe = fit_probe(x, y, n_classes, config, accelerator, engine)
    logits = predict(probe, test.x)
    return probe, evaluate(logits, test.y, n_classes), logits.argmax(dim=1)


def check_inputs(train: FeatureSplit, val: FeatureSplit, test: FeatureSplit, n_classes: int) -> None:
    """Validate all three splits before any fit: shapes, finiteness, label range, same dim, disjoint ids."""
    check_n_classes(n_classes)
    splits = {"train": train, "val": val, "test": test}
    for name, split in splits.items():
        check_split(split.x, split.y, n_classes, name)
    dims = {name: int(split.x.shape[1]) for name, split in splits.items()}
    if len(set(dims.values())) != 1:
        raise UserError(f"all splits need the same feature dim, got {dims}")
    with_ids = {name: split.ids for name, split in splits.items() if split.ids is not None}
    for name, ids in with_ids.items():
        if len(ids) != len(splits[name].y):
            raise UserError(f"{name}: {len(ids)} sample ids but {len(splits[name].y)} labels")
    if with_ids:
        if len(with_ids) != len(splits):
            missing = sorted(set(splits) - set(with_ids))
            raise UserError(f"sample ids given for some splits but not for {missing}; give all or none")
        check_disjoint(with_ids)


def tune_and_evaluate(
    train: FeatureSplit,
    val: FeatureSplit,
    test: FeatureSplit,
    n_classes: int,
    *,
    config: ProbeConfig | None = None,
    accelerator: str = "auto",
    engine: Literal["lightning", "loop"] = "lightning",
    **search: Any,
) -> ProbeSearchResult:
    """Validate, search on train/val (test withheld), refit on train+val, evaluate test once.

    ``search`` takes the keyword arguments of :func:`search_hyperparameters` (method, n_trials, space, storage,
    study_name, metric, n_startup_trials, on_trial).
    """
    config = config or ProbeConfig()
    check_inputs(train, val, test, n_classes)
    outcome = search_hyperparameters(
        train, val, n_classes, config=config, accelerator=accelerator, engine=engine, **search
    )
    final_config = config.with_params(**outcome.best_params)
    probe, test_metrics, test_predictions = refit_and_test(
        train, val, test, n_classes, final_config, accelerator, engine
    )
    found = {k: v for k, v in asdict(outcome).items() if k in ProbeSearchResult.__dataclass_fields__}
    return ProbeSearchResult(
        **{**found, "trials": outcome.trials},
        test_metrics=test_metrics,
        final_config=final_config.to_dict(),
        n_train=len(train.y),
        n_val=len(val.y),
        n_test=len(test.y),
        probe=probe,
        test_predictions=test_predictions,
    )
