"""CKA intervals (docs/protocol.md §10): one bootstrap over the pass's minibatches for every model and pair."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from beyond_imagenet.analyses.cka import attach_intervals, minibatch_plan
from beyond_imagenet.base.config import CkaConfig, StatisticsConfig
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.metrics.cka import MinibatchCKA, cross_summary, summarise, type_matrices
from beyond_imagenet.metrics.resampling import ids_digest

IDS = [f"img_{i:03d}.JPEG" for i in range(40)]
LAYERS = {
    "a": {"all": ["a0", "a1", "a2", "a3"], "even": ["a0", "a2"], "single": ["a1"]},
    "b": {"all": ["b0", "b1", "b2"], "even": ["b0", "b2"], "single": ["b1"]},
}
CONFIG = CkaConfig(batch_size=8, layer_types=["all", "even", "single"])


def _features(batches: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """``batches`` minibatches of 8 images through both fake models' layers."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(8 * batches, 5, generator=gen, dtype=torch.float64)
    noise = [torch.randn(8 * batches, 4, generator=gen, dtype=torch.float64) for _ in range(3)]
    feats = {"a0": x, "a1": torch.relu(x), "a2": x[:, :4] + noise[0], "a3": noise[1]}
    feats |= {"b0": torch.tanh(x), "b1": x[:, :3] ** 2 + noise[2][:, :3], "b2": torch.sin(x[:, :4]) + noise[1]}
    return [{k: v[s : s + 8] for k, v in feats.items()} for s in range(0, 8 * batches, 8)]


def _pass(batches: int) -> tuple[SimpleNamespace, dict[str, ResultRecord]]:
    """What ``inference.cka_pass`` leaves (accumulators, batch sizes) and the records ``analyses.cka`` builds."""
    module = SimpleNamespace(
        within={m: MinibatchCKA(sets["all"]) for m, sets in LAYERS.items()},
        cross={("a", "b"): MinibatchCKA(LAYERS["a"]["all"], LAYERS["b"]["all"])},
        batch_sizes=[8] * batches,
    )
    for batch in _features(batches):
        for accumulator in module.within.values():
            accumulator.update(batch)
        module.cross[("a", "b")].update(batch, batch)
    records = {}
    for model, accumulator in module.within.items():
        names, matrix = accumulator.result()
        metrics = {
            f"cka/{kind}/{stat}": value
            for kind, sub in type_matrices(names, matrix, LAYERS[model]).items()
            for stat, value in summarise(sub).items()
        }
        records[model] = ResultRecord("cka", model, "small", metrics)
    _, _, cross = module.cross[("a", "b")].result_cross()
    for this, other, view in (("a", "b", cross), ("b", "a", cross.T)):
        records[this].metrics |= {f"cka_cross/{other}/{k}": v for k, v in cross_summary(view).items()}
    return module, records


def test_the_plan_resamples_the_minibatches_of_these_images():
    statistics = StatisticsConfig(resamples=50, seed=4)
    plan = minibatch_plan(IDS, 8, 5, statistics)
    assert plan.key == f"cka:{ids_digest(IDS)}:batch8/minibatches"
    assert (plan.n, plan.resamples, plan.seed, plan.strata) == (5, 50, 4, None)
    assert minibatch_plan(IDS, 16, 5, statistics).key != plan.key
    assert minibatch_plan(IDS[::-1], 8, 5, statistics).key != plan.key
    assert minibatch_plan(IDS, 8, 1, statistics) is None


def test_every_summary_gets_an_interval_on_one_paired_plan():
    module, records = _pass(5)
    values = {m: dict(r.metrics) for m, r in records.items()}
    attach_intervals(records, IDS, module, LAYERS, CONFIG, StatisticsConfig(resamples=200))
    plan = minibatch_plan(IDS, 8, 5, StatisticsConfig(resamples=200))
    for model, record in records.items():
        assert record.metrics == values[model]  # attach checked each estimate against the metric
        summaries = {k for k in record.metrics if not k.endswith("/n_layers")}
        assert set(record.intervals) == set(record.replicates) == summaries
        assert {f"cka/{kind}/mean_adjacent" for kind in ("all", "even")} <= summaries
        for metric in summaries:
            interval = record.intervals[metric]
            assert (interval["n"], interval["plan"]) == (5, plan.name)
            assert interval["method"] == "bootstrap percentile (over minibatches)"
            assert interval["low"] <= interval["high"]
            assert record.replicates[metric].shape == (200,)
        assert record.details["intervals"] == {
            "resampling": "bootstrap over the CKA minibatches",
            "minibatches": 5,
            "plan": plan.name,
        }
    # One cross matrix seen from both sides: its last-layer CKA is one number per resample, for both models.
    a, b = records["a"].replicates["cka_cross/b/last_layer"], records["b"].replicates["cka_cross/a/last_layer"]
    np.testing.assert_allclose(a, b, rtol=1e-12)
    assert np.std(a) > 0


def test_a_single_minibatch_gets_no_interval_and_says_so():
    module, records = _pass(1)
    values = {m: dict(r.metrics) for m, r in records.items()}
    attach_intervals(records, IDS[:8], module, LAYERS, CONFIG, StatisticsConfig())
    for model, record in records.items():
        assert record.metrics == values[model]
        assert record.intervals == {} and record.replicates == {}
        assert record.details["intervals"]["resampling"] == "none"
        assert record.details["intervals"]["minibatches"] == 1


def test_replicates_follow_the_statistics_seed():
    module, records = _pass(4)
    metric = "cka/all/mean_offdiagonal"

    def replicates(seed: int) -> np.ndarray:
        attach_intervals(records, IDS, module, LAYERS, CONFIG, StatisticsConfig(resamples=100, seed=seed))
        return records["a"].replicates[metric]

    first, again, other = replicates(3), replicates(3), replicates(4)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
