"""The CKA model pass (docs/protocol.md §10, paper Fig. 8): minibatch linear CKA accumulated over layer taps.

Unlike the other analyses this needs the models, not the caches: activations are far too large to cache
(ViT-B: ~9 GB per batch of 256 over its 61 taps). Each tapped activation is reduced to its float64 batch Gram
matrix inside the forward hook and dropped; :class:`MinibatchCKA` keeps only running HSIC sums, so memory is
O(models x layers x batch²) whatever the number of images.

Within each model one accumulator covers the "all" layers; each layer type's matrix is its rows and columns of
that matrix (CKA of a pair does not depend on the other layers). Across models (beyond the paper) one accumulator
per pair of models compares their "all" layers on the same images in the same order. ``analyses.cka`` turns the
accumulators into records, matrices and Fig. 8.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import torch
from torch import nn

from beyond_imagenet.base.config import CkaConfig, InferenceConfig, section_as_dict
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.data.registry import ImageDataset
from beyond_imagenet.data.subsets import stratified_subset
from beyond_imagenet.inference.engine import ProgressReporter, make_trainer, resolve_accelerator
from beyond_imagenet.inference.jobs import model_preprocessing
from beyond_imagenet.inference.loader import DecodeOnceDataset, auto_num_workers, make_loader
from beyond_imagenet.metrics.cka import MinibatchCKA, gram_linear
from beyond_imagenet.models.backbone import Backbone
from beyond_imagenet.models.build import build_image_towers
from beyond_imagenet.models.catalogue import resolve_model
from beyond_imagenet.models.preprocessing import PreprocessSpec
from beyond_imagenet.models.spec import ModelSpec
from beyond_imagenet.models.taps import layer_sets, record_activations

MIN_BATCH = 4  # the unbiased HSIC divides by n(n-3)
SUBSET_RULE = "first round(fraction x n_c) images of each class (at least 1) in sample-id (file-name) order"


class CkaAccumulator(L.LightningModule):
    """Per batch: each model's Grams over its "all" layers, then every within-model and cross-model update."""

    def __init__(
        self,
        backbones: dict[str, Backbone],
        input_keys: dict[str, str],
        layers: dict[str, list[str]],
        cross_model: bool,
    ):
        super().__init__()
        self.model_ids = list(backbones)
        self.backbones = nn.ModuleList(backbones[m] for m in self.model_ids)
        self.input_keys = dict(input_keys)
        self.layers = dict(layers)
        self.within = {m: MinibatchCKA(layers[m]) for m in self.model_ids}
        pairs = itertools.combinations(self.model_ids, 2) if cross_model else ()
        self.cross = {(a, b): MinibatchCKA(layers[a], layers[b]) for a, b in pairs}
        self.batch_sizes: list[int] = []
        self.dropped_images = 0

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """Add one batch's Gram matrices to every within-model and cross-model CKA accumulator.

        An undecodable image is an error (the subset must be complete); a batch smaller than ``MIN_BATCH`` (only the
        last one can be) is skipped and counted in ``dropped_images``. Returns the indices for the progress reporter.
        """
        failed = [reason for reason in batch["error"] if reason]
        if failed:
            raise UserError(f"CKA subset image could not be decoded: {failed[0]}; fix or remove it and rerun")
        n = len(batch["index"])
        if n < MIN_BATCH:
            self.dropped_images += n  # only the last batch can be this small
            return {"index": batch["index"]}
        grams = {}
        for model_id, backbone in zip(self.model_ids, self.backbones, strict=True):
            with record_activations(backbone, self.layers[model_id], n, reduce=gram_linear) as model_grams:
                backbone.features(batch["inputs"][self.input_keys[model_id]])
            grams[model_id] = dict(model_grams)
        for model_id, accumulator in self.within.items():
            accumulator.update_grams(grams[model_id])
        for (a, b), accumulator in self.cross.items():
            accumulator.update_grams(grams[a], grams[b])
        self.batch_sizes.append(n)
        return {"index": batch["index"]}  # for the progress reporter


@dataclass
class CkaPlan:
    """Everything resolved before any model is built."""

    dataset: ImageDataset  # the class-stratified subset
    specs: list[ModelSpec]
    preprocessing: dict[str, PreprocessSpec]
    config: dict = field(default_factory=dict)


def plan_cka(
    name: str, variants: list[ImageDataset], model_ids: Sequence[str], config: CkaConfig, preprocessing: str
) -> CkaPlan:
    """Check the CKA dataset (``variants`` of ``name``) and the models, pick the subset; no model is built here."""
    if len(variants) != 1:
        raise UserError(
            f"analyses.cka.dataset {name!r} has {len(variants)} variants; CKA needs a single image set "
            "(ImageNet val in the paper)"
        )
    subset = stratified_subset(variants[0], fraction=config.fraction)
    if len(subset) < MIN_BATCH:
        raise UserError(
            f"the CKA subset of {name} has {len(subset)} images; the unbiased HSIC needs >= {MIN_BATCH}. "
            "Raise analyses.cka.fraction or use a larger dataset."
        )
    specs = [resolve_model(m) for m in model_ids]
    unsupported = [s.id for s in specs if s.family not in ("vit", "convnet")]
    if unsupported:
        raise UserError(f"CKA layer sets are defined for ViT and ConvNeXt models only, not {', '.join(unsupported)}")
    prep = {spec.id: model_preprocessing(preprocessing, subset, spec) for spec in specs}
    return CkaPlan(subset, specs, prep, section_as_dict(config))


def build_taps(plan: CkaPlan) -> tuple[dict[str, Backbone], dict[str, dict[str, list[str]]]]:
    """Each model once (image tower only for CLIP) and its layer sets, checked before the data pass."""
    backbones = build_image_towers(plan.specs)
    return backbones, {model_id: layer_sets(backbone) for model_id, backbone in backbones.items()}


def run_cka_pass(
    plan: CkaPlan,
    config: CkaConfig,
    inference: InferenceConfig,
    built: tuple[dict[str, Backbone], dict[str, dict[str, list[str]]]],
    callbacks: Sequence = (),
) -> CkaAccumulator:
    """One streamed pass over the subset in minibatches of ``config.batch_size``; returns the accumulators."""
    backbones, layer_types = built
    accelerator = resolve_accelerator(inference.device)
    specs = {prep.key(): prep for prep in plan.preprocessing.values()}
    module = CkaAccumulator(
        backbones,
        {m: prep.key() for m, prep in plan.preprocessing.items()},
        {m: sets["all"] for m, sets in layer_types.items()},
        config.cross_model and len(backbones) > 1,
    )
    workers = inference.num_workers
    loader = make_loader(
        DecodeOnceDataset(plan.dataset.samples, np.arange(len(plan.dataset)), specs),
        config.batch_size,
        auto_num_workers() if workers == "auto" else workers,
        pin_memory=accelerator == "gpu",
    )
    progress = ProgressReporter(len(plan.dataset), f"cka {plan.dataset.key}: {', '.join(backbones)}")
    trainer = make_trainer(accelerator, inference.precision, [progress, *callbacks])
    with torch.inference_mode():
        trainer.predict(module, loader, return_predictions=False)
    module.accelerator_used = accelerator
    if not module.batch_sizes:
        raise UserError(f"no CKA minibatch of >= {MIN_BATCH} images; raise analyses.cka.batch_size")
    return module
