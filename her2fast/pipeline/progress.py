"""The progress line of a slide's tile phase on stderr."""

from __future__ import annotations

import sys
import threading
import time

__all__ = ["Progress"]


class Progress:
    """A one-line progress report on stderr: tiles done / total, elapsed, ETA.

    Prints every ``every`` tiles (and at the end); on a terminal the line is rewritten in place.
    """

    def __init__(self, name: str, total: int, *, enabled: bool = True, every: int = 10, stream=None) -> None:
        self._lock = threading.Lock()
        self.name, self.total, self.enabled, self.every = name, total, enabled, max(1, every)
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = time.perf_counter()
        self.done = 0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, n: int = 1) -> None:
        with self._lock:  # tiles finish on several threads
            self.done += n
            if self.enabled and (self.done % self.every == 0 or self.done == self.total):
                self._print()

    def _print(self) -> None:
        el = time.perf_counter() - self.t0
        rate = self.done / el if el > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        line = f"{self.name}: {self.done}/{self.total} tiles ({pct:.0f} %), {el:.1f} s, ETA {eta:.0f} s"
        end = "" if self._tty and self.done < self.total else "\n"
        self.stream.write(("\r" if self._tty else "") + line + end)
        self.stream.flush()

    def message(self, text: str) -> None:
        if self.enabled:
            self.stream.write(f"{self.name}: {text}\n")
            self.stream.flush()
