"""What :func:`~her2fast.api.score` scores: a slide file, a plain image or an RGB array opened as a slide or
a field of view (its resolution estimated, its white balance corrected), and the slide's metadata for
the result's provenance.

Examples
--------
>>> import numpy as np
>>> slide, is_field, estimate, balance = _open_input(np.full((64, 64, 3), 230, np.uint8), 0.5, None)
>>> is_field, _slide_meta(slide)["mpp_source"]
(True, 'user')
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InvalidInputError


def _slide_meta(slide) -> dict:
    w, h = slide.dimensions
    return {
        "path": str(slide.path),
        "vendor": slide.vendor,
        "width": int(w),
        "height": int(h),
        "mpp_x": float(slide.mpp_x),
        "mpp_y": float(slide.mpp_y),
        "mpp_source": slide.mpp_source,
        "levels": int(slide.level_count),
        "objective_power": slide.objective_power,
    }


def _open_input(path, mpp, field: bool | None):
    """The slide to score, whether it is a field, the resolution estimate (or None) and the white balance
    applied (or None); see :func:`score`."""
    from .._validate import as_rgb_uint8
    from ..io.slide import Slide, image_slide, open_slide
    from ..stages.resolution import ResolutionEstimate, estimate_resolution, white_balance

    estimates: list[ResolutionEstimate] = []

    def estimate(pixels: np.ndarray, where: Path) -> float:
        found = estimate_resolution(pixels, path=where)
        estimates.append(found)
        return found.mpp

    slide: Slide
    if isinstance(path, np.ndarray):
        if field is False:
            raise InvalidInputError("an image array is a field of view: score it with field=None or True")
        pixels = as_rgb_uint8(path, "image")
        if mpp is None:
            slide = image_slide(pixels, estimate(pixels, Path("<array>")), mpp_source="estimated")
        else:
            slide = image_slide(pixels, mpp, mpp_source="user")
    else:
        slide = open_slide(path, mpp=mpp, estimate_mpp=None if field is False else estimate)
    if slide.vendor != "image":
        if field:
            slide.close()
            raise InvalidInputError(
                f"{path} is a whole slide ({slide.vendor}), not a field of view: score it without field=True"
            )
        return slide, False, None, None
    is_field = field if field is not None else slide.metadata_mpp is None
    if not is_field:
        return slide, False, None, None
    try:
        w, h = slide.dimensions
        balanced, balance = white_balance(slide.read(0, 0, w, h))
        field_slide = image_slide(balanced, (slide.mpp_x, slide.mpp_y), path=slide.path, mpp_source=slide.mpp_source)
    finally:
        slide.close()
    return field_slide, True, (estimates[0] if estimates else None), balance
