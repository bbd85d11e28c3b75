"""Every output path of the stages, joined once from params.yaml (``results_dir``, ``reports_dir``, ``outputs``).

dvc.yaml builds the same paths from the same keys (``${results_dir}/${outputs.records}``); a test checks that the
two agree, so a path is declared in exactly one place: params.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from beyond_imagenet.analyses.cka import CkaOutputs
from beyond_imagenet.base.config import Params
from beyond_imagenet.probe.aggregate import AggregateOutputs
from beyond_imagenet.probe.outputs import ProbeOutputs


@dataclass(frozen=True)
class StageFolder:
    """What one stage writes under its folder: result records, its metrics file and its figures."""

    root: Path
    records: Path
    metrics: Path
    figures: Path


@dataclass(frozen=True)
class StagePaths:
    """The outputs of every stage (docs/architecture.md, "Where each path is declared")."""

    manifests: Path
    analyze: StageFolder
    cka: StageFolder
    cka_matrices: Path
    vtab: StageFolder
    vtab_splits: Path
    vtab_predictions: Path
    vtab_studies: Path
    vtab_table3: Path
    results_parquet: Path
    results_csv: Path
    comparisons: Path
    rankings: Path
    headline: Path  # from the repository root, not under results_dir: the DVC metrics file, kept in git
    reports: Path
    side_studies: Path  # one folder per side study (stages/side_study.py)

    @property
    def cka_outputs(self) -> CkaOutputs:
        """Figures and matrices of the cka stage."""
        return CkaOutputs(self.cka.figures, self.cka_matrices)

    @property
    def probe_outputs(self) -> ProbeOutputs:
        """Records, predictions, studies and split rows of the probe stage."""
        return ProbeOutputs(self.vtab.records, self.vtab_predictions, self.vtab_studies, self.vtab_splits)

    @property
    def aggregate_outputs(self) -> AggregateOutputs:
        """Table 3's metrics file, Markdown table and figures folder."""
        return AggregateOutputs(self.vtab.metrics, self.vtab_table3, self.vtab.figures)


def rebased(folder: StageFolder, root: Path) -> StageFolder:
    """``folder``'s paths moved under ``root`` (a staging folder the stage writes before it replaces its own)."""
    return StageFolder(
        root, *(root / path.relative_to(folder.root) for path in (folder.records, folder.metrics, folder.figures))
    )


def _folder(root: Path, params: Params) -> StageFolder:
    names = params.outputs
    return StageFolder(root, root / names.records, root / names.metrics, root / names.figures)


def stage_paths(params: Params) -> StagePaths:
    """The paths of ``params``: ``results_dir`` joined with the names of ``params.outputs`` (``headline`` as is)."""
    results, names = Path(params.results_dir), params.outputs
    vtab = results / names.vtab
    return StagePaths(
        manifests=results / names.manifests,
        analyze=_folder(results, params),
        cka=_folder(results / names.cka, params),
        cka_matrices=results / names.cka / names.matrices,
        vtab=_folder(vtab, params),
        vtab_splits=vtab / names.splits,
        vtab_predictions=vtab / names.predictions,
        vtab_studies=vtab / names.studies,
        vtab_table3=vtab / names.table3,
        results_parquet=results / f"{names.results_table}.parquet",
        results_csv=results / f"{names.results_table}.csv",
        comparisons=results / names.comparisons,
        rankings=results / names.rankings,
        headline=Path(names.headline),
        reports=Path(params.reports_dir),
        side_studies=results / names.side_studies,
    )
