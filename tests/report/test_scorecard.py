"""The scorecard: best and tied from a synthetic table and its paired comparisons (known truth), directions,
missing values as "n/a" (never 0), and the ranking's mean rank and z-scores against hand computations."""

from __future__ import annotations

import math
import statistics

import pandas as pd
import pytest

from beyond_imagenet.report.ranking import standings, z_scores
from beyond_imagenet.report.scorecard import build_scorecard, cell_text
from beyond_imagenet.report.sections import clause, finding
from report.synthetic_tables import comparison, comparisons, row, table

A, B, C = "vit_sup", "convnext_sup", "vit_clip"  # paper order A, B, C
TOP1 = "accuracy/imagenet_val/top1"
ECE = "calibration/imagenet_val/ece"


def _card():
    results = table([
        row(A, "accuracy", "imagenet_val", "top1", 80.0, 79.0, 81.0),
        row(B, "accuracy", "imagenet_val", "top1", 82.0, 81.0, 83.0),
        row(C, "accuracy", "imagenet_val", "top1", 81.5, 80.5, 82.5),
        row(A, "calibration", "imagenet_val", "ece", 0.031, 0.028, 0.035, direction="lower"),
        row(B, "calibration", "imagenet_val", "ece", 0.05, 0.045, 0.055, direction="lower"),
        row(A, "shape_bias", "cue", "overall", 0.2, direction="none"),
        row(B, "shape_bias", "cue", "overall", 0.6, direction="none"),
        row(C, "shape_bias", "cue", "overall", 0.4, direction="none"),
    ])  # fmt: skip
    pairs = comparisons([
        comparison(TOP1, A, B, True),  # B clearly above A
        comparison(TOP1, C, B, False),  # C not distinguishable from B (order of the pair does not matter)
        comparison(TOP1, A, C, True),
        comparison(ECE, A, B, True),
    ])  # fmt: skip
    return build_scorecard(results, pairs, {})


def test_best_and_tied_follow_direction_and_comparisons():
    card = _card()
    assert card.models == (A, B, C)
    rows = {r.key: r for r in card.rows}
    assert list(rows) == ["imagenet_top1", "ece_val", "shape_bias"]  # HEADLINES order, empty ones left out
    top1, ece, shape = rows["imagenet_top1"], rows["ece_val"], rows["shape_bias"]
    assert (top1.direction, top1.name, top1.best, top1.tied) == ("higher", TOP1, B, (C,))
    assert top1.marked(B) and top1.marked(C) and not top1.marked(A)
    assert (ece.direction, ece.best, ece.tied) == ("lower", A, ())  # lower is better: the smallest ECE
    assert (shape.direction, shape.best, shape.tied) == ("none", None, ())  # no better direction: no best


def test_a_model_without_a_comparison_is_not_compared_never_behind():
    results = table([
        row(A, "accuracy", "imagenet_val", "top1", 80.0, 79.0, 81.0),
        row(B, "accuracy", "imagenet_val", "top1", 82.0, 81.0, 83.0),
        row(C, "accuracy", "imagenet_val", "top1", 70.0, 69.0, 71.0),
    ])  # fmt: skip
    card = build_scorecard(results, comparisons([comparison(TOP1, A, B, True)]), {})
    (top1,) = card.rows
    assert (top1.best, top1.tied, top1.uncompared) == (B, (), (C,))
    assert not top1.marked(C)
    assert clause(top1) == (
        "Highest ImageNet top-1 (%): ConvNeXt-sup 82.0 [81.0, 83.0]; "
        "not compared with ViT-clip (no paired comparison on the same images)"
    )
    lone = build_scorecard(results, pd.DataFrame(), {}).rows[0]
    assert lone.uncompared == (A, C) and "ahead" not in clause(lone)


def test_missing_values_are_n_a_not_zero():
    ece = {r.key: r for r in _card().rows}["ece_val"]
    assert C not in ece.picks
    assert cell_text(ece, C) == "n/a"
    assert cell_text(ece, A) == "0.031 [0.028, 0.035]"


def test_findings_name_the_best_its_ties_and_the_range():
    rows = {r.key: r for r in _card().rows}
    assert clause(rows["imagenet_top1"]) == (
        "Highest ImageNet top-1 (%): ConvNeXt-sup 82.0 [81.0, 83.0]; ViT-clip is not distinguishable"
    )
    assert clause(rows["ece_val"]) == (
        "Lowest ECE, ImageNet val: ViT-sup 0.031 [0.028, 0.035]; ahead of every other model (paired comparisons)"
    )
    assert clause(rows["shape_bias"]) == (
        "Shape bias ranges from ViT-sup 0.200 to ConvNeXt-sup 0.600 (no better direction)"
    )
    assert finding([]) == "No headline numbers for this analysis in this run."


def test_equal_values_tie_without_a_comparison():
    rows = [row(m, "invariance", "d", "top1", v, variant=f"scale/{p:g}")
            for m, values in ((A, (70.0, 68.0)), (B, (70.0, 65.0)), (C, (71.0, 69.0)))
            for p, v in zip((1.0, 2.0), values, strict=True)]  # fmt: skip
    card = build_scorecard(table(rows), pd.DataFrame(), {})
    (drop,) = card.rows
    assert drop.key == "invariance_scale_drop" and drop.name is None and drop.direction == "higher"
    assert {m: p.value for m, p in drop.picks.items()} == {A: -2.0, B: -5.0, C: -2.0}
    assert (drop.best, drop.tied) == (A, (C,))


def test_z_scores_by_hand():
    results = table([
        *(row(m, "accuracy", "imagenet_val", "top1", v) for m, v in ((A, 1.0), (B, 2.0), (C, 3.0))),
        *(
            row(m, "calibration", "imagenet_val", "ece", v, direction="lower")
            for m, v in ((A, 0.1), (B, 0.3), (C, 0.2))
        ),
    ])  # fmt: skip
    scores = z_scores(build_scorecard(results, pd.DataFrame(), {}))
    s = math.sqrt(2 / 3)  # population sd of (1, 2, 3); of (0.1, 0.3, 0.2) it is s / 10
    assert scores[A] == pytest.approx([-1 / s, 1 / s])  # ECE sign-flipped: lower is better
    assert scores[B] == pytest.approx([0.0, -1 / s])
    assert scores[C] == pytest.approx([1 / s, 0.0])


def _forty():
    models = [f"m{i:02d}" for i in range(40)]
    ece = {m: ((7 * i) % 40) / 100 for i, m in enumerate(models)}  # distinct, lower is better
    results = table([
        *(row(m, "accuracy", "imagenet_val", "top1", float(i)) for i, m in enumerate(models)),
        *(row(m, "calibration", "imagenet_val", "ece", ece[m], direction="lower") for m in models),
    ])  # fmt: skip
    ranks = []
    for i, m in enumerate(models):
        ranks.append(dict(name=TOP1, model=m, mean_rank=40.0 - i, rank_low=39.0 - i, rank_high=41.0 - i))
        r = (7 * i) % 40 + 1.0
        ranks.append(dict(name=ECE, model=m, mean_rank=r, rank_low=r - 0.5, rank_high=r + 2.0))
    return models, ece, results, pd.DataFrame(ranks)


def test_forty_models_mean_rank_and_z_by_hand():
    models, ece, results, rankings = _forty()
    card = build_scorecard(results, pd.DataFrame(), {})
    got = {s.model: s for s in standings(card, rankings)}
    top1_sd = statistics.pstdev(range(40))
    ece_mean, ece_sd = statistics.mean(ece.values()), statistics.pstdev(ece.values())
    for i, m in enumerate(models):
        ece_rank = (7 * i) % 40 + 1
        assert got[m].mean_rank == pytest.approx((40 - i + ece_rank) / 2)
        assert got[m].rank_low == pytest.approx((39 - i + ece_rank - 0.5) / 2)
        assert got[m].rank_high == pytest.approx((41 - i + ece_rank + 2) / 2)
        z = ((i - 19.5) / top1_sd - (ece[m] - ece_mean) / ece_sd) / 2
        assert got[m].z == pytest.approx(z) and got[m].n_z == 2 and got[m].n_ranked == 2
    order = [s.mean_rank for s in standings(card, rankings)]
    assert order == sorted(order)  # best (smallest mean rank) first


def test_the_same_value_for_every_model_has_no_best():
    rows = [row(m, "pug", "d", "average", 0.0, 0.0, 0.0, variant="") for m in (A, B, C)]
    card = build_scorecard(table(rows), comparisons([comparison("pug/d/average", A, B, False)]), {})
    (pug,) = card.rows
    assert (pug.best, pug.tied) == (None, ())
    assert not any(pug.marked(m) for m in (A, B, C))
    assert clause(pug) == "PUG-ImageNet mean top-1 (%): 0.000 [0.000, 0.000] for every model (no difference to call)"
