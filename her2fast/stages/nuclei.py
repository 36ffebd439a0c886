"""Nuclei from the hematoxylin channel: threshold, opening, distance-transform watershed.

The cells stage (:func:`her2fast.stages.cells.measure_tile`) seeds one cell per nucleus, so the nuclei decide
which cells exist. :func:`segment_nuclei` finds them in the hematoxylin optical density of a tile
(:func:`her2fast.stages.stain.deconvolve` with the slide's stain vectors):

1. smooth the hematoxylin OD with a Gaussian of ``smooth_um`` (JPEG and sensor noise);
2. threshold at ``threshold_od`` (natural-log OD; nuclei of the phantoms and of real HER2 slides sit at
   0.3-0.6, cytoplasm and stroma below 0.2);
3. a morphological opening of radius ``opening_um`` removes thin hematoxylin-coloured lines (the
   hematoxylin leak of a dark DAB membrane is 1-2 um wide, a nucleus 5-12 um), then holes are filled
   and components smaller than ``min_area_um2`` dropped;
4. touching nuclei are split by a watershed on the negated distance transform, seeded by its local
   maxima at least ``min_distance_um`` apart (h-maxima of height ``split_depth_um``, so a shallow
   waist does not split one nucleus in two).

For a split depth below one pixel (the default 0.25 um at any ``mpp`` above 0.25 um/px, such as the
working 0.5 um/px) the steps run as one native pass with the GIL released (``csrc/nuclei.hpp``), equal
label for label to the SciPy / NumPy steps (``_segment_nuclei_steps``, which the tests compare it with
and which handle the other cases).

The result is a label map (int32, 0 = background) that :func:`her2fast.stages.cells.measure_tile` takes as
``nuclei``, once the pipeline has dropped the nuclei that lie on the membrane map
(:func:`drop_nuclei_on_membrane`: on strongly stained tissue the hematoxylin leak of a thick, dark
membrane is wider than the opening removes). Everything is local (the widest operator reaches ``min_distance_um``), so a tile read with
the cells stage's margin gives the same nuclei in its core as any other tiling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError

__all__ = ["NucleiSettings", "drop_nuclei_on_membrane", "segment_nuclei", "nuclei_scores"]


@dataclass(frozen=True)
class NucleiSettings:
    """Parameters of :func:`segment_nuclei` (lengths in micrometres).

    Parameters
    ----------
    threshold_od : float
        Hematoxylin natural-log OD at or above which a (smoothed) pixel is nucleus (0.27).
    smooth_um : float
        Gaussian sigma of the smoothing (0.5 um).
    opening_um : float
        Radius of the opening that removes thin lines (1.0 um).
    min_area_um2 : float
        Smaller components are dropped (8 um^2; a tumour nucleus is 30-100 um^2).
    min_distance_um : float
        Smallest distance between two nucleus centres when touching nuclei are split (2 um).
    split_depth_um : float
        A distance-transform maximum must rise this much above the saddle to its neighbour to seed its
        own nucleus (0.25 um).
    max_membrane_share : float
        A nucleus with more than this share of its pixels on the membrane map is dropped
        (:func:`drop_nuclei_on_membrane`; 0.6; 1 keeps every nucleus).
    """

    threshold_od: float = 0.27
    smooth_um: float = 0.5
    opening_um: float = 1.0
    min_area_um2: float = 8.0
    min_distance_um: float = 2.0
    split_depth_um: float = 0.25
    max_membrane_share: float = 0.6

    def __post_init__(self) -> None:
        for name in ("threshold_od", "min_distance_um"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise InvalidInputError(f"NucleiSettings.{name} must be finite and > 0, got {v}")
        for name in ("smooth_um", "opening_um", "min_area_um2", "split_depth_um"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise InvalidInputError(f"NucleiSettings.{name} must be finite and >= 0, got {v}")
        v = self.max_membrane_share
        if not (np.isfinite(v) and 0 < v <= 1):
            raise InvalidInputError(f"NucleiSettings.max_membrane_share must be in (0, 1], got {v}")


DEFAULT_NUCLEI_SETTINGS = NucleiSettings()


def segment_nuclei(
    hematoxylin_od: np.ndarray,
    mpp: float,
    *,
    mask: np.ndarray | None = None,
    settings: NucleiSettings = DEFAULT_NUCLEI_SETTINGS,
) -> np.ndarray:
    """Label map of the nuclei in a hematoxylin optical-density map.

    Parameters
    ----------
    hematoxylin_od : (H, W) float
        Hematoxylin concentration (natural-log OD) of a tile, e.g. ``deconvolve(rgb, stains).hematoxylin``.
    mpp : float
        Micrometres per pixel of the map.
    mask : (H, W) bool, optional
        Where nuclei may be (e.g. tissue); default everywhere.
    settings : NucleiSettings

    Returns
    -------
    (H, W) int32
        Nucleus labels 1..n, 0 = background.

    Raises
    ------
    InvalidInputError
        For a map that is not 2-D and finite, a non-positive ``mpp`` or a mask of another shape.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.indices((60, 80))
    >>> od = 0.5 * ((np.hypot(yy - 30, xx - 20) < 8) | (np.hypot(yy - 30, xx - 55) < 8))
    >>> int(segment_nuclei(od, 0.5).max())
    2
    """
    h = np.asarray(hematoxylin_od)
    if h.ndim != 2 or not np.issubdtype(h.dtype, np.number):
        raise InvalidInputError(f"hematoxylin_od must be a 2-D numeric array, got {h.dtype} {h.shape}")
    h = np.ascontiguousarray(h, dtype=np.float32)
    if not np.all(np.isfinite(h)):
        raise InvalidInputError("hematoxylin_od holds NaN or infinite values")
    try:
        mpp = float(mpp)
    except (TypeError, ValueError):
        raise InvalidInputError(f"mpp must be a number, got {mpp!r}") from None
    if not (np.isfinite(mpp) and mpp > 0):
        raise InvalidInputError(f"mpp must be finite and > 0, got {mpp}")
    if not isinstance(settings, NucleiSettings):
        raise InvalidInputError(f"settings must be a NucleiSettings, got {type(settings).__name__}")
    m = None
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != h.shape:
            raise InvalidInputError(f"mask must have the map's shape {h.shape}, got {m.shape}")
    s = settings
    depth = max(s.split_depth_um / mpp, 1e-3)
    if depth < 1 and h.size:
        # all steps in one native pass, GIL released (csrc/nuclei.hpp); equal to _segment_nuclei_steps
        from .. import _native
        from .morphology import disk

        labels, n = _native.segment_nuclei(
            h,
            None if m is None else np.ascontiguousarray(m != 0).view(np.uint8),
            _gaussian_weights(s.smooth_um / mpp) if s.smooth_um > 0 else None,
            float(np.float32(s.threshold_od)),
            disk(s.opening_um / mpp).view(np.uint8) if s.opening_um > 0 else None,
            float(s.min_area_um2 / mpp**2),
            float(depth),
            disk(0.5 * s.min_distance_um / mpp).view(np.uint8),
        )
        if n >= 0:
            return labels
    return _segment_nuclei_steps(h, mpp, m, s)


def drop_nuclei_on_membrane(labels: np.ndarray, membrane: np.ndarray, max_share: float) -> np.ndarray:
    """Nucleus labels without the nuclei that lie on the membrane, renumbered 1..m in their order.

    A nucleus sits inside its cell; a hematoxylin-coloured blob on a membrane is the hematoxylin leak of
    a dark DAB membrane (strongly stained real tissue, where it is wider than the opening of
    :func:`segment_nuclei` removes), and seeding a cell there makes a false, intensely stained cell.
    A nucleus pressed against its cell's membrane has a rim on the membrane map, a blob on the membrane
    its middle too.

    Parameters
    ----------
    labels : (H, W) int32
        Nucleus labels (:func:`segment_nuclei`), 0 = background.
    membrane : (H, W) bool
        Membrane map of the same pixels (e.g. the membrane network's probability >= 0.5).
    max_share : float
        Nuclei with more than this share of their pixels on ``membrane`` are dropped; 1 keeps all.

    Returns
    -------
    (H, W) int32

    Raises
    ------
    InvalidInputError
        For maps of different shapes or a share outside (0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((8, 12), np.int32); labels[2:6, 1:5] = 1; labels[2:6, 7:11] = 2
    >>> membrane = np.zeros((8, 12), bool); membrane[:, 7:11] = True; membrane[:, 1] = True
    >>> np.unique(drop_nuclei_on_membrane(labels, membrane, 0.6)).tolist()  # nucleus 1: a quarter on it
    [0, 1]
    >>> int(drop_nuclei_on_membrane(labels, membrane, 0.6)[3, 2])
    1
    """
    lab = np.asarray(labels)
    mem = np.asarray(membrane, dtype=bool)
    if lab.shape != mem.shape or lab.ndim != 2:
        raise InvalidInputError(f"labels {lab.shape} and membrane {mem.shape} must be 2-D maps of one shape")
    if not (np.isfinite(max_share) and 0 < max_share <= 1):
        raise InvalidInputError(f"max_share must be in (0, 1], got {max_share}")
    n = int(lab.max()) if lab.size else 0
    if n == 0 or max_share >= 1:
        return lab
    area = np.bincount(lab.ravel(), minlength=n + 1)
    on = np.bincount(lab[mem], minlength=n + 1)
    keep = on <= max_share * area
    keep[0] = True
    if keep.all():
        return lab
    lut = np.cumsum(keep, dtype=np.int64).astype(np.int32) - 1
    lut[~keep] = 0
    return lut[lab]


def _gaussian_weights(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """The 1-D weights of ``scipy.ndimage.gaussian_filter(..., sigma, truncate=truncate)`` (float64)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    return np.ascontiguousarray((phi / phi.sum())[::-1])


def _segment_nuclei_steps(h: np.ndarray, mpp: float, mask: np.ndarray | None, s: NucleiSettings) -> np.ndarray:
    """:func:`segment_nuclei` step by step in SciPy / NumPy (float32 ``h``, validated arguments).

    The reference of the native pass (tests/test_nuclei.py compares them), and the path for a split depth
    of a pixel or more or a map that is nucleus everywhere, where the per-component seeds do not apply.
    """
    from scipy import ndimage as ndi

    from .. import _native
    from .morphology import binary_dilation, binary_opening, disk, distance_transform, fill_holes, h_maxima

    if s.smooth_um > 0:
        h = ndi.gaussian_filter(h, s.smooth_um / mpp, mode="nearest")
    fg = h >= np.float32(s.threshold_od)
    if mask is not None:
        fg &= mask.astype(bool)
    if s.opening_um > 0:
        fg = binary_opening(fg, disk(s.opening_um / mpp))
    fg = fill_holes(fg)
    comp, n = ndi.label(fg, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros(h.shape, np.int32)
    min_px = s.min_area_um2 / mpp**2
    areas = np.bincount(comp.ravel(), minlength=n + 1)
    keep = areas >= min_px
    keep[0] = False
    fg = np.take(keep, comp)  # np.take: a table lookup at 2x the speed of fancy indexing
    # seeds: h-maxima of the distance (depth split_depth_um), merged within min_distance_um
    depth = max(s.split_depth_um / mpp, 1e-3)
    if depth < 1 and not fg.all():
        # one nucleus at a time, in its box grown by a pixel: the whole map's distances and maxima on
        # every pixel (csrc/nucleus_seeds.hpp says why) at ~1/5 of the pixels' work
        dist, peaks = _native.component_distance_maxima(comp.astype(np.int32, copy=False), keep.view(np.uint8), depth)
    else:
        dist = distance_transform(fg)
        peaks = h_maxima(dist, depth) if dist.max() > depth else (dist > 0).astype(np.uint8)
        peaks &= fg
    if s.min_distance_um > 0:
        peaks = binary_dilation(peaks, disk(0.5 * s.min_distance_um / mpp)) & fg
    markers, n_markers = ndi.label(peaks, structure=np.ones((3, 3), bool))
    # A component holding one marker is that nucleus whole (the flood cannot leave its component): only
    # components with several markers are flooded. Same labels as flooding every component.
    comp_of = np.zeros(n_markers + 1, np.int64)
    on = markers > 0
    comp_of[markers[on]] = comp[on]  # every pixel of a marker lies in one component
    marker_comp = comp_of[1:]  # component of marker 1 .. n_markers
    per_comp = np.bincount(marker_comp, minlength=n + 1)
    labels = np.zeros(h.shape, np.int32)
    single = per_comp == 1
    single[0] = False
    if single.any():
        owner = np.zeros(n + 1, np.int32)
        ids = np.arange(1, n_markers + 1, dtype=np.int32)
        alone = single[marker_comp]
        owner[marker_comp[alone]] = ids[alone]
        labels = np.take(owner, comp)
    several = per_comp >= 2
    several[0] = False
    if several.any():
        flood_mask = np.take(several, comp)
        # the native flood directly: its inputs are made here, valid by construction (seeded_watershed
        # validates them for other callers)
        flooded = _native.seeded_watershed(
            np.negative(dist, dtype=np.float32),
            np.where(flood_mask, markers, 0).astype(np.int32, copy=False),
            n_markers,
            flood_mask.view(np.uint8),
            np.inf,
            -1.0,
            None,
            None,
            False,
            8,
        )
        labels = np.where(flood_mask, flooded, labels)
    # components without a seed (flat, tiny) keep their own label
    orphan = fg & (labels == 0)
    if orphan.any():
        extra, n_extra = ndi.label(orphan, structure=np.ones((3, 3), bool))
        labels = np.where(orphan, extra + n_markers, labels)
    return labels.astype(np.int32)


def nuclei_scores(labels: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Agreement of found nuclei with a true nucleus mask or label map (for tests and benchmarks).

    A found nucleus is a true positive when its centroid lies on a true nucleus not already matched.

    Returns
    -------
    dict
        ``dice`` (pixel Dice of the masks), ``precision``, ``recall``, ``f1`` (object level), ``n_found``,
        ``n_true``.
    """
    from scipy import ndimage as ndi

    lab = np.asarray(labels)
    tru = np.asarray(truth)
    if lab.shape != tru.shape:
        raise InvalidInputError(f"labels and truth must have the same shape, got {lab.shape} and {tru.shape}")
    if tru.dtype == bool:
        tru, _ = ndi.label(tru, structure=np.ones((3, 3), bool))
    a, b = lab > 0, tru > 0
    dice = 2.0 * (a & b).sum() / max(a.sum() + b.sum(), 1)
    n_found = int(lab.max())
    n_true = int(len(np.unique(tru[tru > 0])))
    if n_found:
        cy, cx = np.array(ndi.center_of_mass(a, lab, range(1, n_found + 1))).T
        hit = tru[
            np.clip(np.rint(cy).astype(int), 0, lab.shape[0] - 1), np.clip(np.rint(cx).astype(int), 0, lab.shape[1] - 1)
        ]
        tp = len(np.unique(hit[hit > 0]))
    else:
        tp = 0
    precision = tp / n_found if n_found else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "dice": float(dice),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "n_found": float(n_found),
        "n_true": float(n_true),
    }
