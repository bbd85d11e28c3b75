"""The linear probe of paper §6 (VTAB transfer): one ``nn.Linear`` on frozen, L2-normalised features.

Protocol (docs/transfer.md §2.2 and §2.6, reconstructing CLIP_benchmark's linear probe, which the paper follows):

- input: the cached pooled feature, L2-normalised per sample inside ``forward`` (§2.1; per-sample, so no leak);
- model: ``nn.Linear(d, C)`` with PyTorch's default init, drawn right after seeding with ``config.seed`` (the
  global RNG is forked, not disturbed); ``C`` is given by the caller, never inferred from the labels (§8.9);
- loss: cross-entropy, no label smoothing; optimiser: AdamW (betas 0.9/0.999, eps 1e-8), weight decay on the
  bias too (as ``AdamW(model.parameters())`` does);
- schedule: cosine over ``epochs x steps_per_epoch`` *per step*, no warmup by default:
  ``lr_t = 0.5 (1 + cos(pi t / T)) lr``; with ``warmup_steps = w > 0`` the first ``w`` steps ramp linearly
  ``lr (t + 1) / w`` and the cosine runs over the remaining ``T - w`` steps (CLIP_benchmark's ``cosine_lr``);
- data order: every epoch a fresh permutation from a ``torch.Generator`` seeded once with ``config.seed``,
  cut into batches of ``batch_size`` (the last one may be smaller, like a ``DataLoader`` without ``drop_last``);
- defaults: lr 0.1, batch size 256, 40 epochs, weight decay 0 (§2.6); ``ProbeConfig.clipbench_cli()`` is the
  CLIP_benchmark CLI profile (lr 0.1, 10 epochs, batch 64);
- precision: fp32 by default, or bf16 autocast; never fp16 without a scaler (§8.10).

No DataLoader worker pipeline: the features sit in memory (on the GPU when one is used), a tiny sampler yields
index batches, and the batch is a slice of the resident tensor. Training runs in a Lightning ``Trainer`` (one
device, docs/architecture.md); ``engine="loop"`` runs the same ``training_step``/``configure_optimizers`` in a plain
loop, which gives the same weights without Lightning's per-step overhead (it matters for dSprites: 590k rows).

Metrics (§2.5) are ``metrics.probe.evaluate``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.inference.engine import LIGHTNING_PRECISION, resolve_accelerator
from beyond_imagenet.metrics.probe import check_features, check_split

log = logging.getLogger(__name__)

ENGINES = ("lightning", "loop")


@dataclass(frozen=True)
class ProbeConfig:
    """Hyper-parameters of one probe fit. Defaults: the project protocol of docs/transfer.md §2.6."""

    lr: float = 0.1
    weight_decay: float = 0.0  # AdamW's decoupled weight decay: the quantity the search tunes (§2.3, §4)
    epochs: int = 40
    batch_size: int = 256
    seed: int = 0
    warmup_steps: int = 0  # CLIP_benchmark uses none (§2.2)
    normalize: bool = True  # L2-normalise each feature vector (§2.1)
    precision: str = "fp32"  # "fp32" or "bf16" (autocast); §8.10
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    # Coupled L2 penalty l2/2 * ||W||^2 added to the mean loss (the bias is not penalised). Not part of the
    # protocol (0); it lets tests check the trainer against a reference solver of the same objective.
    l2: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if not (math.isfinite(self.lr) and self.lr > 0):
            problems.append(f"lr must be a positive number, got {self.lr!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not (math.isfinite(self.l2) and self.l2 >= 0):
            problems.append(f"l2 must be >= 0, got {self.l2!r}")
        if int(self.epochs) != self.epochs or self.epochs < 1:
            problems.append(f"epochs must be a positive integer, got {self.epochs!r}")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            problems.append(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if int(self.warmup_steps) != self.warmup_steps or self.warmup_steps < 0:
            problems.append(f"warmup_steps must be a non-negative integer, got {self.warmup_steps!r}")
        if self.precision not in LIGHTNING_PRECISION:
            problems.append(f"precision must be one of {sorted(LIGHTNING_PRECISION)}, got {self.precision!r}")
        if problems:
            raise UserError("invalid probe config: " + "; ".join(problems))

    @classmethod
    def clipbench_cli(cls, **overrides) -> ProbeConfig:
        """CLIP_benchmark's command-line defaults: lr 0.1, 10 epochs, batch size 64 (docs/transfer.md §2.2, §2.6)."""
        return cls(**{"lr": 0.1, "epochs": 10, "batch_size": 64, **overrides})

    def with_params(self, **params) -> ProbeConfig:
        """A copy with ``params`` replaced, e.g. the weight decay (and lr, epochs) of a search trial."""
        return replace(self, **params)

    def to_dict(self) -> dict:
        """The settings as a JSON-ready dict (``betas`` as a list), for study protocols and result records."""
        record = asdict(self)
        record["betas"] = list(self.betas)
        return record


def steps_per_epoch(n_samples: int, batch_size: int) -> int:
    """Optimiser steps in one epoch: batches of ``batch_size``, the last one possibly smaller."""
    return math.ceil(n_samples / batch_size)


def cosine_factor(step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """Multiplier of the base lr at optimiser step ``step`` (0-based) of ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup_steps, span) / span))


class ShuffledBatchSampler(Sampler[torch.Tensor]):
    """Yields the index batches of one shuffled pass over the samples (one epoch) per iteration.

    The generator is seeded once, so the sequence of epochs is fixed by the seed. The permutation is drawn on the
    CPU (the same order on every device) and moved to ``device`` once per epoch, so no step waits for a
    host-to-device copy of its indices.
    """

    def __init__(self, n_samples: int, batch_size: int, seed: int, device: torch.device | str = "cpu"):
        self.n_samples, self.batch_size, self.device = n_samples, batch_size, torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return steps_per_epoch(self.n_samples, self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = torch.randperm(self.n_samples, generator=self.generator).to(self.device)
        yield from order.split(self.batch_size)


class ResidentFeatures(Dataset):
    """Features and labels already in memory (on the training device); indexed by a whole batch of indices."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index = index.to(self.y.device)  # a no-op with the sampler below
        return self.x[index], self.y[index]


def index_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> DataLoader:
    """A DataLoader without workers or collation: each item is one batch sliced from the resident tensors."""
    # the DataLoader draws a base seed per epoch; its own generator keeps it off the global RNG
    return DataLoader(
        ResidentFeatures(x, y),
        sampler=ShuffledBatchSampler(len(y), batch_size, seed, device=y.device),
        batch_size=None,
        generator=torch.Generator().manual_seed(seed),
    )


class LinearProbe(L.LightningModule):
    """One linear layer on L2-normalised features, trained with AdamW, cross-entropy and a per-step cosine lr."""

    def __init__(self, in_features: int, n_classes: int, config: ProbeConfig, steps_per_epoch: int = 1):
        super().__init__()
        self.config, self.n_classes, self.in_features = config, n_classes, in_features
        self.steps_per_epoch = steps_per_epoch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.linear = nn.Linear(in_features, n_classes)
        self.epoch_losses: list[float] = []  # mean training loss per epoch, for diagnostics
        self._loss_sum: torch.Tensor | None = None
        self._loss_count = 0

    @property
    def total_steps(self) -> int:
        """Optimiser steps of the whole fit: the length ``T`` of the cosine schedule."""
        return self.config.epochs * self.steps_per_epoch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a batch of features, cast to float32 and L2-normalised per row first (``config.normalize``)."""
        x = x.float()
        if self.config.normalize:
            x = F.normalize(x, dim=-1)
        return self.linear(x)

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (plus the optional coupled L2 term); AdamW's decoupled decay is not part of it."""
        loss = F.cross_entropy(self(x).float(), y)
        if self.config.l2:
            loss = loss + 0.5 * self.config.l2 * self.linear.weight.float().pow(2).sum()
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Return the batch's objective for backward and add it, weighted by batch size, to the epoch's loss sum."""
        loss = self.objective(*batch)
        detached = loss.detach() * len(batch[1])
        self._loss_sum = detached if self._loss_sum is None else self._loss_sum + detached
        self._loss_count += len(batch[1])
        return loss

    def on_train_epoch_end(self) -> None:
        """Append the epoch's mean training loss to ``epoch_losses`` and reset the running sum."""
        if self._loss_sum is not None:
            self.epoch_losses.append(float(self._loss_sum) / self._loss_count)
        self._loss_sum, self._loss_count = None, 0

    def configure_optimizers(self) -> dict:
        """AdamW on every parameter (the bias decayed too) with the warmup/cosine lr of ``cosine_factor`` per step."""
        cfg = self.config
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
        )
        total = self.total_steps
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: cosine_factor(step, total, cfg.warmup_steps)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


# ---------------------------------------------------------------------------------------------------------------
# fit / predict


def accelerator_device(accelerator: str) -> torch.device:
    """The device a probe runs on: the current CUDA device when ``accelerator`` resolves to the GPU, else the CPU."""
    if resolve_accelerator(accelerator, "probe accelerator") == "gpu":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Lightning logs device banners and warns about tiny epochs on every fit; a search makes ~20 fits."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=r".*number of training batches.*")
            warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*")  # lightning 2.6 on torch 2.13
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _fit_lightning(probe: LinearProbe, loader: DataLoader, device: torch.device, precision: str) -> None:
    """One device (docs/architecture.md), the one the features already live on."""
    with _quiet_lightning():
        trainer = L.Trainer(
            accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=[device.index] if device.type == "cuda" else 1,
            precision=LIGHTNING_PRECISION[precision],
            max_epochs=probe.config.epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            log_every_n_steps=max(len(loader), 1),
        )
        trainer.fit(probe, train_dataloaders=loader)


def _fit_loop(probe: LinearProbe, loader: DataLoader, device: torch.device, precision: str) -> None:
    """The same steps as Lightning's automatic optimisation: forward, backward, optimizer step, scheduler step."""
    probe.to(device).train()
    setup = probe.configure_optimizers()
    optimizer, schedule = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    autocast = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )
    for _ in range(probe.config.epochs):
        for step, batch in enumerate(loader):
            with autocast:
                loss = probe.training_step(batch, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        probe.on_train_epoch_end()
    probe.eval()


def fit_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    n_classes: int,
    config: ProbeConfig | None = None,
    accelerator: str = "auto",
    engine: Literal["lightning", "loop"] = "lightning",
) -> LinearProbe:
    """Train a ``LinearProbe`` on in-memory features; deterministic given ``config.seed`` on a given device.

    Inputs are checked first (shapes, finiteness, label range, ``n_classes >= 2``, at least two classes present).
    Features are moved once to the training device (a no-op when they already live there); the returned probe is
    in eval mode. ``engine="loop"`` skips the Lightning ``Trainer`` and yields the same weights (tested).
    """
    config = config or ProbeConfig()
    check_split(train_x, train_y, n_classes, "train")
    if int(torch.unique(train_y).numel()) < 2:
        raise UserError(f"train labels contain a single class ({int(train_y[0])}); a probe needs at least two")
    if engine not in ENGINES:
        raise UserError(f"probe engine must be one of {ENGINES}, got {engine!r}")
    device = accelerator_device(accelerator)
    train_x, train_y = train_x.to(device), train_y.to(device=device, dtype=torch.long)
    loader = index_batches(train_x, train_y, config.batch_size, config.seed)
    probe = LinearProbe(train_x.shape[1], n_classes, config, steps_per_epoch=len(loader))
    start = time.perf_counter()
    if engine == "lightning":
        _fit_lightning(probe, loader, device, config.precision)
    else:
        _fit_loop(probe, loader, device, config.precision)
    probe.eval()
    probe.fit_seconds = time.perf_counter() - start
    log.debug("probe fit: %d x %d, %d classes, %.2fs", *train_x.shape, n_classes, probe.fit_seconds)
    return probe


@torch.inference_mode()
def predict(
    probe: LinearProbe, x: torch.Tensor, batch_size: int = 65536, device: str | torch.device | None = None
) -> torch.Tensor:
    """float32 logits [n, n_classes] on the CPU. Runs on ``device`` (default: the GPU when visible)."""
    check_features(x, "features")
    if x.shape[1] != probe.in_features:
        raise UserError(f"features have dim {x.shape[1]} but the probe was trained on dim {probe.in_features}")
    device = torch.device(device) if device is not None else accelerator_device("auto")
    probe = probe.to(device).eval()
    autocast = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if probe.config.precision == "bf16"
        else contextlib.nullcontext()
    )
    out = []
    for chunk in x.split(batch_size):
        with autocast:
            out.append(probe(chunk.to(device)).float().cpu())
    return torch.cat(out)
