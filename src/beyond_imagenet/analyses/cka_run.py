"""Representation-similarity stage (PROTOCOL §10, paper Fig. 8): minibatch linear CKA over layer taps.

Unlike the other analyses this needs the models, not the caches: activations are far too large to cache
(ViT-B: ~9 GB per batch of 256 over its 61 taps). Each tapped activation is reduced to its float64 batch Gram
matrix inside the forward hook and dropped; :class:`MinibatchCKA` keeps only running HSIC sums, so memory is
O(models x layers x batch²) whatever the number of images.

Within each model one accumulator covers the "all" layers; each layer type's matrix is its rows and columns of
that matrix (CKA of a pair does not depend on the other layers). Across models (beyond the paper) one accumulator
per pair of models compares their "all" layers on the same images in the same order.
"""

from __future__ import annotations

import itertools
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from beyond_imagenet.analyses.cka import MinibatchCKA, gram_linear
from beyond_imagenet.analyses.common import ResultRecord, figure_path
from beyond_imagenet.analyses.figures import save_figure
from beyond_imagenet.config import Params, section_as_dict
from beyond_imagenet.data.registry import ImageDataset, resolve_datasets
from beyond_imagenet.data.subsets import stratified_subset
from beyond_imagenet.errors import UnknownNameError, UserError
from beyond_imagenet.inference.run import model_preprocessing
from beyond_imagenet.io_utils import atomic_write_bytes, atomic_write_json
from beyond_imagenet.models.backbone import Backbone
from beyond_imagenet.models.catalogue import ModelSpec, resolve_model
from beyond_imagenet.models.preprocessing import PreprocessSpec
from beyond_imagenet.models.taps import CONVNEXT_CONV_CHOICE, layer_sets, record_activations
from beyond_imagenet.provenance import environment_record

log = logging.getLogger(__name__)

MIN_BATCH = 4  # the unbiased HSIC divides by n(n-3)
SUBSET_RULE = "first round(fraction x n_c) images of each class (at least 1) in sample-id (file-name) order"
TYPE_TITLES = {"all": "all", "attention_or_conv": "attention / conv", "linear": "linear", "normalisation": "norm"}


def cka_results_dir(params: Params) -> Path:
    """The stage's own output root (DVC outputs must not overlap the ``analyze`` stage's)."""
    return Path(params.results_dir) / "cka"


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


def plan_cka(params: Params, model_ids: Sequence[str] | None = None) -> CkaPlan:
    """Validate the config, the dataset and the models; pick the subset. No model is built here."""
    config = params.analyses.cka
    if not config.dataset:
        raise UserError("params: analyses.cka.dataset is not set; name an ImageNet val dataset of `datasets`")
    if config.dataset not in params.datasets:
        raise UnknownNameError("dataset", config.dataset, params.datasets)
    scanned = resolve_datasets(config.dataset, params.datasets[config.dataset])
    if len(scanned) != 1:
        raise UserError(
            f"analyses.cka.dataset {config.dataset!r} has {len(scanned)} variants; CKA needs a single image set "
            "(ImageNet val in the paper)"
        )
    subset = stratified_subset(scanned[0], fraction=config.fraction)
    if len(subset) < MIN_BATCH:
        raise UserError(
            f"the CKA subset of {config.dataset} has {len(subset)} images; the unbiased HSIC needs >= {MIN_BATCH}. "
            "Raise analyses.cka.fraction or use a larger dataset."
        )
    specs = [resolve_model(m) for m in (model_ids or params.models)]
    unsupported = [s.id for s in specs if s.family not in ("vit", "convnet")]
    if unsupported:
        raise UserError(f"CKA layer sets are defined for ViT and ConvNeXt models only, not {', '.join(unsupported)}")
    preprocessing = {spec.id: model_preprocessing(params, subset, spec) for spec in specs}
    return CkaPlan(subset, specs, preprocessing, section_as_dict(config))


def _build(plan: CkaPlan) -> tuple[dict[str, Backbone], dict[str, dict[str, list[str]]]]:
    """Each model once (image tower only for CLIP) and its layer sets, checked before the data pass."""
    from beyond_imagenet.models.backbone import build_backbone
    from beyond_imagenet.models.weights import ensure_weights_available

    ensure_weights_available(plan.specs)
    backbones, layer_types = {}, {}
    for spec in plan.specs:
        backbone, clip_model = build_backbone(spec)
        del clip_model  # the text tower plays no part in image representations
        backbones[spec.id] = backbone.eval()
        layer_types[spec.id] = layer_sets(backbone)
    return backbones, layer_types


def _accumulate(plan: CkaPlan, params: Params, backbones, layer_types, callbacks: Sequence) -> CkaAccumulator:
    from beyond_imagenet.inference.engine import ProgressReporter, make_trainer, resolve_accelerator
    from beyond_imagenet.inference.loader import DecodeOnceDataset, auto_num_workers, make_loader

    accelerator = resolve_accelerator(params.inference.device)
    specs = {prep.key(): prep for prep in plan.preprocessing.values()}
    module = CkaAccumulator(
        backbones,
        {m: prep.key() for m, prep in plan.preprocessing.items()},
        {m: sets["all"] for m, sets in layer_types.items()},
        params.analyses.cka.cross_model and len(backbones) > 1,
    )
    workers = params.inference.num_workers
    loader = make_loader(
        DecodeOnceDataset(plan.dataset.samples, np.arange(len(plan.dataset)), specs),
        params.analyses.cka.batch_size,
        auto_num_workers() if workers == "auto" else workers,
        pin_memory=accelerator == "gpu",
    )
    progress = ProgressReporter(len(plan.dataset), f"cka {plan.dataset.key}: {', '.join(backbones)}")
    trainer = make_trainer(accelerator, params.inference.precision, [progress, *callbacks])
    with torch.inference_mode():
        trainer.predict(module, loader, return_predictions=False)
    module.accelerator_used = accelerator
    return module


def type_matrices(all_layers: list[str], matrix: np.ndarray, sets: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """Each layer type's CKA matrix: its rows and columns of the "all" matrix (in forward order)."""
    position = {name: i for i, name in enumerate(all_layers)}
    out = {}
    for kind, names in sets.items():
        index = np.array([position[n] for n in names], dtype=np.int64)
        out[kind] = matrix[np.ix_(index, index)]
    return out


def summarise(matrix: np.ndarray) -> dict[str, float]:
    """Mean CKA off the diagonal, and between neighbouring layers (how block-structured the map is)."""
    n = matrix.shape[0]
    if n < 2:
        return {"n_layers": float(n)}
    off = matrix[~np.eye(n, dtype=bool)]
    return {
        "n_layers": float(n),
        "mean_offdiagonal": float(off.mean()),
        "mean_adjacent": float(np.diag(matrix, 1).mean()),
    }


def cross_summary(matrix: np.ndarray) -> dict[str, float]:
    """Cross-model CKA: of the last tapped layers, and each row layer's best match in the other model, averaged."""
    return {"last_layer": float(matrix[-1, -1]), "mean_best_match": float(matrix.max(axis=1).mean())}


def save_fig8_grid(per_model: dict[str, dict[str, np.ndarray]], path: Path) -> Path:
    """Fig. 8 layout: one row per model, one heatmap per layer type (all, attention/conv, linear, norm), 0..1."""
    kinds = list(next(iter(per_model.values())))
    fig = Figure(figsize=(3.2 * len(kinds) + 1, 3.0 * len(per_model)), layout="constrained")
    axes = fig.subplots(len(per_model), len(kinds), squeeze=False)
    image = None
    for row, (model_id, matrices) in zip(axes, per_model.items(), strict=True):
        for ax, kind in zip(row, kinds, strict=True):
            matrix = matrices[kind]
            image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="magma", origin="lower", interpolation="nearest")
            ax.set_title(f"{TYPE_TITLES.get(kind, kind)} ({matrix.shape[0]})", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(model_id, fontsize=8)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="linear CKA")
    fig.suptitle("Fig. 8: minibatch linear CKA between layers (layers in forward order)")
    return save_figure(fig, path)


def save_cross_grid(cross: dict[tuple[str, str], np.ndarray], path: Path) -> Path:
    """Beyond the paper: one heatmap per pair of models, rows = first model's layers, columns = second's."""
    fig = Figure(figsize=(3.6 * len(cross) + 1, 3.6), layout="constrained")
    axes = fig.subplots(1, len(cross), squeeze=False)[0]
    image = None
    for ax, ((a, b), matrix) in zip(axes, cross.items(), strict=True):
        image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="magma", origin="lower", aspect="auto")
        ax.set_ylabel(a, fontsize=7)
        ax.set_xlabel(b, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="linear CKA")
    fig.suptitle("Cross-model CKA, all tapped layers")
    return save_figure(fig, path)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _records(plan: CkaPlan, params: Params, module: CkaAccumulator, layer_types) -> list[ResultRecord]:
    out_dir = cka_results_dir(params)
    dataset_name = plan.dataset.name
    per_model, records = {}, {}
    base_provenance = {
        "dataset": {**plan.dataset.manifest(), "subset_rule": SUBSET_RULE, "fraction": params.analyses.cka.fraction},
        "batch_sizes": module.batch_sizes,
        "dropped_last_batch_images": module.dropped_images,
        "precision": params.inference.precision,
        "accelerator": module.accelerator_used,
        "hsic": "unbiased HSIC_1 (Song et al. 2012), linear kernel, float64; CKA = ratio of minibatch means",
        "environment": environment_record(),
    }
    for spec in plan.specs:
        names, matrix = module.within[spec.id].result()
        matrices = type_matrices(names, matrix, layer_types[spec.id])
        wanted = {k: matrices[k] for k in params.analyses.cka.layer_types}
        per_model[spec.id] = wanted
        metrics = {f"cka/{kind}/{stat}": v for kind, m in wanted.items() for stat, v in summarise(m).items()}
        matrix_path = out_dir / "matrices" / dataset_name / f"{spec.id.replace(':', '_')}.npz"
        atomic_write_bytes(matrix_path, _npz_bytes({"all": matrix, **{f"type_{k}": v for k, v in wanted.items()}}))
        records[spec.id] = ResultRecord(
            analysis="cka",
            model_id=spec.id,
            dataset=dataset_name,
            metrics=metrics,
            params=plan.config,
            details={
                "layers": {kind: layer_types[spec.id][kind] for kind in wanted},
                "matrices_file": str(matrix_path),
            },
            provenance={
                **base_provenance,
                "model": spec.as_record(),
                "preprocessing": plan.preprocessing[spec.id].as_record(),
                "layer_choice": CONVNEXT_CONV_CHOICE if spec.family == "convnet" else "attention output (element 0)",
            },
            artifacts=[str(matrix_path)],
        )
    fig8 = save_fig8_grid(per_model, figure_path(out_dir, "cka", dataset_name, "all_models"))
    cross = {}
    for (a, b), accumulator in module.cross.items():
        _, _, matrix = accumulator.result_cross()
        cross[(a, b)] = matrix
        for this, other, view in ((a, b, matrix), (b, a, matrix.T)):
            for stat, value in cross_summary(view).items():
                records[this].metrics[f"cka_cross/{other}/{stat}"] = value
    figures = [fig8]
    if cross:
        figures.append(save_cross_grid(cross, figure_path(out_dir, "cka", dataset_name, "cross_models")))
        cross_path = out_dir / "matrices" / dataset_name / "cross_models.npz"
        atomic_write_bytes(cross_path, _npz_bytes({f"{a}__vs__{b}": m for (a, b), m in cross.items()}))
        figures.append(cross_path)
    for record in records.values():
        record.artifacts += [str(f) for f in figures]
    return list(records.values())


def run_cka(params: Params, model_ids: Sequence[str] | None = None, callbacks: Sequence = ()) -> list[ResultRecord]:
    """The ``cka`` stage: plan (fail fast), build each model once, one streamed pass, records + Fig. 8."""
    from beyond_imagenet.analyses.registry import record_path, write_metrics_file

    plan = plan_cka(params, model_ids)
    log.info("CKA on %d images of %s (%s)", len(plan.dataset), plan.dataset.name, SUBSET_RULE)
    backbones, layer_types = _build(plan)
    module = _accumulate(plan, params, backbones, layer_types, callbacks)
    if not module.batch_sizes:
        raise UserError(f"no CKA minibatch of >= {MIN_BATCH} images; raise analyses.cka.batch_size")
    out_dir = cka_results_dir(params)
    shutil.rmtree(out_dir, ignore_errors=True)  # this stage's outputs only; rebuilt below
    records = _records(plan, params, module, layer_types)
    for record in records:
        atomic_write_json(record_path(out_dir, record), record.as_dict())
    write_metrics_file(records, out_dir / "metrics.json")
    return records
