"""her2fast: fast, reproducible HER2 IHC scoring of breast-cancer whole slide images.

The native core (``her2fast._native``, C++17) holds the hot kernels; the public modules wrap them:

- :mod:`her2fast.stages.superpixels` -- SLIC superpixels and per-superpixel features
- :mod:`her2fast.stages.texture` -- uniform local binary patterns

The package is layered (``io``, ``stages``, ``scoring``, ``pipeline``, ``api``, ``service``,
``validation``, ``cli``; tools ``synth``, ``bench``, ``demo``); docs/architecture.md draws it. The flat
module names of 0.1 (``her2fast.stages.superpixels``, ``her2fast.stages.membrane``, ...) still import.

The main call is :func:`her2fast.score` (``score(path) -> SlideResult``); it and :class:`SlideResult`,
:class:`ScoreSettings` are loaded on first use, so ``import her2fast`` stays light.
"""

from __future__ import annotations

from . import _aliases
from .errors import (
    Her2FastError,
    InvalidInputError,
    MissingResolutionError,
    ModelError,
    NotBrightfieldError,
    OutputError,
    ProfileError,
    SlideChangedError,
    SlideNotFoundError,
    SlideReadError,
    SlideTooLargeError,
    UnsupportedSlideError,
)

__version__ = "0.2.0"

_LAZY = {
    "score": "api",
    "SlideResult": "api",
    "calibrate": "validation.calibrate",
    "ScoreSettings": "pipeline",
    "ThreadPlan": "pipeline",
}

_aliases.install(__name__)


def __getattr__(name: str):
    """Load :func:`score`, :class:`SlideResult` and :class:`ScoreSettings` on first access (PEP 562)."""
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'her2fast' has no attribute {name!r}")


__all__ = [
    "__version__",
    "score",
    "calibrate",
    "SlideResult",
    "ScoreSettings",
    "ThreadPlan",
    "Her2FastError",
    "InvalidInputError",
    "MissingResolutionError",
    "ModelError",
    "NotBrightfieldError",
    "ProfileError",
    "OutputError",
    "SlideChangedError",
    "SlideNotFoundError",
    "SlideReadError",
    "SlideTooLargeError",
    "UnsupportedSlideError",
]
