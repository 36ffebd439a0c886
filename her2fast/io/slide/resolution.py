"""A slide's resolution: the accepted range of micrometres per pixel, square pixels, a caller's ``mpp=``
and the errors for a missing or implausible one (see "Resolution" in :mod:`her2fast.io.slide`).

Examples
--------
>>> from pathlib import Path
>>> _mpp_from_user(0.5, Path("x.png")), _plausible(352.8)
((0.5, 0.5), False)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..._validate import as_positive_float
from ...errors import InvalidInputError, MissingResolutionError

__all__ = ["MAX_PIXEL_ASPECT", "PLAUSIBLE_MPP", "MppEstimator"]

#: ``estimate_mpp(pixels, path) -> float``: measures the micrometres per pixel of a plain image without a
#: resolution (see :func:`open_slide`).
MppEstimator = Callable[[np.ndarray, Path], float]

#: Range of micrometres per pixel accepted as a brightfield microscope resolution (metadata or ``mpp=``).
PLAUSIBLE_MPP = (0.05, 20.0)

#: Largest ratio of the x and y resolutions accepted (pixels within 5 % of square); see "Resolution" above.
MAX_PIXEL_ASPECT = 1.05


def _plausible(mpp: float | None) -> bool:
    return mpp is not None and math.isfinite(mpp) and PLAUSIBLE_MPP[0] <= mpp <= PLAUSIBLE_MPP[1]


def _float_or_none(value: object) -> float | None:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _mpp_from_user(mpp: object, path: Path) -> tuple[float, float] | None:
    if mpp is None:
        return None
    if isinstance(mpp, (tuple, list)):
        if len(mpp) != 2:
            raise InvalidInputError(f"mpp must be a number or a pair (mpp_x, mpp_y), got {mpp!r}")
        mx = _check_user_mpp(as_positive_float(mpp[0], "mpp_x"), "mpp_x")
        my = _check_user_mpp(as_positive_float(mpp[1], "mpp_y"), "mpp_y")
        if _aspect(mx, my) > MAX_PIXEL_ASPECT:
            raise InvalidInputError(
                f"mpp=({mx:.4g}, {my:.4g}) describes pixels {_aspect(mx, my):.3g} times longer one way than the "
                f"other; her2fast accepts x and y resolutions within {100 * (MAX_PIXEL_ASPECT - 1):.0f} % of each "
                "other (her2fast.io.slide.MAX_PIXEL_ASPECT). Pass one number if the pixels are square, or resample "
                "the image to square pixels first"
            )
        return mx, my
    v = _check_user_mpp(as_positive_float(mpp, "mpp"), "mpp")
    return v, v


def _check_user_mpp(value: float, name: str) -> float:
    if not _plausible(value):
        lo, hi = PLAUSIBLE_MPP
        raise InvalidInputError(
            f"{name}={value:.4g} um/px is not a brightfield scan resolution (accepted: {lo:g} to {hi:g} um/px); "
            "pass the scanner's micrometres per pixel, e.g. mpp=0.5 for a 20x scan or mpp=0.25 for 40x"
        )
    return value


def _aspect(mx: float, my: float) -> float:
    return max(mx, my) / min(mx, my)


def _check_meta_aspect(path: Path, mx: float, my: float) -> None:
    """Refuse metadata resolutions that describe non-square pixels (beyond :data:`MAX_PIXEL_ASPECT`)."""
    if mx > 0 and my > 0 and _aspect(mx, my) > MAX_PIXEL_ASPECT:
        raise _missing_mpp(
            path,
            f"its metadata says {mx:.4g} x {my:.4g} um/px, pixels {_aspect(mx, my):.3g} times longer one way than "
            f"the other; her2fast accepts x and y within {100 * (MAX_PIXEL_ASPECT - 1):.0f} % of each other "
            "(her2fast.io.slide.MAX_PIXEL_ASPECT), as a wrong resolution tag would stretch every cell; if the "
            "pixels are square, one number overrides both",
        )


def _implausible_meta(mx: float, my: float) -> str:
    lo, hi = PLAUSIBLE_MPP
    return (
        f"its metadata says {mx:.4g} x {my:.4g} um/px, not a microscope resolution for brightfield "
        f"({lo:g} to {hi:g} um/px)"
    )


def _missing_mpp(path: Path, found: str) -> MissingResolutionError:
    return MissingResolutionError(
        f"{path} has no usable resolution ({found}); pass mpp= with the scan resolution in micrometres "
        "per pixel, e.g. open_slide(path, mpp=0.5) for a 20x scan or mpp=0.25 for 40x"
    )
