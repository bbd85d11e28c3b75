"""Minibatch linear CKA with unbiased HSIC₁ (PROTOCOL §10, paper Eq. 2): golden values and invariances."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from beyond_imagenet.metrics.cka import (
    MinibatchCKA,
    cka_statistics,
    cross_summary,
    cross_summary_statistics,
    gram_linear,
    summarise,
    summary_statistics,
    type_matrices,
    unbiased_hsic,
)
from beyond_imagenet.metrics.estimates import EstimateBook
from beyond_imagenet.metrics.resampling import ResamplePlan, bootstrap


def _features(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def naive_hsic(K: np.ndarray, L: np.ndarray) -> float:
    """PROTOCOL §10 HSIC₁ with explicit python loops over indices (no matrix algebra)."""
    n = K.shape[0]
    kt = [[0.0 if i == j else float(K[i, j]) for j in range(n)] for i in range(n)]
    lt = [[0.0 if i == j else float(L[i, j]) for j in range(n)] for i in range(n)]
    trace = sum(kt[i][j] * lt[j][i] for i in range(n) for j in range(n))
    sum_k = sum(kt[i][j] for i in range(n) for j in range(n))
    sum_l = sum(lt[i][j] for i in range(n) for j in range(n))
    one_kl_one = sum(kt[i][j] * lt[j][q] for i in range(n) for j in range(n) for q in range(n))
    return (trace + sum_k * sum_l / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * one_kl_one) / (n * (n - 3))


def u_statistic_hsic(K: np.ndarray, L: np.ndarray) -> float:
    """HSIC as an average over distinct index tuples: E[k_ij l_ij] + E[k_ij l_qr] - 2 E[k_ij l_iq] (Song et al.)."""
    n = K.shape[0]
    pairs = list(itertools.permutations(range(n), 2))
    triples = list(itertools.permutations(range(n), 3))
    quads = list(itertools.permutations(range(n), 4))
    a = sum(K[i, j] * L[i, j] for i, j in pairs) / len(pairs)
    b = sum(K[i, j] * L[q, r] for i, j, q, r in quads) / len(quads)
    c = sum(K[i, j] * L[i, q] for i, j, q in triples) / len(triples)
    return float(a + b - 2 * c)


def cka_of(x: torch.Tensor, y: torch.Tensor, batch: int | None = None) -> float:
    """CKA(x, y) through MinibatchCKA, one batch or consecutive batches of ``batch`` rows."""
    cka = MinibatchCKA(["x"], ["y"])
    batch = batch or x.shape[0]
    for start in range(0, x.shape[0], batch):
        cka.update({"x": x[start : start + batch]}, {"y": y[start : start + batch]})
    return float(cka.result()[1][0, 0])


@pytest.mark.parametrize("n", [4, 5, 7])
def test_unbiased_hsic_matches_naive_loops(n: int) -> None:
    K = gram_linear(_features(n, 3, seed=n))
    L = gram_linear(torch.tanh(_features(n, 5, seed=100 + n)))
    value = float(unbiased_hsic(K, L))
    assert value == pytest.approx(naive_hsic(K.numpy(), L.numpy()), abs=1e-10)
    # Non-symmetric-looking but valid inputs too: the formula is in terms of the matrices only.
    assert float(unbiased_hsic(L, K)) == pytest.approx(value, abs=1e-10)


def test_unbiased_hsic_is_the_u_statistic() -> None:
    K = gram_linear(_features(6, 4, seed=1)).numpy()
    L = gram_linear(_features(6, 2, seed=2)).numpy()
    expected = u_statistic_hsic(K, L)
    assert float(unbiased_hsic(torch.from_numpy(K), torch.from_numpy(L))) == pytest.approx(expected, abs=1e-10)


def test_gram_linear_flattens_and_is_float64() -> None:
    x = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    gram = gram_linear(x)
    assert gram.dtype == torch.float64
    flat = x.reshape(2, -1).double()
    assert torch.equal(gram, flat @ flat.T)
    assert float(gram[0, 1]) == sum(a * b for a, b in zip(range(6), range(6, 12), strict=True))


def test_cka_with_itself_is_one_single_and_minibatch() -> None:
    x = _features(64, 10, seed=3)
    assert cka_of(x, x) == pytest.approx(1.0, abs=1e-12)
    assert cka_of(x, x, batch=16) == pytest.approx(1.0, abs=1e-12)
    cka = MinibatchCKA(["a", "b"])
    for start in range(0, 64, 16):
        cka.update({"a": x[start : start + 16], "b": torch.relu(x[start : start + 16])})
    names, matrix = cka.result()
    assert names == ["a", "b"]
    np.testing.assert_allclose(np.diag(matrix), [1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-14)


def test_cka_symmetric_and_invariant_to_orthogonal_and_isotropic_scaling() -> None:
    x, y = _features(80, 12, seed=4), _features(80, 6, seed=5)
    y = y + 0.5 * x[:, :6]
    base = cka_of(x, y, batch=20)
    assert 0.05 < base < 0.95
    assert cka_of(y, x, batch=20) == pytest.approx(base, abs=1e-12)
    q, _ = torch.linalg.qr(_features(12, 12, seed=6))
    assert cka_of(x @ q, y, batch=20) == pytest.approx(base, abs=1e-10)
    assert cka_of(3.7 * x, y, batch=20) == pytest.approx(base, abs=1e-12)
    assert cka_of(x, 0.01 * y, batch=20) == pytest.approx(base, abs=1e-12)


def test_cka_not_invariant_to_general_invertible_map() -> None:
    x = _features(80, 8, seed=7)
    a = torch.diag(torch.logspace(0, 2, 8, dtype=torch.float64)) @ _features(8, 8, seed=8)
    assert abs(float(torch.linalg.det(a))) > 1e-6
    value = cka_of(x, x @ a, batch=20)
    assert value < 0.9  # linear CKA is invariant to orthogonal maps and scaling only


def test_minibatch_is_ratio_of_mean_hsic_not_mean_of_cka() -> None:
    x, y = _features(60, 5, seed=9), _features(60, 7, seed=10)
    y[:, :3] += x[:, :3]
    cka = MinibatchCKA(["x"], ["y"])
    kl, kk, ll = [], [], []
    for start in range(0, 60, 15):
        xb, yb = x[start : start + 15], y[start : start + 15]
        cka.update({"x": xb}, {"y": yb})
        K, L = gram_linear(xb), gram_linear(yb)
        kl.append(float(unbiased_hsic(K, L)))
        kk.append(float(unbiased_hsic(K, K)))
        ll.append(float(unbiased_hsic(L, L)))
    expected = np.mean(kl) / math.sqrt(np.mean(kk) * np.mean(ll))
    rows, cols, matrix = cka.result_cross()
    assert (rows, cols, matrix.shape) == (["x"], ["y"], (1, 1))
    assert matrix[0, 0] == pytest.approx(expected, abs=1e-12)
    assert cka.batches == 4


def test_ratio_of_means_differs_from_mean_of_ratios() -> None:
    """Batch 1: large, identical features (CKA 1). Batch 2: small, unrelated features (CKA ~0). The ratio of mean
    HSICs is dominated by the large batch; the mean of per-batch CKA would be ~0.5."""
    x1 = 100.0 * _features(32, 4, seed=11)
    x2, y2 = _features(32, 4, seed=12), _features(32, 4, seed=13)
    cka = MinibatchCKA(["x"], ["y"])
    cka.update({"x": x1}, {"y": x1.clone()})
    cka.update({"x": x2}, {"y": y2})
    per_batch = [cka_of(x1, x1.clone()), cka_of(x2, y2)]
    value = float(cka.result()[1][0, 0])
    assert value > 0.99
    assert abs(value - float(np.mean(per_batch))) > 0.3


@pytest.mark.parametrize("n", [1, 2, 3])
def test_fewer_than_four_examples_raise(n: int) -> None:
    K = gram_linear(_features(n, 3, seed=n))
    with pytest.raises(ValueError, match="at least 4"):
        unbiased_hsic(K, K)
    with pytest.raises(ValueError, match="at least 4"):
        MinibatchCKA(["a"]).update({"a": _features(n, 3, seed=n)})


def test_constant_features_raise_naming_the_layer() -> None:
    constant = torch.ones(16, 1, dtype=torch.float32) * torch.linspace(-2, 3, 50)  # every row identical
    cka = MinibatchCKA(["blocks.0.attn", "blocks.3.norm1"])
    with pytest.raises(ValueError, match=r"'blocks\.3\.norm1'.*constant"):
        cka.update({"blocks.0.attn": _features(16, 5, seed=14), "blocks.3.norm1": constant})
    # In theory HSIC₁(K, K) is exactly 0 for K = c·11ᵀ; in floating point it is noise around 0.
    K = gram_linear(constant)
    assert abs(float(unbiased_hsic(K, K))) <= 1e-9 * float(K[0, 0]) ** 2
    with pytest.raises(ValueError, match="zeros"):
        MinibatchCKA(["zeros"]).update({"zeros": torch.zeros(8, 4)})


def test_nonpositive_mean_self_hsic_raises_naming_the_layer() -> None:
    cka = MinibatchCKA(["good", "bad"])
    cka.update({"good": _features(8, 3, seed=15), "bad": _features(8, 3, seed=16)})
    cka.row_self_sum[1] = -1.0  # as if estimator noise had driven the average below zero
    with pytest.raises(ValueError, match=r"'bad'.*<= 0"):
        cka.result()
    with pytest.raises(ValueError, match="before any update"):
        MinibatchCKA(["a"]).result()


def test_cross_model_shape_and_agreement_with_within_model() -> None:
    x = _features(48, 6, seed=17)
    model_a = {"a0": x, "a1": torch.relu(x @ _features(6, 9, seed=18)), "a2": torch.tanh(x)}
    model_b = {"b0": x[:, :3] ** 2, "b1": torch.sin(x) @ _features(6, 4, seed=19)}
    cross = MinibatchCKA(list(model_a), list(model_b))
    union = MinibatchCKA([*model_a, *model_b])
    within_a = MinibatchCKA(list(model_a))
    a_vs_a = MinibatchCKA(list(model_a), list(model_a))
    for start in range(0, 48, 12):
        batch_a = {k: v[start : start + 12] for k, v in model_a.items()}
        batch_b = {k: v[start : start + 12] for k, v in model_b.items()}
        cross.update(batch_a, batch_b)
        union.update({**batch_a, **batch_b})
        within_a.update(batch_a)
        a_vs_a.update(batch_a, {k: v.clone() for k, v in batch_a.items()})  # equal values, separate tensors
    rows, cols, matrix = cross.result_cross()
    assert (rows, cols, matrix.shape) == (["a0", "a1", "a2"], ["b0", "b1"], (3, 2))
    _, full = union.result()
    np.testing.assert_allclose(matrix, full[:3, 3:], atol=1e-12)
    np.testing.assert_allclose(a_vs_a.result()[1], within_a.result()[1], atol=1e-12)
    np.testing.assert_allclose(full[:3, :3], within_a.result()[1], atol=1e-12)


def test_within_model_computes_each_gram_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import beyond_imagenet.metrics.cka as cka_module

    calls: list[tuple[int, ...]] = []
    real = cka_module.gram_linear

    def counting(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return real(x)

    monkeypatch.setattr(cka_module, "gram_linear", counting)
    feats = {f"l{i}": _features(10, 3 + i, seed=20 + i) for i in range(4)}
    cka = MinibatchCKA(list(feats))
    cka.update(feats)
    assert len(calls) == 4
    cka.update(feats, feats)
    assert len(calls) == 8


def test_streaming_order_does_not_matter() -> None:
    x = _features(96, 7, seed=30)
    feats = {"x": x, "y": torch.relu(x @ _features(7, 5, seed=31)), "z": _features(96, 3, seed=32)}
    batches = [{k: v[s : s + 16] for k, v in feats.items()} for s in range(0, 96, 16)]
    forward, backward = MinibatchCKA(list(feats)), MinibatchCKA(list(feats))
    for batch in batches:
        forward.update(batch)
    for batch in reversed(batches):
        backward.update(batch)
    np.testing.assert_allclose(forward.result()[1], backward.result()[1], rtol=0, atol=1e-12)
    assert forward.cross_sum.shape == (3, 3) and forward.batches == 6


# --- intervals: the bootstrap over minibatches ---------------------------------------------------------------------


def _layer_batches(k: int, n: int = 12, seed: int = 40) -> list[dict[str, torch.Tensor]]:
    """``k`` minibatches of ``n`` images through four related "layers"."""
    x = _features(k * n, 6, seed=seed)
    feats = {
        "l0": x,
        "l1": torch.relu(x @ _features(6, 8, seed=seed + 1)),
        "l2": torch.tanh(x[:, :4]) + 0.3 * _features(k * n, 4, seed=seed + 2),
        "l3": _features(k * n, 5, seed=seed + 3),
    }
    return [{name: v[s : s + n] for name, v in feats.items()} for s in range(0, k * n, n)]


def _fed(batches: list[dict[str, torch.Tensor]], counts=None, cols: list[str] | None = None) -> MinibatchCKA:
    """A fresh accumulator fed batch i ``counts[i]`` times (rows l0..l3; columns ``cols`` of the same batches)."""
    cka = MinibatchCKA(["l0", "l1", "l2", "l3"], cols)
    for batch, times in zip(batches, counts if counts is not None else [1] * len(batches), strict=True):
        for _ in range(int(times)):
            cka.update(batch, None if cols is None else {c: batch[c].clone() for c in cols})
    return cka


def test_batch_terms_are_the_per_batch_hsic_and_sum_to_the_running_sums() -> None:
    batches = _layer_batches(3)
    cka = _fed(batches)
    terms = cka.batch_terms()
    assert (terms.cross.shape, terms.row_self.shape, terms.col_self.shape) == ((3, 4, 4), (3, 4), (3, 4))
    K, L = gram_linear(batches[1]["l0"]), gram_linear(batches[1]["l2"])
    assert terms.cross[1, 0, 2] == pytest.approx(float(unbiased_hsic(K, L)), abs=1e-12)
    assert terms.row_self[1, 2] == pytest.approx(float(unbiased_hsic(L, L)), abs=1e-12)
    np.testing.assert_array_equal(terms.cross.sum(axis=0), cka.cross_sum.numpy())
    np.testing.assert_array_equal(terms.columns().sum(axis=0)[-1], 3.0)
    with pytest.raises(ValueError, match="before any update"):
        MinibatchCKA(["a"]).batch_terms()


def test_statistic_values_equal_the_summaries_exactly() -> None:
    batches = _layer_batches(4)
    within, cross = _fed(batches), _fed(batches, cols=["l3", "l1"])
    names, matrix = within.result()
    terms = within.batch_terms()
    full = cka_statistics(terms, summary_statistics)
    assert {k: s.value() for k, s in full.items()} == {k: v for k, v in summarise(matrix).items() if k != "n_layers"}
    sets = {"odd": ["l1", "l3"], "three": ["l0", "l2", "l3"]}
    for kind, sub in type_matrices(names, matrix, sets).items():
        index = [names.index(n) for n in sets[kind]]
        picked = cka_statistics(terms.select(index, index), summary_statistics)
        assert {k: s.value() for k, s in picked.items()} == {k: v for k, v in summarise(sub).items() if k != "n_layers"}
    _, _, cross_matrix = cross.result_cross()
    for terms_view, view in ((cross.batch_terms(), cross_matrix), (cross.batch_terms().transposed(), cross_matrix.T)):
        values = {k: s.value() for k, s in cka_statistics(terms_view, cross_summary_statistics).items()}
        assert values == cross_summary(view)
    assert cka_statistics(terms.select([2], [2]), summary_statistics) == {}  # one layer: no pair to summarise


def test_identical_batches_give_an_interval_of_zero_width() -> None:
    batch = _layer_batches(1)[0]
    cka = _fed([batch] * 5)
    plan = ResamplePlan("identical", 5, 200, seed=0)
    book = EstimateBook()
    for name, statistic in cka_statistics(cka.batch_terms(), summary_statistics).items():
        book.add("m", name, plan, statistic)
    for estimate in book.resolve()["m"].values():
        np.testing.assert_allclose(estimate.replicates, estimate.value, rtol=1e-12)
        assert estimate.high - estimate.low == pytest.approx(0.0, abs=1e-12)


def test_replicates_are_reproducible_for_a_seed_and_differ_for_another() -> None:
    statistics = cka_statistics(_fed(_layer_batches(6)).batch_terms(), summary_statistics)

    def replicates(seed: int) -> dict[str, np.ndarray]:
        return bootstrap(ResamplePlan("cka:test/minibatches", 6, 300, seed), statistics)

    first, again, other = replicates(0), replicates(0), replicates(1)
    for name in statistics:
        assert first[name].shape == (300,)
        np.testing.assert_array_equal(first[name], again[name])
        assert not np.allclose(first[name], other[name])


def test_a_resample_is_the_cka_of_those_batches_with_those_multiplicities() -> None:
    batches = _layer_batches(5)
    terms = _fed(batches).batch_terms()
    counts = np.array([2.0, 0.0, 1.0, 0.0, 2.0])
    matrix = terms.matrices((counts @ terms.columns())[None])[0]
    np.testing.assert_allclose(matrix, _fed(batches, counts).result()[1], rtol=1e-12, atol=1e-14)
    plan = ResamplePlan("cka:direct/minibatches", 5, 6, seed=3)
    draws = next(plan.counts())
    statistics = cka_statistics(terms, summary_statistics)
    replicates = bootstrap(plan, statistics)
    for b, count in enumerate(draws):
        expected = summarise(_fed(batches, count).result()[1])
        for name in statistics:
            assert replicates[name][b] == pytest.approx(expected[name], rel=1e-12)


def test_two_models_on_the_same_batches_get_paired_replicates() -> None:
    batches = _layer_batches(5)
    other = [{k: torch.sin(v) for k, v in batch.items()} for batch in batches]
    plan = ResamplePlan("cka:paired/minibatches", 5, 50, seed=0)
    book = EstimateBook()
    for model, feeds in (("a", batches), ("b", other)):
        for name, statistic in cka_statistics(_fed(feeds).batch_terms(), summary_statistics).items():
            book.add(model, name, plan, statistic)
    estimates = book.resolve()
    assert estimates["a"]["mean_offdiagonal"].plan == estimates["b"]["mean_offdiagonal"].plan == plan.name
    draws = next(plan.counts())
    for model, feeds in (("a", batches), ("b", other)):
        for b in (0, 17, 49):
            expected = summarise(_fed(feeds, draws[b]).result()[1])["mean_adjacent"]
            assert estimates[model]["mean_adjacent"].replicates[b] == pytest.approx(expected, rel=1e-12)
