"""her2fast.synth: phantom tiles and slides -- ground truth aligned with the pixels, categories as
claimed, slides OpenSlide reads with the right MPP, determinism, and bounded memory."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from skimage.color import rgb2hed

from her2fast import InvalidInputError
from her2fast.scoring import score_cells
from her2fast.synth import PRESETS, load_ground_truth, make_slide, make_tile, phantom_cells
from her2fast.synth.presets import get_preset
from her2fast.synth.scene import Scene
from her2fast.synth.tile import render_region


@pytest.fixture(scope="module")
def tile3() -> object:
    return make_tile(256, category="3+", seed=1, jpeg_quality=None)


def test_tile_shapes_and_dtypes(tile3):
    t = tile3
    assert t.rgb.shape == (256, 256, 3) and t.rgb.dtype == np.uint8
    for m in (t.membrane_mask, t.membrane_edge, t.nuclei_mask, t.epithelium_mask):
        assert m.shape == (256, 256) and m.dtype == bool
    assert t.cell_labels.dtype == np.int32
    assert t.category == score_cells(t.cells).category
    assert 0.2 < t.epithelium_mask.mean() < 0.8 and t.membrane_mask.any() and t.nuclei_mask.any()


def test_membrane_mask_aligns_with_rendered_dab(tile3):
    t = tile3
    dab = rgb2hed(t.rgb)[..., 2]  # stain separation of the *rendered RGB*, not the truth
    inside = dab[t.membrane_mask].mean()
    outside = dab[~t.membrane_mask & t.epithelium_mask].mean()
    assert inside > outside + 4 * dab[~t.membrane_mask].std() / 4
    assert t.dab_od[t.membrane_mask].mean() > 5 * t.dab_od[~t.membrane_mask].mean()
    # the edge target lies on stained membrane
    assert t.membrane_mask[t.membrane_edge].mean() > 0.5
    # nuclei are hematoxylin-dark
    hem = rgb2hed(t.rgb)[..., 0]
    assert hem[t.nuclei_mask].mean() > hem[~t.nuclei_mask].mean() + 0.02


def test_null_tile_has_no_membrane_and_no_dab():
    t = make_tile(192, category="0", seed=2, jpeg_quality=None)
    assert not t.membrane_mask.any() and not t.membrane_edge.any()
    assert t.category == "0"
    assert (t.cells.intensity[t.cells.is_tumour] == 0).all()


def test_cell_table_matches_label_map(tile3):
    c = tile3.cells.select(tile3.cells.is_tumour)
    iy, ix = np.rint(c.y).astype(int), np.rint(c.x).astype(int)
    ok = (iy >= 0) & (iy < 256) & (ix >= 0) & (ix < 256)
    assert ok.all()
    assert (tile3.cell_labels[iy, ix] == c.cell_id).mean() > 0.98  # the centre lies in its own cell
    assert set(np.unique(c.cell_id)) <= set(np.unique(tile3.cell_labels))


def test_tiles_agree_across_render_borders():
    scene = Scene(get_preset("2+"), 5, 200.0, 200.0, with_glass=False)
    whole = render_region(scene, 0, 0, 192, 160, 0.5, noise_seed=0)
    for x, y, w, h in [(0, 0, 100, 70), (100, 0, 92, 70), (0, 70, 100, 90), (100, 70, 92, 90)]:
        part = render_region(scene, x, y, w, h, 0.5, noise_seed=7)
        for name in ("cell_labels", "membrane_mask", "membrane_edge", "nuclei_mask", "epithelium_mask"):
            np.testing.assert_array_equal(getattr(part, name), getattr(whole, name)[y : y + h, x : x + w], err_msg=name)
        diff = np.abs(part.rgb.astype(int) - whole.rgb[y : y + h, x : x + w].astype(int))
        assert diff.mean() < 3.0  # only the sensor noise differs


def test_tissue_tint_darkens_tissue_not_glass_and_keeps_the_layout():
    """Generator version 2: a faint grey-beige absorbance over tissue (real patches: 0.93-0.97 of the glass
    white), drawn from its own random stream so every seed's cells are where version 1 put them."""
    import dataclasses

    scene = Scene(get_preset("0"), 11, 400.0, 400.0, with_glass=True)
    t_h, t_dab = scene.stain.tissue_tint
    assert 0.015 <= t_h <= 0.07 and 0.45 * t_h <= t_dab <= 0.8 * t_h
    tinted = render_region(scene, 0, 0, 800, 800, 0.5, noise_seed=0)
    scene.stain = dataclasses.replace(scene.stain, tissue_tint=(0.0, 0.0))
    plain = render_region(scene, 0, 0, 800, 800, 0.5, noise_seed=0)
    for name in ("cell_labels", "membrane_mask", "nuclei_mask", "epithelium_mask", "tissue_mask"):
        np.testing.assert_array_equal(getattr(tinted, name), getattr(plain, name), err_msg=name)
    from scipy.ndimage import binary_erosion

    tissue = tinted.tissue_mask
    glass = binary_erosion(~tissue, iterations=4)  # beyond the optical blur of the tissue's edge
    assert 0.1 < glass.mean() < 0.9
    od = np.log(plain.rgb.astype(float) + 1) - np.log(tinted.rgb.astype(float) + 1)
    # tissue: the tint's OD (t_h * H vector + t_dab * DAB vector, +-30 %) in every channel; glass: untouched
    for c in range(3):
        assert 0.4 * t_h < np.median(od[..., c][tissue]) < 1.6 * (t_h + t_dab), c
    assert np.abs(od[glass]).max() < 0.01 and np.abs(od[glass]).mean() < 1e-3  # at most one grey level
    # a different seed draws a different tint
    assert Scene(get_preset("0"), 12, 10.0, 10.0, with_glass=False).stain.tissue_tint != (t_h, t_dab)
    # the tint comes from its own stream: the layout stream is left where version 1 left it
    from her2fast.synth.scene import StainModel

    with_tint, without = np.random.default_rng([11, 0x5CE7E]), np.random.default_rng([11, 0x5CE7E])
    a = StainModel.draw(with_tint, np.random.default_rng([11, 0x7147]))
    b = StainModel.draw(without)
    assert b.tissue_tint == (0.0, 0.0) and a.tissue_tint == (t_h, t_dab)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    assert with_tint.random() == without.random()


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_category_is_what_it_claims(name):
    category, variant = name.split("/")
    cells = phantom_cells(category=category, variant=variant, width=3000, height=3000, seed=0)
    res = score_cells(cells)
    assert res.fractions.n_tumour_cells > 2000
    assert res.category == PRESETS[name].category, res.fractions.as_percentages()


def test_make_tile_is_deterministic():
    a = make_tile(96, category="2+", seed=4)
    b = make_tile(96, category="2+", seed=4)
    c = make_tile(96, category="2+", seed=5)
    assert a.rgb.tobytes() == b.rgb.tobytes() and np.array_equal(a.cell_labels, b.cell_labels)
    assert a.rgb.tobytes() != c.rgb.tobytes()


def _digest(gt) -> str:
    h = hashlib.sha256()
    for p in [gt.path, *gt.sidecar.values()]:
        h.update(p.read_bytes())
    return h.hexdigest()


def test_slide_opens_in_openslide_with_mpp_and_levels(tmp_path):
    openslide = pytest.importorskip("openslide")
    gt = make_slide(tmp_path / "p.tiff", category="3+", width=1100, height=700, mpp=0.25, seed=1, tile_size=256)
    levels = ((1100, 700), (550, 350), (275, 175), (138, 88))  # halved until one tile holds the level
    assert gt.category == "3+" and gt.level_dimensions == list(levels)
    with openslide.OpenSlide(str(gt.path)) as s:
        assert s.dimensions == (1100, 700)
        assert s.level_count == 4
        assert s.level_dimensions == levels
        assert s.level_downsamples[1] == pytest.approx(2.0)
        assert float(s.properties["openslide.mpp-x"]) == pytest.approx(0.25, rel=1e-4)
        assert float(s.properties["openslide.mpp-y"]) == pytest.approx(0.25, rel=1e-4)
        region = np.asarray(s.read_region((400, 250), 0, (256, 256)).convert("RGB"))
        assert region.std() > 5  # tissue, not an empty tile
        low = np.asarray(s.read_region((0, 0), 2, (275, 175)).convert("RGB")).astype(float)
        assert low.mean() < 250
    info = json.loads(gt.sidecar["json"].read_text())
    assert info["category"] == gt.category and info["mpp"] == 0.25 and info["seed"] == 1
    back = load_ground_truth(gt.path)
    assert back.category == gt.category and len(back.cells) == len(gt.cells)
    assert back.epithelium_mask.shape == gt.epithelium_mask.shape and gt.epithelium_mask.max() > 128


def test_is_current_phantom_knows_the_generator_version(tmp_path, monkeypatch):
    import her2fast.synth.slide as slide_mod
    from her2fast.synth import is_current_phantom

    path = tmp_path / "p.tiff"
    assert not is_current_phantom(path)
    make_slide(path, category="1+", width=256, height=256, seed=4)
    assert is_current_phantom(path)
    monkeypatch.setattr(slide_mod, "GENERATOR_VERSION", "older")
    assert not is_current_phantom(path)


def test_same_seed_same_bytes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    kw = dict(category="1+", width=512, height=384, seed=9, tile_size=256)
    a = make_slide(tmp_path / "a" / "s.tiff", **kw)
    b = make_slide(tmp_path / "b" / "s.tiff", **kw)
    assert _digest(a) == _digest(b)
    c = make_slide(tmp_path / "c.tiff", **{**kw, "seed": 10})
    assert c.path.read_bytes() != a.path.read_bytes()


def test_errors_name_the_parameter(tmp_path):
    with pytest.raises(InvalidInputError, match="category must be one of"):
        make_tile(64, category="4+")
    with pytest.raises(InvalidInputError, match="variant 'odd'"):
        make_slide(tmp_path / "x.tiff", category="2+", variant="odd", width=512, height=512)
    with pytest.raises(InvalidInputError, match="width"):
        make_slide(tmp_path / "x.tiff", category="2+", width=10, height=512)
    with pytest.raises(InvalidInputError, match="does not exist"):
        make_slide(tmp_path / "no" / "x.tiff", category="2+", width=512, height=512)


def test_cli_tiles_and_slide(tmp_path, capsys):
    from her2fast.cli import main

    assert (
        main(["synth", "tiles", "--out", str(tmp_path / "t"), "-n", "1", "--size", "64", "--categories", "0+,3+"]) == 0
    )
    names = sorted(p.name for p in (tmp_path / "t").iterdir())
    assert names == [
        "synth_0p_typical_s0.npz",
        "synth_0p_typical_s0.png",
        "synth_3p_typical_s0.npz",
        "synth_3p_typical_s0.png",
    ]
    with np.load(tmp_path / "t" / "synth_3p_typical_s0.npz") as z:
        assert z["membrane_mask"].shape == (64, 64) and "cell_labels" in z.files
    assert (
        main(["synth", "slide", str(tmp_path / "s.tiff"), "--category", "2+", "--width", "512", "--height", "512"]) == 0
    )
    assert "true category" in capsys.readouterr().out
    assert main(["synth", "tiles", "--out", str(tmp_path / "t"), "--categories", "5+"]) == 1


_MEMORY_CHILD = textwrap.dedent(
    """
    import resource, sys, tempfile
    import numpy as np
    import her2fast.synth.slide as sl
    from her2fast.synth.tile import RenderedRegion

    def fake_render(scene, x0, y0, w, h, mpp, noise_seed, truth=True):
        # a cheap stand-in for the renderer: the test is about the writer (pyramid + sidecar) staying bounded
        rng = np.random.default_rng(noise_seed)
        rgb = rng.integers(120, 250, (h, w, 3), dtype=np.uint8)
        e = np.zeros((h, w), bool)
        return RenderedRegion(rgb, e[:0, :0], e[:0, :0], e[:0, :0], np.zeros((0, 0), np.int32), e, ~e,
                              np.zeros((0, 0), np.float32))

    sl.render_region = fake_render
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as d:
        gt = sl.make_slide(d + "/big.tiff", category="2+", width=12288, height=12288, mpp=0.25, seed=0,
                           jpeg_quality=60)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(before, after, len(gt.cells))
    """
)


@pytest.mark.slow
def test_writing_a_large_slide_has_bounded_memory():
    # 12288^2 RGB is 453 MB at full resolution; the streaming writer must stay far below that.
    out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    before_kb, after_kb, n_cells = map(int, out.stdout.split())
    assert n_cells > 10000
    assert (after_kb - before_kb) / 1024 < 80, f"peak RSS grew by {(after_kb - before_kb) / 1024:.0f} MB"


def test_assign_cells_matches_brute_force_power_diagram():
    from her2fast.synth._cells import assign_cells

    rng = np.random.default_rng(0)
    g = np.arange(-3, 14)
    jj, ii = np.meshgrid(g, g)
    sx = (jj.ravel() + 0.5 + rng.uniform(-0.42, 0.42, jj.size)) * 13.0
    sy = (ii.ravel() + 0.5 + rng.uniform(-0.42, 0.42, jj.size)) * 13.0
    w = rng.uniform(0, 30.0, sx.size)
    xs = (np.arange(160) + 0.5) * 0.5
    ys = (np.arange(128) + 0.5) * 0.5
    r = assign_cells(sx, sy, w, xs, ys, 16, reach=3.0, with_neighbour=True)
    X, Y = np.meshgrid(xs, ys)
    power = (X[..., None] - sx) ** 2 + (Y[..., None] - sy) ** 2 - w
    own = power.argmin(axis=2)
    np.testing.assert_array_equal(r.site, own)
    # distance to the own cell's boundary: min over the power bisectors
    sep = np.hypot(sx[own][..., None] - sx, sy[own][..., None] - sy)
    pown = np.take_along_axis(power, own[..., None], axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        bis = np.where(sep > 0, (power - pown) / (2 * sep), np.inf)
    d = np.minimum(bis.min(axis=2), 3.0)
    np.testing.assert_allclose(r.d_edge, d, atol=2e-3)
    near = d < 2.9
    np.testing.assert_array_equal(r.neighbour[near], bis.argmin(axis=2)[near])


def test_grid_noise_equals_pointwise_noise():
    from her2fast.synth._noise import fbm, grid_fbm, grid_value_noise, value_noise

    xs = np.linspace(3.1, 90.0, 70)
    ys = np.linspace(-20.0, 40.0, 50)
    X, Y = np.meshgrid(xs, ys)
    np.testing.assert_allclose(grid_value_noise(xs, ys, 2.0, 5), value_noise(X, Y, 2.0, 5), atol=1e-5)
    np.testing.assert_allclose(grid_fbm(xs, ys, 30.0, 7, octaves=3), fbm(X, Y, 30.0, 7, octaves=3), atol=1e-5)


def test_every_tumour_cell_is_rendered_around_its_centre():
    t = make_tile(384, category="3+", seed=3, jpeg_quality=None)
    c = t.cells.select(t.cells.is_tumour)
    iy = np.clip(np.rint(c.y).astype(int), 0, 383)
    ix = np.clip(np.rint(c.x).astype(int), 0, 383)
    assert (t.cell_labels[iy, ix] == c.cell_id).all()  # power weights never empty a cell


def test_slide_bytes_do_not_depend_on_workers(tmp_path):
    kw = dict(category="3+", width=640, height=512, seed=2, tile_size=256)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = make_slide(tmp_path / "a" / "s.tiff", workers=1, **kw)
    b = make_slide(tmp_path / "b" / "s.tiff", workers=3, **kw)
    assert _digest(a) == _digest(b)
