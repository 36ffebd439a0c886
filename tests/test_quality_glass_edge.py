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


def test_stained_look_alikes_render():
    """The look-alikes darken the tissue with the stain named (brown: blue absorbed most; grey: the channels
    within 20 % of each other), only where the mask says, and refuse an unknown colour."""
    from her2fast.synth.artefacts import LOOKALIKE_COLOURS, add_stained_border, add_stained_lines

    base = np.full((400, 400, 3), 230, np.uint8)
    for maker in (add_stained_lines, add_stained_border):
        for colour in ("brown", "grey"):
            a = maker(base, MPP, seed=5, colour=colour)
            assert a.params["colour"] == colour and 0.02 < a.mask.mean() < 0.9
            added = _od(a.rgb) - _od(base)
            assert np.abs(added[~a.mask]).max() < 0.1  # the lines, the fill and the border only
            v = np.median(added[a.mask & (added.max(axis=2) > 0.3)], axis=0)
            chroma = (v.max() - v.min()) / v.max()
            assert (chroma > 0.5 and v[2] == v.max()) if colour == "brown" else chroma < 0.2, (colour, v)
        with pytest.raises(InvalidInputError, match="colour"):
            maker(base, MPP, colour="red")
    assert set(LOOKALIKE_COLOURS) == {"brown", "grey"}
    solid = add_stained_lines(base, MPP, seed=5, colour="grey", dashed=False)
    assert solid.mask.sum() > add_stained_lines(base, MPP, seed=5, colour="grey").mask.sum()


@pytest.mark.parametrize(
    ("seed", "category", "colour"), [(6001, "1+", "grey"), (6001, "1+", "brown"), (6003, "3+", "grey")]
)
def test_stained_membranes_side_by_side_are_not_glass_edges(seed, category, colour):
    """Dark membranes running side by side across the tile (brown, or the hematoxylin-DAB mixture nearest
    grey, in cell-sized pieces) and a straight, ragged border of densely stained tissue are tissue: nothing is
    removed as a glass edge. Without the colour and continuity tests (``edge_max_chroma`` 1,
    ``edge_continuity`` ~0), lines through the membranes pass, with the dense side read as a shadow band."""
    from her2fast.synth.artefacts import add_stained_border, add_stained_lines

    rgb = make_tile(1024, category=category, seed=seed).rgb
    lines = add_stained_lines(rgb, MPP, seed=seed, colour=colour)
    border = add_stained_border(rgb, MPP, seed=seed, colour=colour)
    for look in (lines, border):
        q = quality_map(look.rgb, MPP)
        assert not q.reasons["glass_edge"].any(), (look.kind, q.removed_fraction()["glass_edge"])
    loose = QualityRules(edge_max_chroma=1.0, edge_continuity=1e-9)
    assert quality_map(lines.rgb, MPP, rules=loose).removed_fraction()["glass_edge"] > 0.05


def test_a_bare_brown_line_is_not_a_glass_edge(tile):
    """The bare line of test_a_bare_grey_line_is_a_narrow_band in a stain's colour (DAB with some
    hematoxylin: red 0.68 of green, grey enough to be a candidate) is not an edge: a glass edge's line is
    grey. Without the test on its colour (``edge_max_chroma`` 1) it is taken for one."""
    yy, xx = np.mgrid[0:512, 0:512]
    d = (xx - 200) * np.cos(0.3) - (yy - 256) * np.sin(0.3)
    dab, hem = np.array([0.268, 0.570, 0.776]), np.array([0.650, 0.704, 0.286])
    v = 0.6 * dab / np.linalg.norm(dab) + 0.4 * hem / np.linalg.norm(hem)
    od = _od(tile)
    od[np.abs(d) <= 3.0] += 0.6 * v / v.max()
    img = np.clip(np.rint(255.0 * 10.0 ** (-od)), 0, 255).astype(np.uint8)
    assert not quality_map(img, MPP).reasons["glass_edge"].any()
    assert quality_map(img, MPP, rules=QualityRules(edge_max_chroma=1.0)).reasons["glass_edge"].any()


def test_a_dashed_grey_line_is_not_a_glass_edge(tile):
    """The bare grey line broken into 12-um pieces, each moved 2 um across the line in turn (a row of cell
    membranes), shows in too few pieces along it: not an edge. Whole, it is one (test above)."""
    yy, xx = np.mgrid[0:512, 0:512]
    d = (xx - 200) * np.cos(0.3) - (yy - 256) * np.sin(0.3)
    along = (xx - 200) * np.sin(0.3) + (yy - 256) * np.cos(0.3)
    piece = np.floor(along / 32.0).astype(int)  # 16 um per piece: 12 um of line, 4 um of gap
    shift = np.where(piece % 2 == 0, -4.0, 4.0)  # px
    line = (np.abs(d - shift) <= 3.0) & ((along % 32.0) < 24.0)
    od = _od(tile)
    od[line] += 0.5
    img = np.clip(np.rint(255.0 * 10.0 ** (-od)), 0, 255).astype(np.uint8)
    assert not quality_map(img, MPP).reasons["glass_edge"].any()
    assert quality_map(img, MPP, rules=QualityRules(edge_continuity=1e-9)).reasons["glass_edge"].any()
