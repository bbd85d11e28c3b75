"""The registered analyses of the ImageNet family: each reads its own params section and the caches, returns records.

An analysis is a function ``(its AnalysesConfig section, AnalysisContext) -> records``; adding one means one more
entry here, not another branch (docs/architecture.md, principle 1). Writing the records, metrics and MLflow runs
is the ``analyze`` stage's job.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from beyond_imagenet.analyses.accuracy import run_accuracy
from beyond_imagenet.analyses.calibration import run_calibration
from beyond_imagenet.analyses.common import AnalysisContext
from beyond_imagenet.analyses.imagenet_x import run_imagenet_x
from beyond_imagenet.analyses.inputs import (
    ACCURACY_INPUTS,
    CALIBRATION_INPUTS,
    IMAGENET_X_INPUTS,
    INVARIANCE_INPUTS,
    PUG_INPUTS,
    ROBUSTNESS_INPUTS,
    SHAPE_BIAS_INPUTS,
    InputContract,
)
from beyond_imagenet.analyses.invariance import run_invariance
from beyond_imagenet.analyses.pug import run_pug
from beyond_imagenet.analyses.robustness import run_robustness
from beyond_imagenet.analyses.shape_bias import run_shape_bias
from beyond_imagenet.base.config import AnalysesConfig
from beyond_imagenet.base.errors import UnknownNameError
from beyond_imagenet.base.record import ResultRecord

AnalysisFn = Callable[[Any, AnalysisContext], list[ResultRecord]]


@dataclass(frozen=True)
class AnalysisSpec:
    """One analysis: its name (= its ``analyses`` section), what it computes, the paper section, its function.

    ``inputs`` is its input contract: which caches it reads (``analyze-cache`` plans from it, docs/cache.md).
    """

    name: str
    description: str
    paper_section: str
    run: AnalysisFn
    inputs: InputContract

    def section(self, analyses: AnalysesConfig) -> Any:
        """This analysis's section of ``params.analyses``."""
        return getattr(analyses, self.name)

    def configured(self, analyses: AnalysesConfig) -> bool:
        """Whether params.yaml gives this analysis any dataset to run on."""
        section = self.section(analyses)
        return bool(getattr(section, "datasets", None) or getattr(section, "dataset", None))


ANALYSES: dict[str, AnalysisSpec] = {
    spec.name: spec
    for spec in (
        AnalysisSpec(
            "accuracy", "top-1 and top-5 accuracy on the dataset's label space", "§7.1", run_accuracy, ACCURACY_INPUTS
        ),
        AnalysisSpec(
            "calibration",
            "ECE (15 bins), reliability diagrams, confidence histograms",
            "§5, Fig. 4",
            run_calibration,
            CALIBRATION_INPUTS,
        ),
        AnalysisSpec(
            "robustness",
            "Table 2 top-1, average, ImageNet-C, ReaL, JANuS ratios",
            "§7, Fig. 6",
            run_robustness,
            ROBUSTNESS_INPUTS,
        ),
        AnalysisSpec(
            "imagenet_x", "ImageNet-X error ratios of 16 factors", "§3, Fig. 2", run_imagenet_x, IMAGENET_X_INPUTS
        ),
        AnalysisSpec("pug", "PUG-ImageNet accuracy per factor subset and mean", "§4, Fig. 3", run_pug, PUG_INPUTS),
        AnalysisSpec(
            "shape_bias",
            "shape vs texture bias on cue-conflict images",
            "§6, Fig. 5",
            run_shape_bias,
            SHAPE_BIAS_INPUTS,
        ),
        AnalysisSpec(
            "invariance",
            "top-1, true-class probability and prediction consistency vs scale, shift and resolution",
            "§9, Fig. 7",
            run_invariance,
            INVARIANCE_INPUTS,
        ),
    )
}


def resolve_analyses(names: Sequence[str]) -> list[AnalysisSpec]:
    """The specs of ``names``; an unknown name raises with close matches before any cache is read."""
    for name in names:
        if name not in ANALYSES:
            raise UnknownNameError("analysis", name, ANALYSES)
    return [ANALYSES[name] for name in names]


def run_analyses(
    analyses: AnalysesConfig, ctx: AnalysisContext, names: Sequence[str] | None = None
) -> list[ResultRecord]:
    """Run each named analysis (default: every configured one) on the caches of all models."""
    specs = resolve_analyses(list(names) if names is not None else list(ANALYSES))
    records: list[ResultRecord] = []
    for spec in specs:
        if spec.configured(analyses):
            records.extend(spec.run(spec.section(analyses), ctx))
    return records
