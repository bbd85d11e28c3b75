"""Minibatch linear CKA with the unbiased HSIC estimator (docs/protocol.md §10, paper Eq. 2).

Following Nguyen, Raghu & Kornblith (2020), CKA between two layers is estimated over k minibatches as

    CKA(K, L) = mean_i HSIC₁(K_i, L_i) / sqrt( mean_i HSIC₁(K_i, K_i) · mean_i HSIC₁(L_i, L_i) ),

where K_i = X_i X_iᵀ and L_i = Y_i Y_iᵀ are linear-kernel Gram matrices of one minibatch and HSIC₁ is the
unbiased estimator of Song et al. (2012). The three averages are accumulated over all batches and the ratio is
taken once at the end; per-batch CKA values are never averaged. Only float64 HSIC₁ terms are kept, O(rows x cols) per
minibatch, never activations or Gram matrices.

The minibatches are also the resampling unit of CKA's intervals: :func:`cka_statistics` turns the per-batch terms
(:class:`BatchTerms`) into :class:`~beyond_imagenet.metrics.resampling.LinearStatistic` s whose bootstrap draws k of
the k minibatches with replacement and recomputes the ratio of means and its summaries on each resample.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from beyond_imagenet.metrics.resampling import LinearStatistic

# Relative tolerance for "all rows identical", judged from the Gram matrix: the largest squared distance
# ||x_i - x_j||² = K_ii + K_jj - 2 K_ij, relative to the largest squared norm K_ii. Identical rows give 0 up to
# float64 summation noise (~1e-16 x feature count); real activations are many orders of magnitude above this.
CONSTANT_RTOL = 1e-10


def gram_linear(x: torch.Tensor) -> torch.Tensor:
    """Linear-kernel Gram matrix K = X Xᵀ in float64, with X = ``x`` flattened to [n, -1] (docs/protocol.md §10)."""
    flat = x.reshape(x.shape[0], -1).to(torch.float64)
    return flat @ flat.T


def _check_gram(k: torch.Tensor, what: str = "Gram matrix") -> int:
    """Validate a square Gram matrix with n >= 4 (HSIC₁ divides by n(n-3)) and return n."""
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"{what} must be square n x n, got shape {tuple(k.shape)}")
    n = int(k.shape[0])
    if n < 4:
        raise ValueError(f"unbiased HSIC needs a minibatch of at least 4 examples (it divides by n(n-3)); got n={n}")
    return n


def _zero_diagonal(k: torch.Tensor) -> torch.Tensor:
    """K̃: a float64 copy of K with its diagonal set to 0 (docs/protocol.md §10)."""
    out = k.to(torch.float64).clone()
    out.fill_diagonal_(0.0)
    return out


def unbiased_hsic(K: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """Unbiased HSIC₁ of Song et al. (2012) for two n x n Gram matrices of the same n examples (docs/protocol.md §10).

    HSIC₁ = [tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1) / ((n-1)(n-2)) - 2/(n-2) · 1ᵀK̃L̃1] / (n(n-3)),  K̃, L̃ = diagonals zeroed.
    Computed in float64 in O(n²); raises ValueError for n < 4.
    """
    n = _check_gram(K, "K")
    if L.shape != K.shape:
        raise ValueError(f"K and L must have the same shape, got {tuple(K.shape)} and {tuple(L.shape)}")
    kt, lt = _zero_diagonal(K), _zero_diagonal(L)
    trace = (kt * lt.T).sum()  # tr(K̃L̃) = Σ_ij K̃_ij L̃_ji
    sums = kt.sum() * lt.sum() / ((n - 1) * (n - 2))
    cross = 2.0 / (n - 2) * (kt.sum(dim=0) @ lt.sum(dim=1))  # 1ᵀK̃L̃1 = (1ᵀK̃)(L̃1)
    return (trace + sums - cross) / (n * (n - 3))


def is_constant_gram(k: torch.Tensor, rtol: float = CONSTANT_RTOL) -> bool:
    """True when the Gram matrix comes from a batch whose feature rows are all identical.

    Such a batch has zero variance across samples: K = c·11ᵀ and HSIC₁(K, ·) = 0 exactly in theory, which would make
    CKA 0/0.
    """
    diag = torch.diagonal(k)
    sq_dist = diag[:, None] + diag[None, :] - 2.0 * k
    scale = float(diag.abs().max())
    return float(sq_dist.max()) <= rtol * scale if scale > 0 else True


class _BatchStats:
    """Per-layer quantities of one minibatch that every HSIC₁ pair needs, stacked over layers.

    For layers with zero-diagonal Grams K̃_a (flattened to rows of ``flat``), row sums K̃_a1 and totals 1ᵀK̃_a1,
    HSIC₁ for all pairs (a, b) is three matrix products: tr(K̃_a K̃_b) = ⟨K̃_a, K̃_b⟩ because Grams are symmetric.
    """

    def __init__(self, names: Sequence[str], grams: Mapping[str, torch.Tensor], n: int) -> None:
        tilde = [_zero_diagonal(grams[name]) for name in names]
        self.flat = torch.stack([t.reshape(-1) for t in tilde])  # [layers, n*n]
        self.rowsum = torch.stack([t.sum(dim=1) for t in tilde])  # [layers, n]
        self.total = self.rowsum.sum(dim=1)  # [layers]
        self.n = n

    def hsic_with(self, other: _BatchStats) -> torch.Tensor:
        """HSIC₁ of every (self layer, other layer) pair, [rows, cols], float64 (docs/protocol.md §10 formula)."""
        n = self.n
        trace = self.flat @ other.flat.T
        sums = torch.outer(self.total, other.total) / ((n - 1) * (n - 2))
        cross = 2.0 / (n - 2) * (self.rowsum @ other.rowsum.T)
        return (trace + sums - cross) / (n * (n - 3))

    def self_hsic(self) -> torch.Tensor:
        """HSIC₁(K_a, K_a) of every layer, [layers] (the diagonal of ``hsic_with(self)`` without the full product)."""
        n = self.n
        trace = (self.flat * self.flat).sum(dim=1)
        sums = self.total**2 / ((n - 1) * (n - 2))
        cross = 2.0 / (n - 2) * (self.rowsum * self.rowsum).sum(dim=1)
        return (trace + sums - cross) / (n * (n - 3))


class MinibatchCKA:
    """Streaming minibatch linear CKA between row layers and column layers (docs/protocol.md §10, paper Eq. 2).

    Within one model pass the same layer list (or ``col_layers=None``) and the same feature dict to ``update``;
    across models (layers of A vs layers of B on the same images in the same order) pass both. Per batch it keeps
    only float64 sums: Σ_i HSIC₁(K_i, L_i) per (row, col) pair, Σ_i HSIC₁(K_i, K_i) per row layer,
    Σ_i HSIC₁(L_i, L_i) per column layer, and the batch count; and the same terms of each batch for the bootstrap
    over minibatches (:meth:`batch_terms`).
    """

    def __init__(self, row_layers: Sequence[str], col_layers: Sequence[str] | None = None) -> None:
        self.row_layers = list(row_layers)
        self.col_layers = list(row_layers if col_layers is None else col_layers)
        if not self.row_layers or not self.col_layers:
            raise ValueError("MinibatchCKA needs at least one row layer and one column layer")
        for what, names in (("row", self.row_layers), ("column", self.col_layers)):
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate {what} layer names: {names}")
        self.cross_sum = torch.zeros(len(self.row_layers), len(self.col_layers), dtype=torch.float64)
        self.row_self_sum = torch.zeros(len(self.row_layers), dtype=torch.float64)
        self.col_self_sum = torch.zeros(len(self.col_layers), dtype=torch.float64)
        self.batches = 0
        self._terms: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def update(
        self, row_feats: Mapping[str, torch.Tensor], col_feats: Mapping[str, torch.Tensor] | None = None
    ) -> None:
        """Add one minibatch given every layer's activations ([n, ...], flattened per image).

        ``col_feats=None`` (or a column layer whose tensor is the very object given for that row layer) reuses the
        row Gram, so within-model CKA computes each layer's Gram once.
        """
        col_feats = row_feats if col_feats is None else col_feats
        row_grams = {name: gram_linear(_require(row_feats, name, "row")) for name in self.row_layers}
        col_grams = {}
        for name in self.col_layers:
            feats = _require(col_feats, name, "column")
            same = name in row_grams and row_feats.get(name) is feats
            col_grams[name] = row_grams[name] if same else gram_linear(feats)
        self.update_grams(row_grams, col_grams)

    def update_grams(
        self, row_grams: Mapping[str, torch.Tensor], col_grams: Mapping[str, torch.Tensor] | None = None
    ) -> None:
        """Add one minibatch given precomputed n x n Gram matrices (e.g. ``gram_linear`` inside a forward hook)."""
        col_grams = row_grams if col_grams is None else col_grams
        n = self._check_batch(row_grams, self.row_layers, "row")
        n_cols = self._check_batch(col_grams, self.col_layers, "column")
        if n != n_cols:
            raise ValueError(f"row and column layers must see the same minibatch, got n={n} and n={n_cols}")
        rows = _BatchStats(self.row_layers, row_grams, n)
        shared = self.col_layers == self.row_layers and all(col_grams[m] is row_grams[m] for m in self.row_layers)
        cols = rows if shared else _BatchStats(self.col_layers, col_grams, n)
        # The Grams may live on the GPU; the sums and per-batch terms stay on the CPU (a few KB per batch, float64).
        cross, row_self, col_self = rows.hsic_with(cols).cpu(), rows.self_hsic().cpu(), cols.self_hsic().cpu()
        self.cross_sum += cross
        self.row_self_sum += row_self
        self.col_self_sum += col_self
        self.batches += 1
        self._terms.append((cross, row_self, col_self))

    @staticmethod
    def _check_batch(grams: Mapping[str, torch.Tensor], names: Sequence[str], what: str) -> int:
        """Validate that all layers' Grams exist, are n x n with one n >= 4, and are not from constant features."""
        sizes = {name: _check_gram(_require(grams, name, what), f"Gram of layer {name!r}") for name in names}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"all {what} layers must see the same minibatch, got sizes {sizes}")
        for name in names:
            if is_constant_gram(grams[name].to(torch.float64)):
                raise ValueError(
                    f"layer {name!r} has constant features in this minibatch (all rows identical, zero variance "
                    "across samples): its HSIC is 0 and CKA is undefined"
                )
        return next(iter(sizes.values()))

    def batch_terms(self) -> BatchTerms:
        """The HSIC₁ terms of each minibatch so far, in update order (docs/protocol.md §10)."""
        if not self._terms:
            raise ValueError("MinibatchCKA.batch_terms() called before any update()")
        cross, row_self, col_self = (torch.stack(parts).numpy() for parts in zip(*self._terms, strict=True))
        return BatchTerms(cross, row_self, col_self)

    def result(self) -> tuple[list[str], np.ndarray]:
        """(row layer names, CKA matrix [rows, cols]); within one model rows = columns, so this is (names, matrix)."""
        rows, _, matrix = self.result_cross()
        return rows, matrix

    def result_cross(self) -> tuple[list[str], list[str], np.ndarray]:
        """(row names, column names, CKA matrix [rows, cols]) from the accumulated HSIC₁ averages.

        docs/protocol.md §10: mean_i HSIC₁(K_i, L_i) / sqrt(mean_i HSIC₁(K_i, K_i) · mean_i HSIC₁(L_i, L_i)), the
        ratio of averages, not an average of per-batch CKA. Raises ValueError before any batch, or naming a layer
        whose mean self-HSIC₁ is <= 0.
        """
        if self.batches == 0:
            raise ValueError("MinibatchCKA.result() called before any update()")
        k = self.batches
        row_self, col_self = self.row_self_sum / k, self.col_self_sum / k
        for names, values in ((self.row_layers, row_self), (self.col_layers, col_self)):
            for name, value in zip(names, values.tolist(), strict=True):
                if not value > 0:
                    raise ValueError(f"layer {name!r} has mean self-HSIC {value:.3e} <= 0: CKA is undefined")
        matrix = (self.cross_sum / k) / torch.sqrt(torch.outer(row_self, col_self))
        return list(self.row_layers), list(self.col_layers), matrix.numpy()


@dataclass(frozen=True)
class BatchTerms:
    """Per-minibatch HSIC₁ terms of a :class:`MinibatchCKA`, the unit its bootstrap resamples (docs/protocol.md §10).

    Attributes:
        cross: HSIC₁(K_i, L_j) of every batch, [batches, rows, cols].
        row_self: HSIC₁(K_i, K_i) of every batch, [batches, rows].
        col_self: HSIC₁(L_j, L_j) of every batch, [batches, cols].
    """

    cross: np.ndarray
    row_self: np.ndarray
    col_self: np.ndarray

    @property
    def batches(self) -> int:
        """Number of minibatches."""
        return int(self.cross.shape[0])

    def select(self, rows: Sequence[int], cols: Sequence[int]) -> BatchTerms:
        """The terms of some row and column layers (by index): those of a layer type's sub-matrix."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        return BatchTerms(self.cross[:, rows][:, :, cols], self.row_self[:, rows], self.col_self[:, cols])

    def transposed(self) -> BatchTerms:
        """Rows and columns swapped: the other model's view of a cross-model comparison."""
        return BatchTerms(self.cross.transpose(0, 2, 1), self.col_self, self.row_self)

    def columns(self) -> np.ndarray:
        """Per-batch columns [batches, rows·cols + rows + cols + 1]: the cross, row and column terms and a count 1."""
        flat = [self.cross.reshape(self.batches, -1), self.row_self, self.col_self, np.ones((self.batches, 1))]
        return np.ascontiguousarray(np.concatenate(flat, axis=1), dtype=np.float64)

    def matrices(self, sums: np.ndarray) -> np.ndarray:
        """CKA matrices [B, rows, cols] from weighted sums [B, k] of :meth:`columns` (NaN where undefined).

        The ratio of weighted means of ``MinibatchCKA.result_cross``, with the same operations, so all weights 1
        give its matrix exactly.
        """
        n_rows, n_cols = self.row_self.shape[1], self.col_self.shape[1]
        sums = np.asarray(sums, dtype=np.float64)
        bounds = np.cumsum([0, n_rows * n_cols, n_rows, n_cols])
        count = sums[:, bounds[3], None]
        cross = sums[:, : bounds[1]].reshape(-1, n_rows, n_cols) / count[:, :, None]
        row_self, col_self = sums[:, bounds[1] : bounds[2]] / count, sums[:, bounds[2] : bounds[3]] / count
        with np.errstate(invalid="ignore"):
            return cross / np.sqrt(row_self[:, :, None] * col_self[:, None, :])


Summary = Callable[[np.ndarray], dict[str, np.ndarray]]  # CKA matrices [B, rows, cols] -> {statistic: [B]}


def cka_statistics(terms: BatchTerms, summary: Summary) -> dict[str, LinearStatistic]:
    """Each statistic of ``summary`` as a statistic of the minibatches, for a bootstrap over minibatches.

    A resample's counts weight the minibatches; its CKA matrix is the ratio of weighted HSIC₁ means and the
    statistic is ``summary`` of that matrix (docs/protocol.md §10). The value on the data (every batch once) is
    the summary of ``MinibatchCKA.result_cross``.
    """
    columns = terms.columns()
    names = summary(terms.matrices(columns.sum(axis=0, keepdims=True)))
    return {name: LinearStatistic(columns, _summary_reduce(terms, summary, name)) for name in names}


def _summary_reduce(terms: BatchTerms, summary: Summary, name: str) -> Callable[[np.ndarray], np.ndarray]:
    def reduce(sums: np.ndarray) -> np.ndarray:
        return summary(terms.matrices(sums))[name]

    return reduce


def _require(mapping: Mapping[str, torch.Tensor], name: str, what: str) -> torch.Tensor:
    """``mapping[name]`` with a ValueError naming the missing layer."""
    if name not in mapping:
        raise ValueError(f"{what} layer {name!r} missing from this minibatch (got {sorted(mapping)})")
    return mapping[name]


def type_matrices(all_layers: list[str], matrix: np.ndarray, sets: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """Each layer type's CKA matrix: its rows and columns of the "all" matrix (in forward order)."""
    position = {name: i for i, name in enumerate(all_layers)}
    out = {}
    for kind, names in sets.items():
        index = np.array([position[n] for n in names], dtype=np.int64)
        out[kind] = matrix[np.ix_(index, index)]
    return out


def summary_statistics(matrices: np.ndarray) -> dict[str, np.ndarray]:
    """Per square CKA matrix of [B, n, n]: mean CKA off the diagonal and between neighbouring layers, [B] each.

    Empty for n < 2 (no pair of layers).
    """
    n = matrices.shape[-1]
    if n < 2:
        return {}
    adjacent = np.arange(n - 1)
    return {
        "mean_offdiagonal": matrices[:, ~np.eye(n, dtype=bool)].mean(axis=-1),
        "mean_adjacent": matrices[:, adjacent, adjacent + 1].mean(axis=-1),
    }


def cross_summary_statistics(matrices: np.ndarray) -> dict[str, np.ndarray]:
    """Per cross-model CKA matrix of [B, rows, cols]: of the last tapped layers, and the mean best match, [B] each."""
    return {"last_layer": matrices[:, -1, -1], "mean_best_match": matrices.max(axis=2).mean(axis=-1)}


def summarise(matrix: np.ndarray) -> dict[str, float]:
    """Mean CKA off the diagonal, and between neighbouring layers (how block-structured the map is)."""
    stats = summary_statistics(np.asarray(matrix)[None])
    return {"n_layers": float(matrix.shape[0]), **{name: float(values[0]) for name, values in stats.items()}}


def cross_summary(matrix: np.ndarray) -> dict[str, float]:
    """Cross-model CKA: of the last tapped layers, and each row layer's best match in the other model, averaged."""
    return {name: float(values[0]) for name, values in cross_summary_statistics(np.asarray(matrix)[None]).items()}
