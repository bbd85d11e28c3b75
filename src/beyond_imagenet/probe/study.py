"""The Optuna side of the probe search (docs/transfer.md §4): the search space, resumable SQLite studies, trials.

A study records its protocol (method, metric, fixed probe settings, search space, a fingerprint of the train/val
data); reopening it with a different protocol is an error rather than a silent reuse of stale trials (the
CLIP_benchmark cache-staleness pitfall, §8.6). Trials left RUNNING by an interrupted run are marked failed on
reopening (one process per study).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.probe.splits import FeatureSplit
from beyond_imagenet.probe.trial import TrialRecord

WD_RANGE = (1e-6, 1e2)
WD_GRID_POINTS = 97  # 12 per decade over 8 decades, plus the end point
COARSE_STRIDE = 16  # indices 0, 16, ..., 96 are logspace(-6, 2, 7)
REFINE_SPANS = (8, 4, 2, 1)
PROTOCOL_ATTR = "probe_protocol"


def wd_grid() -> list[float]:
    """The 97 candidate weight decays of CLIP_benchmark: ``logspace(-6, 2, 97)``."""
    return np.logspace(math.log10(WD_RANGE[0]), math.log10(WD_RANGE[1]), WD_GRID_POINTS).tolist()


def coarse_indices() -> list[int]:
    """The grid's coarse pass: indices 0, 16, ..., 96 (``logspace(-6, 2, 7)``)."""
    return list(range(0, WD_GRID_POINTS, COARSE_STRIDE))


@dataclass(frozen=True)
class SearchSpace:
    """What the search tunes: weight decay always (log-uniform), lr and epochs optionally.

    lr (log-uniform) and epochs (categorical) are the §4 extension, e.g.
    ``SearchSpace(lr=(1e-3, 1.0), epochs=(10, 20, 40))``.
    """

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
        """Names of the tuned settings (weight_decay, then lr and epochs when set); the others stay fixed."""
        return ("weight_decay",) + (("lr",) if self.lr else ()) + (("epochs",) if self.epochs else ())

    def suggest(self, trial: optuna.Trial) -> dict[str, float | int]:
        """Draw one TPE trial's settings from this space (``ProbeConfig`` field -> value)."""
        params: dict[str, float | int] = {
            "weight_decay": trial.suggest_float("weight_decay", *self.weight_decay, log=True)
        }
        if self.lr is not None:
            params["lr"] = trial.suggest_float("lr", *self.lr, log=True)
        if self.epochs is not None:
            params["epochs"] = int(trial.suggest_categorical("epochs", list(self.epochs)))
        return params

    def to_dict(self) -> dict[str, Any]:
        """The space as a JSON-ready dict (tuples as lists), recorded in a TPE study's protocol."""
        return {k: list(v) if v is not None else None for k, v in asdict(self).items()}


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Silence Optuna's info logging and experimental-feature warnings while a search runs."""
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


def open_study(
    study_name: str,
    url: str | None,
    method: str,
    seed: int,
    n_startup_trials: int,
    multivariate: bool,
    protocol: dict[str, Any],
) -> optuna.Study:
    """Create or reopen study ``study_name`` at ``url`` (None: in memory) and check its recorded protocol.

    A new study records ``protocol``; a reopened one must hold the same, or a ``UserError`` lists what changed.
    ``method="tpe"`` gets a seeded TPE sampler; grid trials are added already finished, so they need none. Trials
    left RUNNING by an interrupted run are marked failed.
    """
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


def counts_towards_budget(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial is done: complete, or failed because its val logits were not finite (a diverged fit)."""
    state = optuna.trial.TrialState
    return trial.state == state.COMPLETE or (trial.state == state.FAIL and trial.user_attrs.get("non_finite"))


def trial_record(trial: optuna.trial.FrozenTrial, study_name: str, method: str) -> TrialRecord:
    """The ``TrialRecord`` of a finished trial, from its user attributes; the score is None unless it completed."""
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


def best_trial(trials: Sequence[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial | None:
    """The first-best complete trial (lowest number among the maxima)."""
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    return max(sorted(done, key=lambda t: t.number), key=lambda t: t.value, default=None)


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


def run_grid(
    study: optuna.Study, run_trial: Callable[[optuna.Study, int], optuna.trial.FrozenTrial]
) -> optuna.trial.FrozenTrial | None:
    """CLIP_benchmark's coarse-to-fine walk over the 97-point grid; each point fitted once per study."""
    by_index = {t.user_attrs["grid_index"]: t for t in study.trials if counts_towards_budget(t)}
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
