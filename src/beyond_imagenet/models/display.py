"""How each model looks in every figure: display name, colour and marker, defined once (paper Figs. 2-8).

The paper's four models keep fixed names (``paper_name``, §1.1), colours and markers in the paper's order
(ViT-sup, ConvNeXt-sup, ViT-clip, ConvNeXt-clip): ViTs in blues, ConvNeXts in oranges, supervised darker, CLIP
lighter. Each demo stand-in (``demo_random_*``) prefers the colour of the paper model of its family and paradigm.
Any other id prefers a colour chosen by a stable hash of the id among the remaining palette entries. Within one
figure colours are distinct: a taken colour moves the later model (in a fixed priority order that does not depend
on the order of the ids passed) to the next free one; past the palette's size colours repeat with a hatch and a
shifted marker, so (colour, marker, hatch) stays distinct.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from beyond_imagenet.models.catalogue import DEMO_MODELS, PAPER_MODELS

# Okabe & Ito's colour-blind-safe palette without its black: blue, vermillion, sky blue, orange, bluish green,
# reddish purple, yellow. The first four are the paper models' (PAPER_ORDER); others start after them.
PALETTE: tuple[str, ...] = ("#0072B2", "#D55E00", "#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#F0E442")
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X")
HATCHES: tuple[str, ...] = ("", "//", "..", "xx", "\\\\")
PAPER_ORDER: tuple[str, ...] = ("vit_sup", "convnext_sup", "vit_clip", "convnext_clip")
# Each demo stand-in -> the paper model of the same family and paradigm (its name and preferred colour).
STAND_INS: dict[str, str] = {
    demo.id: paper.id
    for demo in DEMO_MODELS.values()
    for paper in PAPER_MODELS.values()
    if (demo.family, demo.paradigm) == (paper.family, paper.paradigm)
}


@dataclass(frozen=True)
class ModelDisplay:
    """One model's look in a figure: legend name, line/bar colour, marker, bar hatch ("" = solid)."""

    model_id: str
    name: str
    colour: str
    marker: str
    hatch: str = ""


def display_name(model_id: str) -> str:
    """A model's legend name: the paper's for its four (§1.1), "<paper name> (demo)", "<arch> (<file>)", or the id.

    "(demo)" marks a demo stand-in; "<arch> (<file>)" a local checkpoint (``timm-file:``).
    """
    if model_id in PAPER_MODELS:
        return PAPER_MODELS[model_id].paper_name or model_id
    if model_id in STAND_INS:
        return f"{display_name(STAND_INS[model_id])} (demo)"
    if model_id.startswith("timm-file:"):  # timm-file:<arch>@<path>[?options] -> "<arch> (<file name>)"
        architecture, _, location = model_id.removeprefix("timm-file:").partition("@")
        return f"{architecture} ({location.partition('?')[0].rsplit('/', 1)[-1]})"
    return model_id


def _rank(model_id: str) -> int:
    """0-3 for the paper's models, 4-7 for their demo stand-ins, 8 for any other id."""
    if model_id in PAPER_ORDER:
        return PAPER_ORDER.index(model_id)
    if model_id in STAND_INS:
        return len(PAPER_ORDER) + PAPER_ORDER.index(STAND_INS[model_id])
    return 2 * len(PAPER_ORDER)


def paper_order(model_ids: Iterable[str]) -> list[str]:
    """Distinct ids with the paper's four first in the paper's order, then demo stand-ins, then others as given."""
    unique = list(dict.fromkeys(model_ids))
    return sorted(unique, key=lambda m: (_rank(m), unique.index(m) if _rank(m) == 2 * len(PAPER_ORDER) else 0))


def preferred_slot(model_id: str) -> int:
    """Palette index a model gets when it is free: fixed for the paper's models, a stable hash for others."""
    anchor = STAND_INS.get(model_id, model_id)
    if anchor in PAPER_ORDER:
        return PAPER_ORDER.index(anchor)
    others = len(PALETTE) - len(PAPER_ORDER)
    return len(PAPER_ORDER) + zlib.crc32(model_id.encode("utf-8")) % others


def _assign(model_ids: list[str]) -> dict[str, tuple[int, int]]:
    """(palette slot, cycle) per id; a taken slot moves the model to the next free one, cycles once all are used."""
    taken: set[tuple[int, int]] = set()
    assigned: dict[str, tuple[int, int]] = {}
    for model_id in sorted(model_ids, key=lambda m: (_rank(m), m)):  # independent of the order passed
        preferred = preferred_slot(model_id)
        # The preferred slot, then the non-paper slots, then the paper ones (left free for the paper models).
        candidates = sorted(range(len(PALETTE)), key=lambda s: (s != preferred, s < len(PAPER_ORDER), s))
        cycle = len(taken) // len(PALETTE)
        slot = next(s for s in candidates if (s, cycle) not in taken)
        taken.add((slot, cycle))
        assigned[model_id] = (slot, cycle)
    return assigned


def model_displays(model_ids: Iterable[str]) -> list[ModelDisplay]:
    """Display attributes for the models of one figure, in :func:`paper_order`, with distinct looks.

    The same set of ids always gets the same attributes, whatever order it is passed in; a paper model's
    colour and marker are the same in every figure.
    """
    ordered = paper_order(model_ids)
    assigned = _assign(ordered)
    displays = []
    for model_id in ordered:
        slot, cycle = assigned[model_id]
        marker = MARKERS[(slot + cycle) % len(MARKERS)]
        hatch = HATCHES[cycle % len(HATCHES)]
        displays.append(ModelDisplay(model_id, display_name(model_id), PALETTE[slot], marker, hatch))
    return displays


def display_map(model_ids: Iterable[str]) -> dict[str, ModelDisplay]:
    """:func:`model_displays` keyed by model id (dict order = paper order)."""
    return {d.model_id: d for d in model_displays(model_ids)}
