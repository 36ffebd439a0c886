"""Shared fixtures: real images (scikit-image's IHC sample, ../shared/data patches)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HER2_PATCHES = ["her2ihc40x_score0.png", "her2ihc40x_score1+.png", "her2ihc40x_score2+.png", "her2ihc40x_score3+.png"]


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
    from PIL import Image

    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB")))


@pytest.fixture(scope="session")
def ihc_image() -> np.ndarray:
    """scikit-image's real IHC image (512 x 512 x 3 uint8, DAB + hematoxylin)."""
    from skimage import data

    return data.immunohistochemistry()


@pytest.fixture(scope="session", params=HER2_PATCHES)
def her2_patch(request) -> np.ndarray:
    """The real HER2 IHC patches (0, 1+, 2+, 3+) of ../shared/data/ihc/her2-ihc-40x."""
    return load_rgb(shared_file(f"ihc/her2-ihc-40x/{request.param}"))
