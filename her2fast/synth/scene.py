"""The global, seeded layout of a phantom: cell sites, tissue types and per-cell HER2 staining.

The plane (micrometres) is cut into square *blocks*; each block's cell sites and their attributes are
drawn from a generator seeded by ``(seed, block x, block y)`` alone, so any render tile can rebuild
exactly the sites around it (its own blocks plus a halo) and neighbouring tiles agree on every cell.
Tissue type at a site comes from position-hashed noise fields (:mod:`._noise`), whose thresholds are
fixed once per scene from a grid sample of its extent (so a phantom gets the tumour share and region
shares its preset asks for).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import InvalidInputError
from ..scoring import CellClass, IntensityClass
from ._noise import fbm, hash_uniform
from .presets import Preset

__all__ = ["Kind", "NucleusKind", "StainModel", "StainVariation", "Sites", "Scene", "INTENSITY_OD", "MEMBRANE_FWHM_UM"]

GENERATOR_VERSION = "2"


class Kind:
    """Tissue kind of a site (int8 codes)."""

    GLASS = 0
    STROMA = 1
    TUMOUR = 2
    FAT = 3


class NucleusKind:
    """Nucleus of a site (int8 codes)."""

    NONE = 0
    TUMOUR = 1
    FIBROBLAST = 2
    LYMPHOCYTE = 3


#: Membrane DAB OD (along the DAB vector, at the membrane centre line, before blur) drawn uniformly
#: per cell in these ranges, by intensity class. They sit inside the bands of ScoringRules.
INTENSITY_OD: dict[int, tuple[float, float]] = {
    IntensityClass.NONE: (0.0, 0.0),
    IntensityClass.FAINT: (0.12, 0.30),
    IntensityClass.WEAK_MODERATE: (0.50, 1.00),
    IntensityClass.STRONG: (1.50, 2.80),
}

#: Membrane thickness (FWHM, micrometres) by intensity class (Scheel et al., Diagn Pathol 2018:
#: about 0.6 um at 1+, 1.0 um at 2+, 2.1 um at 3+); jittered +-20 % per cell.
MEMBRANE_FWHM_UM: dict[int, float] = {
    IntensityClass.NONE: 0.6,
    IntensityClass.FAINT: 0.6,
    IntensityClass.WEAK_MODERATE: 1.0,
    IntensityClass.STRONG: 2.1,
}

# Ruifrok-Johnston H-DAB vectors, moved towards the real HER2 patches (scripts/synth_realism.py: real DAB
# is bluer-absorbing, Macenko ~(0.01, 0.34, 0.94); the mean OD direction of the real patches' nuclei is
# ~(0.69-0.72, 0.62, 0.32-0.38): greyer than Ruifrok-Johnston's hematoxylin, which absorbs more green).
_RJ_H = np.array([0.650, 0.704, 0.286]) * 0.3 + np.array([0.75, 0.57, 0.35]) * 0.7
_RJ_DAB = np.array([0.268, 0.570, 0.776]) * 0.4 + np.array([0.05, 0.36, 0.93]) * 0.6
MAX_SITES_PER_BLOCK = 1024  # cell ids are 1 + block_index * MAX_SITES_PER_BLOCK + site index


def _draw_tint(rng: np.random.Generator) -> tuple[float, float]:
    """Tissue background tint (H, DAB concentrations): about neutral grey, 0.01-0.07 OD, per slide.

    The real HER2 patches (scripts/synth_realism.py) show cytoplasm and stroma at ~0.93-0.97 of the
    glass white in every channel (median RGB 230-240 under a ~250 white); H : DAB ~ 5 : 3 is about
    neutral for the vectors below.
    """
    t_h = float(rng.uniform(0.015, 0.07))
    return t_h, t_h * float(rng.uniform(0.45, 0.8))


@dataclass(frozen=True)
class StainModel:
    """Per-slide optics: stain vectors (unit rows H, DAB, residual), white level, blur, noise."""

    vectors: np.ndarray  # (3, 3): rows H, DAB, residual; columns R, G, B
    white: np.ndarray  # (3,) I0 per channel, 0..255
    psf_sigma_um: float
    noise_sigma: float  # sensor noise std at full white, in 0..255 units
    #: (H, DAB) concentration of the faint grey-beige background of all tissue (unspecific absorbance,
    #: light counterstain of cytoplasm and collagen); drawn per slide from its own random stream
    tissue_tint: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def draw(cls, rng: np.random.Generator, tint_rng: np.random.Generator | None = None) -> StainModel:
        h = _RJ_H + rng.normal(0, 0.025, 3)
        d = _RJ_DAB + rng.normal(0, 0.025, 3)
        h /= np.linalg.norm(h)
        d /= np.linalg.norm(d)
        r = np.cross(h, d)
        r = np.abs(r) / np.linalg.norm(r)
        white = np.array([250.0, 249.0, 247.0]) + rng.normal(0, 1.5, 3)
        return cls(
            vectors=np.stack([h, d, r]),
            white=np.clip(white, 225, 252),
            psf_sigma_um=float(rng.uniform(0.35, 0.5)),
            noise_sigma=float(rng.uniform(1.2, 2.0)),
            tissue_tint=_draw_tint(tint_rng) if tint_rng is not None else (0.0, 0.0),
        )


@dataclass(frozen=True)
class StainVariation:
    """Lab and section variation applied when a phantom is rendered (before colour mixing).

    The layout, the cells and the ground truth stay those of the preset and seed; only the stain
    amounts and the chromogen colour change. The default (all neutral) renders exactly the unvaried
    phantom, but :func:`her2fast.synth.make_slide` and :func:`her2fast.synth.make_tile` take ``None``
    for that.

    Parameters
    ----------
    dab : float
        Factor on every DAB concentration (membrane, cytoplasmic blush, stroma, tint): 0.7 is a
        30 % weaker chromogen development.
    hematoxylin : float
        Factor on every hematoxylin concentration (counterstain strength).
    dab_hue_deg : float
        Rotation of the slide's DAB vector in optical-density space, in the plane of the DAB vector and
        the neutral grey direction: positive towards grey (a darker, more neutral brown), negative away
        from it (a yellower brown). Components are kept non-negative.
    thickness : float
        Section thickness relative to the reference: a factor on all absorbances (H, DAB, residual).
    """

    dab: float = 1.0
    hematoxylin: float = 1.0
    dab_hue_deg: float = 0.0
    thickness: float = 1.0

    def __post_init__(self) -> None:
        for name in ("dab", "hematoxylin", "thickness"):
            v = getattr(self, name)
            if not (np.isfinite(v) and 0.0 < v <= 10.0):
                raise InvalidInputError(f"StainVariation.{name} must be a factor in (0, 10], got {v!r}")
        if not (np.isfinite(self.dab_hue_deg) and abs(self.dab_hue_deg) <= 45.0):
            raise InvalidInputError(
                f"StainVariation.dab_hue_deg must be in [-45, 45] degrees, got {self.dab_hue_deg!r}"
            )

    @property
    def neutral(self) -> bool:
        """True when nothing changes."""
        return self == StainVariation()

    def to_dict(self) -> dict[str, float]:
        return {
            "dab": self.dab,
            "hematoxylin": self.hematoxylin,
            "dab_hue_deg": self.dab_hue_deg,
            "thickness": self.thickness,
        }

    def dab_vector(self, dab: np.ndarray) -> np.ndarray:
        """The unit DAB vector rotated by ``dab_hue_deg`` towards the grey direction (1, 1, 1) / sqrt(3)."""
        d = np.asarray(dab, np.float64) / np.linalg.norm(dab)
        if self.dab_hue_deg == 0.0:
            return d
        grey = np.ones(3) / np.sqrt(3.0)
        ortho = grey - np.dot(grey, d) * d
        ortho /= np.linalg.norm(ortho)
        a = np.radians(self.dab_hue_deg)
        r = np.clip(np.cos(a) * d + np.sin(a) * ortho, 0.0, None)
        return r / np.linalg.norm(r)


@dataclass
class Sites:
    """The cell sites of one or more blocks, as parallel arrays (positions in micrometres)."""

    cell_id: np.ndarray  # int64
    x: np.ndarray
    y: np.ndarray
    kind: np.ndarray  # int8 Kind
    region: np.ndarray  # int8
    cell_class: np.ndarray  # int8 CellClass (tumour cells; 0 elsewhere)
    intensity: np.ndarray  # int8 IntensityClass
    completeness: np.ndarray  # float32
    membrane_od: np.ndarray  # float32
    fwhm_um: np.ndarray  # float32
    arc_start: np.ndarray  # (n, 3) float32, radians
    arc_length: np.ndarray  # (n, 3) float32, radians; sum = 2 pi completeness
    blush_od: np.ndarray  # float32 cytoplasmic DAB
    cyto_h: np.ndarray  # float32 cytoplasmic hematoxylin
    nucleus: np.ndarray  # int8 NucleusKind
    nuc_a: np.ndarray  # semi-axes (um)
    nuc_b: np.ndarray
    nuc_theta: np.ndarray
    nuc_dx: np.ndarray
    nuc_dy: np.ndarray
    nuc_h: np.ndarray  # hematoxylin OD of the nucleus
    grow: np.ndarray  # float64 in [0, 1): cell size variation (power-diagram weight, see tile.py)

    @classmethod
    def concatenate(cls, parts: list[Sites]) -> Sites:
        names = cls.__dataclass_fields__.keys()
        return cls(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})

    def __len__(self) -> int:
        return int(self.x.shape[0])


class Scene:
    """A phantom's global layout over an extent of ``width_um`` x ``height_um``.

    Parameters
    ----------
    preset : Preset
    seed : int
    width_um, height_um : float
        Extent (the slide, or the tile for :func:`make_tile`); thresholds are fitted to it.
    with_glass : bool
        Surround the tissue by glass (slides) or fill the extent with tissue (tiles).
    x0_um, y0_um : float
        Origin of the extent.
    variation : StainVariation, optional
        Stain amounts, chromogen hue and section thickness at render time (None: the preset's own).
    """

    def __init__(
        self,
        preset: Preset,
        seed: int,
        width_um: float,
        height_um: float,
        with_glass: bool,
        x0_um: float = 0.0,
        y0_um: float = 0.0,
        variation: StainVariation | None = None,
    ) -> None:
        self.preset = preset
        self.seed = int(seed)
        self.x0_um = float(x0_um)
        self.y0_um = float(y0_um)
        self.width_um = float(width_um)
        self.height_um = float(height_um)
        self.with_glass = with_glass
        rng = np.random.default_rng([self.seed, 0x5CE7E])
        self.stain = StainModel.draw(rng, np.random.default_rng([self.seed, 0x7147]))
        #: lab / section variation applied at render time (None: none); the layout draws are unaffected
        self.variation = None if variation is None or variation.neutral else variation
        if self.variation is not None and self.variation.dab_hue_deg:
            h, d = self.stain.vectors[0], self.variation.dab_vector(self.stain.vectors[1])
            r = np.abs(np.cross(h, d))
            vectors = np.stack([h, d, r / np.linalg.norm(r)])
            self.stain = StainModel(
                vectors, self.stain.white, self.stain.psf_sigma_um, self.stain.noise_sigma, self.stain.tissue_tint
            )
        self.spacing_um = float(rng.uniform(12.5, 15.0))
        self.grid_per_block = 10
        self.block_um = self.spacing_um * self.grid_per_block
        self.nest_scale_um = float(rng.uniform(90, 160))
        # wavy cell edges: pixel positions are displaced by up to warp_um before the cell assignment
        self.warp_um = float(rng.uniform(0.9, 1.4))
        # hematoxylin counterstain strength (preset x per-slide lab variation)
        self.counterstain = preset.counterstain * float(rng.uniform(0.9, 1.1))
        self.submembrane = preset.submembrane
        self.bx_min = int(np.floor(self.x0_um / self.block_um)) - 1
        self.by_min = int(np.floor(self.y0_um / self.block_um)) - 1
        self.n_blocks_x = int(np.ceil((self.x0_um + self.width_um) / self.block_um)) - self.bx_min + 2
        self._fit_thresholds()
        self._block = lru_cache(maxsize=256)(self._make_block)

    # ------------------------------------------------------------------ fields (global, hashed)
    def tissue_field(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """> 0 inside tissue (an irregular blob filling most of the extent); all tissue without glass."""
        if not self.with_glass:
            return np.ones(np.broadcast(x, y).shape)
        cx, cy = self.x0_um + self.width_um / 2, self.y0_um + self.height_um / 2
        rx, ry = 0.46 * self.width_um, 0.46 * self.height_um
        r = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
        wobble = fbm(x, y, max(self.width_um, self.height_um) / 3, self.seed + 11, octaves=3) - 0.5
        return 1.0 - r - 0.5 * wobble

    def tumour_field(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fbm(x, y, self.nest_scale_um, self.seed + 23, octaves=3)

    def fat_field(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fbm(x, y, 500.0, self.seed + 37, octaves=2)

    def region_field(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fbm(x, y, 700.0, self.seed + 41, octaves=3)

    def hole_field(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fbm(x, y, 60.0, self.seed + 53, octaves=3)

    def _fit_thresholds(self) -> None:
        n = 160
        gx = self.x0_um + (np.arange(n) + 0.5) / n * self.width_um
        gy = self.y0_um + (np.arange(n) + 0.5) / n * self.height_um
        x, y = np.meshgrid(gx, gy)
        tissue = self.tissue_field(x, y) > 0
        if not tissue.any():  # pragma: no cover - the blob always covers the centre
            tissue[:] = True
        fat_share = 0.06 if self.with_glass and max(self.width_um, self.height_um) > 1500 else 0.0
        ff = self.fat_field(x, y)[tissue]
        self.fat_threshold = float(np.quantile(ff, 1 - fat_share)) if fat_share else np.inf
        not_fat = tissue & (self.fat_field(x, y) <= self.fat_threshold)
        tf = self.tumour_field(x, y)[not_fat]
        self.tumour_threshold = float(np.quantile(tf, 1 - self.preset.tumour_fraction))
        rf = self.region_field(x, y)[not_fat & (self.tumour_field(x, y) > self.tumour_threshold)]
        if rf.size == 0:
            rf = self.region_field(x, y).ravel()
        shares = np.cumsum([r.share for r in self.preset.regions])[:-1]
        self.region_edges = np.quantile(rf, shares) if shares.size else np.zeros(0)
        self.hole_threshold = 0.78

    # ------------------------------------------------------------------ blocks of sites
    def sites_in(self, x0: float, y0: float, x1: float, y1: float) -> Sites:
        """All sites of the blocks that meet the rectangle [x0, x1) x [y0, y1) (micrometres)."""
        b = self.block_um
        bx0, bx1 = int(np.floor(x0 / b)), int(np.floor(x1 / b))
        by0, by1 = int(np.floor(y0 / b)), int(np.floor(y1 / b))
        return Sites.concatenate([self._block(bx, by) for by in range(by0, by1 + 1) for bx in range(bx0, bx1 + 1)])

    def _make_block(self, bx: int, by: int) -> Sites:
        g = self.grid_per_block
        s = self.spacing_um
        n = g * g
        rng = np.random.default_rng([self.seed, 0xB10C, bx + (1 << 20), by + (1 << 20)])
        jj, ii = np.meshgrid(np.arange(g), np.arange(g))
        x = (bx * g + jj.ravel() + 0.5 + rng.uniform(-0.42, 0.42, n)) * s
        y = (by * g + ii.ravel() + 0.5 + rng.uniform(-0.42, 0.42, n)) * s
        # ids: unique per scene (blocks left/above the extent get ids too, never seen in output)
        block_index = (by - self.by_min) * self.n_blocks_x + (bx - self.bx_min)
        cell_id = 1 + block_index * MAX_SITES_PER_BLOCK + np.arange(n, dtype=np.int64)

        kind = np.full(n, Kind.STROMA, np.int8)
        kind[self.tumour_field(x, y) > self.tumour_threshold] = Kind.TUMOUR
        kind[self.fat_field(x, y) > self.fat_threshold] = Kind.FAT
        kind[self.tissue_field(x, y) <= 0] = Kind.GLASS
        tumour = kind == Kind.TUMOUR

        region = np.searchsorted(self.region_edges, self.region_field(x, y)).astype(np.int8)
        mixtures = np.array([r.mixture for r in self.preset.regions])  # (R, 5)
        cum = np.cumsum(mixtures, axis=1)[region]  # (n, 5)
        u = rng.random(n)
        cell_class = np.minimum((u[:, None] >= cum).sum(axis=1), 4).astype(np.int8)
        cell_class[~tumour] = CellClass.NEGATIVE

        # intensity and completeness from the class
        u2 = rng.random(n)
        comp_incomplete = rng.uniform(0.15, 0.75, n)
        comp_complete = np.where(rng.random(n) < 0.5, 1.0, rng.uniform(0.93, 1.0, n))
        intensity = np.zeros(n, np.int8)
        completeness = np.zeros(n, np.float64)
        c1 = cell_class == CellClass.FAINT_INCOMPLETE
        intensity[c1] = np.where(u2[c1] < 0.8, IntensityClass.FAINT, IntensityClass.WEAK_MODERATE)
        completeness[c1] = comp_incomplete[c1]
        c2 = cell_class == CellClass.WEAK_MODERATE_COMPLETE
        intensity[c2] = IntensityClass.WEAK_MODERATE
        completeness[c2] = comp_complete[c2]
        c3 = cell_class == CellClass.INTENSE_INCOMPLETE
        intensity[c3] = IntensityClass.STRONG
        completeness[c3] = np.clip(comp_incomplete[c3] + 0.1, 0.3, 0.8)
        c4 = cell_class == CellClass.INTENSE_COMPLETE
        intensity[c4] = IntensityClass.STRONG
        completeness[c4] = comp_complete[c4]

        lo = np.array([INTENSITY_OD[k][0] for k in range(4)])[intensity]
        hi = np.array([INTENSITY_OD[k][1] for k in range(4)])[intensity]
        membrane_od = lo + (hi - lo) * rng.random(n)
        fwhm = np.array([MEMBRANE_FWHM_UM[k] for k in range(4)])[intensity] * rng.uniform(0.8, 1.2, n)

        # stained arcs: 1-3 arcs whose lengths sum to 2 pi completeness, evenly spread gaps
        n_arcs = np.where(completeness >= 0.999, 1, rng.integers(1, 4, n))
        raw = rng.uniform(0.5, 1.5, (n, 3))
        raw[np.arange(3)[None, :] >= n_arcs[:, None]] = 0.0
        arc_length = 2 * np.pi * completeness[:, None] * raw / raw.sum(axis=1, keepdims=True)
        gaps = 2 * np.pi * (1 - completeness)[:, None] * raw / raw.sum(axis=1, keepdims=True)
        start0 = rng.uniform(0, 2 * np.pi, n)
        arc_start = start0[:, None] + np.concatenate(
            [np.zeros((n, 1)), np.cumsum(arc_length + gaps, axis=1)[:, :2]], axis=1
        )
        arc_start = np.mod(arc_start, 2 * np.pi)

        stained_scale = np.array([0.0, 0.8, 2.0, 3.5])[intensity]
        blush = self.preset.blush_od * stained_scale * rng.gamma(2.0, 0.5, n)
        cyto_h = rng.uniform(0.03, 0.07, n)

        # nuclei
        nucleus = np.zeros(n, np.int8)
        un = rng.random(n)
        nucleus[tumour] = NucleusKind.TUMOUR
        stroma = kind == Kind.STROMA
        stroma &= self.hole_field(x, y) <= self.hole_threshold  # no nuclei floating in holes
        nucleus[stroma & (un < 0.22)] = NucleusKind.FIBROBLAST
        nucleus[stroma & (un >= 0.22) & (un < 0.30)] = NucleusKind.LYMPHOCYTE
        a = rng.uniform(3.5, 6.0, n)
        b = a * rng.uniform(0.55, 0.9, n)
        theta = rng.uniform(0, np.pi, n)
        nuc_h = rng.uniform(0.35, 0.85, n)
        fib = nucleus == NucleusKind.FIBROBLAST
        a[fib] = rng.uniform(4.0, 7.0, fib.sum())
        b[fib] = rng.uniform(0.9, 1.6, fib.sum())
        nuc_h[fib] = rng.uniform(0.45, 0.7, fib.sum())
        lym = nucleus == NucleusKind.LYMPHOCYTE
        a[lym] = rng.uniform(2.3, 3.2, lym.sum())
        b[lym] = a[lym] * rng.uniform(0.85, 1.0, lym.sum())
        nuc_h[lym] = rng.uniform(0.8, 1.1, lym.sum())
        dx = rng.uniform(-1.2, 1.2, n)
        dy = rng.uniform(-1.2, 1.2, n)

        # cell size variation beyond what the jitter gives (separate stream: the draws above stay)
        rng2 = np.random.default_rng([self.seed, 0xB10D, bx + (1 << 20), by + (1 << 20)])
        grow = rng2.random(n)

        f32 = np.float32
        return Sites(
            cell_id=cell_id,
            x=x,
            y=y,
            kind=kind,
            region=region,
            cell_class=cell_class,
            intensity=intensity,
            completeness=completeness.astype(f32),
            membrane_od=membrane_od.astype(f32),
            fwhm_um=fwhm.astype(f32),
            arc_start=arc_start.astype(f32),
            arc_length=arc_length.astype(f32),
            blush_od=blush.astype(f32),
            cyto_h=cyto_h.astype(f32),
            nucleus=nucleus,
            nuc_a=a.astype(f32),
            nuc_b=b.astype(f32),
            nuc_theta=theta.astype(f32),
            nuc_dx=dx.astype(f32),
            nuc_dy=dy.astype(f32),
            nuc_h=nuc_h.astype(f32),
            grow=grow,
        )

    # ------------------------------------------------------------------ fat: a coarse hashed lattice
    def fat_sites(self, x0: float, y0: float, x1: float, y1: float, spacing: float = 70.0) -> np.ndarray:
        """Adipocyte centres (k, 2) around a rectangle: one jittered site per lattice cell."""
        i0, i1 = int(np.floor(x0 / spacing)) - 2, int(np.floor(x1 / spacing)) + 2
        j0, j1 = int(np.floor(y0 / spacing)) - 2, int(np.floor(y1 / spacing)) + 2
        ii, jj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1))
        ux = hash_uniform(ii, jj, self.seed + 71)
        uy = hash_uniform(ii, jj, self.seed + 73)
        return np.stack([(ii + 0.5 + 0.7 * (ux - 0.5)) * spacing, (jj + 0.5 + 0.7 * (uy - 0.5)) * spacing], -1).reshape(
            -1, 2
        )
