"""Phantom tiles in stains and patterns that are *not* HER2 IHC, with exact truth, for the stain gate.

Each render starts from a HER2-0 phantom tile (:func:`her2fast.synth.make_tile`: hematoxylin nuclei,
pale cytoplasm, stroma fibres, faint non-specific DAB) and keeps its layout and ground-truth masks; the
hematoxylin of the phantom is recovered exactly (deconvolution with the phantom's own stain vectors and
glass colour, before any JPEG), and a second stain is laid out from the masks:

``"he"``
    Hematoxylin and eosin: stronger hematoxylin, eosin pink in tumour cytoplasm (light), stroma (strong)
    and nuclei (faint); no DAB. Stain vectors drawn per seed between Ruifrok and Johnston's
    (:mod:`skimage.color`) and Macenko's reference H&E vectors.
``"nuclear_dab"``
    A nuclear marker (Ki-67 / ER / PR-like): DAB inside a random share of the nuclei, none on membranes.
``"cytoplasmic_dab"``
    A cytoplasmic marker: diffuse, granular DAB filling the cytoplasm of most tumour cells, with at most a
    mild accent where cells meet.

The DAB renders use the phantom's own H-DAB vectors, so only the *pattern* differs from a HER2 phantom.
Beer-Lambert mixing, Gaussian PSF, shot and read noise and an optional JPEG round trip follow
:mod:`her2fast.synth.tile`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .._validate import as_int, as_positive_float
from ..errors import InvalidInputError
from .presets import get_preset
from .scene import Scene
from .tile import TileGroundTruth, make_tile

__all__ = ["WRONG_STAIN_KINDS", "WRONG_STAIN_REASONS", "WrongStainTile", "render_wrong_stain"]

#: The kinds :func:`render_wrong_stain` renders.
WRONG_STAIN_KINDS: tuple[str, ...] = ("he", "nuclear_dab", "cytoplasmic_dab")

#: The reason the stain gate (:mod:`her2fast.qc`) is expected to give for each kind.
WRONG_STAIN_REASONS: dict[str, str] = {
    "he": "not_her2_ihc: looks like H&E",
    "nuclear_dab": "nuclear_dab_pattern",
    "cytoplasmic_dab": "cytoplasmic_dab_pattern",
}

# Ruifrok-Johnston H&E vectors (skimage.color.rgb_from_hed rows 0 and 1) and Macenko's reference H&E
# vectors (the stain matrix of his normalisation code); unit length. Each render draws its vectors
# between the two, so eosin ranges from magenta (Ruifrok-Johnston) to the redder, bluer-absorbing
# eosin of many scanners (Macenko), which lies close to DAB.
_HE_H = np.array([0.65, 0.70, 0.29]) / np.linalg.norm([0.65, 0.70, 0.29])
_HE_E = np.array([0.07, 0.99, 0.11]) / np.linalg.norm([0.07, 0.99, 0.11])
_MACENKO_H = np.array([0.5626, 0.7201, 0.4062]) / np.linalg.norm([0.5626, 0.7201, 0.4062])
_MACENKO_E = np.array([0.2159, 0.8012, 0.5581]) / np.linalg.norm([0.2159, 0.8012, 0.5581])


@dataclass
class WrongStainTile:
    """A phantom tile in a stain or pattern other than HER2 IHC, and its truth.

    Attributes
    ----------
    rgb : (h, w, 3) uint8
    kind : str
        One of :data:`WRONG_STAIN_KINDS`.
    expected_reason : str
        The reason the stain gate should refuse it with (:data:`WRONG_STAIN_REASONS`).
    hematoxylin : (h, w) float32
        True hematoxylin concentration (natural-log OD along the hematoxylin vector).
    second_stain : (h, w) float32
        True eosin (``"he"``) or DAB concentration (before blur).
    vectors : (2, 3) float64
        Unit RGB optical-density vectors of hematoxylin and of the second stain.
    positive_mask : (h, w) bool
        Pixels holding the second stain by design: stained nuclei (``"nuclear_dab"``), stained cytoplasm
        (``"cytoplasmic_dab"``), eosin-stained tissue (``"he"``).
    nuclei_mask, epithelium_mask : (h, w) bool
        From the underlying phantom.
    mpp : float
    seed : int
    """

    rgb: np.ndarray
    kind: str
    expected_reason: str
    hematoxylin: np.ndarray
    second_stain: np.ndarray
    vectors: np.ndarray
    positive_mask: np.ndarray
    nuclei_mask: np.ndarray
    epithelium_mask: np.ndarray
    mpp: float
    seed: int


def _smooth_noise(shape: tuple[int, int], scale_px: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth random field in [0, 1] with feature size ``scale_px``."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), max(scale_px, 0.5), mode="wrap")
    lo, hi = float(f.min()), float(f.max())
    return ((f - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)


def _jitter(v: np.ndarray, rng: np.random.Generator, sd: float) -> np.ndarray:
    w = np.abs(v + rng.normal(0.0, sd, 3))
    return w / np.linalg.norm(w)


def _phantom_hematoxylin(base: TileGroundTruth, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Hematoxylin and DAB concentrations of a phantom tile rendered without JPEG (exact unmixing)."""
    st = scene.stain
    od = np.log(st.white[None, None, :] / np.maximum(base.rgb.astype(np.float64), 1.0))
    c = od @ np.linalg.inv(st.vectors)
    return np.clip(c[..., 0], 0.0, None).astype(np.float32), np.clip(c[..., 1], 0.0, None).astype(np.float32)


def render_wrong_stain(
    kind: str,
    size: int | tuple[int, int] = 512,
    *,
    mpp: float = 0.5,
    seed: int = 0,
    jpeg_quality: int | None = 90,
) -> WrongStainTile:
    """Render a phantom tile in a stain or pattern that is not HER2 IHC.

    Parameters
    ----------
    kind : {"he", "nuclear_dab", "cytoplasmic_dab"}
        What to render (see the module docstring).
    size : int or (height, width)
        Tile size in pixels.
    mpp : float
        Micrometres per pixel.
    seed : int
        Seeds the layout (the underlying HER2-0 phantom), the stain vectors and amounts; same seed, same
        bytes.
    jpeg_quality : int or None
        Round-trip the RGB through JPEG at this quality; None for none.

    Returns
    -------
    WrongStainTile

    Examples
    --------
    >>> t = render_wrong_stain("he", 128, seed=1)
    >>> t.rgb.shape, t.expected_reason
    ((128, 128, 3), 'not_her2_ihc: looks like H&E')
    """
    if kind not in WRONG_STAIN_KINDS:
        raise InvalidInputError(f"kind must be one of {WRONG_STAIN_KINDS}, got {kind!r}")
    mpp = as_positive_float(mpp, "mpp")
    seed = as_int(seed, "seed", 0, 2**63 - 1)
    base = make_tile(size, category="0", mpp=mpp, seed=seed, jpeg_quality=None)
    h, w = base.rgb.shape[:2]
    scene = Scene(get_preset("0"), seed, w * mpp, h * mpp, with_glass=False)
    st = scene.stain
    c_h, c_dab0 = _phantom_hematoxylin(base, scene)
    rng = np.random.default_rng([seed, 0x3A7E])
    nuclei = base.nuclei_mask
    epi = base.epithelium_mask
    cyto = epi & ~nuclei
    # holes and lumina of the phantom: (nearly) no stain at all
    holes = ~ndimage.binary_opening((c_h + c_dab0) > 0.015, iterations=1)
    sigma_px = float(rng.uniform(0.35, 0.5)) / mpp

    if kind == "he":
        u = rng.uniform(0.0, 1.0, 2)
        v_h = _jitter(_HE_H + u[0] * (_MACENKO_H - _HE_H), rng, 0.03)
        v_2 = _jitter(_HE_E + u[1] * (_MACENKO_E - _HE_E), rng, 0.03)
        c_h = c_h * np.float32(rng.uniform(1.0, 1.6))
        tex = _smooth_noise((h, w), 2.0 / mpp, rng)
        fib = _smooth_noise((h, w), 0.8 / mpp, rng)
        e_stroma, e_cyto, e_nuc = rng.uniform(0.35, 0.9), rng.uniform(0.2, 0.5), rng.uniform(0.05, 0.15)
        second = np.where(epi, e_cyto * (0.7 + 0.6 * tex), e_stroma * (0.5 + 0.8 * fib) * (0.7 + 0.6 * tex))
        second = np.where(nuclei, e_nuc, second).astype(np.float32)
        second[holes] = 0.0
        positive = ~holes
    else:
        v_h, v_2 = st.vectors[0].copy(), st.vectors[1].copy()
        labels = base.cell_labels
        if kind == "nuclear_dab":
            comp, n = ndimage.label(nuclei)
            share = rng.uniform(0.3, 0.8)
            on = np.r_[False, rng.random(n) < share]
            level = np.r_[0.0, rng.uniform(0.4, 1.2, n)].astype(np.float32)
            chrom = _smooth_noise((h, w), 0.7 / mpp, rng)
            positive = on[comp]
            second = np.where(positive, level[comp] * (0.7 + 0.6 * chrom), 0.0).astype(np.float32)
        else:
            ids = np.unique(labels[epi])
            on = rng.random(ids.size) < rng.uniform(0.6, 1.0)
            cell_level = rng.uniform(0.25, 0.7, ids.size).astype(np.float32)
            idx = np.clip(np.searchsorted(ids, labels), 0, max(ids.size - 1, 0))
            cell_on = epi & on[idx] if ids.size else np.zeros_like(epi)
            level = cell_level[idx] if ids.size else np.zeros((h, w), np.float32)
            blotch = _smooth_noise((h, w), 2.0 / mpp, rng)
            grain = _smooth_noise((h, w), 0.4 / mpp, rng)
            # a mild accent where two cells meet (up to 30 % of the cytoplasm's level), as some
            # cytoplasmic markers show; far below the membrane-to-cytoplasm contrast of HER2
            border = (labels != ndimage.grey_dilation(labels, size=3)) | (
                labels != ndimage.grey_erosion(labels, size=3)
            )
            accent = rng.uniform(0.0, 0.3) * ndimage.gaussian_filter(border.astype(np.float32), 0.4 / mpp) * 2.5
            positive = cell_on & cyto
            second = np.where(positive, level * ((0.6 + 0.8 * blotch) * (0.8 + 0.4 * grain) + accent), 0.0)
            second = np.where(cell_on & nuclei, 0.2 * level, second).astype(np.float32)
        second += 0.5 * c_dab0  # keep the phantom's faint non-specific background
    blurred = ndimage.gaussian_filter(second, sigma_px, mode="nearest", truncate=3.0)
    od = c_h[..., None] * v_h[None, None, :] + blurred[..., None] * v_2[None, None, :]
    white = np.clip(np.array([250.0, 249.0, 247.0]) + rng.normal(0, 1.5, 3), 225, 252)
    trans = white[None, None, :] * np.exp(-od)
    noise_sigma = float(rng.uniform(1.2, 2.0))
    trans += rng.standard_normal(trans.shape) * np.sqrt(np.maximum(trans, 1.0) / 255.0) * noise_sigma
    rgb = np.clip(np.rint(trans), 0, 255).astype(np.uint8)
    if jpeg_quality is not None:
        import imagecodecs

        q = as_int(jpeg_quality, "jpeg_quality", 1, 100)
        rgb = imagecodecs.jpeg_decode(imagecodecs.jpeg_encode(rgb, level=q))
    return WrongStainTile(
        rgb=np.ascontiguousarray(rgb),
        kind=kind,
        expected_reason=WRONG_STAIN_REASONS[kind],
        hematoxylin=c_h.astype(np.float32),
        second_stain=second,
        vectors=np.stack([v_h, v_2]),
        positive_mask=np.asarray(positive, bool),
        nuclei_mask=nuclei,
        epithelium_mask=epi,
        mpp=mpp,
        seed=seed,
    )
