"""A side study's section: another params file's models and results, read from its records (params ``side_studies``).

The demo's side study is one real pretrained network on the real images that exist offline (configs/demo_real.yaml)
next to the random-weight stand-ins of the main run. The section lists each headline metric with its interval and
one sentence on what it means at that sample size; its figures follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.models.display import display_name
from beyond_imagenet.report.catalogue import figure_blocks
from beyond_imagenet.report.document import Block, Bullets, Section, Table, Text

# Metric (after its analysis and dataset) -> (its label, what it measures); per-class metrics are left to the figures.
MEANINGS: dict[str, tuple[str, str]] = {
    "top1": ("top-1 (%)", "share of images whose highest-scoring class is the label"),
    "top5": ("top-5 (%)", "share of images with the label among the 5 highest-scoring classes"),
    "overall": ("shape bias", "shape decisions / (shape + texture decisions) on the cue-conflict stimuli (§6)"),
    "fraction_correct_shape": ("shape decisions", "share of all stimuli decided by their shape"),
    "fraction_correct_texture": ("texture decisions", "share of all stimuli decided by their texture"),
    "accuracy_16": ("16-class accuracy (%)", "share of stimuli whose 16-class decision is the shape category"),
}
PERCENT = ("top1", "top5", "accuracy_16")


@dataclass(frozen=True)
class SideStudy:
    """One side study: its title, its params file, its models, its records and its results folder."""

    title: str
    params_file: str
    models: list[str]
    records: list[ResultRecord]
    results_dir: Path


def _metric_name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def reading(key: str, value: float, low: float, high: float, n: int) -> str:
    """One sentence on what a value and its interval say at sample size ``n``."""
    name = _metric_name(key)
    if name == "overall":
        if high < 0.5:
            return f"the whole interval lies below 0.5: the model decides by texture more often than by shape (n = {n})"
        if low > 0.5:
            return f"the whole interval lies above 0.5: the model decides by shape more often than by texture (n = {n})"
        return f"the interval covers 0.5: no preference for shape or texture is shown with n = {n}"
    if name in ("top1", "top5"):
        hits = round(value * n / 100)
        return f"{hits} of {n} images; with n = {n} the interval spans {high - low:.0f} points"
    return ""


def _cell(value: float, key: str) -> str:
    return f"{value:.1f}" if _metric_name(key) in PERCENT else f"{value:.3f}"


def metric_rows(records: Sequence[ResultRecord]) -> list[tuple[str, ...]]:
    """(model, dataset, metric, value, interval, n, reading) for each headline metric that has an interval."""
    rows = []
    for record in records:
        for key, value in record.metrics.items():
            interval = record.intervals.get(key)
            if _metric_name(key) not in MEANINGS or interval is None or key.count("/") > 2:
                continue
            low, high, n = float(interval["low"]), float(interval["high"]), int(interval["n"])
            rows.append(
                (
                    display_name(record.model_id),
                    record.dataset,
                    MEANINGS[_metric_name(key)][0],
                    _cell(value, key),
                    f"[{_cell(low, key)}, {_cell(high, key)}]",
                    str(n),
                    reading(key, value, low, high, n),
                )
            )
    return rows


def _meanings(records: Sequence[ResultRecord]) -> tuple[str, ...]:
    names = dict.fromkeys(_metric_name(k) for r in records for k in r.metrics if _metric_name(k) in MEANINGS)
    return tuple(f"{MEANINGS[name][0]}: {MEANINGS[name][1]}" for name in names)


def _weights(records: Sequence[ResultRecord]) -> tuple[str, ...]:
    found: dict[str, str] = {}
    for record in records:
        weights = record.provenance.get("model", {}).get("weights_id")
        if weights and record.model_id not in found:
            found[record.model_id] = weights
    return tuple(
        f"{model}: weights {found.get(model, 'not recorded')}" for model in dict.fromkeys(r.model_id for r in records)
    )


def _figures(study: SideStudy) -> list[Block]:
    return [block for blocks in figure_blocks(study.results_dir, study.models).values() for block in blocks]


def side_study_section(study: SideStudy, anchor: str) -> Section:
    """The section of one side study: provenance, a metric table with intervals and readings, its figures."""
    if not study.records:
        text = f"No results yet from `{study.params_file}`: run `dvc repro` (or infer and analyze with --params)."
        return Section(study.title, anchor, [Text(text, "warning")])
    level = next((f"{100 * float(i['level']):.0f}%" for r in study.records for i in r.intervals.values()), "95%")
    blocks: list[Block] = [
        Text(
            f"From its own params file, `{study.params_file}`: a trained network on real images, unlike the "
            "stand-ins of the other sections. Accuracies carry exact Clopper-Pearson intervals over the images, the "
            f"shape bias a bootstrap interval over the stimuli ({level} level): read the interval, not the value."
        ),
        Bullets(items=_weights(study.records)),
        Table(
            ("Model", "Dataset", "Metric", "Value", f"{level} interval", "n", "What it says"),
            tuple(metric_rows(study.records)),
            anchor=f"{anchor}-table",
        ),
        Bullets(items=_meanings(study.records)),
        *_figures(study),
    ]
    return Section(study.title, anchor, blocks)
