"""Tissue detection (phantom truth, pen marks, dust, pale counterstain, real slides) and the TileGrid."""

from __future__ import annotations

import numpy as np
import pytest

from her2fast import InvalidInputError, NotBrightfieldError
from her2fast.io.slide import Slide, open_slide
from her2fast.stages.tissue import (
    MAX_HOLE_UM2,
    TileGrid,
    TissueMask,
    detect_tissue,
    pen_mask,
    read_tiles,
    segment_tissue,
    tile_grid,
)

from _helpers import load_rgb, shared_file


@pytest.fixture(scope="module")
def phantom(phantom_slide):
    """The 2048^2 2+ phantom (0.5 um/px), made once per test run (shared with test_slide.py)."""
    with open_slide(phantom_slide(category="2+", width=2048, height=2048, mpp=0.5, seed=0).path) as slide:
        yield slide


def phantom_truth(n: int, mask_mpp: float) -> np.ndarray:
    """True tissue of the phantom at the centres of an n x n mask of mask_mpp um/px."""
    from her2fast.synth.presets import get_preset
    from her2fast.synth.scene import Scene

    scene = Scene(get_preset("2+", "typical"), 0, 1024.0, 1024.0, with_glass=True)
    c = (np.arange(n) + 0.5) * mask_mpp
    x, y = np.meshgrid(c, c)
    return scene.tissue_field(x, y) > 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# ------------------------------------------------------------------------------------ tissue mask
def test_phantom_tissue_matches_truth(phantom):
    tissue = detect_tissue(phantom)
    assert isinstance(tissue, TissueMask)
    assert tissue.mask.shape == (128, 128) and tissue.mask.dtype == bool
    assert tissue.mpp == 8.0 and tissue.level0_per_pixel == (16.0, 16.0)
    assert 0.03 <= tissue.threshold <= 0.15 and tissue.low_threshold < tissue.threshold
    truth = phantom_truth(128, 8.0)
    # 0.958 with the current phantom generator (the evaluation target is >= 0.95 on held-out phantoms); at
    # 8 um/px a one-pixel boundary is 4 % of this small (1 mm) phantom's area
    assert iou(tissue.mask, truth) >= 0.93
    assert not tissue.mask[:3].any() and not tissue.mask[:, :3].any()  # glass border excluded
    assert tissue.fraction == pytest.approx(truth.mean(), abs=0.05)
    assert tissue.area_mm2 == pytest.approx(tissue.mask.sum() * 64e-6)
    assert not tissue.pen.any()


def test_pen_marks_and_dust_are_excluded(phantom):
    thumb = phantom.thumbnail(8.0).copy()
    pen = np.zeros(thumb.shape[:2], bool)
    strokes = [
        ((slice(20, 24), slice(5, 120)), (30, 60, 170)),  # blue marker across glass and tissue
        ((slice(100, 104), slice(5, 120)), (60, 150, 80)),  # green
        ((slice(60, 64), slice(60, 64)), (20, 20, 22)),
    ]  # black dot on tissue
    for where, colour in strokes:
        thumb[where] = colour
        pen[where] = True
    rng = np.random.default_rng(1)
    dust = [(int(y), int(x)) for y, x in rng.integers(2, 10, (6, 2))]
    for y, x in dust:  # grey specks on glass
        thumb[y, x] = (120, 120, 120)
    tissue = segment_tissue(thumb, 8.0)
    assert (tissue.pen & pen).sum() == pen.sum()
    assert not (tissue.mask & pen).any()
    assert not any(tissue.mask[y, x] for y, x in dust)
    from scipy import ndimage as ndi

    near = ndi.binary_dilation(pen, iterations=3)
    truth = phantom_truth(128, 8.0)
    assert iou(tissue.mask & ~near, truth & ~near) >= 0.92


def test_pen_mask_spares_stains():
    colours = {
        "hematoxylin (violet)": (110, 80, 170),
        "dense hematoxylin": (48, 17, 59),
        "DAB 3+": (120, 70, 40),
        "eosin": (230, 120, 180),
        "pale counterstain": (215, 212, 232),
        "glass": (243, 243, 243),
    }
    img = np.array([[c for c in colours.values()]], np.uint8)
    assert not pen_mask(img).any()
    ink = np.array([[(30, 60, 170), (40, 90, 200), (60, 150, 80), (20, 20, 22)]], np.uint8)
    assert pen_mask(ink).all()


def test_pen_must_be_wide():
    # the same ink colour: a 5 um dot is a nucleus, a 40 um wide stroke is ink (at 1 um/px)
    img = np.full((120, 120, 3), 240, np.uint8)
    img[10:15, 10:15] = (30, 60, 170)
    img[60:100, 5:115] = (30, 60, 170)
    by_colour = pen_mask(img)
    assert by_colour[10:15, 10:15].all() and by_colour[60:100, 5:115].all()
    pen = pen_mask(img, 1.0)
    assert not pen[10:15, 10:15].any() and pen[60:100, 5:115].all()
    assert not pen_mask(img, 1.0, min_width_um=50.0).any()
    with pytest.raises(InvalidInputError, match="mpp"):
        pen_mask(img, -1.0)


@pytest.mark.parametrize(
    "name", ["her2ihc40x_score0.png", "her2ihc40x_score1+.png", "her2ihc40x_score2+.png", "her2ihc40x_score3+.png"]
)
def test_edge_to_edge_tissue_patches(name):
    # tissue edge to edge, no glass in view (~0.6 um/px): all tissue, and the dark blue nuclei of the 1+ patch
    # (hue 225-235 deg, saturation up to 0.65: ink-coloured) are not pen
    rgb = load_rgb(shared_file(f"ihc/her2-ihc-40x/{name}"))
    tissue = segment_tissue(rgb, 0.6)
    assert tissue.fraction >= 0.98
    assert not tissue.pen.any()
    if name == "her2ihc40x_score1+.png":
        assert pen_mask(rgb).sum() > 100  # by colour alone the nuclei would be ink


def test_skimage_ihc_is_tissue(ihc_image):
    tissue = segment_tissue(ihc_image, 0.5)
    assert tissue.fraction >= 0.95 and not tissue.pen.any()


def test_holes_fat_and_large_gaps():
    # tissue disc (8 um/px) with: a small empty hole (0.1 mm^2), a large empty area (1.2 mm^2) and a fat-like
    # patch of faint polygonal membranes at the edge of the tissue
    rng = np.random.default_rng(4)
    n = 400
    img = np.clip(rng.normal(246, 0.4, (n, n, 3)), 0, 255)
    yy, xx = np.mgrid[:n, :n]
    disc = (yy - 200) ** 2 + (xx - 200) ** 2 < 170**2
    img[disc] = np.clip(rng.normal([200, 185, 215], 8, (disc.sum(), 3)), 0, 255)
    small = (yy - 120) ** 2 + (xx - 200) ** 2 < 22**2  # ~0.1 mm^2
    large = (yy - 230) ** 2 + (xx - 150) ** 2 < 77**2  # ~1.2 mm^2 > MAX_HOLE_UM2
    fat = (yy - 200) ** 2 + (xx - 350) ** 2 < 40**2  # straddles the disc's edge (a bay of fat)
    img[small | large | fat] = np.clip(rng.normal(246, 0.4, ((small | large | fat).sum(), 3)), 0, 255)
    membrane = fat & (((yy % 9) == 0) | ((xx % 9) == 0))  # adipocyte outlines, ~3 grey levels
    img[membrane] -= 3
    tissue = segment_tissue(img.astype(np.uint8), 8.0)
    assert small.sum() * 64 < MAX_HOLE_UM2 < large.sum() * 64
    assert tissue.mask[small].mean() > 0.99  # filled: a hole inside tissue
    core = (yy - 230) ** 2 + (xx - 150) ** 2 < 65**2
    assert not tissue.mask[core].any()  # a large empty area stays out
    assert tissue.mask[fat].mean() > 0.9  # fat (textured) is tissue, even where it reaches the edge
    assert not tissue.mask[:20].any()
    # without texture the bay of fat reaching the edge is glass
    img2 = img.copy()
    img2[membrane] += 3
    assert segment_tissue(img2.astype(np.uint8), 8.0).mask[fat & ~disc].mean() < 0.2


def test_pale_counterstain_and_empty_glass():
    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(243, 2, (200, 200, 3)), 0, 255)
    yy, xx = np.mgrid[:200, :200]
    blob = (yy - 100) ** 2 + (xx - 90) ** 2 < 60**2
    img[blob] = np.clip(rng.normal([228, 226, 236], 3, (blob.sum(), 3)), 0, 255)  # faint blue IHC counterstain
    tissue = segment_tissue(img.astype(np.uint8), 8.0)
    assert iou(tissue.mask, blob) >= 0.93
    glass = np.clip(rng.normal(243, 2, (200, 200, 3)), 0, 255).astype(np.uint8)
    assert not segment_tissue(glass, 8.0).mask.any()
    white = np.full((50, 50, 3), 255, np.uint8)
    assert not segment_tissue(white, 8.0).mask.any()


def test_pale_tissue_beside_dark_tissue():
    # a pale, unstained piece (a HER2-0 patient tissue) beside a dark one (a 3+ control): the dark piece
    # pushes the seed threshold above every pixel of the pale one, which must still be tissue
    rng = np.random.default_rng(5)
    img = np.clip(rng.normal(246, 1.5, (200, 400, 3)), 0, 255)
    yy, xx = np.mgrid[:200, :400]
    pale = (yy - 100) ** 2 + (xx - 100) ** 2 < 70**2
    dark = (yy - 100) ** 2 + (xx - 300) ** 2 < 70**2
    img[pale] = np.clip(rng.normal([222, 220, 232], 3, (pale.sum(), 3)), 0, 255)  # OD ~0.03-0.05
    img[dark] = np.clip(rng.normal([120, 80, 60], 8, (dark.sum(), 3)), 0, 255)  # strong DAB
    tissue = segment_tissue(img.astype(np.uint8), 8.0)
    assert tissue.threshold > 0.06  # set by the dark piece: no pale pixel reaches it
    assert iou(tissue.mask & (xx < 200), pale) >= 0.9
    assert iou(tissue.mask & (xx >= 200), dark) >= 0.9
    # glass with a faint smudge smaller than a tissue piece stays glass
    img2 = np.clip(rng.normal(246, 1.5, (200, 400, 3)), 0, 255)
    img2[dark] = img[dark]
    speck = (yy - 100) ** 2 + (xx - 100) ** 2 < 5**2
    img2[speck] = 225
    assert not segment_tissue(img2.astype(np.uint8), 8.0).mask[speck].any()


def test_padding_white_is_not_the_glass():
    # scanners pad unscanned areas with pure white; the real glass is greyer and must stay glass
    rng = np.random.default_rng(2)
    img = np.full((200, 200, 3), 255.0)
    img[20:180, 20:180] = rng.normal(238, 2, (160, 160, 3))
    img[60:140, 60:140] = rng.normal([200, 170, 200], 4, (80, 80, 3))
    tissue = segment_tissue(np.clip(img, 0, 255).astype(np.uint8), 8.0)
    truth = np.zeros((200, 200), bool)
    truth[60:140, 60:140] = True
    assert iou(tissue.mask, truth) >= 0.95


def test_real_slides_tissue():
    with open_slide(shared_file("wsi/cmu-1-small-region.svs")) as slide:
        tissue = detect_tissue(slide)
        assert tissue.mask.shape == (186, 139)
        assert 0.3 < tissue.fraction < 0.6  # H&E strip with glass on both sides
        assert not tissue.mask[:40, :40].any()  # glass in the top-left corner
    with open_slide(shared_file("wsi/tcga-cr-7395-01a-01-ts1.svs"), mpp=0.5) as slide:
        tissue = detect_tissue(slide)
        assert 0.55 < tissue.fraction < 0.75  # a large section; the white padding around it is glass
        # (its scanned glass is noisy; the texture rule must not turn that noise into tissue)
        assert not tissue.mask[0, :50].any()


@pytest.mark.parametrize("name", ["test3-DAPI-2-(387).ndpi", "test3-TRITC 2 (560).ndpi"])
def test_fluorescence_slide_refused(name):
    with open_slide(shared_file(f"wsi/{name}")) as slide:
        with pytest.raises(NotBrightfieldError, match="fluorescence"):
            detect_tissue(slide)


def test_tissue_arguments(phantom):
    with pytest.raises(InvalidInputError, match="rgb"):
        segment_tissue(np.zeros((10, 10), np.uint8), 8.0)
    with pytest.raises(InvalidInputError, match="mpp"):
        segment_tissue(np.zeros((10, 10, 3), np.uint8), 0)
    with pytest.raises(InvalidInputError, match="Slide"):
        detect_tissue(np.zeros((10, 10, 3), np.uint8))


# ------------------------------------------------------------------------------------ tile grid
@pytest.fixture()
def plain_slide(tmp_path):
    """A 1000 x 700 plain image at 0.5 um/px (fast, exact reads) with noise, for grid geometry."""
    from PIL import Image

    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (700, 1000, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    with open_slide(tmp_path / "p.png", mpp=0.5) as slide:
        yield slide


def hand_mask(mask: np.ndarray, mpp: float, slide: Slide) -> TissueMask:
    return TissueMask(
        mask=mask,
        mpp=mpp,
        threshold=0.1,
        low_threshold=0.02,
        pen=np.zeros_like(mask),
        background=np.full(3, 255.0),
        level0_per_pixel=(mpp / slide.mpp_x, mpp / slide.mpp_y),
    )


def test_grid_geometry_and_fractions(plain_slide):
    # mask at 8 um/px: 1000 x 700 px at 0.5 um/px = 500 x 350 um -> 63 x 44 mask pixels; tissue in a band
    mask = np.zeros((44, 63), bool)
    mask[:, 10:30] = True
    tissue = hand_mask(mask, 8.0, plain_slide)
    grid = tile_grid(plain_slide, tissue, tile_size=100, overlap=16, mpp=1.0, min_tissue=0.25)
    assert isinstance(grid, TileGrid)
    # 500 x 350 um at 1 um/px with 100 px tiles: 5 x 4 tiles, the last ones reaching past the edge
    assert (grid.n_cols, grid.n_rows) == (5, 4) and grid.occupancy.shape == (4, 5)
    # occupancy is the exact area fraction: tile col c covers mask x in [12.5c, 12.5(c+1)); tissue in [10, 30)
    expected_cols = np.array([2.5, 12.5, 5.0, 0, 0]) / 12.5
    rows_full = np.array([1, 1, 1, (44 * 8 - 300) / 100])  # the last row reaches 400 um; the mask ends at 352
    np.testing.assert_allclose(grid.occupancy, rows_full[:, None] * expected_cols[None, :], atol=1e-6)
    kept = set(zip(grid.cols.tolist(), grid.rows.tolist()))
    assert kept == {(c, r) for r in range(4) for c in range(5) if grid.occupancy[r, c] >= 0.25}
    assert (grid.tissue_fraction >= 0.25).all() and grid.n_empty == 20 - len(grid)
    # cores and padded bounds
    for t in grid:
        assert t.core == (t.col * 100, t.row * 100, t.col * 100 + 100, t.row * 100 + 100)
        assert t.padded == (t.core[0] - 16, t.core[1] - 16, t.core[2] + 16, t.core[3] + 16)
        assert t.core_level0 == tuple(2.0 * v for v in t.core)  # 1 um/px working, 0.5 um/px level 0
        assert t.padded_level0 == tuple(2.0 * v for v in t.padded)
        assert t.tissue_fraction == pytest.approx(grid.occupancy[t.row, t.col])


def test_grid_cores_partition_the_slide(phantom):
    tissue = detect_tissue(phantom)
    grid = tile_grid(phantom, tissue, tile_size=96, overlap=8, mpp=0.7, min_tissue=0.0)
    full = tile_grid(phantom, hand_mask(np.ones_like(tissue.mask), 8.0, phantom), tile_size=96, overlap=8, mpp=0.7)
    assert len(full) == full.n_total == full.n_cols * full.n_rows
    # cores of the full grid cover the slide (in working pixels) exactly once
    w, h = phantom.size_at(0.7)
    cover = np.zeros((full.n_rows * 96, full.n_cols * 96), np.int32)
    for x0, y0, x1, y1 in full.cores:
        cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all() and cover.shape[0] >= h and cover.shape[1] >= w
    assert cover.shape[0] - 96 < h and cover.shape[1] - 96 < w
    # level-0 cores are contiguous: each core's right edge is its neighbour's left edge
    l0 = full.to_level0(full.cores)
    right = {(int(c), int(r)): b for c, r, b in zip(full.cols, full.rows, l0)}
    for (c, r), b in right.items():
        if (c + 1, r) in right:
            assert right[(c + 1, r)][0] == b[2]
    # each level-0 point is owned by exactly the tile whose core holds it
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 2048, (500, 2))
    col, row = full.owner(pts[:, 0], pts[:, 1])
    for (px, py), c, r in zip(pts, col, row):
        x0, y0, x1, y1 = right[(int(c), int(r))]
        assert x0 <= px < x1 and y0 <= py < y1
    # tissue-only grid drops empty tiles (the phantom's glass corners)
    assert 0 < len(grid) < full.n_total
    assert (grid.tissue_fraction > 0).all()


def test_empty_tiles_are_never_read(phantom, monkeypatch):
    tissue = detect_tissue(phantom)
    grid = tile_grid(phantom, tissue, tile_size=256, overlap=32, mpp=0.5, min_tissue=0.5)
    assert grid.n_empty > 0
    calls = []
    original = Slide.read

    def counting_read(self, x, y, width, height, mpp=None, **kw):
        calls.append((x, y, width, height, mpp))
        return original(self, x, y, width, height, mpp, **kw)

    monkeypatch.setattr(Slide, "read", counting_read)
    tiles = list(read_tiles(phantom, grid))
    assert len(calls) == len(tiles) == len(grid)
    for ti, (x, y, w, h, mpp) in zip(tiles, calls):
        assert ti.image.shape == (320, 320, 3) and ti.image.dtype == np.uint8
        assert (x, y) == ti.tile.padded_level0[:2] and (w, h, mpp) == (320, 320, 0.5)
        assert grid.occupancy[ti.tile.row, ti.tile.col] >= 0.5


def test_tile_overlap_margins_agree(plain_slide):
    tissue = hand_mask(np.ones((44, 63), bool), 8.0, plain_slide)
    grid = tile_grid(plain_slide, tissue, tile_size=200, overlap=24, mpp=0.5)
    assert (grid.n_cols, grid.n_rows) == (5, 4) and len(grid) == 20
    tiles = {(t.tile.col, t.tile.row): t for t in read_tiles(plain_slide, grid)}
    full = plain_slide.read(-24, -24, 1000 + 48, 800 + 48)  # exact at level-0 resolution
    for (c, r), t in tiles.items():
        np.testing.assert_array_equal(t.image, full[r * 200 : r * 200 + 248, c * 200 : c * 200 + 248])
    a, b = tiles[(1, 1)].image, tiles[(2, 1)].image
    np.testing.assert_array_equal(a[:, 200:248], b[:, 0:48])  # shared strip: a's right margin + b's left
    edge = tiles[(4, 3)].image  # rows 600..800 of a 700-row slide
    assert (edge[24 + 100 :] == 255).all()


def test_grid_arguments(plain_slide):
    tissue = hand_mask(np.ones((44, 63), bool), 8.0, plain_slide)
    with pytest.raises(InvalidInputError, match="min_tissue"):
        tile_grid(plain_slide, tissue, min_tissue=1.5)
    with pytest.raises(InvalidInputError, match="overlap"):
        tile_grid(plain_slide, tissue, tile_size=64, overlap=65)
    with pytest.raises(InvalidInputError, match="TissueMask"):
        tile_grid(plain_slide, np.ones((4, 4), bool))
    grid = tile_grid(plain_slide, tissue)
    assert grid.tile_size == 512 and grid.overlap == 32 and grid.mpp == 0.5 and grid.padded_size == 576
    assert grid.overlap * grid.mpp > 12  # wider than a cell (~10-15 um)
    with pytest.raises(InvalidInputError, match="index"):
        grid.tile(len(grid))


def test_tissue_pieces_labels_areas_and_boxes():
    from her2fast.stages.tissue import tissue_pieces

    m = np.zeros((50, 80), bool)
    m[5:25, 5:30] = True  # 500 px = 32,000 um^2 at 8 um/px
    m[30:45, 50:75] = True  # 375 px
    m[2:4, 70:72] = True  # a speck below the minimum
    p = tissue_pieces(m, mpp=8.0, level0_per_pixel=(16.0, 16.0), min_area_um2=10_000.0)
    assert len(p) == 2 and p.area_um2.tolist() == [500 * 64.0, 375 * 64.0]
    assert p.bbox.tolist() == [[80.0, 80.0, 480.0, 400.0], [800.0, 480.0, 1200.0, 720.0]]
    assert p.labels[3, 71] == 0 and set(np.unique(p.labels)) == {0, 1, 2}
    assert p.piece_of(np.array([-5.0, 90.0, 900.0, 1e9]), np.array([90.0, 90.0, 500.0, 0.0])).tolist() == [0, 1, 2, 0]
    assert len(tissue_pieces(np.zeros((4, 4), bool), mpp=8.0, level0_per_pixel=(1.0, 1.0))) == 0
    with pytest.raises(InvalidInputError):
        tissue_pieces(np.zeros((4, 4)), mpp=8.0, level0_per_pixel=(1.0, 1.0))
