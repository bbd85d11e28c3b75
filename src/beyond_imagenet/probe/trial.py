"""One finished trial of a probe search, as the search hands it to its ``on_trial`` hook (no optuna needed)."""

from __future__ import annotations

from dataclasses import dataclass


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
