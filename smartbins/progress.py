"""A one-line progress bar for long commands (simulate, demo, evaluate)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """A one-line progress bar on stderr (no dependency), redrawn at most 10 times a second."""

    def __init__(self, label: str, width: int = 30) -> None:
        self.label, self.width, self.last = label, width, 0.0
        self.t0 = time.monotonic()

    def __call__(self, frac: float, note: str = "") -> None:
        now = time.monotonic()
        if frac < 1.0 and now - self.last < 0.1:
            return
        self.last = now
        n = int(self.width * min(1.0, frac))
        bar = "#" * n + "." * (self.width - n)
        sys.stderr.write(f"\r{self.label} [{bar}] {100 * frac:5.1f}% {now - self.t0:6.1f}s {note}")
        if frac >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()
