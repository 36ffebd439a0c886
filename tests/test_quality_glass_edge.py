"""Glass edges: the phantom (her2fast.synth.artefacts.add_glass_edge) and the quality map's ``glass_edge`` reason."""

from __future__ import annotations

import numpy as np
import pytest

from her2fast.errors import InvalidInputError
from her2fast.qc import QUALITY_REASONS, QualityRules, quality_map
from her2fast.synth import make_tile
from her2fast.synth.artefacts import add_bubble, add_glass_edge, add_ink

MPP = 0.5


@pytest.fixture(scope="module")
def tile():
    return make_tile(512, category="2+", seed=11).rgb


def _od(rgb: np.ndarray) -> np.ndarray:
    return -np.log10(np.maximum(rgb.astype(float), 1.0) / 255.0)


def _figures(rgb, art, reason="glass_edge", mpp=MPP):
    """IoU with the mask, share of the artefact kept out, share of the clean tissue removed (on tissue)."""
    shape = rgb.shape[:2]
    clean = quality_map(rgb, mpp)
    on = np.repeat(np.repeat(clean.tissue, clean.step_px, 0), clean.step_px, 1)[: shape[0], : shape[1]]
    q = quality_map(art.rgb, mpp)
    found = q.upsample(shape, reason) & on
    out = q.upsample(shape) & on
    truth = art.mask & on
    iou = (found & truth).sum() / max((found | truth).sum(), 1)
    kept_out = (out & truth).sum() / max(truth.sum(), 1)
    removed = (out & ~art.mask & on).sum() / max((~art.mask & on).sum(), 1)
    return iou, kept_out, removed, q


def test_glass_edge_renders_a_grey_line_a_shadow_band_and_a_step():
    grey = np.full((400, 400, 3), (200, 190, 180), np.uint8)
    a = add_glass_edge(grey, MPP, seed=3, step_od=0.04)
    added = _od(a.rgb) - _od(grey)
    # neutral: the same optical density in every channel (up to the rounding to 8 bits)
    assert np.abs(added - added.mean(axis=2, keepdims=True)).max() < 0.012
    gain = added.mean(axis=2)
    changed = np.abs(gain) > 0.01
    beyond = changed & ~a.mask
    # the step: the same optical density everywhere beyond the band, on one side of the line only
    assert beyond.mean() > 0.2 and np.abs(gain[beyond] - 0.04).max() < 0.01
    assert not (changed[~a.mask] ^ beyond[~a.mask]).any()
    # the line is the darkest part of the band, the band darker than the step beyond it
    assert np.percentile(gain[a.mask], 99) > 0.3 + 0.04
    assert np.median(gain[a.mask]) > 0.04 + 0.05
    flat = add_glass_edge(grey, MPP, seed=3, step_od=0.0)
    assert np.array_equal(flat.mask, a.mask)
    assert np.array_equal(flat.rgb[~a.mask], grey[~a.mask])  # no step: only the mask changes
    assert flat.params["band_um"] == a.params["band_um"] and a.params["step_od"] == 0.04


def test_glass_edge_argument_errors(tile):
    with pytest.raises(InvalidInputError, match="width_um"):
        add_glass_edge(tile, MPP, width_um=0.0)
    with pytest.raises(InvalidInputError, match="step_od"):
        add_glass_edge(tile, MPP, step_od=float("nan"))
    with pytest.raises(InvalidInputError, match="edge_max_um"):
        QualityRules(edge_max_um=30.0)
    with pytest.raises(InvalidInputError, match="edge_cover"):
        QualityRules(edge_cover=0.0)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_glass_edge_is_found(tile, seed):
    a = add_glass_edge(tile, MPP, seed=seed)
    iou, kept_out, removed, q = _figures(tile, a)
    assert iou >= 0.7 and kept_out >= 0.95 and removed <= 0.02, (seed, iou, kept_out, removed)
    others = {r: v for r, v in q.removed_fraction().items() if r not in ("glass_edge", "any")}
    assert max(others.values()) <= 0.005, others


def test_glass_edge_needs_its_detector(tile):
    """Without the detector the shadow band's raised optical-density floor is taken for a fold: the detector
    names it, and with it no fold is found."""
    a = add_glass_edge(tile, MPP, seed=1)
    others = QualityRules(look_for=tuple(r for r in QUALITY_REASONS if r != "glass_edge"))
    without = quality_map(a.rgb, MPP, rules=others)
    on = np.repeat(np.repeat(quality_map(tile, MPP).tissue, 8, 0), 8, 1)
    assert not without.reasons["glass_edge"].any()
    assert (without.upsample(tile.shape[:2], "fold") & a.mask & on).sum() > 0.5 * (a.mask & on).sum()
    with_it = quality_map(a.rgb, MPP)
    assert not with_it.reasons["fold"].any() and with_it.reasons["glass_edge"].any()


@pytest.mark.parametrize("step_od", [-0.03, 0.05])
def test_a_brightness_step_across_the_edge_is_not_a_fold(step_od):
    """Tissue made darker (or paler) beyond the edge is judged for folds against its own side's tissue: measured
    against the whole tile's, the pale tissue beyond a step of 0.05 read as a fold (10 % of the tissue)."""
    rgb = make_tile(1024, category="2+", variant="near-threshold", seed=21).rgb
    a = add_glass_edge(rgb, MPP, seed=21, step_od=step_od)
    iou, kept_out, removed, q = _figures(rgb, a)
    assert not q.reasons["fold"].any() and removed <= 0.02 and kept_out >= 0.95, (removed, kept_out)


def test_glass_edge_at_other_resolutions(tile):
    """The same edge on the same tissue scanned at 1 um/px (and at 0.25 um/px) is found as well."""
    a = add_glass_edge(tile, MPP, seed=2)
    coarse = a.rgb.reshape(256, 2, 256, 2, 3).mean(axis=(1, 3)).round().astype(np.uint8)
    mask = a.mask.reshape(256, 2, 256, 2).mean(axis=(1, 3)) >= 0.5
    q = quality_map(coarse, 1.0)
    found = q.upsample(mask.shape, "glass_edge")
    assert (found & mask).sum() >= 0.9 * mask.sum() and (found & ~mask).sum() <= 0.3 * mask.sum()
    fine = np.repeat(np.repeat(a.rgb, 2, 0), 2, 1)
    big = np.repeat(np.repeat(a.mask, 2, 0), 2, 1)
    found = quality_map(fine, 0.25).upsample(big.shape, "glass_edge")
    assert (found & big).sum() >= 0.9 * big.sum() and (found & ~big).sum() <= 0.3 * big.sum()


def test_a_bare_grey_line_is_a_narrow_band(tile):
    """A long thin grey line without a shadow (a scratch, the edge of a coverslip seen from above) is
    left out with a few micrometres either side, not a shadow band's width."""
    yy, xx = np.mgrid[0:512, 0:512]
    d = (xx - 200) * np.cos(0.3) - (yy - 256) * np.sin(0.3)  # px from a line through (200, 256)
    line = np.abs(d) <= 3.0  # 3 um wide
    od = _od(tile)
    od[line] += 0.5
    img = np.clip(np.rint(255.0 * 10.0 ** (-od)), 0, 255).astype(np.uint8)
    q = quality_map(img, MPP)
    found = q.upsample((512, 512), "glass_edge")
    assert found[line].mean() > 0.9
    assert found[np.abs(d) > 24].sum() == 0 and found.sum() < 6 * line.sum()


def test_steps_bubbles_and_ink_are_not_glass_edges(tile):
    """A straight brightness step without a line, a bubble's rim and the edges of a black ink stroke are
    not glass edges."""
    yy, xx = np.mgrid[0:512, 0:512]
    od = _od(tile)
    od[(xx - 250) * 0.9 + (yy - 250) * 0.4 > 0] += 0.15  # a neutral step across the whole image
    step = np.clip(np.rint(255.0 * 10.0 ** (-od)), 0, 255).astype(np.uint8)
    bubble = add_bubble(tile, MPP, seed=2).rgb
    ink = add_ink(tile, MPP, seed=2, width_um=60.0, colour="black").rgb
    for img in (step, bubble, ink):
        assert not quality_map(img, MPP).reasons["glass_edge"].any()


def test_real_fields_lose_nothing_to_glass_edges():
    """The 16 freely usable real fields (her2-ihc-40x and real-fields/tune) have no glass edge."""
    from _helpers import load_rgb, shared_file

    base = shared_file("ihc/her2-ihc-40x/her2ihc40x_score0.png").parents[1]
    paths = sorted((base / "her2-ihc-40x").glob("*.png")) + sorted((base / "real-fields" / "tune").rglob("*.png"))
    assert len(paths) == 16
    for path in paths:
        rgb = load_rgb(path)
        mpp = 0.6 if path.parent.name == "her2-ihc-40x" else 420.0 / rgb.shape[1]
        q = quality_map(rgb, mpp)
        assert q.tissue.mean() > 0.2 and not q.reasons["glass_edge"].any(), path.name
