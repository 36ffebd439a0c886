"""Membrane prediction: an image resampled to the network's resolution, cut into overlapping tiles (or run in
one pass), run in batches, stitched and resampled back (:func:`predict`, :func:`predict_maps`,
:func:`predict_maps_batch`), and the glass colour brought to the training phantoms'
(:func:`white_balance_to_training`).

Examples
--------
>>> import numpy as np
>>> predict(np.full((48, 64, 3), 240, np.uint8), 0.5, method="classical").shape
(48, 64)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..._validate import as_int, as_rgb_uint8
from ...errors import InvalidInputError
from .classical import classical_membrane
from .model import MembraneMaps, _check_mpp
from .runtime import MembraneSession, get_session

__all__ = [
    "MAX_NETWORK_PIXELS",
    "predict",
    "predict_maps",
    "predict_maps_batch",
    "white_balance_to_training",
    "TRAINING_GLASS",
    "METHODS",
]


METHODS = ("unet", "classical")
#: The glass colour (RGB, as :attr:`her2fast.stages.tissue.TissueMask.background` reads it) of the phantoms the
#: membrane network was trained on: their glass is (250, 249, 247) +- 1.5 before noise, and the glass
#: estimate (99th percentile of a noisy glass) reads about (252, 251, 248.5) on them.
TRAINING_GLASS = (252.0, 251.0, 248.5)
#: images up to this side (px at the model's µm/px, margins included) run in one pass instead of tiles
_SINGLE_PASS_MAX = 640
#: predict_maps_batch's one-pass limit (the slide pipeline's tiles: 704 + 2 x 48 px)
_BATCH_SINGLE_PASS_MAX = 1088


def _resize(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a uint8 RGB (h, w, 3) or float32 (h, w) array to `shape` (H, W) with PIL."""
    from PIL import Image

    if arr.shape[:2] == shape:
        return arr
    if arr.ndim == 3:
        return np.asarray(Image.fromarray(arr).resize((shape[1], shape[0]), Image.Resampling.BILINEAR))
    return np.asarray(
        Image.fromarray(arr.astype(np.float32), mode="F").resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    )


#: Most pixels an image may have once resampled to the network's resolution (2**26, 8192 x 8192).
MAX_NETWORK_PIXELS = 1 << 26


def _unet_maps(
    image: np.ndarray, mpp: float, session: MembraneSession, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    cfg = session.config
    h0, w0 = image.shape[:2]
    scale = mpp / cfg.mpp
    if h0 * scale * w0 * scale > MAX_NETWORK_PIXELS:
        raise InvalidInputError(
            f"a {w0}x{h0} image at mpp={mpp:.4g} um/px is {w0 * scale:.0f}x{h0 * scale:.0f} pixels at the network's "
            f"{cfg.mpp:g} um/px, more than MAX_NETWORK_PIXELS={MAX_NETWORK_PIXELS}; pass a smaller region or "
            "check mpp"
        )
    if abs(scale - 1.0) > 0.01:
        shape = (max(1, round(h0 * scale)), max(1, round(w0 * scale)))
        img = _resize(image, shape)
    else:
        img = image
    h, w = img.shape[:2]
    t, o = cfg.tile_size, cfg.overlap
    mult = cfg.multiple
    if h + 2 * o <= _SINGLE_PASS_MAX and w + 2 * o <= _SINGLE_PASS_MAX:
        # small image: one pass over the image plus a mirrored margin (cheaper than 2 x 2 overlapping tiles)
        pm, pe = session.run(_single_pass_input(img, o, mult)[None])
        mem, edge = pm[0, o : o + h, o : o + w], pe[0, o : o + h, o : o + w]
        if (h, w) != (h0, w0):
            mem, edge = _resize(mem, (h0, w0)), _resize(edge, (h0, w0))
        return np.clip(mem, 0, 1).astype(np.float32), np.clip(edge, 0, 1).astype(np.float32)
    core = t - 2 * o
    ny, nx = -(-h // core), -(-w // core)
    ph, pw = ny * core + 2 * o, nx * core + 2 * o
    padded = np.pad(img, ((o, ph - h - o), (o, pw - w - o), (0, 0)), mode="symmetric")
    mem = np.zeros((ny * core, nx * core), np.float32)
    edge = np.zeros_like(mem)
    starts = [(iy * core, ix * core) for iy in range(ny) for ix in range(nx)]
    for b in range(0, len(starts), batch_size):
        chunk = starts[b : b + batch_size]
        x = np.stack([padded[y : y + t, x_ : x_ + t] for y, x_ in chunk])
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)
        x *= np.float32(1.0 / 255.0)
        pm, pe = session.run(x)
        for (y, x_), m_, e_ in zip(chunk, pm, pe):
            mem[y : y + core, x_ : x_ + core] = m_[o : o + core, o : o + core]
            edge[y : y + core, x_ : x_ + core] = e_[o : o + core, o : o + core]
    mem, edge = mem[:h, :w], edge[:h, :w]
    if (h, w) != (h0, w0):
        mem, edge = _resize(mem, (h0, w0)), _resize(edge, (h0, w0))
    return np.clip(mem, 0, 1).astype(np.float32), np.clip(edge, 0, 1).astype(np.float32)


def predict_maps(
    image: np.ndarray,
    mpp: float,
    *,
    method: str = "unet",
    model_dir: str | Path | None = None,
    providers: str | Sequence[str] = "auto",
    threads: int | None = None,
    batch_size: int = 4,
) -> MembraneMaps:
    """Membrane and membrane-edge probabilities of an RGB image (see :func:`predict`)."""
    image = as_rgb_uint8(image)
    mpp = _check_mpp(mpp)
    if method not in METHODS:
        raise InvalidInputError(f"method must be one of {METHODS}, got {method!r}")
    if method == "classical":
        return classical_membrane(image, mpp)
    batch_size = as_int(batch_size, "batch_size", 1, 256)
    session = get_session(model_dir, providers, threads)
    mem, edge = _unet_maps(image, mpp, session, batch_size)
    return MembraneMaps(mem, edge, mpp, "unet")


def white_balance_to_training(image: np.ndarray, background: np.ndarray | Sequence[float]) -> np.ndarray:
    """Scale each channel so that the slide's glass colour reads :data:`TRAINING_GLASS`.

    A scanner's white balance multiplies each channel by a gain; optical densities relative to the glass
    do not see it, but the network reads RGB and does. Dividing by the glass and multiplying by the
    training glass gives the network the colours it was trained on (rounded, clipped to 0..255; one
    look-up table per channel).

    Parameters
    ----------
    image : (H, W, 3) uint8
    background : (3,) float
        The slide's glass colour (:attr:`her2fast.stages.stain.StainVectors.background`).

    Returns
    -------
    (H, W, 3) uint8

    Examples
    --------
    >>> import numpy as np
    >>> glass = np.full((1, 1, 3), (236, 244, 248), np.uint8)
    >>> white_balance_to_training(glass, (236, 244, 248))[0, 0].tolist()
    [252, 251, 248]
    """
    img = as_rgb_uint8(image)
    bg = np.asarray(background, np.float64).reshape(-1)
    if bg.size != 3 or not np.all(np.isfinite(bg)) or np.any(bg < 100) or np.any(bg > 255.5):
        raise InvalidInputError(f"background must be three RGB glass levels in 100..255, got {background!r}")
    levels = np.arange(256, dtype=np.float64)
    out = np.empty_like(img)
    for c in range(3):
        lut = np.clip(np.rint(levels * (TRAINING_GLASS[c] / bg[c])), 0, 255).astype(np.uint8)
        out[..., c] = lut[img[..., c]]
    return out


def _single_pass_input(img: np.ndarray, o: int, mult: int) -> np.ndarray:
    """(3, H', W') float32 network input of an image with a mirrored margin ``o`` (H', W' multiples of mult)."""
    h, w = img.shape[:2]
    ph, pw = -(-(h + 2 * o) // mult) * mult, -(-(w + 2 * o) // mult) * mult
    padded = np.pad(img, ((o, ph - h - o), (o, pw - w - o), (0, 0)), mode="symmetric")
    x = np.ascontiguousarray(padded.transpose(2, 0, 1), dtype=np.float32)
    x *= np.float32(1.0 / 255.0)
    return x


def predict_maps_batch(
    images: Sequence[np.ndarray],
    mpp: float,
    *,
    method: str = "unet",
    model_dir: str | Path | None = None,
    providers: str | Sequence[str] = "auto",
    threads: int | None = None,
    batch_size: int = 4,
    margin: int | None = None,
) -> list[MembraneMaps]:
    """:func:`predict_maps` of several images, sharing network batches where the images allow it.

    Images at the model's µm/px up to 1088 px with their margins (tiles of the slide pipeline) run
    in a single pass, those of one shape stacked ``batch_size`` at a time into one ONNX Runtime call;
    anything else runs image by image through :func:`predict_maps`. Which path an image takes never
    depends on the other images of the call. Up to 576 px (and the default
    margin) the maps equal :func:`predict_maps`'s (which runs one pass up to there too; the network
    treats the images of a batch independently).

    Parameters
    ----------
    images : sequence of (H, W, 3) uint8
    mpp, method, model_dir, providers, threads, batch_size
        As :func:`predict_maps`.
    margin : int, optional
        Mirrored margin added around each image in single-pass mode (default: the model's
        ``overlap``, 32 px). Images that already carry real context around the region that matters
        (the slide pipeline's tiles) can use less.

    Returns
    -------
    list of MembraneMaps
        One per image, in order.
    """
    images = [as_rgb_uint8(im) for im in images]
    mpp = _check_mpp(mpp)
    if method not in METHODS:
        raise InvalidInputError(f"method must be one of {METHODS}, got {method!r}")
    batch_size = as_int(batch_size, "batch_size", 1, 256)
    if method == "classical" or not images:
        return [predict_maps(im, mpp, method=method) for im in images]
    session = get_session(model_dir, providers, threads)
    cfg = session.config
    o = cfg.overlap if margin is None else as_int(margin, "margin", 0, 1024)
    out: list[MembraneMaps | None] = [None] * len(images)
    by_shape: dict[tuple, list[int]] = {}
    for i, im in enumerate(images):  # images of one shape share batches; each image's path is its own
        by_shape.setdefault(im.shape, []).append(i)
    for (h, w, _), idx in by_shape.items():
        if abs(mpp / cfg.mpp - 1.0) > 0.01 or h + 2 * o > _BATCH_SINGLE_PASS_MAX or w + 2 * o > _BATCH_SINGLE_PASS_MAX:
            for i in idx:
                out[i] = MembraneMaps(*_unet_maps(images[i], mpp, session, batch_size), mpp, "unet")
            continue
        for b in range(0, len(idx), batch_size):
            part = idx[b : b + batch_size]
            x = np.stack([_single_pass_input(images[i], o, cfg.multiple) for i in part])
            pm, pe = session.run(x)
            for i, m_, e_ in zip(part, pm, pe):
                out[i] = MembraneMaps(
                    np.clip(m_[o : o + h, o : o + w], 0, 1).astype(np.float32),
                    np.clip(e_[o : o + h, o : o + w], 0, 1).astype(np.float32),
                    mpp,
                    "unet",
                )
    return out  # type: ignore[return-value]


def predict(
    image: np.ndarray,
    mpp: float,
    *,
    method: str = "unet",
    model_dir: str | Path | None = None,
    providers: str | Sequence[str] = "auto",
    threads: int | None = None,
    batch_size: int = 4,
) -> np.ndarray:
    """Membrane probability of every pixel of an RGB image of any size.

    Parameters
    ----------
    image : (H, W, 3) uint8
        Brightfield HER2 IHC (DAB + hematoxylin) RGB.
    mpp : float
        µm/px of `image`; it is resampled to the model's µm/px (0.5) and the result back.
    method : {"unet", "classical"}
        The shipped U-Net (needs onnxruntime) or the classical baseline (:func:`classical_membrane`).
    model_dir : path, optional
        Another membrane model directory (``model.onnx`` + ``config.json``).
    providers : "auto" or list of str
        ONNX Runtime execution providers, or ``["OpenVINO"]`` (see :class:`MembraneSession`).
    threads : int, optional
        ONNX Runtime intra-op threads (default: all cores).
    batch_size : int
        Tiles per network call.

    Returns
    -------
    (H, W) float32 in [0, 1]
        Membrane probability; threshold at 0.5 for a mask.

    Raises
    ------
    InvalidInputError
        Wrong image shape/dtype, `mpp` outside :data:`her2fast.io.slide.PLAUSIBLE_MPP`, an image over
        :data:`MAX_NETWORK_PIXELS` at the network's resolution, `providers` not ``"auto"`` or a list of names,
        unknown `method`.
    ModelError
        Model missing or corrupt (sha256 mismatch), or onnxruntime not installed.

    Examples
    --------
    >>> from her2fast.synth import make_tile
    >>> t = make_tile(256, category="3+", seed=1)
    >>> p = predict(t.rgb, 0.5)
    >>> p.shape, p.dtype
    ((256, 256), dtype('float32'))
    """
    return predict_maps(
        image, mpp, method=method, model_dir=model_dir, providers=providers, threads=threads, batch_size=batch_size
    ).membrane
