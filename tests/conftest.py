"""Shared fixtures: real images (scikit-image's IHC sample, ../shared/data patches)."""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/_helpers.py, importable from test modules

from _helpers import SHARED_DATA, load_rgb, shared_file  # noqa: E402,F401  (re-exported for older tests)

if TYPE_CHECKING:
    from her2fast.synth import SlideGroundTruth

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


@pytest.fixture(scope="session")
def phantom_slide(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., SlideGroundTruth]:
    """``phantom_slide(**make_slide_kwargs)``: that phantom slide made once per test run, for every test module
    and every pytest-xdist worker that asks for it (a file lock: one worker renders, the others wait and read).

    Returns its :class:`~her2fast.synth.SlideGroundTruth`. The files are shared: copy them before changing them.
    """
    from her2fast.synth import make_slide
    from her2fast.synth.slide import load_ground_truth

    base = tmp_path_factory.getbasetemp()
    # under pytest-xdist each worker's temp folder is <the run's temp folder>/popen-gwN
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared-phantoms"
    root.mkdir(exist_ok=True)

    def get(**kwargs: object) -> SlideGroundTruth:
        key = "_".join(f"{k}-{kwargs[k]}" for k in sorted(kwargs)).replace("+", "p").replace("/", "-")
        folder = root / key
        with open(root / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this worker dies
            if not folder.exists():
                part = root / f"{key}.part-{os.getpid()}"
                shutil.rmtree(part, ignore_errors=True)
                part.mkdir()
                make_slide(part / "slide.tiff", **kwargs)
                part.rename(folder)  # complete or absent: a worker killed mid-render leaves only a .part folder
        return load_ground_truth(folder / "slide.tiff")

    return get


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
