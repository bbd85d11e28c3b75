"""Hyper-parameter search for the linear probe: select on val only, refit on train+val, test once.

Implements TRANSFER.md §2.3 (CLIP_benchmark's coarse-to-fine weight-decay grid) and §4 (the Optuna equivalent):

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

import contextlib
import hashlib
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
import torch

from beyond_imagenet.errors import NonFiniteLogitsError, UserError
from beyond_imagenet.transfer.probe import (
    LinearProbe,
    ProbeConfig,
    accelerator_device,
    check_n_classes,
    check_split,
    evaluate,
    fit_probe,
    predict,
)
from beyond_imagenet.transfer.splits import FeatureSplit, check_disjoint

log = logging.getLogger(__name__)

METHODS = ("tpe", "grid")
METRICS = ("top1", "mean_per_class_recall")
WD_RANGE = (1e-6, 1e2)
WD_GRID_POINTS = 97  # 12 per decade over 8 decades, plus the end point
COARSE_STRIDE = 16  # indices 0, 16, ..., 96 are logspace(-6, 2, 7)
REFINE_SPANS = (8, 4, 2, 1)
DEFAULT_TPE_TRIALS = 19  # the grid's budget (§4)
PROTOCOL_ATTR = "probe_protocol"


def wd_grid() -> list[float]:
    """The 97 candidate weight decays of CLIP_benchmark: ``logspace(-6, 2, 97)``."""
    return np.logspace(math.log10(WD_RANGE[0]), math.log10(WD_RANGE[1]), WD_GRID_POINTS).tolist()


def coarse_indices() -> list[int]:
    return list(range(0, WD_GRID_POINTS, COARSE_STRIDE))


@dataclass(frozen=True)
class SearchSpace:
    """What the search tunes. Weight decay always (log-uniform); lr (log-uniform) and epochs (categorical)
    optionally: the §4 extension, e.g. ``SearchSpace(lr=(1e-3, 1.0), epochs=(10, 20, 40))``."""

    weight_decay: tuple[float, float] = WD_RANGE
    lr: tuple[float, float] | None = None
    epochs: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("weight_decay", "lr"):
            bounds = getattr(self, name)
            if bounds is not None and not (len(bounds) == 2 and 0 < bounds[0] < bounds[1]):
                raise UserError(f"search space {name} must be (low, high) with 0 < low < high, got {bounds!r}")
        if self.epochs is not None and (not self.epochs or any(int(e) != e or e < 1 for e in self.epochs)):
            raise UserError(f"search space epochs must be positive integers, got {self.epochs!r}")

    @property
    def tuned(self) -> tuple[str, ...]:
        return ("weight_decay",) + (("lr",) if self.lr else ()) + (("epochs",) if self.epochs else ())

    def suggest(self, trial: optuna.Trial) -> dict[str, float | int]:
        params: dict[str, float | int] = {
            "weight_decay": trial.suggest_float("weight_decay", *self.weight_decay, log=True)
        }
        if self.lr is not None:
            params["lr"] = trial.suggest_float("lr", *self.lr, log=True)
        if self.epochs is not None:
            params["epochs"] = int(trial.suggest_categorical("epochs", list(self.epochs)))
        return params

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if v is not None else None for k, v in asdict(self).items()}


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial, as handed to ``on_trial`` (e.g. for an MLflow child run)."""

    study_name: str
    number: int
    method: str
    params: dict[str, float | int]
    val_metrics: dict[str, float]  # empty when the fit diverged
    score: float | None  # the selection metric on val; None when the trial failed
    fit_seconds: float
    grid_index: int | None = None


@dataclass(frozen=True)
class SearchOutcome:
    """What the search chose, from train/val only."""

    method: str
    metric: str
    seed: int
    best_params: dict[str, float | int]
    val_score: float
    val_metrics: dict[str, float]
    best_trial: int
    n_trials: int  # finished trials in the study (reused ones included)
    n_new_trials: int  # trials run by this call
    study_name: str
    storage: str | None
    trials: tuple[TrialRecord, ...]


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
# helpers


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        logger.setLevel(level)


def storage_url(storage: str | Path | None) -> str | None:
    """``None`` (in-memory study), a SQLite file path, or an explicit ``sqlite:///`` URL."""
    if storage is None:
        return None
    text = str(storage)
    if text.startswith("sqlite:///"):
        return text
    if "://" in text:
        raise UserError(f"probe study storage must be a SQLite file path, got {text!r}")
    path = Path(text).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def data_fingerprint(split: FeatureSplit) -> dict[str, Any]:
    """Shape, a hash of the labels and of up to 64 evenly spaced feature rows (exact, device-independent)."""
    n = len(split.y)
    rows = torch.linspace(0, n - 1, steps=min(n, 64)).round().long().unique()
    sample = split.x[rows.to(split.x.device)].detach().cpu().contiguous().numpy()
    labels = split.y.detach().cpu().to(torch.int64).numpy()
    digest = hashlib.sha256(labels.tobytes())
    digest.update(str(sample.dtype).encode())
    digest.update(sample.tobytes())
    return {"n": n, "dim": int(split.x.shape[1]), "sha256": digest.hexdigest()[:16]}


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')} ({old!r} -> {new!r})"]


def _open_study(
    study_name: str,
    url: str | None,
    method: str,
    seed: int,
    n_startup_trials: int,
    multivariate: bool,
    protocol: dict[str, Any],
) -> optuna.Study:
    if method == "tpe":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=n_startup_trials, multivariate=multivariate
        )
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)  # unused: grid trials are added already finished
    study = optuna.create_study(
        study_name=study_name, storage=url, sampler=sampler, direction="maximize", load_if_exists=True
    )
    protocol = json.loads(json.dumps(protocol))
    stored = study.user_attrs.get(PROTOCOL_ATTR)
    if stored is None:
        if study.trials:
            raise UserError(
                f"study {study_name!r} in {url} has trials but no probe protocol record; it was not created by "
                "this search. Use another study name or storage file."
            )
        study.set_user_attr(PROTOCOL_ATTR, protocol)
    elif stored != protocol:
        changed = "; ".join(_differences(stored, protocol))
        raise UserError(
            f"study {study_name!r} in {url} was run with a different protocol ({changed}); its trials cannot be "
            "reused. Use another study name (e.g. one per protocol hash) or delete the study file."
        )
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        # left by an interrupted run (one process per study): mark failed so it neither counts nor misleads TPE
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    return study


def _counts_towards_budget(trial: optuna.trial.FrozenTrial) -> bool:
    state = optuna.trial.TrialState
    return trial.state == state.COMPLETE or (trial.state == state.FAIL and trial.user_attrs.get("non_finite"))


def _record(trial: optuna.trial.FrozenTrial, study_name: str, method: str) -> TrialRecord:
    attrs = trial.user_attrs
    return TrialRecord(
        study_name=study_name,
        number=trial.number,
        method=method,
        params=dict(attrs.get("params", trial.params)),
        val_metrics=dict(attrs.get("val_metrics", {})),
        score=trial.value if trial.state == optuna.trial.TrialState.COMPLETE else None,
        fit_seconds=float(attrs.get("fit_seconds", float("nan"))),
        grid_index=attrs.get("grid_index"),
    )


def _best(trials: Sequence[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial | None:
    """The first-best complete trial (lowest number among the maxima)."""
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    return max(sorted(done, key=lambda t: t.number), key=lambda t: t.value, default=None)


# ---------------------------------------------------------------------------------------------------------------
# the search (train and val only)


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
    config = config or ProbeConfig()
    space = space or SearchSpace()
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

    device = accelerator_device(accelerator)
    train_x, train_y = train.x.to(device), train.y.to(device)  # resident for all trials
    val_x = val.x.to(device)
    fixed = {k: v for k, v in config.to_dict().items() if k not in space.tuned}
    protocol = {
        "method": method,
        "metric": metric,
        "n_classes": int(n_classes),
        "fixed": fixed,
        "space": space.to_dict()
        if method == "tpe"
        else {"weight_decay_grid": [WD_RANGE[0], WD_RANGE[1], WD_GRID_POINTS]},
        "train": data_fingerprint(train),
        "val": data_fingerprint(val),
    }
    if method == "tpe":
        protocol["n_startup_trials"] = int(n_startup_trials)
    url = storage_url(storage)

    def fit_and_score(params: dict[str, float | int]) -> tuple[dict[str, float] | None, float]:
        start = time.perf_counter()
        probe = fit_probe(train_x, train_y, n_classes, config.with_params(**params), accelerator, engine)
        try:
            metrics = evaluate(predict(probe, val_x, device=device), val.y, n_classes)
        except NonFiniteLogitsError as err:
            log.info("probe search %s: the fit with %s diverged: %s", study_name, params, err)
            metrics = None
        return metrics, time.perf_counter() - start

    def finished(frozen: optuna.trial.FrozenTrial) -> optuna.trial.FrozenTrial:
        if on_trial is not None:
            on_trial(_record(frozen, study_name, method))
        return frozen

    def tpe_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
        trial = study.ask()
        params = space.suggest(trial)
        metrics, seconds = fit_and_score(params)
        trial.set_user_attr("params", params)
        trial.set_user_attr("fit_seconds", seconds)
        if metrics is None:
            trial.set_user_attr("non_finite", True)
            return finished(study.tell(trial, state=optuna.trial.TrialState.FAIL))
        trial.set_user_attr("val_metrics", metrics)
        return finished(study.tell(trial, metrics[metric]))

    def grid_trial(study: optuna.Study, index: int) -> optuna.trial.FrozenTrial:
        """Fit first, then add the finished trial: an interrupted fit leaves nothing behind."""
        grid = wd_grid()
        params: dict[str, float | int] = {"weight_decay": grid[index]}
        metrics, seconds = fit_and_score(params)
        attrs = {"params": params, "fit_seconds": seconds, "grid_index": index}
        attrs.update({"non_finite": True} if metrics is None else {"val_metrics": metrics})
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions={"weight_decay": optuna.distributions.FloatDistribution(grid[0], grid[-1], log=True)},
                value=None if metrics is None else metrics[metric],
                state=optuna.trial.TrialState.FAIL if metrics is None else optuna.trial.TrialState.COMPLETE,
                user_attrs=attrs,
            )
        )
        return finished(study.get_trials(deepcopy=False)[-1])

    with _quiet_optuna():
        study = _open_study(study_name, url, method, config.seed, n_startup_trials, len(space.tuned) > 1, protocol)
        done_before = sum(_counts_towards_budget(t) for t in study.trials)
        if method == "tpe":
            for _ in range(max(0, int(n_trials) - done_before)):
                tpe_trial(study)
            best = _best(study.trials)
        else:
            best = _run_grid(study, grid_trial)
        trials = [t for t in study.trials if _counts_towards_budget(t)]

    if best is None or best.value is None or not math.isfinite(best.value):
        raise UserError(
            f"probe search {study_name!r}: no trial produced finite val logits; lower lr or check the features"
        )
    record = _record(best, study_name, method)
    return SearchOutcome(
        method=method,
        metric=metric,
        seed=config.seed,
        best_params=record.params,
        val_score=float(best.value),
        val_metrics=record.val_metrics,
        best_trial=best.number,
        n_trials=len(trials),
        n_new_trials=len(trials) - done_before,
        study_name=study_name,
        storage=url,
        trials=tuple(_record(t, study_name, method) for t in trials),
    )


def _run_grid(
    study: optuna.Study, run_trial: Callable[[optuna.Study, int], optuna.trial.FrozenTrial]
) -> optuna.trial.FrozenTrial | None:
    """CLIP_benchmark's coarse-to-fine walk over the 97-point grid; each point fitted once per study."""
    by_index = {t.user_attrs["grid_index"]: t for t in study.trials if _counts_towards_budget(t)}
    last = WD_GRID_POINTS - 1

    def score(index: int) -> float:
        if index not in by_index:
            by_index[index] = run_trial(study, index)
        value = by_index[index].value
        return value if by_index[index].state == optuna.trial.TrialState.COMPLETE else -math.inf

    def peak_of(indices: list[int]) -> int:
        best_index, best = indices[0], -math.inf
        for index in indices:
            value = score(index)
            if value > best:  # strict: the first-best wins
                best_index, best = index, value
        return best_index

    peak = peak_of(coarse_indices())
    for span in REFINE_SPANS:
        peak = peak_of([max(peak - span, 0), peak, min(peak + span, last)])
    return by_index[peak]


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
) -> ProbeSearchResult:
    """Validate, search on train/val (test withheld), refit on train+val, evaluate test once."""
    config = config or ProbeConfig()
    check_inputs(train, val, test, n_classes)
    outcome = search_hyperparameters(
        train,
        val,
        n_classes,
        config=config,
        method=method,
        n_trials=n_trials,
        space=space,
        storage=storage,
        study_name=study_name,
        metric=metric,
        n_startup_trials=n_startup_trials,
        on_trial=on_trial,
        accelerator=accelerator,
        engine=engine,
    )
    final_config = config.with_params(**outcome.best_params)
    probe, test_metrics, test_predictions = refit_and_test(
        train, val, test, n_classes, final_config, accelerator, engine
    )
    return ProbeSearchResult(
        method=outcome.method,
        metric=outcome.metric,
        seed=outcome.seed,
        best_params=outcome.best_params,
        val_score=outcome.val_score,
        val_metrics=outcome.val_metrics,
        test_metrics=test_metrics,
        n_trials=outcome.n_trials,
        n_new_trials=outcome.n_new_trials,
        study_name=outcome.study_name,
        storage=outcome.storage,
        final_config=final_config.to_dict(),
        n_train=len(train.y),
        n_val=len(val.y),
        n_test=len(test.y),
        trials=outcome.trials,
        probe=probe,
        test_predictions=test_predictions,
    )
