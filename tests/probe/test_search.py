"""Probe hyper-parameter search (TRANSFER.md §2.3, §4): split hygiene, test labels withheld from selection,
resumable SQLite studies, the coarse-to-fine grid, seeded reproducibility. Small synthetic features, CPU."""

from __future__ import annotations

import inspect
import json
from typing import ClassVar

import pytest
import torch

from beyond_imagenet.base.errors import NonFiniteLogitsError, UserError
from beyond_imagenet.data.vtab.split_rules import check_disjoint
from beyond_imagenet.probe import search as search_module
from beyond_imagenet.probe.linear import ProbeConfig
from beyond_imagenet.probe.search import search_hyperparameters, tune_and_evaluate
from beyond_imagenet.probe.splits import FeatureSplit
from beyond_imagenet.probe.study import SearchSpace, coarse_indices, wd_grid

N_CLASSES = 5
CONFIG = ProbeConfig(epochs=3, batch_size=64)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_split(n: int, seed: int, name: str, offset: int) -> FeatureSplit:
    means = torch.randn(N_CLASSES, 16, generator=torch.Generator().manual_seed(123)) * 0.6
    y = torch.arange(n) % N_CLASSES
    x = means[y] + torch.randn(n, 16, generator=torch.Generator().manual_seed(seed)) + 0.5
    return FeatureSplit(x, y, ids=[f"img{offset + i:05d}" for i in range(n)], name=name)


@pytest.fixture
def splits() -> tuple[FeatureSplit, FeatureSplit, FeatureSplit]:
    return make_split(150, 1, "train", 0), make_split(100, 2, "val", 1000), make_split(100, 3, "test", 2000)


# ---------------------------------------------------------------------------------------------------------------
# disjointness


def test_check_disjoint_accepts_disjoint_splits():
    check_disjoint({"train": ["a", "b"], "val": ["c"], "test": ["d", "e"]})


def test_check_disjoint_names_the_overlapping_ids():
    with pytest.raises(UserError) as err:
        check_disjoint({"train": ["a", "b", "c"], "val": ["d"], "test": ["c", "a", "z"]})
    message = str(err.value)
    assert "'train' and 'test' share 2 sample id(s): 'a', 'c'" in message
    assert "'val'" not in message


def test_check_disjoint_reports_every_pair_and_repeats():
    with pytest.raises(UserError) as err:
        check_disjoint({"train": [1, 2, 2], "val": [3, 1], "test": [3]})
    message = str(err.value)
    assert "'train' lists 1 sample id(s) more than once: 2" in message
    assert "'train' and 'val' share 1 sample id(s): 1" in message
    assert "'val' and 'test' share 1 sample id(s): 3" in message


def test_check_disjoint_truncates_long_listings():
    ids = [f"s{i:03d}" for i in range(25)]
    with pytest.raises(UserError, match=r"share 25 sample id\(s\): 's000', .*'s009', \.\.\. \(15 more\)"):
        check_disjoint({"val": ids, "test": ids})


def test_overlapping_splits_fail_before_any_fit(splits, monkeypatch):
    train, val, test = splits
    monkeypatch.setattr(search_module, "fit_probe", lambda *a, **k: pytest.fail("fitted despite a leak"))
    leaky_test = FeatureSplit(test.x, test.y, ids=[*test.ids[:-1], val.ids[7]], name="test")
    with pytest.raises(UserError, match=r"'val' and 'test' share 1 sample id\(s\): 'img01007'"):
        tune_and_evaluate(train, val, leaky_test, N_CLASSES, config=CONFIG)


def test_bad_test_labels_fail_before_the_search(splits, monkeypatch):
    train, val, test = splits
    monkeypatch.setattr(search_module, "fit_probe", lambda *a, **k: pytest.fail("fitted despite bad input"))
    bad = FeatureSplit(test.x, test.y + N_CLASSES, name="test")
    with pytest.raises(UserError, match="test labels must lie in"):
        tune_and_evaluate(FeatureSplit(train.x, train.y), FeatureSplit(val.x, val.y), bad, N_CLASSES, config=CONFIG)


# ---------------------------------------------------------------------------------------------------------------
# the search never sees the test labels


def test_search_signature_has_no_test_split():
    parameters = inspect.signature(search_hyperparameters).parameters
    assert not any("test" in name for name in parameters)


class Poisoned(torch.Tensor):
    """A tensor whose values cannot be read while ``armed``; shape/dtype metadata stay readable."""

    armed = True
    metadata: ClassVar[set[str]] = {"__len__", "__get__", "numel", "dim", "size", "is_floating_point", "is_complex"}

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if Poisoned.armed and getattr(func, "__name__", "") not in cls.metadata:
            raise AssertionError(f"test split read outside the final step: {func}")
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("method", ["tpe", "grid"])
def test_test_split_is_only_read_by_validation_and_the_final_step(splits, monkeypatch, method):
    train, val, test = splits
    poisoned = FeatureSplit(test.x.as_subclass(Poisoned), test.y.as_subclass(Poisoned), ids=test.ids, name="test")
    calls = []

    def disarmed(name, fn):
        def wrapper(*args, **kwargs):
            calls.append(name)
            Poisoned.armed = False
            try:
                return fn(*args, **kwargs)
            finally:
                Poisoned.armed = True

        return wrapper

    # input validation (range and finiteness checks before any fit) and the refit + test evaluation may read it
    monkeypatch.setattr(search_module, "check_inputs", disarmed("check_inputs", search_module.check_inputs))
    monkeypatch.setattr(search_module, "refit_and_test", disarmed("refit_and_test", search_module.refit_and_test))
    original_search = search_module.search_hyperparameters
    monkeypatch.setattr(
        search_module,
        "search_hyperparameters",
        lambda *a, **k: calls.append("search") or original_search(*a, **k),
    )
    try:
        result = tune_and_evaluate(
            train, val, poisoned, N_CLASSES, config=CONFIG, method=method, n_trials=3, engine="loop"
        )
    finally:
        Poisoned.armed = True
    assert calls == ["check_inputs", "search", "refit_and_test"]
    assert result.n_test == 100 and set(result.test_metrics) == {"top1", "mean_per_class_recall"}


def test_spy_objective_fits_on_train_and_scores_on_val_only(splits, monkeypatch):
    train, val, test = splits
    fits, scored = [], []
    real_fit, real_evaluate = search_module.fit_probe, search_module.evaluate

    def spy_fit(x, y, *args, **kwargs):
        fits.append(len(y))
        return real_fit(x, y, *args, **kwargs)

    def spy_evaluate(logits, y, n_classes):
        scored.append("test" if y is test.y else "val" if y is val.y else "other")
        return real_evaluate(logits, y, n_classes)

    monkeypatch.setattr(search_module, "fit_probe", spy_fit)
    monkeypatch.setattr(search_module, "evaluate", spy_evaluate)
    result = tune_and_evaluate(train, val, test, N_CLASSES, config=CONFIG, n_trials=4, engine="loop")
    assert fits == [150] * 4 + [250]  # 4 trials on train only, then one refit on train + val
    assert scored == ["val"] * 4 + ["test"]  # test scored exactly once, last
    assert (
        result.n_train == 150
        and result.n_val == 100
        and result.final_config["weight_decay"] == (result.best_params["weight_decay"])
    )


# ---------------------------------------------------------------------------------------------------------------
# resumable SQLite study


def test_tpe_study_resumes_from_sqlite(splits, tmp_path):
    train, val, _ = splits
    db = tmp_path / "studies" / "probe.db"
    records = []
    kwargs = {"config": CONFIG, "storage": db, "study_name": "vit_clip/cifar100", "engine": "loop"}
    first = search_hyperparameters(train, val, N_CLASSES, n_trials=4, on_trial=records.append, **kwargs)
    assert db.exists() and first.storage == f"sqlite:///{db.resolve()}"
    assert (first.n_trials, first.n_new_trials, len(records)) == (4, 4, 4)
    assert [r.number for r in records] == [0, 1, 2, 3] and all(r.score is not None for r in records)

    again = search_hyperparameters(train, val, N_CLASSES, n_trials=4, on_trial=records.append, **kwargs)
    assert (again.n_trials, again.n_new_trials, len(records)) == (4, 0, 4)
    assert again.best_params == first.best_params and again.val_score == first.val_score

    more = search_hyperparameters(train, val, N_CLASSES, n_trials=6, **kwargs)
    assert (more.n_trials, more.n_new_trials) == (6, 2)
    assert more.val_score >= first.val_score


def test_grid_study_resumes_without_refitting(splits, tmp_path, monkeypatch):
    train, val, _ = splits
    kwargs = {"config": CONFIG, "method": "grid", "storage": tmp_path / "grid.db", "engine": "loop"}
    first = search_hyperparameters(train, val, N_CLASSES, **kwargs)
    assert first.n_new_trials == first.n_trials <= 15
    monkeypatch.setattr(search_module, "fit_probe", lambda *a, **k: pytest.fail("refitted a stored grid point"))
    again = search_hyperparameters(train, val, N_CLASSES, **kwargs)
    assert again.n_new_trials == 0 and again.best_params == first.best_params


@pytest.mark.parametrize(
    "change",
    [
        {"config": CONFIG.with_params(lr=0.01)},
        {"metric": "mean_per_class_recall"},
        {"method": "grid"},
        {"train_rows": 140},
    ],
    ids=["lr", "metric", "method", "data"],
)
def test_reopening_a_study_with_another_protocol_is_refused(splits, tmp_path, change):
    train, val, _ = splits
    kwargs = {"config": CONFIG, "storage": tmp_path / "p.db", "study_name": "s", "n_trials": 1, "engine": "loop"}
    search_hyperparameters(train, val, N_CLASSES, **kwargs)
    rows = change.pop("train_rows", len(train))
    changed = FeatureSplit(train.x[:rows], train.y[:rows])
    with pytest.raises(UserError, match="different protocol"):
        search_hyperparameters(changed, val, N_CLASSES, **{**kwargs, **change})


def test_storage_must_be_sqlite(splits):
    train, val, _ = splits
    with pytest.raises(UserError, match="SQLite"):
        search_hyperparameters(train, val, N_CLASSES, config=CONFIG, storage="postgresql://host/db")


# ---------------------------------------------------------------------------------------------------------------
# the coarse-to-fine grid (§2.3)


def test_wd_grid_is_the_clip_benchmark_grid():
    grid = wd_grid()
    assert len(grid) == 97 and grid[0] == pytest.approx(1e-6) and grid[-1] == pytest.approx(100.0)
    assert grid[1] / grid[0] == pytest.approx(10 ** (1 / 12))
    assert [grid[i] for i in coarse_indices()] == pytest.approx(
        [1e-6, 2.154e-5, 4.642e-4, 1e-2, 0.2154, 4.642, 100], rel=1e-3
    )


def fake_scores(monkeypatch, score_of_index):
    """Replace the fit/evaluate pair so that val top-1 is a known function of the grid index."""
    grid = wd_grid()
    evaluated = []

    class FakeProbe:
        def __init__(self, wd):
            self.index = min(range(len(grid)), key=lambda i: abs(grid[i] - wd))

    monkeypatch.setattr(search_module, "fit_probe", lambda x, y, n, config, *a: FakeProbe(config.weight_decay))
    monkeypatch.setattr(search_module, "predict", lambda probe, x, **k: probe.index)

    def fake_evaluate(index, y, n_classes):
        evaluated.append(index)
        value = score_of_index(index)
        if value is None:
            raise NonFiniteLogitsError("diverged")
        return {"top1": value, "mean_per_class_recall": value}

    monkeypatch.setattr(search_module, "evaluate", fake_evaluate)
    return evaluated


@pytest.mark.parametrize("peak", [0, 37, 50, 61, 96])
def test_grid_walk_finds_the_peak_of_a_unimodal_score(splits, monkeypatch, peak):
    train, val, _ = splits
    evaluated = fake_scores(monkeypatch, lambda i: 90.0 - abs(i - peak))
    outcome = search_hyperparameters(train, val, N_CLASSES, config=CONFIG, method="grid")
    assert outcome.best_params["weight_decay"] == wd_grid()[peak]
    assert outcome.val_score == 90.0
    assert evaluated[:7] == coarse_indices()
    assert len(evaluated) == len(set(evaluated)) <= 15  # each grid point fitted once


def test_grid_walk_follows_the_clip_benchmark_sequence(splits, monkeypatch):
    train, val, _ = splits
    evaluated = fake_scores(monkeypatch, lambda i: 90.0 - abs(i - 37))
    search_hyperparameters(train, val, N_CLASSES, config=CONFIG, method="grid")
    # coarse 0..96 -> peak 32; span 8: [24, 32, 40] -> 40; span 4: [36, 40, 44] -> 36; span 2: [34, 36, 38]: 36 and
    # 38 tie, the first evaluated (36) stays; span 1: [35, 36, 37] -> 37. Stored points (32, 40, 36) are not refitted.
    assert evaluated == [0, 16, 32, 48, 64, 80, 96, 24, 40, 36, 44, 34, 38, 35, 37]


def test_grid_ties_keep_the_first_evaluated(splits, monkeypatch):
    train, val, _ = splits
    fake_scores(monkeypatch, lambda i: 50.0)
    outcome = search_hyperparameters(train, val, N_CLASSES, config=CONFIG, method="grid")
    assert outcome.best_params["weight_decay"] == wd_grid()[0]


def test_diverged_fits_never_win(splits, monkeypatch):
    train, val, _ = splits
    fake_scores(monkeypatch, lambda i: None if i >= 64 else 10.0 + i)  # the higher the wd, the better, until NaN
    outcome = search_hyperparameters(train, val, N_CLASSES, config=CONFIG, method="grid")
    assert outcome.best_params["weight_decay"] == wd_grid()[63]
    failed = [t for t in outcome.trials if t.score is None]
    assert failed and all(t.val_metrics == {} for t in failed)


def test_grid_on_real_fits_picks_the_best_val_score(splits):
    train, val, test = splits
    result = tune_and_evaluate(train, val, test, N_CLASSES, config=CONFIG, method="grid", engine="loop")
    scores = {t.params["weight_decay"]: t.score for t in result.trials}
    best = max(scores.values())
    assert result.val_score == best == scores[result.best_params["weight_decay"]]
    first_best = next(t for t in result.trials if t.score == best)  # trials are in evaluation order
    assert result.best_params == first_best.params
    assert result.method == "grid" and result.seed == 0 and result.n_trials == len(result.trials)
    record = json.loads(json.dumps(result.to_record(), allow_nan=False))
    assert record["test_metrics"] == result.test_metrics and len(record["trials"]) == result.n_trials


def test_grid_refuses_extra_dimensions(splits):
    train, val, _ = splits
    with pytest.raises(UserError, match="weight decay only"):
        search_hyperparameters(train, val, N_CLASSES, config=CONFIG, method="grid", space=SearchSpace(lr=(1e-3, 1.0)))


# ---------------------------------------------------------------------------------------------------------------
# seeded reproducibility


def test_same_seed_same_best_params(splits):
    train, val, test = splits
    space = SearchSpace(lr=(1e-3, 1.0), epochs=(2, 3))
    runs = [
        tune_and_evaluate(train, val, test, N_CLASSES, config=CONFIG, n_trials=5, space=space, engine="loop")
        for _ in range(2)
    ]
    assert runs[0].best_params == runs[1].best_params
    assert [t.params for t in runs[0].trials] == [t.params for t in runs[1].trials]
    assert runs[0].test_metrics == runs[1].test_metrics
    assert set(runs[0].best_params) == {"weight_decay", "lr", "epochs"}
    other = search_hyperparameters(
        train, val, N_CLASSES, config=CONFIG.with_params(seed=1), n_trials=5, space=space, engine="loop"
    )
    assert [t.params for t in other.trials] != [t.params for t in runs[0].trials]


def test_lightning_engine_in_the_search(splits):
    """The default engine (a Lightning Trainer per fit) gives the same selection as the plain loop."""
    train, val, test = splits
    lightning = tune_and_evaluate(train, val, test, N_CLASSES, config=CONFIG, n_trials=3)
    loop = tune_and_evaluate(train, val, test, N_CLASSES, config=CONFIG, n_trials=3, engine="loop")
    assert lightning.best_params == loop.best_params
    assert lightning.test_metrics == pytest.approx(loop.test_metrics)
