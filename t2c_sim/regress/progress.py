"""A minimal progress bar on a text stream (stderr), off when ``enabled`` is False."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``[#####.....] 5/10 label`` redrawn in place; a no-op when disabled."""

    def __init__(self, total: int, *, enabled: bool = True, stream: TextIO | None = None,
                 width: int = 24, prefix: str = "") -> None:
        self.total = max(0, total)
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.width = width
        self.prefix = prefix
        self.done = 0
        self.t0 = time.perf_counter()
        self._last = 0

    def label(self, text: str) -> None:
        """Show ``text`` as the current item without advancing."""
        self._draw(text)

    def advance(self, text: str = "", n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        self._draw(text)

    def _draw(self, text: str) -> None:
        if not self.enabled:
            return
        frac = self.done / self.total if self.total else 1.0
        fill = int(round(frac * self.width))
        el = time.perf_counter() - self.t0
        line = (f"\r{self.prefix}[{'#' * fill}{'.' * (self.width - fill)}] "
                f"{self.done}/{self.total} {el:5.0f}s {text}")[:120]
        pad = max(0, self._last - len(line))
        self._last = len(line)
        self.stream.write(line + " " * pad)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._last:
            self.stream.write("\r" + " " * self._last + "\r")
            self.stream.flush()
