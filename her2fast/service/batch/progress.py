"""The batch's progress line on stderr: slides done of all, the slides being scored and their tiles, ETA.

Examples
--------
>>> import io
>>> from her2fast.service.batch.progress import BatchProgress
>>> ui = BatchProgress(3, enabled=True, stream=io.StringIO())
>>> ui.slide_done("/scans/A-1.svs", {"status": "failed"})
>>> ui.line().split(", ")[0]
'slides 1/3 (1 failed)'
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["BatchProgress"]


def _fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class BatchProgress:
    """``slides 3/10 (1 failed), now: A-4 45/120 tiles, ETA 1m20s`` on stderr (rewritten in place on a terminal)."""

    def __init__(self, total: int, *, enabled: bool, stream=None) -> None:
        self.total, self.enabled = total, enabled
        self.stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self.done = self.skipped = self.failed = 0
        self.current: dict[str, tuple[int, int]] = {}
        self._width = 0

    def started(self, key: str) -> None:
        self.current.setdefault(key, (0, 0))

    def tiles(self, key: str, done: int, total: int) -> None:
        self.current[key] = (done, total)
        if self._tty:
            self._print()

    def slide_done(self, key: str, row: Mapping) -> None:
        self.current.pop(key, None)
        self.done += 1
        self.skipped += bool(row.get("skipped"))
        self.failed += row.get("status") == "failed"
        self._print()

    def line(self) -> str:
        elapsed = time.perf_counter() - self.t0
        scored = self.done - self.skipped
        eta = elapsed / scored * (self.total - self.done) if scored else float("nan")
        parts = [f"slides {self.done}/{self.total}"]
        extra = [f"{self.failed} failed"] * bool(self.failed) + [f"{self.skipped} skipped"] * bool(self.skipped)
        if extra:
            parts[0] += f" ({', '.join(extra)})"
        now = [f"{Path(k).stem} {d}/{t} tiles" if t else Path(k).stem for k, (d, t) in self.current.items()]
        if now:
            parts.append("now: " + ", ".join(now))
        parts.append(f"{_fmt_seconds(elapsed)} elapsed")
        if self.done < self.total:
            parts.append(f"ETA {_fmt_seconds(eta)}")
        return ", ".join(parts)

    def _print(self) -> None:
        if not self.enabled:
            return
        text = self.line()
        if self._tty:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self._tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
