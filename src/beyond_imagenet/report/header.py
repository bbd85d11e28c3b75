"""The report's header: what was run (git commit, date, config file), the models with their weights, the datasets.

Dataset sizes come from the manifests the ``verify`` step writes (``results/manifests/<dataset>.json``,
``n_images``, summed over a dataset's variants), else from the largest ``n`` of the dataset's rows in the tidy
table. Demo runs (a ``demo_random_*`` model or weights marked "random init") carry a warning that their numbers
are noise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from beyond_imagenet.models.display import display_map
from beyond_imagenet.report.document import Block, Span, Table, Text

DEMO_WARNING = "Demo run: random weights: numbers are noise."


@dataclass(frozen=True)
class RunInfo:
    """Provenance of the report: commit (None outside git), uncommitted changes, date, params file."""

    git_sha: str | None
    git_dirty: bool | None
    date: str
    params: str


def provenance_line(run: RunInfo) -> str:
    """``commit abc123 (+ uncommitted changes) · 2024-01-01 12:00 UTC · config params.yaml``."""
    sha = (run.git_sha or "no git")[:12]
    dirty = " (+ uncommitted changes)" if run.git_dirty else ""
    return f"commit {sha}{dirty} · {run.date} · config {run.params}"


def is_demo(results: pd.DataFrame) -> bool:
    """Whether any model is a demo stand-in or has random weights."""
    models = results["model"].astype(str)
    weights = results["weights_id"].fillna("").astype(str)
    return bool(models.str.startswith("demo_").any() or weights.str.contains("random init").any())


def models_table(results: pd.DataFrame) -> Table:
    """One row per model (paper order): display name with swatch, id, family, paradigm, weights id."""
    info = results.drop_duplicates("model").set_index("model")
    displays = display_map(info.index)
    rows = tuple(
        (
            Span(d.name, colour=d.colour),
            m,
            str(info.loc[m, "family"]),
            str(info.loc[m, "paradigm"]),
            str(info.loc[m, "weights_id"]),
        )
        for m, d in displays.items()
    )
    return Table(("Model", "id", "family", "paradigm", "weights"), rows, "models")


SUMMARY_ROWS = (("robustness", "table2"),)  # (analysis, dataset) of records that summarise several datasets
VTAB_KIND = "VTAB task (test split)"


def _manifest_sizes(manifests: Path | None) -> dict[str, tuple[str, float]]:
    sizes: dict[str, tuple[str, float]] = {}
    for path in sorted(manifests.glob("*.json")) if manifests and manifests.is_dir() else []:
        loaded = json.loads(path.read_text())
        entries = loaded if isinstance(loaded, list) else [loaded]  # a dataset with variants: one per variant
        if entries:
            kind = str(entries[0].get("kind", "")) + (f" ({len(entries)} variants)" if len(entries) > 1 else "")
            sizes[str(entries[0].get("name", path.stem))] = (kind, float(sum(e.get("n_images", 0) for e in entries)))
    return sizes


def dataset_sizes(results: pd.DataFrame, manifests: Path | None) -> dict[str, tuple[str, float]]:
    """{dataset: (kind, images)}: the manifests' datasets, then each VTAB task's test split (largest ``n``).

    Without manifests (results of caches analysed elsewhere) every dataset of the tidy table is listed with its
    largest ``n``, except the rows of summaries over several datasets (Table 2's average, VTAB group means).
    """
    sizes = _manifest_sizes(manifests)
    rows = results.dropna(subset=["n"])
    summary = rows["analysis"].eq("vtab")
    for analysis, dataset in SUMMARY_ROWS:
        summary |= rows["analysis"].eq(analysis) & rows["dataset"].eq(dataset)
    rows = rows[~summary]
    if sizes:
        rows = rows[rows["analysis"] == "vtab_probe"]
    for (analysis, dataset), n in rows.groupby(["analysis", "dataset"], sort=False)["n"].max().items():
        kind = VTAB_KIND if analysis == "vtab_probe" else ""
        sizes.setdefault(str(dataset), (kind, float(n)))
    return sizes


def datasets_table(sizes: Mapping[str, tuple[str, float]]) -> Table:
    """One row per dataset: name, kind, images."""
    rows = tuple((name, kind, f"{n:.0f}") for name, (kind, n) in sizes.items())
    return Table(("Dataset", "kind", "images"), rows, "datasets")


def run_blocks(results: pd.DataFrame, manifests: Path | None) -> list[Block]:
    """The "Run" section: models and datasets tables."""
    return [models_table(results), datasets_table(dataset_sizes(results, manifests))]


def top_blocks(run: RunInfo, results: pd.DataFrame) -> list[Block]:
    """The lines above the scorecard: provenance, and the demo warning when it applies."""
    blocks: list[Block] = [Text(provenance_line(run), "meta")]
    if is_demo(results):
        blocks.append(Text(DEMO_WARNING, "warning"))
    return blocks
