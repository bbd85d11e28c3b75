"""What a command prints to stderr: progress lines for long steps, and the log levels of the libraries.

Progress: items done, rate and time left, printed at most every few seconds. Logging: one handler (the root's), the
CLI's verbosity for the package, and Lightning's per-pass device lines (``GPU available``, ``TPU available``) kept at
``-v``; importing Lightning would otherwise reset its loggers to INFO and add a console handler of its own, so every
line printed twice (:func:`quiet_library_loggers`).
"""

from __future__ import annotations

import logging
import sys
import time

# Loggers that set their own level (INFO) or add a handler when imported: reset after each import of a stage.
LIBRARY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")
RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
ADVERT = "litlogger"  # Lightning's "Tip: ... try installing litlogger" line on every Trainer without one


def format_seconds(seconds: float) -> str:
    """Format a duration as ``H:MM:SS`` (rounded to the second); ``?`` for an infinite one."""
    if seconds == float("inf"):
        return "?"
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class RateReporter:
    """Counts finished items of a known total and prints ``label: done/total (pct), rate unit/s, time left``."""

    def __init__(self, total: int, label: str, unit: str = "img", interval_s: float = 10.0):
        self.total = total
        self.label = label
        self.unit = unit
        self.interval_s = interval_s
        self.done = 0
        self._start = self._last = time.perf_counter()

    def start(self) -> None:
        """Restart the clock and print how many items are to be computed."""
        self._start = self._last = time.perf_counter()
        self._print(f"[{self.label}] {self.total} {self.unit} to compute")

    def update(self, n: int) -> None:
        """Count ``n`` more finished items; print a line once ``interval_s`` has passed or the total is reached."""
        self.done += n
        now = time.perf_counter()
        if now - self._last >= self.interval_s or self.done >= self.total:
            self._last = now
            rate = self.rate
            left = (self.total - self.done) / rate if rate > 0 else float("inf")
            self._print(
                f"[{self.label}] {self.done}/{self.total} {self.unit} ({100 * self.done / max(self.total, 1):.0f}%), "
                f"{rate:.1f} {self.unit}/s, {format_seconds(left)} left"
            )

    @property
    def rate(self) -> float:
        """Items finished per second since :meth:`start` (or construction)."""
        return self.done / max(time.perf_counter() - self._start, 1e-9)

    @staticmethod
    def _print(message: str) -> None:
        print(message, file=sys.stderr, flush=True)


class _DropAdverts(logging.Filter):
    """Drops Lightning's litlogger advertisement (logged by every Trainer that has no LitLogger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return ADVERT not in record.getMessage()


def configure_logging(verbose: bool) -> None:
    """The root handler (DEBUG with ``verbose``, else WARNING), the package at INFO (DEBUG), the libraries quiet."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("beyond_imagenet").setLevel(logging.DEBUG if verbose else logging.INFO)
    quiet_library_loggers(verbose)


def quiet_library_loggers(verbose: bool) -> None:
    """Lightning's loggers at WARNING (INFO with ``verbose``), printing through the root handler only, no advert.

    Call it again after importing a module that imports Lightning: its import sets these loggers to INFO and adds
    a console handler to ``lightning`` besides the root's.
    """
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(logging.INFO if verbose else logging.WARNING)
    for name in RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropAdverts) for f in logger.filters):
            logger.addFilter(_DropAdverts())
