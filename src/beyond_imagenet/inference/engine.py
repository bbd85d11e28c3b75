"""Lightning predict loop: all selected models over one dataset in a single pass, written to resumable chunks.

``MultiModelPredictor`` runs every backbone on the batch (each on its own preprocessed view of the same
decoded images). ``ChunkWriter`` buffers outputs per chunk of ``chunk_size`` samples and saves finished chunks
atomically, so an interrupted pass resumes without recomputing them. ``ProgressReporter`` prints images/s and
the time left. GPU work ends here; analyses only read the caches.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.progress import RateReporter
from beyond_imagenet.inference.cache import PartialChunks
from beyond_imagenet.inference.tensor_decode import decode_and_preprocess
from beyond_imagenet.models.backbone import Backbone

log = logging.getLogger(__name__)


class MultiModelPredictor(L.LightningModule):
    """Runs each backbone on the tensor of its preprocessing key; returns float32 logits and features.

    ``features_only``: the pooled features alone (VTAB feature extraction, docs/transfer.md §2.1); logits are an
    empty [B, 0] array, so no classifier or zero-shot head is needed.
    """

    def __init__(
        self,
        backbones: dict[str, Backbone],
        input_keys: dict[str, str],
        features_only: bool = False,
        channels_last: bool = False,
        compile: bool = False,
        tensor_decode_specs: dict | None = None,
    ):
        """Hold ``backbones`` (model id -> backbone) and ``input_keys`` (model id -> preprocessing key) for one pass.

        ``channels_last``: NHWC weights and inputs (faster convolutions on GPUs); ``compile``: run each backbone
        through ``torch.compile`` (same weights; compiled lazily on the first batch). ``tensor_decode_specs``
        (preprocessing key -> spec): batches hold encoded bytes (``inference.decode: tensor``), decoded and
        preprocessed on the device by :func:`~beyond_imagenet.inference.tensor_decode.decode_and_preprocess`.
        """
        super().__init__()
        self.tensor_decode_specs = tensor_decode_specs
        self.model_ids = list(backbones)
        self.backbones = nn.ModuleList(backbones[m] for m in self.model_ids)
        self.input_keys = dict(input_keys)
        self.features_only = features_only
        self.channels_last = channels_last
        if channels_last:
            self.backbones.to(memory_format=torch.channels_last)
        # compiled wrappers share the parameters; kept out of the module tree so nothing is registered twice
        self._runners = [torch.compile(self._call(b)) if compile else self._call(b) for b in self.backbones]
        self.forward_calls = 0  # counted for tests of resumption

    def _call(self, backbone: Backbone):
        if self.features_only:

            def features_only(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                features = backbone.features(images)
                return features.new_zeros((features.shape[0], 0)), features

            return features_only
        return backbone.forward

    def transfer_batch_to_device(self, batch, device, dataloader_idx: int):
        """Encoded bytes stay on the CPU (``decode_jpeg`` reads them there, whatever its device)."""
        if self.tensor_decode_specs is None or not isinstance(batch, dict) or "data" not in batch:
            return super().transfer_batch_to_device(batch, device, dataloader_idx)
        rest = {k: v for k, v in batch.items() if k != "data"}
        return {**super().transfer_batch_to_device(rest, device, dataloader_idx), "data": batch["data"]}

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """Run every backbone on its own preprocessed view of the batch and return float32 logits and features.

        Returns ``{"index", "error", "outputs": {model id: (logits, features)}}`` for the callbacks. With
        ``tensor_decode_specs`` the encoded bytes are decoded and preprocessed on the device first; an image that
        fails to decode there gets its reason in ``"error"`` (unless reading it already failed) and zero tensors.
        """
        self.forward_calls += 1
        if self.tensor_decode_specs is not None:
            inputs, errors = decode_and_preprocess(batch["data"], self.tensor_decode_specs, self.device)
            errors = [read or decoded for read, decoded in zip(batch["error"], errors, strict=True)]
            batch = {**batch, "inputs": inputs, "error": errors}
        outputs = {}
        for model_id, runner in zip(self.model_ids, self._runners, strict=True):
            images = batch["inputs"][self.input_keys[model_id]]
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            logits, features = runner(images)
            outputs[model_id] = (logits.float(), features.float())
        return {"index": batch["index"], "error": batch["error"], "outputs": outputs}


def non_finite_rows(logits: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Positions of the rows whose logits or features hold a NaN or an infinity."""
    return np.flatnonzero(~(np.isfinite(logits).all(axis=1) & np.isfinite(features).all(axis=1)))


class ChunkWriter(Callback):
    """Collects predictions per chunk and saves each finished chunk for every model that still needs it.

    A model's chunk with NaN or infinite outputs is not saved; its samples are listed in ``non_finite``.
    """

    def __init__(
        self,
        partials: dict[str, PartialChunks],
        needed_chunks: dict[str, set[int]],
        chunk_sizes: dict[int, int],
        chunk_size: int,
        sample_ids: Sequence[str],
        dataset_name: str,
    ):
        self.partials = partials
        self.needed = needed_chunks
        self.chunk_sizes = chunk_sizes  # chunk -> number of samples it holds
        self.chunk_size = chunk_size
        self.sample_ids = sample_ids
        self.dataset_name = dataset_name
        self._buffer: dict[int, dict] = defaultdict(lambda: {"index": [], "error": [], "outputs": defaultdict(list)})
        self.non_finite: dict[str, list[str]] = defaultdict(list)  # model id -> samples with NaN or inf outputs

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        """Buffer the batch's outputs by chunk and save each chunk as soon as all of its samples have arrived."""
        indices = outputs["index"].cpu().numpy()
        chunks = indices // self.chunk_size
        for chunk in np.unique(chunks):
            rows = np.flatnonzero(chunks == chunk)
            buffer = self._buffer[int(chunk)]
            buffer["index"].append(indices[rows])
            buffer["error"].extend(outputs["error"][i] for i in rows)
            for model_id, (logits, features) in outputs["outputs"].items():
                buffer["outputs"][model_id].append((logits[rows].cpu().numpy(), features[rows].cpu().numpy()))
            if sum(len(i) for i in buffer["index"]) == self.chunk_sizes[int(chunk)]:
                self._flush(int(chunk))

    def _flush(self, chunk: int) -> None:
        buffer = self._buffer.pop(chunk)
        indices = np.concatenate(buffer["index"])
        errors = np.array(buffer["error"], dtype=object)
        ok = errors == ""
        failed = [[int(i), str(e)] for i, e in zip(indices[~ok], errors[~ok], strict=True)]
        for model_id, parts in buffer["outputs"].items():
            if chunk not in self.needed[model_id]:
                continue
            logits = np.concatenate([p[0] for p in parts])[ok]
            features = np.concatenate([p[1] for p in parts])[ok]
            kept = indices[ok]
            bad = non_finite_rows(logits, features)
            if bad.size:  # not saved, so never counted; the other models' chunks go on
                self.non_finite[model_id].extend(self.sample_ids[i] for i in kept[bad])
                continue
            self.partials[model_id].write(chunk, kept, logits, features, failed)


class ProgressReporter(Callback):
    """Prints images done, images/s and time left, at most every ``interval_s`` seconds and at the end."""

    def __init__(self, total_images: int, label: str, interval_s: float = 10.0):
        self.reporter = RateReporter(total_images, label, "images", interval_s)

    def on_predict_start(self, trainer, pl_module) -> None:
        """Start the clock and print how many images the pass will compute."""
        self.reporter.start()

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        """Count the batch's images; print a progress line once ``interval_s`` has passed or the pass is done."""
        self.reporter.update(len(outputs["index"]))

    @property
    def images_per_second(self) -> float:
        """Images finished per second since the pass started (the pass statistics record it)."""
        return self.reporter.rate


LIGHTNING_PRECISION = {"fp32": "32-true", "bf16": "bf16-mixed"}


def speed_options(inference, accelerator: str) -> dict[str, bool]:
    """The ``MultiModelPredictor`` speed flags (``channels_last``, ``compile``) from ``params.inference``.

    channels_last only on the GPU (on CPUs NHWC is often slower), compile where asked. Recorded in every cache's
    meta.json, never in its hash.
    """
    return {"channels_last": bool(inference.channels_last and accelerator == "gpu"), "compile": bool(inference.compile)}


def make_trainer(accelerator: str, precision: str, callbacks: list[Callback]) -> L.Trainer:
    """One device per process (docs/architecture.md: multi-device eval would duplicate samples)."""
    return L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=LIGHTNING_PRECISION[precision],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        inference_mode=True,
    )


def resolve_accelerator(device: str, what: str = "params: inference.device") -> str:
    """'auto' -> 'gpu' when CUDA is visible, else 'cpu'; 'cuda' or 'gpu' must find a GPU. ``what`` names the setting."""
    if device == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if device in ("cuda", "gpu"):
        if not torch.cuda.is_available():
            raise UserError(f"{what} is {device!r} but no CUDA GPU is visible; use 'auto' or 'cpu'")
        return "gpu"
    if device != "cpu":
        raise UserError(f"{what} must be 'auto', 'cpu', 'cuda' or 'gpu', got {device!r}")
    return "cpu"
