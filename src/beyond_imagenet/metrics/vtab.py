"""VTAB aggregation (paper §6, Table 3; docs/transfer.md §0.4, §2.5, §2.6, §5.1).

From per-(model, task) probe results (plain dicts with ``model``, ``task``, ``top1`` and ``mean_per_class_recall``
in percent, optionally the chosen ``weight_decay``) this module builds

- ``table3``: per model the per-task scores, the group means over the preset's natural (7), specialized (4) and
  structured (8) tasks, and ``overall`` = the unweighted mean of the 19 tasks (docs/transfer.md §0.4: *not* the mean of
  the three group means), for top-1 (the VTAB metric) and for mean per-class recall (secondary, §2.5). A group
  mean or Overall with any task missing is ``None`` and the missing tasks are listed: nothing is ever averaged
  over fewer tasks;
- ``overall_from_groups``: Overall recovered from the three group means, (7 N + 4 Sp + 8 St) / 19 (§0.4);
- ``table3_markdown`` / ``table3_record``: the report table and the JSON metrics record (``None`` stays JSON
  ``null``); the grouped bar chart of Fig. 6 (bottom) is ``figures.vtab``.

Bad input (a task outside the preset, a duplicate result, a value that is not a percentage) raises ``UserError``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.vtab.tasks import GROUPS, PRESETS, Group, get_preset

GROUP_LABELS: Mapping[Group, str] = MappingProxyType(
    {"natural": "Natural", "specialized": "Specialized", "structured": "Structured"}
)
# Table 3 / Fig. 6 (bottom) columns, in the paper's order.
TABLE3_COLUMNS: tuple[str, ...] = (*GROUP_LABELS.values(), "Overall")
# Tasks per group in both presets (docs/transfer.md §0.4, §3.3): the weights of ``overall_from_groups``.
TABLE3_GROUP_SIZES: Mapping[Group, int] = MappingProxyType({"natural": 7, "specialized": 4, "structured": 8})
MISSING_CELL = "—"


# ----------------------------------------------------------------------------------------------------------------
# Table 3
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskScore:
    """One probe result: test top-1 and mean per-class recall (%), and the weight decay chosen on val if known."""

    top1: float
    mean_per_class_recall: float
    weight_decay: float | None = None


@dataclass(frozen=True)
class ModelScores:
    """One model's row of Table 3. Aggregates are ``None`` when any of their tasks is in ``missing``."""

    model: str
    tasks: Mapping[str, TaskScore]  # the tasks with a result, in preset order
    groups: Mapping[Group, float | None]  # top-1 group means
    groups_mean_per_class_recall: Mapping[Group, float | None]
    overall: float | None  # mean top-1 over the 19 tasks
    overall_mean_per_class_recall: float | None
    missing: tuple[str, ...]  # preset tasks without a result, in preset order

    def __hash__(self) -> int:  # the mapping fields are unhashable; the name identifies the row
        return hash((type(self).__name__, self.model))

    def column(self, label: str) -> float | None:
        """The top-1 value under one of ``TABLE3_COLUMNS`` (Natural, Specialized, Structured, Overall)."""
        if label == "Overall":
            return self.overall
        for group, text in GROUP_LABELS.items():
            if text == label:
                return self.groups[group]
        raise UserError(f"unknown Table 3 column {label!r}; use one of {', '.join(TABLE3_COLUMNS)}")


@dataclass(frozen=True)
class Table3:
    """Paper Table 3 for one preset: ``rows`` maps each model (in report order) to its ``ModelScores``."""

    preset: str
    task_groups: Mapping[Group, tuple[str, ...]]  # the preset's task names per group, in preset order
    rows: Mapping[str, ModelScores]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.preset, tuple(self.rows)))

    @property
    def tasks(self) -> tuple[str, ...]:
        """Every task of the preset, group by group (natural, specialized, structured), each group in preset order."""
        return tuple(t for g in GROUPS for t in self.task_groups[g])

    @property
    def models(self) -> tuple[str, ...]:
        """The models of the table, in report order."""
        return tuple(self.rows)

    def group_of(self, task: str) -> Group:
        """The VTAB group (natural, specialized or structured) of ``task``; ``UserError`` if not in the preset."""
        for g in GROUPS:
            if task in self.task_groups[g]:
                return g
        raise UserError(f"task {task!r} is not in preset {self.preset!r}")


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    """Plain mean, or ``None`` when any value is missing (never a mean over fewer values)."""
    if not values or any(v is None for v in values):
        return None
    return math.fsum(values) / len(values)  # type: ignore[arg-type]


def _percent(value: Any, what: str) -> float:
    """``value`` as a float in [0, 100]; anything else (bool, NaN, inf, out of range) raises ``UserError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UserError(f"{what} must be a number in percent (0-100), got {value!r}")
    v = float(value)
    if not math.isfinite(v) or not 0.0 <= v <= 100.0:
        raise UserError(f"{what} must be a finite percentage within [0, 100], got {v}; fractions must be x100")
    return v


def _weight_decay(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UserError(f"{what} must be a number or null, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise UserError(f"{what} must be finite and >= 0, got {v}")
    return v


def _parse_result(index: int, result: Any) -> tuple[str, str, TaskScore]:
    """Validate one result dict; returns (model, task without a ``vtab/`` prefix, score)."""
    if not isinstance(result, Mapping):
        raise UserError(f"result #{index} must be a dict with model, task, top1, mean_per_class_recall")
    absent = [k for k in ("model", "task", "top1", "mean_per_class_recall") if k not in result]
    if absent:
        raise UserError(f"result #{index} ({dict(result)!r}) lacks key(s) {', '.join(absent)}")
    model, task = result["model"], result["task"]
    if not isinstance(model, str) or not model or not isinstance(task, str) or not task:
        raise UserError(f"result #{index}: model and task must be non-empty strings, got {model!r}, {task!r}")
    task = task.removeprefix("vtab/")
    where = f"result #{index} ({model}, {task})"
    score = TaskScore(
        _percent(result["top1"], f"{where} top1"),
        _percent(result["mean_per_class_recall"], f"{where} mean_per_class_recall"),
        _weight_decay(result.get("weight_decay"), f"{where} weight_decay"),
    )
    return model, task, score


def _unknown_tasks_message(unknown: Sequence[str], preset: str, known: Sequence[str]) -> str:
    notes = []
    for task in unknown:
        other = [p for p, spec in PRESETS.items() if p != preset and task in spec.names]
        close = difflib.get_close_matches(task, known, n=1, cutoff=0.6)
        if other:
            notes.append(f"{task!r} belongs to preset {other[0]!r}")
        elif close:
            notes.append(f"{task!r}: did you mean {close[0]!r}?")
    hint = f" ({'; '.join(notes)})" if notes else ""
    return (
        f"results for task(s) {', '.join(repr(t) for t in unknown)} are not in preset {preset!r}{hint}. "
        f"Its {len(known)} tasks are: {', '.join(known)}."
    )


def _model_scores(model: str, scores: Mapping[str, TaskScore], groups: Mapping[Group, tuple[str, ...]]) -> ModelScores:
    order = [t for g in GROUPS for t in groups[g]]

    def values(tasks: Sequence[str], attr: str) -> list[float | None]:
        return [getattr(scores[t], attr) if t in scores else None for t in tasks]

    return ModelScores(
        model=model,
        tasks=MappingProxyType({t: scores[t] for t in order if t in scores}),
        groups=MappingProxyType({g: _mean_or_none(values(groups[g], "top1")) for g in GROUPS}),
        groups_mean_per_class_recall=MappingProxyType(
            {g: _mean_or_none(values(groups[g], "mean_per_class_recall")) for g in GROUPS}
        ),
        overall=_mean_or_none(values(order, "top1")),
        overall_mean_per_class_recall=_mean_or_none(values(order, "mean_per_class_recall")),
        missing=tuple(t for t in order if t not in scores),
    )


def table3(results: Iterable[Mapping[str, Any]], preset: str, models: Sequence[str] | None = None) -> Table3:
    """Paper Table 3 from per-(model, task) probe results (docs/transfer.md §0.4, §2.6).

    ``models`` selects and orders the rows (results of other models are left out; a listed model without any
    result gets a row with every task missing); by default the models appear in first-seen order. Task names may
    carry CLIP_benchmark's ``vtab/`` prefix. Raises ``UserError`` for tasks outside ``preset``, a repeated
    (model, task) or a value that is not a finite percentage.
    """
    spec = get_preset(preset)
    groups: Mapping[Group, tuple[str, ...]] = MappingProxyType(dict(spec.groups))
    by_model: dict[str, dict[str, TaskScore]] = {}
    duplicates: list[str] = []
    unknown: list[str] = []
    for index, result in enumerate(results):
        model, task, score = _parse_result(index, result)
        if task not in spec.names:
            if task not in unknown:
                unknown.append(task)
            continue
        if task in by_model.setdefault(model, {}):
            duplicates.append(f"({model}, {task})")
        by_model[model][task] = score
    if unknown:
        raise UserError(_unknown_tasks_message(unknown, preset, spec.names))
    if duplicates:
        raise UserError(
            f"more than one result for {', '.join(duplicates)}; keep one probe result per (model, task) "
            f"(e.g. the final refit of one run)"
        )
    if models is None:
        order = list(by_model)
    else:
        order = list(models)
        repeated = sorted({m for m in order if order.count(m) > 1})
        if repeated:
            raise UserError(f"models lists {', '.join(repeated)} more than once")
    rows = {m: _model_scores(m, by_model.get(m, {}), groups) for m in order}
    return Table3(preset=spec.name, task_groups=groups, rows=MappingProxyType(rows))


def overall_from_groups(natural: float, specialized: float, structured: float) -> float:
    """Overall (mean of the 19 tasks) from the three group means: (7 N + 4 Sp + 8 St) / 19 (docs/transfer.md §0.4)."""
    means = {"natural": natural, "specialized": specialized, "structured": structured}
    weighted = math.fsum(TABLE3_GROUP_SIZES[g] * float(means[g]) for g in GROUPS)
    return weighted / sum(TABLE3_GROUP_SIZES.values())


def table3_settings(table: Table3, metric: str = "top1") -> dict[str, dict[str, float]]:
    """``{model: {task: value}}`` of the tasks each model has: per-task settings for ``zscores`` (§5.1)."""
    if metric not in ("top1", "mean_per_class_recall"):
        raise UserError(f"unknown metric {metric!r}; use 'top1' or 'mean_per_class_recall'")
    return {m: {t: getattr(s, metric) for t, s in row.tasks.items()} for m, row in table.rows.items()}


# ----------------------------------------------------------------------------------------------------------------
# Report: Markdown, JSON record, Fig. 6 (bottom)
# ----------------------------------------------------------------------------------------------------------------


Intervals = Mapping[tuple[str, str], tuple[float, float]]  # (model, group or "overall") -> (low, high)


def _cell(value: float | None, interval: tuple[float, float] | None = None) -> str:
    if value is None:
        return MISSING_CELL
    if interval is None or not all(math.isfinite(v) for v in interval):
        return f"{value:.1f}"
    return f"{value:.1f} ({interval[0]:.1f}-{interval[1]:.1f})"


def _md_name(name: str) -> str:
    return name.replace("|", "\\|")


def _summary_rows(table: Table3, recall: bool, names: Mapping[str, str], intervals: Intervals) -> list[str]:
    lines = ["| Model | " + " | ".join(TABLE3_COLUMNS) + " |", "| --- |" + " ---: |" * len(TABLE3_COLUMNS)]
    for model, row in table.rows.items():
        groups = row.groups_mean_per_class_recall if recall else row.groups
        overall = row.overall_mean_per_class_recall if recall else row.overall
        shown = {} if recall else intervals
        cells = [_cell(groups[g], shown.get((model, g))) for g in GROUPS]
        cells.append(_cell(overall, shown.get((model, "overall"))))
        lines.append(f"| {_md_name(names.get(model, model))} | " + " | ".join(cells) + " |")
    return lines


def _task_cell(row: ModelScores, task: str) -> str:
    score = row.tasks.get(task)
    if score is None:
        return "missing"
    return f"{score.top1:.1f} ({score.mean_per_class_recall:.1f})"


def table3_markdown(table: Table3, names: Mapping[str, str] | None = None, intervals: Intervals | None = None) -> str:
    """Table 3 as Markdown, for the ``probe`` stage's ``table3.md`` and the report.

    The paper's layout (top-1), the same for mean per-class recall, the per-task table (top-1 with recall in
    parentheses) and one line per model naming its missing tasks. ``names`` shows a model under another name (the
    report's display names); ``intervals`` adds "(low-high)" to the top-1 group and Overall cells.
    """
    names, intervals = names or {}, intervals or {}
    sizes = ", ".join(f"{GROUP_LABELS[g]} {len(table.task_groups[g])}" for g in GROUPS)
    lines = [
        f"VTAB linear probe, preset `{table.preset}`: top-1 (%) per group ({sizes} tasks); "
        f"Overall = mean of the {len(table.tasks)} tasks (not the mean of the groups).",
        "",
        *_summary_rows(table, False, names, intervals),
        "",
        "Mean per-class recall (%), same aggregation:",
        "",
        *_summary_rows(table, True, names, intervals),
        "",
        "Per task: top-1 (mean per-class recall), %:",
        "",
        "| Task | Group | " + " | ".join(_md_name(names.get(m, m)) for m in table.models) + " |",
        "| --- | --- |" + " ---: |" * len(table.models),
    ]
    for task in table.tasks:
        cells = [_task_cell(row, task) for row in table.rows.values()]
        lines.append(f"| {task} | {GROUP_LABELS[table.group_of(task)]} | " + " | ".join(cells) + " |")
    notes = [_missing_note(row, table, names) for row in table.rows.values() if row.missing]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def _missing_note(row: ModelScores, table: Table3, names: Mapping[str, str]) -> str:
    groups = [GROUP_LABELS[g] for g in GROUPS if row.groups[g] is None]
    return (
        f"- {_md_name(names.get(row.model, row.model))}: Overall not computed: missing {', '.join(row.missing)} "
        f"({len(row.missing)} of {len(table.tasks)} tasks; also not computed: {', '.join(groups)})"
    )


def table3_record(table: Table3) -> dict[str, Any]:
    """JSON-serialisable Table 3 (``metrics.json`` / DVC metrics); missing aggregates stay ``None`` (null)."""
    models = {}
    for model, row in table.rows.items():
        models[model] = {
            "groups": {g: row.groups[g] for g in GROUPS},
            "overall": row.overall,
            "groups_mean_per_class_recall": {g: row.groups_mean_per_class_recall[g] for g in GROUPS},
            "overall_mean_per_class_recall": row.overall_mean_per_class_recall,
            "tasks": {
                t: {"top1": s.top1, "mean_per_class_recall": s.mean_per_class_recall, "weight_decay": s.weight_decay}
                for t, s in row.tasks.items()
            },
            "missing": list(row.missing),
        }
    return {"preset": table.preset, "task_groups": {g: list(table.task_groups[g]) for g in GROUPS}, "models": models}


__all__ = [
    "GROUP_LABELS",
    "TABLE3_COLUMNS",
    "TABLE3_GROUP_SIZES",
    "ModelScores",
    "Table3",
    "TaskScore",
    "overall_from_groups",
    "table3",
    "table3_markdown",
    "table3_record",
    "table3_settings",
]
