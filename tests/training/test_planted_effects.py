"""Planted effects the analyses' metrics must recover, each asserted with its 95% bootstrap interval (issue 17).

Two ConvNeXts are trained (cross-entropy, reduced world and budget) on rotations within +-20 degrees only: one with
texture independent of the class, one with texture tied to it (``TEXTURES[class]``). Why each effect must hold:

* **pose**: rotations beyond 45 degrees were never seen and five of the eight shapes look different rotated, so
  the ImageNet-X error ratio (§3) of ``pose`` is above 1, and the one-factor sweep (PUG-style, §2.3) loses accuracy
  from 0 to 90 degrees on the very same scenes.
* **shape bias** (§6): for the texture-free model texture carries no information about the class, so on cue
  conflict it cannot pick the texture's class more than its errors do by chance; the tied model was rewarded for
  reading texture. Its shape bias is lower, paired over the same stimuli.
* **corruption** (§7.8): Gaussian noise of std 0.08 vs 0.38 on the same images (ImageNet-C severities 1 and 5);
  the severity-5 images carry strictly less signal.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from beyond_imagenet.data.imagenet_x import FACTORS
from beyond_imagenet.data.world import SHAPES, WorldConfig, generate
from beyond_imagenet.data.world import testsets as T
from beyond_imagenet.metrics.imagenet_x import error_ratio_statistics
from beyond_imagenet.metrics.intervals import bootstrap_interval, paired_difference
from beyond_imagenet.metrics.resampling import LinearStatistic, bootstrap, image_plan, mean_statistic
from beyond_imagenet.metrics.shape_bias import shape_bias_statistics
from beyond_imagenet.training.world import TrainConfig, predict, train

WORLD = WorldConfig(rotation=(-20.0, 20.0), backgrounds=("plain", "sky"), max_occluders=0, brightness=(0.9, 1.1))
RESAMPLES = 1000


def _train(world: WorldConfig):
    config = TrainConfig("world_convnext", "cross_entropy", world=world, n_train=6000, epochs=5, lr=3e-3)
    return train(config, accelerator="cpu")


@pytest.fixture(scope="module")
def free_model():
    return _train(WORLD)


@pytest.fixture(scope="module")
def tied_model():
    return _train(dataclasses.replace(WORLD, texture_tied_to_class=True))


def _correct(model, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return predict(model, "cross_entropy", images).argmax(1) == labels


def _interval(statistic: LinearStatistic, n: int, name: str) -> tuple[float, float, float]:
    replicates = bootstrap(image_plan([f"{name}/{i}" for i in range(n)], RESAMPLES, seed=0), {"s": statistic})["s"]
    return (statistic.value(), *bootstrap_interval(replicates, statistic.value()))


def _paired(a: LinearStatistic, b: LinearStatistic, n: int):
    plan = image_plan([str(i) for i in range(n)], RESAMPLES, seed=0)
    replicates = bootstrap(plan, {"a": a, "b": b})
    return paired_difference(replicates["a"], replicates["b"], a.value(), b.value())


def test_unseen_rotations_have_an_error_ratio_above_one(free_model):
    world = dataclasses.replace(WORLD, rotation=(0.0, 360.0))
    images, factors = generate(world, 1600, seed=21)
    correct = _correct(free_model, images, np.array([f.label for f in factors]))
    world_flags = T.factor_flags(factors)
    flags = np.stack([world_flags.get(name, np.zeros(len(factors), bool)) for name in FACTORS], axis=1)
    statistics = error_ratio_statistics(flags, correct, np.ones(len(factors), bool))
    ratio, low, high = _interval(statistics["pose/error_ratio"], len(factors), "pose")
    assert low > 1.0, (ratio, low, high)  # measured: see the note of issue 17


def test_the_rotation_sweep_drops_on_the_same_scenes(free_model):
    _, factors = generate(WORLD, 800, seed=22)
    labels = np.array([f.label for f in factors])
    upright, turned = T.sweep(factors, "rotation", [0.0, 90.0], 32)
    a = mean_statistic(_correct(free_model, upright, labels).astype(float), 100.0)
    b = mean_statistic(_correct(free_model, turned, labels).astype(float), 100.0)
    drop = _paired(a, b, len(labels))
    assert drop.low > 0, drop


def test_texture_tied_to_class_lowers_the_shape_bias(free_model, tied_model):
    images, shapes, textures = T.cue_conflict(WORLD, 1120, seed=23)
    names = np.array(SHAPES, dtype=object)

    def bias(model) -> LinearStatistic:
        decisions = names[predict(model, "cross_entropy", images).argmax(1)]
        return shape_bias_statistics(decisions, names[shapes], names[textures])["overall"]

    free, tied = bias(free_model), bias(tied_model)
    difference = _paired(free, tied, len(shapes))
    assert difference.low > 0, (free.value(), tied.value(), difference)


def test_accuracy_falls_with_noise_severity(free_model):
    images, factors = generate(WORLD, 800, seed=24)
    labels = np.array([f.label for f in factors])
    accuracy = [
        mean_statistic(_correct(free_model, T.corrupt(images, "gaussian_noise", s, seed=1), labels).astype(float), 100)
        for s in (1, 3, 5)
    ]
    values = [a.value() for a in accuracy]
    assert values[0] >= values[1] >= values[2], values
    assert _paired(accuracy[0], accuracy[2], len(labels)).low > 0
