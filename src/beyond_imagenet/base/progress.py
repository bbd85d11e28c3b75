"""Progress lines for long steps: items done, rate and time left, printed to stderr at most every few seconds."""

from __future__ import annotations

import sys
import time


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
