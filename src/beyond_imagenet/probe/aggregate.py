"""Table 3 from the probe records (paper §6, docs/transfer.md §0.4): metrics.json, table3.md and Fig. 6 bottom.

Tasks that did not run are named, never averaged away: a group or Overall with a missing task is left empty. With
``AggregateOutputs.records`` set, every task record gets its intervals and replicates and each model a Table 3
summary record with intervals (``probe.estimates``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from beyond_imagenet.base.config import StatisticsConfig
from beyond_imagenet.base.files import atomic_write_json, atomic_write_text
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.figures.vtab import plot_fig6_bottom
from beyond_imagenet.metrics.vtab import Table3, table3, table3_markdown, table3_record
from beyond_imagenet.models.catalogue import resolve_model
from beyond_imagenet.probe.estimates import attach_vtab_intervals
from beyond_imagenet.probe.tasks import TransferPlan

SKIPPED_NOTE = "VTAB transfer skipped: params transfer.root is not set."


@dataclass(frozen=True)
class AggregateOutputs:
    """Where Table 3 goes: the DVC metrics file, the Markdown table, the figures folder and the records folder.

    ``records`` (the probe records, ``<vtab>/records``): the task records are rewritten there with their intervals,
    and each model's summary goes to ``<records>/<model>/<preset>.json``; None writes no record.
    """

    metrics: Path
    table3: Path
    figures: Path
    records: Path | None = None


def table3_rows(records: Sequence[ResultRecord]) -> list[dict]:
    """Table 3 input rows (model, task, top-1, mean per-class recall, weight decay) from ``vtab_probe`` records."""
    return [
        {
            "model": r.model_id,
            "task": r.dataset,
            "top1": r.metrics[f"vtab/{r.dataset}/top1"],
            "mean_per_class_recall": r.metrics[f"vtab/{r.dataset}/mean_per_class_recall"],
            "weight_decay": r.details.get("weight_decay"),
        }
        for r in records
    ]


def table3_from_records(records: Sequence[ResultRecord], preset: str, model_ids: Sequence[str]) -> Table3:
    """Paper Table 3 of ``model_ids`` (in that order) from their probe records."""
    return table3(table3_rows(records), preset, [resolve_model(m).id for m in model_ids])


def not_run_note(not_run: dict[str, str]) -> str:
    """Markdown list of the tasks that did not run, each with the first line of its reason."""
    if not not_run:
        return ""
    lines = [f"- `{name}`: {reason.splitlines()[0]}" for name, reason in not_run.items()]
    return "\n**Tasks not run** (their files are missing or unreadable):\n\n" + "\n".join(lines) + "\n"


def aggregate(
    plan: TransferPlan,
    records: Sequence[ResultRecord],
    model_ids: Sequence[str],
    out: AggregateOutputs,
    statistics: StatisticsConfig | None = None,
):
    """Table 3 + Fig. 6 bottom + metrics.json, and intervals on the task and summary records (params statistics).

    Returns ``{"table", "summary", "markdown", "figure", "records"}``; ``records`` are the per-model summary
    records (analysis ``vtab``), written under ``out.records`` when it is set.
    """
    table = table3_from_records(records, plan.preset.name, model_ids)
    summaries = attach_vtab_intervals(table, records, statistics or StatisticsConfig(), out.records)
    summary = table3_record(table)
    summary["not_run"] = dict(plan.not_run)
    summary["excluded_by_params"] = list(plan.excluded)
    summary["layout"] = plan.config.layout
    summary["protocol"] = plan.config.protocol
    atomic_write_json(out.metrics, summary)
    atomic_write_text(out.table3, table3_markdown(table) + not_run_note(plan.not_run))
    figure = plot_fig6_bottom(table, out.figures / "fig6_bottom.png")
    return {"table": table, "summary": summary, "markdown": out.table3, "figure": figure, "records": summaries}


def print_not_run(plan: TransferPlan) -> None:
    """Print why each task that will not run cannot run."""
    for name, reason in plan.not_run.items():
        print(f"VTAB task {name} NOT RUN: {reason}\n")
