"""Helpers shared by the test modules (tests/ is put on sys.path by conftest.py)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(relative: str) -> Path:
    """Path of a file under ../shared/data; fails under CI (CI=true) and skips elsewhere when missing."""
    path = SHARED_DATA / relative
    if not path.exists():
        message = f"shared test data missing: {path} (see ../shared/data/MANIFEST.md)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def load_rgb(path: Path) -> np.ndarray:
    """An image file as a C-contiguous RGB uint8 array."""
    from PIL import Image

    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def map_in_two_threads(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """fn over items on two threads started together (even items on one, odd on the other)."""
    results: dict[int, Any] = {}
    start = threading.Barrier(2)

    def work(offset: int) -> None:
        start.wait()
        for i in range(offset, len(items), 2):
            results[i] = fn(items[i])

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [results[i] for i in range(len(items))]


def assert_same_in_two_threads(fn: Callable[[Any], np.ndarray], items: Sequence[Any]) -> None:
    """Running fn on two threads at once gives exactly the sequential results."""
    expected = [fn(x) for x in items]
    for got, exp in zip(map_in_two_threads(fn, items), expected):
        np.testing.assert_array_equal(got, exp)


# hand-built cells: a membrane ring (optionally with an angular gap) and a round nucleus
def disk_image(size: int = 96, centre: tuple[float, float] = (48, 48)) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.indices((size, size))
    return yy - centre[1], xx - centre[0]


def ring(size=96, centre=(48, 48), r_in=11.0, r_out=13.0, gap_deg: tuple[float, float] | None = None) -> np.ndarray:
    dy, dx = disk_image(size, centre)
    r = np.hypot(dy, dx)
    m = (r >= r_in) & (r <= r_out)
    if gap_deg is not None:
        a = np.degrees(np.arctan2(dy, dx)) % 360
        m &= ~((a >= gap_deg[0]) & (a < gap_deg[1]))
    return m


def nucleus(size=96, centre=(48, 48), radius=4.0) -> np.ndarray:
    dy, dx = disk_image(size, centre)
    return np.hypot(dy, dx) <= radius
