"""The ``out_of_focus`` detector of the quality map: the share of the detail energy at the finest scale."""

from __future__ import annotations

import numpy as np

from .grid import _block_mean, _drop_specks, _grow
from .rules import QualityRules

#: A window's edge vote is ``tanh(log10(ratio / focus_edge) / _VOTE_SPAN)``: near -1 or +1 once its focus ratio
#: is a factor of 2 or more (log10: 0.3) below or above ``focus_edge``.
_VOTE_SPAN = 0.3


def _focus(
    od: np.ndarray, work_mpp: float, s: int, ix: tuple, shape: tuple[int, int], rules: QualityRules
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The window's mean optical density and focus ratio at ``ix`` (the map pixels' centres), and the energies
    per map pixel.

    ``od`` is the optical density of the brightest channel at ``work_mpp`` (about 1 um/px), ``s`` of its
    pixels per map pixel; the focus ratio is ``E[fine^2] / E[detail^2]`` over the window. Returned with
    them, per map pixel (``shape``), the mean fine and detail energies (``fine^2``, ``detail^2``) of its own
    pixels.
    """
    from scipy import ndimage as ndi

    s1 = ndi.gaussian_filter(od, rules.fine_um / work_mpp, mode="reflect")
    s2 = ndi.gaussian_filter(od, rules.detail_um / work_mpp, mode="reflect")
    win = max(3, int(round(rules.window_um / work_mpp)))
    fine2 = (od - s1) ** 2
    detail2 = (s1 - s2) ** 2
    e_fine = ndi.uniform_filter(fine2, win, mode="reflect")
    e_detail = ndi.uniform_filter(detail2, win, mode="reflect")
    level = ndi.uniform_filter(od, win, mode="reflect")[ix]
    h, w = shape
    fine_map = np.zeros(shape, np.float32)
    detail_map = np.zeros(shape, np.float32)
    bf, bd = _block_mean(fine2, s)[:h, :w], _block_mean(detail2, s)[:h, :w]
    fine_map[: bf.shape[0], : bf.shape[1]] = bf
    detail_map[: bd.shape[0], : bd.shape[1]] = bd
    return level, (e_fine[ix] / np.maximum(e_detail[ix], 1e-9)).astype(np.float32), fine_map, detail_map


def _edge_votes(fine: np.ndarray, detail: np.ndarray, flat: np.ndarray, rules: QualityRules) -> np.ndarray:
    """Per map pixel, the evidence-weighted mean vote for "in focus" (> 0) or "out of focus" (< 0).

    Each map pixel's window of ``focus_edge_um`` votes by its focus ratio against ``focus_edge`` (-1 to +1,
    see ``_VOTE_SPAN``), weighted by its detail energy ``D`` as ``D / (D + focus_detail_min)``: a flat
    window (glass, smooth stroma) is flat in focus or not and says little. The votes are averaged with a
    Gaussian of ``focus_vote_um``; ``flat`` pixels (ink, saturated stain) do not vote. One more vote of -1
    with weight ``focus_edge_prior`` is added: where the windows carry almost no evidence, the pixel
    (always beside an out-of-focus area) sides with the area.
    """
    from scipy import ndimage as ndi

    n = max(1, int(round(rules.focus_edge_um / rules.step_um)))
    f = ndi.uniform_filter(fine, n, mode="reflect")
    d = ndi.uniform_filter(detail, n, mode="reflect")
    ratio = np.log10(np.maximum(f, np.float32(1e-12)) / np.maximum(d, np.float32(1e-12)))
    vote = np.tanh((ratio - np.log10(rules.focus_edge)) / _VOTE_SPAN)
    weight = np.where(flat, np.float32(0.0), d / (d + np.float32(rules.focus_detail_min)))
    sigma = rules.focus_vote_um / rules.step_um
    num = ndi.gaussian_filter((vote * weight).astype(np.float32), sigma, mode="reflect")
    den = ndi.gaussian_filter(weight.astype(np.float32), sigma, mode="reflect")
    prior = np.float32(rules.focus_edge_prior)  # one weak vote for "out of focus": no evidence sides with the area
    return (num - prior) / np.maximum(den + prior, np.float32(1e-6))


def _out_of_focus(
    tissue: np.ndarray,
    focus: np.ndarray,
    ink: np.ndarray,
    dark: np.ndarray,
    rules: QualityRules,
    fine: np.ndarray | None = None,
    detail: np.ndarray | None = None,
    pale: np.ndarray | None = None,
) -> np.ndarray:
    """Map pixels out of focus: windows with a focus ratio below ``focus_min``, specks dropped, edge placed again.

    A speck is an out-of-focus area smaller than one window; areas less than ``focus_bridge_um`` apart
    count as one (pale, patchy tissue out of focus is split by glass into pieces each smaller than a window),
    and specks within ``focus_near_um`` of a larger area are kept.
    A window's ratio reads low only when most of it is out of focus, and where the tissue beside a
    blurred area is smooth (pale stroma) windows reaching into the area read low too: the window places
    the area's edge to within about half a window. Map pixels within ``focus_edge_reach_um`` of that edge
    (on either side) are therefore decided again by the sign of the smaller windows' weighted votes
    (:func:`_edge_votes`, from the per-map-pixel energies ``fine`` and ``detail``); what stays connected to
    the area is kept, holes are filled, and the area is grown by one map pixel (a small window straddling
    the edge still reads in focus by the sharp part's fine detail). Without ``fine`` and ``detail`` the
    area is grown by half a window instead. ``pale`` windows (a mean optical density of at least
    ``focus_tissue_od``) count as tissue inside the area: blur lowers the mean optical density of pale
    tissue (the optical density of a mean is below the mean of the optical densities) under glass's level.
    """
    from scipy import ndimage as ndi

    # out of focus: windows reaching into ink or saturated stain are not judged (both are flat and would
    # read as blurred, and their edges inflate the cell-scale detail up to two detail sigmas away)
    half = 0.5 * rules.window_um / rules.step_um
    low = tissue & (focus < rules.focus_min) & ~_grow(ink | dark, half + 2.0 * rules.detail_um / rules.step_um)
    bridge = int(round(rules.focus_bridge_um / rules.step_um))
    if bridge > 0 and low.any():
        near = ndi.binary_closing(np.pad(low, bridge), iterations=bridge)[bridge:-bridge, bridge:-bridge]
        blurred = low & _drop_specks(near | low, (rules.window_um / rules.step_um) ** 2)
    else:
        blurred = _drop_specks(low, (rules.window_um / rules.step_um) ** 2)
    if not blurred.any():
        return blurred
    # a low window near a confirmed out-of-focus area is not chance (a tissue island in the area, split by glass)
    blurred |= low & _grow(blurred, rules.focus_near_um / rules.step_um)
    if fine is None or detail is None:
        return _grow(blurred, half) & tissue & ~ink
    reach = rules.focus_edge_reach_um / rules.step_um
    votes = _edge_votes(fine, detail, ink | dark, rules)
    deep = blurred & ~_grow(~blurred, reach)
    region = deep | (_grow(blurred, reach) & ~deep & (votes < 0))
    labels, _ = ndi.label(region, structure=np.ones((3, 3), bool))
    keep = np.zeros(int(labels.max()) + 1, bool)
    keep[labels[region & blurred]] = True
    keep[0] = False
    region = ndi.binary_fill_holes(keep[labels])
    return _grow(region, 1.0) & (tissue if pale is None else tissue | pale) & ~ink
