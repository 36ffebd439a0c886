"""her2fast: fast, reproducible HER2 IHC scoring of breast-cancer whole slide images.

The native core (``her2fast._native``, C++17) holds the hot kernels; the public modules wrap them:

- :mod:`her2fast.superpixels` -- SLIC superpixels and per-superpixel features
- :mod:`her2fast.texture` -- uniform local binary patterns
"""

from __future__ import annotations

from .errors import (
    Her2FastError,
    InvalidInputError,
    MissingResolutionError,
    ModelError,
    NotBrightfieldError,
    SlideNotFoundError,
    SlideReadError,
    UnsupportedSlideError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Her2FastError",
    "InvalidInputError",
    "MissingResolutionError",
    "ModelError",
    "NotBrightfieldError",
    "SlideNotFoundError",
    "SlideReadError",
    "UnsupportedSlideError",
]
