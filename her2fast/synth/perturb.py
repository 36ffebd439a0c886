"""What varies between scanners and labs, applied to phantom slides: the read-out must not follow it.

Two kinds of perturbation, each with a ``name`` and a ``strength``:

- **image** perturbations act on the scanned RGB (what a scanner, its settings or a re-save change):

  ============== ====================================================================================
  name           strength
  ============== ====================================================================================
  white_balance  colour-temperature shift ``s`` of the channel gains: ``s > 0`` cooler (gains
                 ``(1 - s, 1 - s / 2, 1)``: bluer glass), ``s < 0`` warmer (``(1, 1 - |s| / 2, 1 - |s|)``)
  exposure       gain ``k`` on every channel; glass brighter than 255 clips (a scanner exposed for a
                 saturated, pure-white glass)
  tone_curve     gamma ``g`` of the tone curve ``255 (I / 255) ** g`` (> 1 darker mid-tones); it scales
                 every optical density by ``g``
  jpeg           JPEG quality (1-100), one round trip (4:2:0 chroma)
  jpeg2000       JPEG 2000 target PSNR in dB (imagecodecs / OpenJPEG), one round trip
  blur           Gaussian defocus, sigma in pixels
  noise          additive Gaussian sensor noise, sigma in 8-bit levels
  resample       pixel size of the re-sampled image in um/px (the slide is re-sampled from its own
                 pixel size; a scanner with another native pixel size)
  ============== ====================================================================================

- **render** perturbations act before colour mixing, when the phantom is rendered
  (:class:`her2fast.synth.StainVariation`, or the scan resolution):

  ============== ====================================================================================
  dab            factor on the DAB amount (0.7: 30 % weaker chromogen development)
  hematoxylin    factor on the hematoxylin amount (counterstain strength)
  dab_hue        rotation of the DAB vector in OD space, degrees (> 0 towards neutral grey)
  thickness      section thickness relative to the reference (factor on every absorbance)
  scan_mpp       render (scan) the slide at this pixel size, e.g. 0.25 for a 40x scan
  ============== ====================================================================================

:func:`perturb_image` applies image perturbations to an array; :func:`render_options` turns render
perturbations into :func:`her2fast.synth.make_slide` arguments; :func:`read_level0` and
:func:`write_slide` re-save a phantom slide (a lossless pyramidal TIFF that OpenSlide opens with its
resolution), so that only the perturbation changes its pixels.

Examples
--------
>>> import numpy as np
>>> glass = np.full((4, 4, 3), 250, np.uint8)
>>> perturb_image(glass, [Perturbation("white_balance", 0.06)])[0][0, 0].tolist()
[235, 242, 250]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validate import as_positive_float
from ..errors import InvalidInputError
from .scene import StainVariation

__all__ = [
    "IMAGE_PERTURBATIONS",
    "RENDER_PERTURBATIONS",
    "Perturbation",
    "blur",
    "exposure",
    "jpeg",
    "jpeg2000",
    "noise",
    "perturb_image",
    "read_level0",
    "render_options",
    "resample",
    "tone_curve",
    "white_balance",
    "white_balance_gains",
    "write_slide",
]


def _rgb(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise InvalidInputError(f"image must be (H, W, 3) uint8 RGB, got shape {arr.shape} dtype {arr.dtype}")
    return arr


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def white_balance_gains(strength: float) -> np.ndarray:
    """Channel gains of a white-balance shift (see :func:`white_balance`)."""
    s = float(strength)
    if not (np.isfinite(s) and abs(s) < 0.5):
        raise InvalidInputError(f"white balance strength must be in (-0.5, 0.5), got {strength!r}")
    return np.array([1.0 - s, 1.0 - s / 2, 1.0]) if s >= 0 else np.array([1.0, 1.0 + s / 2, 1.0 + s])


def white_balance(image: np.ndarray, strength: float) -> np.ndarray:
    """Multiply the channels by white-balance gains: the glass colour moves by the same factors.

    Parameters
    ----------
    image : (H, W, 3) uint8
    strength : float
        ``s > 0``: cooler, gains ``(1 - s, 1 - s / 2, 1)``; ``s < 0``: warmer, ``(1, 1 - |s| / 2, 1 - |s|)``.

    Returns
    -------
    (H, W, 3) uint8
    """
    return _to_uint8(_rgb(image).astype(np.float32) * white_balance_gains(strength).astype(np.float32))


def exposure(image: np.ndarray, gain: float) -> np.ndarray:
    """Multiply every channel by ``gain`` (values above 255 clip: a glass exposed to pure white)."""
    g = as_positive_float(gain, "gain")
    return _to_uint8(_rgb(image).astype(np.float32) * np.float32(g))


def tone_curve(image: np.ndarray, gamma: float) -> np.ndarray:
    """Apply the tone curve ``255 (I / 255) ** gamma`` (every optical density is multiplied by ``gamma``)."""
    g = as_positive_float(gamma, "gamma")
    lut = _to_uint8(255.0 * (np.arange(256) / 255.0) ** g)
    return lut[_rgb(image)]


def jpeg(image: np.ndarray, quality: float) -> np.ndarray:
    """One JPEG round trip at ``quality`` (1-100; YCbCr 4:2:0, as most scanners write)."""
    import imagecodecs

    q = int(round(float(quality)))
    if not 1 <= q <= 100:
        raise InvalidInputError(f"JPEG quality must be in 1..100, got {quality!r}")
    return np.ascontiguousarray(imagecodecs.jpeg_decode(imagecodecs.jpeg_encode(_rgb(image), level=q)))


def jpeg2000(image: np.ndarray, psnr_db: float) -> np.ndarray:
    """One JPEG 2000 round trip (OpenJPEG, irreversible wavelet) at a target PSNR in dB (e.g. 34)."""
    import imagecodecs

    level = as_positive_float(psnr_db, "psnr_db")
    encoded = imagecodecs.jpeg2k_encode(_rgb(image), level=level)  # type: ignore[arg-type]  # PSNR may be fractional
    return np.ascontiguousarray(imagecodecs.jpeg2k_decode(encoded))


def blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian defocus of ``sigma_px`` pixels (per channel, reflecting borders)."""
    from scipy.ndimage import gaussian_filter

    sigma = as_positive_float(sigma_px, "sigma_px")
    f = _rgb(image).astype(np.float32)
    return _to_uint8(gaussian_filter(f, sigma=(sigma, sigma, 0), mode="reflect", truncate=3.0))


def noise(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Additive Gaussian noise of ``sigma`` 8-bit levels (seeded)."""
    s = as_positive_float(sigma, "sigma")
    f = _rgb(image).astype(np.float32)
    f += np.random.default_rng([int(seed), 0x4E015E]).standard_normal(f.shape, dtype=np.float32) * np.float32(s)
    return _to_uint8(f)


def resample(image: np.ndarray, mpp: float, target_mpp: float) -> np.ndarray:
    """Re-sample an image of ``mpp`` um/px to ``target_mpp`` um/px (Lanczos, antialiased when shrinking).

    Returns
    -------
    (H', W', 3) uint8
        ``H' = round(H * mpp / target_mpp)``; the exact new pixel size is ``mpp * W / W'``.
    """
    from PIL import Image

    arr = _rgb(image)
    mpp = as_positive_float(mpp, "mpp")
    target = as_positive_float(target_mpp, "target_mpp")
    h, w = arr.shape[:2]
    size = (max(1, round(w * mpp / target)), max(1, round(h * mpp / target)))
    return np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.LANCZOS, reducing_gap=None)).copy()


#: Image perturbations by name: ``f(image, strength, mpp, seed) -> (image, mpp)``.
IMAGE_PERTURBATIONS = {
    "white_balance": lambda im, s, mpp, seed: (white_balance(im, s), mpp),
    "exposure": lambda im, s, mpp, seed: (exposure(im, s), mpp),
    "tone_curve": lambda im, s, mpp, seed: (tone_curve(im, s), mpp),
    "jpeg": lambda im, s, mpp, seed: (jpeg(im, s), mpp),
    "jpeg2000": lambda im, s, mpp, seed: (jpeg2000(im, s), mpp),
    "blur": lambda im, s, mpp, seed: (blur(im, s), mpp),
    "noise": lambda im, s, mpp, seed: (noise(im, s, seed), mpp),
    "resample": lambda im, s, mpp, seed: _resampled(im, mpp, s),
}

#: Render perturbations by name (the :class:`StainVariation` field, or ``scan_mpp``).
RENDER_PERTURBATIONS = {
    "dab": "dab",
    "hematoxylin": "hematoxylin",
    "dab_hue": "dab_hue_deg",
    "thickness": "thickness",
    "scan_mpp": None,
}


def _resampled(image: np.ndarray, mpp: float, target: float) -> tuple[np.ndarray, float]:
    out = resample(image, mpp, target)
    return out, mpp * image.shape[1] / out.shape[1]


@dataclass(frozen=True)
class Perturbation:
    """One perturbation: a name from :data:`IMAGE_PERTURBATIONS` or :data:`RENDER_PERTURBATIONS` and a strength.

    Parameters
    ----------
    name : str
    strength : float
        Its meaning per name is in the module docstring.
    """

    name: str
    strength: float

    def __post_init__(self) -> None:
        if self.name not in IMAGE_PERTURBATIONS and self.name not in RENDER_PERTURBATIONS:
            names = sorted([*IMAGE_PERTURBATIONS, *RENDER_PERTURBATIONS])
            raise InvalidInputError(f"unknown perturbation {self.name!r}; choose one of {names}")
        if not np.isfinite(self.strength):
            raise InvalidInputError(f"perturbation {self.name}: strength must be finite, got {self.strength!r}")

    @property
    def kind(self) -> str:
        """``"image"`` or ``"render"``."""
        return "image" if self.name in IMAGE_PERTURBATIONS else "render"

    @property
    def label(self) -> str:
        """``name=strength``, e.g. ``blur=1.2``."""
        return f"{self.name}={self.strength:g}"


def _as_list(perturbations: Perturbation | Sequence[Perturbation]) -> list[Perturbation]:
    items = [perturbations] if isinstance(perturbations, Perturbation) else list(perturbations)
    for p in items:
        if not isinstance(p, Perturbation):
            raise InvalidInputError(f"expected her2fast.synth.perturb.Perturbation items, got {type(p).__name__}")
    return items


def perturb_image(
    image: np.ndarray, perturbations: Perturbation | Sequence[Perturbation], *, mpp: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Apply the image perturbations in order (render perturbations are skipped: see :func:`render_options`).

    Parameters
    ----------
    image : (H, W, 3) uint8
    perturbations : Perturbation or sequence of Perturbation
    mpp : float
        Pixel size of ``image`` (um/px); ``resample`` changes it.
    seed : int
        Seed of the random perturbations (noise).

    Returns
    -------
    image : (H', W', 3) uint8
    mpp : float
        Pixel size of the returned image.
    """
    out = _rgb(image)
    mpp = as_positive_float(mpp, "mpp")
    for p in _as_list(perturbations):
        if p.kind == "image":
            out, mpp = IMAGE_PERTURBATIONS[p.name](out, p.strength, mpp, seed)
    return out, mpp


def render_options(perturbations: Perturbation | Sequence[Perturbation], mpp: float = 0.5) -> dict:
    """:func:`her2fast.synth.make_slide` keyword arguments for the render perturbations.

    Returns
    -------
    dict
        ``{"variation": StainVariation or None, "mpp": float}`` (``mpp`` is ``scan_mpp`` when given).
    """
    fields: dict[str, float] = {}
    for p in _as_list(perturbations):
        if p.kind != "render":
            continue
        if p.name == "scan_mpp":
            mpp = as_positive_float(p.strength, "scan_mpp")
        else:
            key: str = RENDER_PERTURBATIONS[p.name]  # type: ignore[assignment]  # only scan_mpp maps to None
            fields[key] = fields.get(key, 0.0 if key == "dab_hue_deg" else 1.0)
            fields[key] = fields[key] + p.strength if key == "dab_hue_deg" else fields[key] * p.strength
    return {"variation": StainVariation(**fields) if fields else None, "mpp": float(mpp)}


def read_level0(path: str | Path) -> tuple[np.ndarray, float]:
    """Level 0 of a phantom slide (or any tiled TIFF with resolution tags) and its pixel size (um/px)."""
    import tifffile

    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist; write it with her2fast.synth.make_slide first")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        rgb = page.asarray()
        tags = page.tags  # type: ignore[union-attr]  # the first page of a file is a TiffPage
        if "XResolution" not in tags:
            raise InvalidInputError(f"{path} has no resolution tags; pass a slide written by make_slide")
        num, den = tags["XResolution"].value
        unit = tags["ResolutionUnit"].value if "ResolutionUnit" in tags else 3
        per_um = (num / den) / (1e4 if int(unit) == 3 else 25400.0)
    return np.ascontiguousarray(rgb[..., :3]), 1.0 / per_um


def write_slide(path: str | Path, image: np.ndarray, mpp: float, *, tile: int = 512) -> Path:
    """Write an RGB image as a lossless (deflate) pyramidal tiled TIFF that OpenSlide opens with its ``mpp``.

    Levels are halved (2 x 2 means) until one fits in a tile; the layout is that of
    :func:`her2fast.synth.make_slide` (one top-level IFD per level, resolution in centimetres).
    """
    import tifffile

    from .slide import _downsample2

    arr = _rgb(image)
    mpp = as_positive_float(mpp, "mpp")
    if tile % 16:
        raise InvalidInputError(f"tile must be a multiple of 16, got {tile}")
    path = Path(path)
    if not path.parent.exists():
        raise InvalidInputError(f"output folder {path.parent} does not exist; create it first")
    levels = [arr]
    while max(levels[-1].shape[:2]) > tile:
        levels.append(_downsample2(levels[-1]))
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for k, lev in enumerate(levels):
            px_per_cm = 1e4 / (mpp * arr.shape[1] / lev.shape[1])
            tif.write(
                lev,
                tile=(tile, tile),
                photometric="rgb",
                compression="zlib",
                subfiletype=0 if k == 0 else 1,
                resolution=(px_per_cm, px_per_cm),
                resolutionunit="CENTIMETER",
                software=False,
                metadata=None,
            )
    return path
