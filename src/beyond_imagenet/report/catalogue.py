"""Every PNG under the results folder, each placed in its report section with a caption (none is left out).

The analyses write ``<figures>/<analysis>/<dataset>/<name>.png``; the CKA stage the same under ``cka/``; the probe
stage ``vtab/figures/fig6_bottom.png``. A figure's section is the first known analysis among its path's folders,
else "other". Figures named after a model (per-model reliability diagrams) are grouped in a grid per dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from beyond_imagenet.base.hashing import safe_name
from beyond_imagenet.models.display import display_name
from beyond_imagenet.report.document import Block, Figure, Grid

SECTIONS = ("imagenet_x", "pug", "calibration", "shape_bias", "robustness", "vtab", "invariance", "cka")
# (section, file stem) -> caption; "{dataset}" is the figure's folder.
CAPTIONS: dict[tuple[str, str], str] = {
    ("imagenet_x", "all_models"): "Paper Fig. 2: error ratio per ImageNet-X factor on {dataset} (1 = the model's "
    "overall error rate; lower is better).",
    ("pug", "all_models"): "Paper Fig. 3: top-1 per PUG-ImageNet factor of variation.",
    ("calibration", "fig4"): "Paper Fig. 4: reliability diagrams and confidence histograms, every model on every "
    "calibration dataset.",
    ("calibration", "all_models"): "Reliability diagrams of all models on {dataset} (gap to the diagonal = "
    "miscalibration).",
    ("shape_bias", "all_models"): "Paper Fig. 5: shape bias per cue-conflict class (fraction of shape decisions).",
    ("robustness", "all_models"): "Paper Fig. 6 (top): top-1 on ImageNet val and each distribution shift.",
    ("vtab", "fig6_bottom"): "Paper Fig. 6 (bottom): VTAB linear-probe top-1 per group (Natural, Specialized, "
    "Structured) and Overall.",
    ("invariance", "all_models"): "Paper Fig. 7: top-1 as scale, shift and resolution vary on {dataset}.",
    ("invariance", "consistency_all_models"): "Prediction consistency with the unmodified image as scale, shift "
    "and resolution vary on {dataset}.",
    ("cka", "all_models"): "Paper Fig. 8: CKA between the layers of each model on {dataset}.",
    ("cka", "cross_models"): "CKA between the layers of different models on {dataset}.",
}


@dataclass(frozen=True)
class Placed:
    """A PNG, its section, its dataset folder, and the model it shows (None when it shows several)."""

    path: Path
    section: str
    dataset: str
    model: str | None


def find_pngs(results_dir: str | Path, exclude: Sequence[Path] = ()) -> list[Path]:
    """Every PNG under ``results_dir`` but not under ``exclude`` (side studies' folders), sorted."""
    skipped = [Path(p).resolve() for p in exclude]
    found = Path(results_dir).rglob("*.png")
    return sorted(p for p in found if not any(p.resolve().is_relative_to(s) for s in skipped))


def place(path: Path, results_dir: Path, models: Sequence[str]) -> Placed:
    """The section, dataset and model of one PNG, from its path relative to ``results_dir``."""
    parts = path.relative_to(results_dir).parts[:-1]
    section = next((p for p in parts if p in SECTIONS), "other")
    dataset = parts[-1] if parts else ""
    model = {safe_name(m): m for m in models}.get(path.stem)  # per-model figures are named by the file-safe id
    return Placed(path, section, dataset, model)


def caption(placed: Placed) -> str:
    """The caption of a figure: its catalogue entry, a per-model one, or its path."""
    if placed.model is not None:
        return f"{display_name(placed.model)} on {placed.dataset}."
    template = CAPTIONS.get((placed.section, placed.path.stem))
    if template is None:
        return f"{placed.path.stem.replace('_', ' ')} ({placed.section}, {placed.dataset})."
    return template.format(dataset=placed.dataset)


def figure_blocks(
    results_dir: str | Path, models: Sequence[str], exclude: Sequence[Path] = ()
) -> dict[str, list[Block]]:
    """{section: its figures}; a section's per-model figures form one grid per dataset, after its other figures.

    PNGs under ``exclude`` (the side studies' results folders) belong to their own sections and are left out.
    """
    root = Path(results_dir)
    blocks: dict[str, list[Block]] = {}
    grids: dict[tuple[str, str], list[Figure]] = {}
    for path in find_pngs(root, exclude):
        placed = place(path, root, models)
        figure = Figure(path, caption(placed))
        if placed.model is None:
            blocks.setdefault(placed.section, []).append(figure)
        else:
            grids.setdefault((placed.section, placed.dataset), []).append(figure)
    order = {safe_name(m): i for i, m in enumerate(models)}
    for (section, dataset), figures in grids.items():
        figures.sort(key=lambda f: order.get(f.path.stem, len(order)))
        text = f"Per-model figures on {dataset}, one per model ({section.replace('_', ' ')})."
        blocks.setdefault(section, []).append(Grid(tuple(figures), text))
    return blocks
