"""Logits rebuilt from a top-1 class and its probability (imagenet-x CSVs hold nothing more; docs/interchange.md).

Row of a predicted class ``c`` with probability ``p``: logit 0 at ``c``; the other 999 columns hold logits below 0
whose ``exp`` sum to ``S = (1 - p) / p``, so the softmax gives ``c`` exactly ``p`` and ``argmax`` is ``c`` alone. 997 of
them share ``log(S / 997)`` rounded down to float32; the last two carry the float32 rounding remainder (a small and a
tiny logit), so the float64 softmax of the float32 row reproduces ``p`` to about 1e-15. Nearly uniform rows
(``S >= 0.99 * 997``) spread ``S`` over all 999 columns instead (there float32 already resolves ``p`` to 1e-12).
A tied top-1 (class -1, probability ``p <= 1/2``) is a tie of classes 0 and 1 at logit 0 with ``1/p - 2`` spread
over the other 998 columns. ``p = 1`` puts -1000 (``exp`` = 0 in float64) in every other column.
"""

from __future__ import annotations

import numpy as np

from beyond_imagenet.metrics.accuracy import NO_PREDICTION

FLOOR_LOGIT = -1000.0  # exp() is 0 in float64: a column without probability
REFINERS = 2  # columns that absorb the float32 rounding remainder
WIDE = 0.99  # rows with S >= WIDE * (bulk columns) spread over every column (nearly uniform outputs)
TIED_CLASSES = (0, 1)  # the classes a tied top-1 (-1) is rebuilt as


def _floor32(values: np.ndarray) -> np.ndarray:
    """The largest float32 at or below each float64 value."""
    rounded = values.astype(np.float32)
    above = rounded.astype(np.float64) > values
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded


def _log_part(mass: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A float32 logit whose exp is at most ``mass`` (FLOOR_LOGIT for 0), and the non-negative rest."""
    positive = mass > 0
    logit = np.full(mass.shape, FLOOR_LOGIT, dtype=np.float32)
    logit[positive] = _floor32(np.log(mass[positive]))
    return logit, np.maximum(mass - np.exp(logit.astype(np.float64)), 0.0)


def spread(mass: np.ndarray, n_rest: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row the bulk logit and the two remainder logits of ``n_rest`` columns whose exp sum to ``mass``.

    Requires ``0 <= mass < n_rest`` (every column then stays below logit 0). Wide rows repeat the bulk logit.
    """
    mass = np.asarray(mass, dtype=np.float64)
    wide = mass >= WIDE * (n_rest - REFINERS)
    n_bulk = np.where(wide, n_rest, n_rest - REFINERS)
    bulk, _ = _log_part(mass / n_bulk)
    rest = np.maximum(mass - n_bulk * np.exp(bulk.astype(np.float64)), 0.0)
    first, rest = _log_part(rest)
    second, _ = _log_part(rest)
    return bulk, np.where(wide, bulk, first), np.where(wide, bulk, second)


def top1_logits(classes: np.ndarray, probabilities: np.ndarray, n_classes: int = 1000) -> np.ndarray:
    """[N, n_classes] float32 logits whose unique argmax is ``classes`` with softmax ``probabilities``.

    Class ``NO_PREDICTION`` (-1) rebuilds a tie of ``TIED_CLASSES``. Callers check ``1/n < p <= 1`` (``1/n <= p <=
    1/2`` for a tie).
    """
    classes = np.asarray(classes, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    tied = classes == NO_PREDICTION
    n_top = np.where(tied, len(TIED_CLASSES), 1)
    bulk, first, second = spread(1.0 / probabilities - n_top, n_classes - n_top)
    logits = np.repeat(bulk[:, None], n_classes, axis=1)
    rows = np.arange(len(classes))
    last = n_classes - 1
    first_column = np.where(classes >= last - 1, last - 2, last - 1)  # the last two columns other than the class
    second_column = np.where(classes == last, last - 1, last)
    logits[rows, first_column] = first
    logits[rows, second_column] = second
    logits[rows[~tied], classes[~tied]] = 0.0
    logits[np.ix_(rows[tied], TIED_CLASSES)] = 0.0
    return logits
