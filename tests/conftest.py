"""Shared fixtures: real images (scikit-image's IHC sample, ../shared/data patches)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/_helpers.py, importable from test modules

from _helpers import SHARED_DATA, load_rgb, shared_file  # noqa: E402,F401  (re-exported for older tests)

# providers="auto" stays on ONNX Runtime in every test, also on CPUs with bf16 units (where it would
# otherwise probe OpenVINO bf16 and may take it): the same numbers on every machine. Subprocesses
# inherit it; tests/test_membrane_openvino.py turns it on where it tests that choice.
os.environ["HER2FAST_AUTO_OPENVINO"] = "0"

HER2_PATCHES = ["her2ihc40x_score0.png", "her2ihc40x_score1+.png", "her2ihc40x_score2+.png", "her2ihc40x_score3+.png"]


@pytest.fixture(scope="session")
def ihc_image() -> np.ndarray:
    """scikit-image's real IHC image (512 x 512 x 3 uint8, DAB + hematoxylin)."""
    from skimage import data

    return data.immunohistochemistry()


@pytest.fixture(scope="session", params=HER2_PATCHES)
def her2_patch(request) -> np.ndarray:
    """The real HER2 IHC patches (0, 1+, 2+, 3+) of ../shared/data/ihc/her2-ihc-40x."""
    return load_rgb(shared_file(f"ihc/her2-ihc-40x/{request.param}"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all",
        action="store_true",
        help="also run the tests marked slow (scripts/test.sh and CI do; a plain pytest leaves them out)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A plain ``pytest`` run leaves out the tests marked ``slow`` (reported as deselected); ``--all``,
    ``-m slow`` or naming a test's node id runs them."""
    if config.getoption("--all") or config.getoption("-m") or any("::" in a for a in config.args):
        return
    slow = [it for it in items if it.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [it for it in items if not it.get_closest_marker("slow")]
