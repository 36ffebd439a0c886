"""Phantom training data: a cached set of rendered tiles (npz, no pickle) and strong augmentation.

Rendering a 512^2 phantom costs ~0.2-0.3 s, so :func:`build_cache` renders a set once into one
``.npz`` (``rgb`` (n, s, s, 3) uint8, ``membrane`` / ``edge`` (n, s, s) bool, ``mpp``, ``seed``,
``preset``) and :class:`TileSampler` draws augmented crops from it every step.

Augmentation (all seeded by the sampler's generator): random crop, scale (0.8-1.25, i.e. a
different um/px), flips and 90-degree rotations, stain augmentation in optical-density space
(per-stain concentration gain/offset and jittered stain vectors), white-balance/brightness,
Gaussian blur (defocus), Gaussian noise and a JPEG round trip.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

__all__ = ["CacheSpec", "build_cache", "load_cache", "TileSampler", "AugmentConfig", "augment_rgb"]

#: presets and how often each is drawn in a phantom set (weights need not sum to 1)
DEFAULT_PRESETS: dict[str, float] = {
    "0/typical": 0.5,
    "0+/typical": 0.5,
    "0+/near-threshold": 0.5,
    "1+/typical": 1.0,
    "1+/near-threshold": 0.7,
    "2+/typical": 1.0,
    "2+/near-threshold": 0.7,
    "2+/unusual": 0.7,
    "2+/heterogeneous": 0.7,
    "3+/typical": 1.0,
    "3+/near-threshold": 0.7,
    "3+/heterogeneous": 0.7,
}


@dataclass(frozen=True)
class CacheSpec:
    """What :func:`build_cache` renders: ``n`` tiles of ``size`` px with seeds ``seed0 .. seed0 + n - 1``."""

    n: int = 240
    size: int = 512
    seed0: int = 0
    mpp_range: tuple[float, float] = (0.45, 0.56)
    jpeg_range: tuple[int, int] = (75, 95)


def build_cache(
    path: str | Path, spec: CacheSpec, presets: dict[str, float] | None = None, verbose: bool = True
) -> Path:
    """Render the phantom set `spec` into the npz file `path`.

    Skipped when the file exists with the same spec, presets and phantom generator version
    (``her2fast.synth.GENERATOR_VERSION``: a generator change re-renders the cache).
    """
    from her2fast.synth import GENERATOR_VERSION, make_tile

    path = Path(path)
    meta = {
        "n": spec.n,
        "size": spec.size,
        "seed0": spec.seed0,
        "mpp_range": list(spec.mpp_range),
        "jpeg_range": list(spec.jpeg_range),
        "presets": presets or DEFAULT_PRESETS,
        "generator_version": GENERATOR_VERSION,
    }
    if path.exists():
        with np.load(path) as z:
            if "meta" in z and json.loads(str(z["meta"])) == meta:
                return path
    presets = presets or DEFAULT_PRESETS
    names = list(presets)
    p = np.array([presets[k] for k in names], float)
    p /= p.sum()
    s = spec.size
    rgb = np.zeros((spec.n, s, s, 3), np.uint8)
    mem = np.zeros((spec.n, s, s), bool)
    edge = np.zeros((spec.n, s, s), bool)
    mpps = np.zeros(spec.n, np.float32)
    chosen = []
    t0 = time.time()
    for i in range(spec.n):
        seed = spec.seed0 + i
        rng = np.random.default_rng([seed, 0xCAC4E])
        name = names[rng.choice(len(names), p=p)]
        cat, var = name.split("/")
        mpp = float(rng.uniform(*spec.mpp_range))
        origin = (int(rng.integers(0, 20000)), int(rng.integers(0, 20000)))
        q = int(rng.integers(spec.jpeg_range[0], spec.jpeg_range[1] + 1))
        t = make_tile(s, category=cat, variant=var, mpp=mpp, seed=seed, origin=origin, jpeg_quality=q)
        rgb[i], mem[i], edge[i], mpps[i] = t.rgb, t.membrane_mask, t.membrane_edge, mpp
        chosen.append(name)
        if verbose and (i + 1) % 20 == 0:
            print(f"  cache {path.name}: {i + 1}/{spec.n} tiles ({time.time() - t0:.0f} s)", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        rgb=rgb,
        membrane=mem,
        edge=edge,
        mpp=mpps,
        seed=np.arange(spec.seed0, spec.seed0 + spec.n),
        preset=np.array(chosen),
        meta=np.array(json.dumps(meta)),
    )
    tmp.replace(path)
    return path


def load_cache(path: str | Path) -> dict[str, np.ndarray]:
    """Arrays of a cache written by :func:`build_cache` (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of the augmentations (see the module docstring)."""

    scale: tuple[float, float] = (0.8, 1.25)
    stain_gain: tuple[float, float] = (0.7, 1.35)
    stain_offset: float = 0.03
    stain_vector_sigma: float = 0.04
    brightness: tuple[float, float] = (0.94, 1.03)
    p_blur: float = 0.3
    blur_sigma: tuple[float, float] = (0.3, 1.1)
    p_noise: float = 0.5
    noise_sigma: tuple[float, float] = (0.5, 5.0)
    p_jpeg: float = 0.4
    jpeg_quality: tuple[int, int] = (50, 95)


# Ruifrok-Johnston H, DAB and a residual vector (rows, unit length): the OD basis of stain augmentation
_STAINS = np.array([[0.650, 0.704, 0.286], [0.268, 0.570, 0.776], [0.0, 0.0, 0.0]])
_STAINS[2] = np.cross(_STAINS[0], _STAINS[1])
_STAINS /= np.linalg.norm(_STAINS, axis=1, keepdims=True)
_STAINS_INV = np.linalg.inv(_STAINS)


def augment_rgb(rgb: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Photometric augmentation of one (h, w, 3) uint8 image (geometry untouched)."""
    od = -np.log((rgb.astype(np.float32) + 1.0) / 256.0)
    conc = od.reshape(-1, 3) @ _STAINS_INV.astype(np.float32)  # (n, 3): H, DAB, residual
    gain = rng.uniform(*cfg.stain_gain, size=3).astype(np.float32)
    gain[2] = rng.uniform(0.8, 1.2)
    offset = rng.uniform(-cfg.stain_offset, cfg.stain_offset, size=3).astype(np.float32)
    vec = _STAINS + rng.normal(0.0, cfg.stain_vector_sigma, size=(3, 3))
    vec = np.abs(vec)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    od = (conc * gain + offset * (conc > 0.02)) @ vec.astype(np.float32)
    white = rng.uniform(*cfg.brightness) * rng.uniform(0.98, 1.02, size=3)
    out = (256.0 * np.exp(-np.maximum(od, 0.0)) - 1.0).reshape(rgb.shape) * white.astype(np.float32)
    if rng.random() < cfg.p_blur:
        s = rng.uniform(*cfg.blur_sigma)
        out = ndi.gaussian_filter(out, (s, s, 0))
    if rng.random() < cfg.p_noise:
        out += rng.standard_normal(out.shape, dtype=np.float32) * np.float32(rng.uniform(*cfg.noise_sigma))
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if rng.random() < cfg.p_jpeg:
        import imagecodecs

        q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        out = imagecodecs.jpeg_decode(imagecodecs.jpeg_encode(out, level=q))
    return out


def _resize(img: np.ndarray, mem: np.ndarray, edg: np.ndarray, c: int) -> tuple[np.ndarray, ...]:
    """Bilinear resize of a crop and its masks to c x c (torch: ~10x faster than scipy here)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.concatenate([img.astype(np.float32), mem[..., None], edg[..., None]], axis=2).copy())
    r = F.interpolate(t.permute(2, 0, 1)[None], size=(c, c), mode="bilinear", align_corners=False)[0]
    z = c / img.shape[0]
    out = r.permute(1, 2, 0).numpy()
    img = np.clip(np.rint(out[..., :3]), 0, 255).astype(np.uint8)
    # the 1-px centre line stays about 1 px wide after resampling
    return img, out[..., 3] >= 0.5, out[..., 4] >= 0.5 / max(z, 1.0)


class TileSampler:
    """Augmented random crops from a tile set.

    Parameters
    ----------
    rgb, membrane, edge : arrays (n, s, s, 3) uint8 and (n, s, s) bool
    crop : int
        Output crop side (px).
    rng : numpy Generator
    augment : AugmentConfig or None
        None: crops only (no augmentation).
    """

    def __init__(
        self,
        rgb: np.ndarray,
        membrane: np.ndarray,
        edge: np.ndarray,
        crop: int,
        rng: np.random.Generator,
        augment: AugmentConfig | None = AugmentConfig(),
    ) -> None:
        self.rgb, self.membrane, self.edge = rgb, membrane, edge
        self.crop, self.rng, self.augment = crop, rng, augment

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng, c = self.rng, self.crop
        i = int(rng.integers(len(self.rgb)))
        n, s = self.rgb.shape[1], self.rgb.shape[2]
        scale = rng.uniform(*self.augment.scale) if self.augment else 1.0
        src = int(min(round(c * scale), n, s))
        y, x = int(rng.integers(0, n - src + 1)), int(rng.integers(0, s - src + 1))
        img = self.rgb[i, y : y + src, x : x + src]
        mem = self.membrane[i, y : y + src, x : x + src]
        edg = self.edge[i, y : y + src, x : x + src]
        if src != c:
            img, mem, edg = _resize(img, mem, edg, c)
        if self.augment:
            k = int(rng.integers(4))
            img, mem, edg = (np.rot90(a, k) for a in (img, mem, edg))
            if rng.random() < 0.5:
                img, mem, edg = img[:, ::-1], mem[:, ::-1], edg[:, ::-1]
            img = augment_rgb(np.ascontiguousarray(img), rng, self.augment)
        return np.ascontiguousarray(img), np.ascontiguousarray(mem), np.ascontiguousarray(edg)

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(size, 3, c, c) float32 in [0, 1], (size, c, c) int64 membrane, (size, 1, c, c) float32 edge."""
        items = [self.sample() for _ in range(size)]
        x = np.stack([it[0] for it in items]).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        m = np.stack([it[1] for it in items]).astype(np.int64)
        e = np.stack([it[2] for it in items])[:, None].astype(np.float32)
        return x, m, e
