"""her2fast.stages.cells: territories, rays and per-tile cell measurement (hand-built tiles, references)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from skimage.segmentation import watershed

from her2fast import InvalidInputError
from her2fast.scoring import CellTable, IntensityClass
from her2fast.stages.cells import (
    CellSettings,
    TileCells,
    measure_tile,
    membrane_rays,
    merge_cell_tables,
    seeded_watershed,
)

from _helpers import assert_same_in_two_threads, disk_image, nucleus, ring


def membrane_like(seed: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A membrane probability map (cell outlines, some broken) and nuclei at the cell centres."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    pts = rng.integers(8, size - 8, (size * size // 500, 2))
    markers = np.zeros((size, size), np.int32)
    markers[pts[:, 1], pts[:, 0]] = np.arange(1, len(pts) + 1)
    cells = watershed(np.zeros((size, size)), markers)
    edges = np.zeros((size, size), bool)
    edges[:-1] |= cells[:-1] != cells[1:]
    edges[:, :-1] |= cells[:, :-1] != cells[:, 1:]
    edges &= ~ndi.binary_dilation(rng.random((size, size)) < 0.002, iterations=3)
    prob = np.clip(ndi.gaussian_filter(edges.astype(np.float32), 0.8) * 2.5, 0, 1).astype(np.float32)
    nuc = ndi.binary_dilation(markers > 0, iterations=2)
    return prob, nuc


# ------------------------------------------------------------------------------ hand-built tiles
def test_ring_with_nucleus_is_one_closed_complete_cell():
    mem = ring()
    t = measure_tile(mem, 1.5 * mem, nucleus(), mpp=0.5)
    assert isinstance(t, TileCells) and len(t.cells) == 1
    c = t.cells
    assert c.closed[0] and c.completeness[0] == pytest.approx(1.0)
    assert c.intensity[0] == IntensityClass.STRONG and c.membrane_dab_od[0] == pytest.approx(1.5)
    assert (c.x[0], c.y[0]) == (48.0, 48.0)
    assert 0.8 <= c.membrane_thickness[0] <= 2.0  # a 2-3 px band at 0.5 um/px
    # the territory fills the ring and its membrane: ~pi 13^2 px
    assert c.area[0] == pytest.approx(np.pi * 13.0**2 * 0.25, rel=0.1)
    assert t.n_artefact_loops == 0


@pytest.mark.parametrize("gap", [(0, 45), (0, 90), (100, 280)])
def test_broken_ring_is_open_and_incomplete(gap):
    mem = ring(gap_deg=gap)
    t = measure_tile(mem, 0.6 * mem, nucleus(), mpp=0.5)
    c = t.cells
    assert len(c) == 1 and not c.closed[0]
    expected = 1.0 - (gap[1] - gap[0]) / 360.0
    assert c.completeness[0] == pytest.approx(expected, abs=0.04)
    assert c.intensity[0] == IntensityClass.WEAK_MODERATE


def test_small_gap_is_not_a_gap_but_the_loop_is_open():
    mem = ring(gap_deg=(10, 20))  # 10 degrees, ~1 um
    c = measure_tile(mem, 1.0 * mem, nucleus(), mpp=0.5).cells
    assert not c.closed[0] and c.completeness[0] == pytest.approx(1.0)
    c0 = measure_tile(mem, 1.0 * mem, nucleus(), mpp=0.5, settings=CellSettings(max_gap_deg=0)).cells
    assert c0.completeness[0] < 1.0


def test_loop_without_nucleus_is_not_a_cell_but_an_artefact():
    mem = ring() | ring(centre=(20, 20), r_in=6, r_out=7.5, size=96)
    t = measure_tile(mem, mem * 1.0, nucleus(), mpp=0.5)
    assert len(t.cells) == 1 and t.cells.x[0] == 48.0
    assert t.n_artefact_loops == 1
    empty = measure_tile(ring(), ring() * 1.0, np.zeros((96, 96), bool), mpp=0.5)
    assert len(empty.cells) == 0 and empty.n_artefact_loops == 1 and empty.n_nuclei == 0


def test_unstained_cell_and_a_loop_around_two_nuclei():
    # no membrane: one negative cell, completeness 0
    c = measure_tile(np.zeros((96, 96)), np.zeros((96, 96)), nucleus(), mpp=0.5).cells
    assert len(c) == 1 and c.completeness[0] == 0 and c.intensity[0] == 0 and not c.closed[0]
    # a large loop around two nuclei: neither cell is closed by it
    big = ring(r_in=20, r_out=22)
    nuc = nucleus(centre=(40, 48)) | nucleus(centre=(58, 48))
    c2 = measure_tile(big, big * 1.0, nuc, mpp=0.5, settings=CellSettings(max_radius_um=14)).cells
    assert len(c2) == 2 and not c2.closed.any()


def test_two_cells_sharing_a_membrane_split_it():
    # Two nuclei side by side, a vertical membrane between them, boxes around.
    mem = np.zeros((60, 90), bool)
    mem[14:16, 14:76] = mem[44:46, 14:76] = True
    mem[14:46, 14:16] = mem[14:46, 74:76] = mem[14:46, 44:46] = True
    nuc = np.zeros_like(mem)
    nuc[27:33, 27:33] = nuc[27:33, 57:63] = True
    t = measure_tile(mem.astype(np.float32), mem * 0.8, nuc, mpp=0.5, return_maps=True)
    c = t.cells
    assert len(c) == 2 and c.closed.all()
    np.testing.assert_allclose(c.completeness, 1.0)
    terr = t.territories
    assert (terr[30, 16:44] == terr[30, 28]).all() and (terr[30, 46:74] == terr[30, 58]).all()
    assert terr[30, 28] != terr[30, 58]
    # the shared membrane is split between the two cells
    assert set(np.unique(terr[30, 44:46])) <= {terr[30, 28], terr[30, 58]}


def test_epithelium_mask_sets_is_tumour_and_labels_and_probabilities_work():
    mem = ring()
    epi = np.zeros((96, 96), bool)
    c = measure_tile(mem, mem * 1.0, nucleus(), mpp=0.5, epithelium=epi).cells
    assert not c.is_tumour[0]
    labels = nucleus().astype(np.int32) * 7
    prob = np.clip(mem * 0.9 + 0.05, 0, 1).astype(np.float32)
    c2 = measure_tile(prob, mem * 1.0, labels, mpp=0.5).cells
    assert len(c2) == 1 and c2.closed[0] and c2.completeness[0] == 1.0


def test_ownership_by_core_and_margin_check():
    mem = ring(size=128, centre=(60, 64))
    nuc = nucleus(size=128, centre=(60, 64))
    inside = measure_tile(mem, mem * 1.0, nuc, mpp=0.5, origin=(1000, 2000), core=(1030, 2030, 1098, 2098))
    assert len(inside.cells) == 1 and (inside.cells.x[0], inside.cells.y[0]) == (1060.0, 2064.0)
    outside = measure_tile(mem, mem * 1.0, nuc, mpp=0.5, origin=(1000, 2000), core=(1061, 2030, 1098, 2098))
    assert len(outside.cells) == 0 and outside.n_nuclei == 1
    # centre exactly on the core's left edge belongs to this tile, on its right edge to the next
    on_edge = measure_tile(mem, mem * 1.0, nuc, mpp=0.5, origin=(1000, 2000), core=(1060, 2030, 1098, 2098))
    assert len(on_edge.cells) == 1
    with pytest.raises(InvalidInputError, match="tile margin"):
        measure_tile(mem, mem * 1.0, nuc, mpp=0.5, origin=(0, 0), core=(10, 10, 118, 118))
    with pytest.raises(InvalidInputError, match="inside the padded tile"):
        measure_tile(mem, mem * 1.0, nuc, mpp=0.5, origin=(0, 0), core=(-5, 30, 90, 90))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(membrane=np.zeros((4, 4, 3))), "membrane must be 2-D"),
        (dict(membrane=np.full((32, 32), 2.0)), r"probability in \[0, 1\]"),
        (dict(dab_od=np.zeros((31, 32))), "dab_od must have the shape"),
        (dict(dab_od=np.full((32, 32), np.nan)), "dab_od must be finite"),
        (dict(nuclei=np.zeros((32, 32), np.float32)), "nuclei must be a boolean mask or an integer label map"),
        (dict(mpp=0), "mpp must be finite and > 0"),
        (dict(core=(1, 2, 3)), "core must be"),
        (dict(settings=None), "settings must be a CellSettings"),
    ],
)
def test_measure_tile_errors_name_the_parameter(kwargs, match):
    args = dict(membrane=np.zeros((32, 32)), dab_od=np.zeros((32, 32)), nuclei=np.zeros((32, 32), bool))
    args.update(kwargs)
    membrane, dab_od, nuclei = args.pop("membrane"), args.pop("dab_od"), args.pop("nuclei")
    with pytest.raises(InvalidInputError, match=match):
        measure_tile(membrane, dab_od, nuclei, **args)


def test_settings_validation():
    with pytest.raises(InvalidInputError, match="membrane_threshold"):
        CellSettings(membrane_threshold=0)
    with pytest.raises(InvalidInputError, match="n_rays"):
        CellSettings(n_rays=2)
    with pytest.raises(InvalidInputError, match="max_radius_um"):
        CellSettings(max_radius_um=-1)


# --------------------------------------------------------------------- watershed vs scikit-image
@pytest.mark.parametrize("seed", range(6))
def test_watershed_equals_skimage_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(3, 120, 2))
    elev = rng.random((h, w)).astype(np.float32)
    k = int(rng.integers(1, 15))
    markers = np.zeros((h, w), np.int32)
    markers.flat[rng.choice(h * w, k, replace=False)] = np.arange(1, k + 1)
    mask = (rng.random((h, w)) < 0.85) | (markers > 0)
    np.testing.assert_array_equal(seeded_watershed(elev, markers), watershed(elev, markers, connectivity=1))
    np.testing.assert_array_equal(
        seeded_watershed(elev, markers, mask=mask), watershed(elev, markers, connectivity=1, mask=mask)
    )
    np.testing.assert_array_equal(
        seeded_watershed(elev, markers, mask=mask, connectivity=8), watershed(elev, markers, connectivity=2, mask=mask)
    )


def test_watershed_equals_skimage_on_membrane_like_landscapes():
    for seed in range(3):
        prob, nuc = membrane_like(seed)
        from scipy import ndimage as ndi

        markers, _ = ndi.label(nuc)
        ours = seeded_watershed(prob, markers)
        ref = watershed(prob, markers, connectivity=1)
        # plateaus: tie order among markers differs from scikit-image's heap; nearly all pixels agree
        assert (ours == ref).mean() > 0.97


def test_watershed_agrees_with_skimage_on_real_her2_patches(her2_patch):
    from scipy import ndimage as ndi
    from skimage.color import rgb2hed

    hed = rgb2hed(her2_patch[:384, :384])
    dab = hed[..., 2].astype(np.float32)
    elev = (dab - dab.min()) / max(float(np.ptp(dab)), 1e-6)
    hema = ndi.gaussian_filter(hed[..., 0], 2)
    blobs, n = ndi.label(hema > np.percentile(hema, 97))
    # one marker pixel per nucleus, at distinct elevations (scikit-image's markers all have age 0,
    # so the order among equal-valued markers is its heap's; ours is raster order)
    markers = np.zeros(elev.shape, np.int32)
    seen: set[float] = set()
    for pos in ndi.minimum_position(elev, blobs, range(1, n + 1)):
        if float(elev[pos]) not in seen:
            seen.add(float(elev[pos]))
            markers[pos] = len(seen)
    ours = seeded_watershed(elev, markers)
    ref = watershed(elev, markers, connectivity=1)
    assert (ours == ref).mean() > 0.999  # 8-bit colours: many equal elevations


def test_watershed_radius_barrier_and_climb_properties():
    rng = np.random.default_rng(7)
    elev = rng.random((80, 80)).astype(np.float32)
    markers = np.zeros((80, 80), np.int32)
    pts = np.array([[20, 20], [60, 25], [40, 60]])
    markers[pts[:, 1], pts[:, 0]] = [1, 2, 3]
    out = seeded_watershed(elev, markers, max_radius=15, centres=pts.astype(float))
    yy, xx = np.indices(out.shape)
    for k in (1, 2, 3):
        d = np.hypot(xx - pts[k - 1, 0], yy - pts[k - 1, 1])
        assert (d[out == k] <= 15).all()
    # the barrier: a wall of membrane around seed 1 keeps its flood inside (it may climb onto the wall)
    wall = ring(size=80, centre=(20, 20), r_in=8, r_out=9.5)
    land = np.where(wall, 1.0, 0.1).astype(np.float32)
    out = seeded_watershed(land, markers, barrier=0.5)
    r = np.hypot(xx - 20, yy - 20)
    assert (out[r > 10] != 1).all() and (out[r < 7] == 1).all()
    # climb on a tie-free landscape: still a partition of the same reachable pixels
    a = seeded_watershed(elev, markers)
    b = seeded_watershed(elev, markers, climb=True)
    np.testing.assert_array_equal(a > 0, b > 0)


def test_watershed_errors():
    with pytest.raises(InvalidInputError, match="markers must have the shape"):
        seeded_watershed(np.zeros((3, 3)), np.zeros((3, 4), np.int32))
    with pytest.raises(InvalidInputError, match="centres are required"):
        seeded_watershed(np.zeros((3, 3)), np.ones((3, 3), np.int32), max_radius=2)
    with pytest.raises(InvalidInputError, match="elevation must be finite"):
        seeded_watershed(np.full((3, 3), np.inf), np.ones((3, 3), np.int32))
    with pytest.raises(InvalidInputError, match="markers must be >= 0"):
        seeded_watershed(np.zeros((3, 3)), -np.ones((3, 3), np.int32))
    with pytest.raises(InvalidInputError, match="connectivity must be 4 or 8"):
        seeded_watershed(np.zeros((3, 3)), np.ones((3, 3), np.int32), connectivity=6)


def test_watershed_large_tile_queue_matches_skimage_and_threads():
    """Tile-sized, many-valued landscapes exercise the bucketed queue (buckets becoming current,
    pits below the current bucket); tie-free, so equal to scikit-image; same in two threads."""
    rng = np.random.default_rng(11)
    from scipy import ndimage as ndi

    maps = []
    for scale in (1e-3, -1.0, 1e4):  # tiny, negative and large elevations: different bucket ranges
        field = ndi.gaussian_filter(rng.random((300, 260)), 3) + rng.random((300, 260)) * 1e-3
        ranks = np.argsort(np.argsort(field, axis=None)).reshape(field.shape)  # smooth, but tie-free
        elev = (ranks * scale).astype(np.float32)
        assert len(np.unique(elev)) == elev.size
        markers = np.zeros(elev.shape, np.int32)
        markers.flat[rng.choice(elev.size, 40, replace=False)] = np.arange(1, 41)
        for conn, sk in ((4, 1), (8, 2)):
            np.testing.assert_array_equal(
                seeded_watershed(elev, markers, connectivity=conn), watershed(elev, markers, connectivity=sk)
            )
        maps.append((elev, markers))
    assert_same_in_two_threads(lambda em: seeded_watershed(em[0], em[1], barrier=float(np.median(em[0]))), maps)


# ---------------------------------------------------------------------------------- rays
def test_rays_match_a_numpy_reference_on_a_ring():
    mem = ring(r_in=11.5, r_out=12.5)
    terr = (np.hypot(*disk_image()) <= 12.5).astype(np.int32)
    run, peak = membrane_rays(terr, mem, mem * 2.0, np.array([[48.0, 48.0]]), n_rays=36)
    assert (run > 0).all() and np.allclose(peak, 2.0)
    # numpy reference: sample each ray densely; the crossing length of the band matches the run
    theta = 2 * np.pi * (np.arange(36) + 0.5) / 36
    t = np.arange(0, 20, 0.01)
    xs = np.floor(48 + 0.5 + np.outer(np.cos(theta), t)).astype(int)
    ys = np.floor(48 + 0.5 + np.outer(np.sin(theta), t)).astype(int)
    ref = (mem[ys, xs] & (terr[ys, xs] == 1)).sum(axis=1) * 0.01
    np.testing.assert_allclose(run[0], ref, atol=0.05)


def test_rays_errors():
    z = np.zeros((8, 8))
    with pytest.raises(InvalidInputError, match="n_rays"):
        membrane_rays(z.astype(np.int32), z > 0, z, [[4.0, 4.0]], n_rays=0)
    with pytest.raises(InvalidInputError, match="territories must be an integer"):
        membrane_rays(z, z > 0, z, [[4.0, 4.0]])


# ------------------------------------------------------------------------------------ merging
def _table(xs, ys):
    n = len(xs)
    return CellTable(
        cell_id=np.arange(1, n + 1),
        x=xs,
        y=ys,
        is_tumour=np.ones(n, bool),
        intensity=np.zeros(n),
        completeness=np.zeros(n),
        membrane_dab_od=np.zeros(n),
    )


def test_merge_orders_renumbers_scales_and_rejects_overlaps():
    a, b = _table([5.0, 1.0], [2.0, 2.0]), _table([3.0], [1.0])
    m = merge_cell_tables([a, b], level0_per_pixel=(2.0, 4.0))
    assert m.cell_id.tolist() == [1, 2, 3]
    assert m.x.tolist() == [6.0, 2.0, 10.0] and m.y.tolist() == [4.0, 8.0, 8.0]
    assert len(merge_cell_tables([])) == 0
    with pytest.raises(InvalidInputError, match="tiles overlap"):
        merge_cell_tables([a, a])
    with pytest.raises(InvalidInputError, match="tables\\[0\\]"):
        merge_cell_tables([object()])  # type: ignore[list-item]


def test_cell_table_optional_columns_and_old_files(tmp_path):
    t = _table([1.0], [2.0])
    assert t.closed.tolist() == [False] and t.area.dtype == np.float32
    np.savez(
        tmp_path / "old.npz",
        **{
            k: getattr(t, k)
            for k in ("cell_id", "x", "y", "is_tumour", "intensity", "completeness", "membrane_dab_od", "region")
        },
    )
    back = CellTable.load_npz(tmp_path / "old.npz")
    assert back.closed.tolist() == [False] and back.membrane_thickness.tolist() == [0.0]


def test_two_threads_at_once_give_the_sequential_results():
    tiles = [membrane_like(s, 160) for s in range(4)]
    expected = [measure_tile(p, p, n, mpp=0.5).cells for p, n in tiles]
    results: dict[int, CellTable] = {}
    start = threading.Barrier(2)

    def work(offset: int) -> None:
        start.wait()
        for i in range(offset, len(tiles), 2):
            p, n = tiles[i]
            results[i] = measure_tile(p, p, n, mpp=0.5).cells

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for i, exp in enumerate(expected):
        np.testing.assert_array_equal(results[i].completeness, exp.completeness)
        np.testing.assert_array_equal(results[i].x, exp.x)


# ------------------------------------------------------------------- own-side gated membrane OD
_STEP_PX = 0.25


def _last_argmax(v: np.ndarray) -> np.ndarray:
    """Index of the last maximum along axis 1 (a plateau's outer end)."""
    return v.shape[1] - 1 - np.argmax(v[:, ::-1], axis=1)


def _gated_membrane_od_numpy(
    od, lab, mem, labels, base, frac, covered, run, n_rays, max_length, mpp, far_weight, quantile
):
    """NumPy reference of :func:`her2fast.stages.cells._gated_membrane_od` (its first version; same steps and outputs)."""
    from scipy.ndimage import map_coordinates

    m = base.shape[0]
    out = np.zeros(m, np.float64)
    used = np.zeros(m, np.int64)
    ci, ri = np.nonzero(covered)
    if ci.size == 0:
        return out, used
    ang = 2.0 * np.pi * (ri + 0.5) / n_rays
    ux, uy = np.cos(ang), np.sin(ang)
    cx = base[ci, 0] + frac[ci, 0]
    cy = base[ci, 1] + frac[ci, 1]
    h, w = od.shape
    # first membrane pixel of the own territory (nearest pixel of each sample)
    t = np.arange(0.0, max_length, _STEP_PX)
    xi = np.clip(np.rint(cx[:, None] + ux[:, None] * t), 0, w - 1).astype(np.intp)
    yi = np.clip(np.rint(cy[:, None] + uy[:, None] * t), 0, h - 1).astype(np.intp)
    hit = mem[yi, xi] & (lab[yi, xi] == labels[ci][:, None])
    del xi, yi
    ok = hit.any(axis=1)
    first = np.argmax(hit, axis=1)
    del hit
    du = _STEP_PX * mpp  # um per sample
    n05, n15 = int(0.5 / du + 1e-9), int(1.5 / du + 1e-9)
    runs = np.rint(run[ci, ri] / _STEP_PX).astype(np.int64)
    lo = first - n05  # ridge search [lo, hi]
    hi = first + runs + n15
    start = lo - n15  # profile window [start, start + width)
    width = int((hi - lo).max()) + 2 * n15 + 1
    k = np.arange(width)
    j = start[:, None] + k[None, :]  # sample index along the ray
    tt = j * _STEP_PX
    prof = map_coordinates(
        od,
        [(cy[:, None] + uy[:, None] * tt).ravel(), (cx[:, None] + ux[:, None] * tt).ravel()],
        order=1,
        mode="nearest",
    ).reshape(j.shape)
    valid = j >= 0  # not behind the centre
    # own-run peak: the run and one pixel beyond it
    run_win = valid & (j >= first[:, None]) & (j <= (first + runs)[:, None] + int(1.0 / _STEP_PX))
    pk = _last_argmax(np.where(run_win, prof, -np.inf))
    peak = prof[np.arange(ci.size), pk]
    srch = valid & (j >= lo[:, None]) & (j <= hi[:, None])
    ridge = _last_argmax(np.where(srch, prof, -np.inf))
    rel = k[None, :] - ridge[:, None]
    win_in = valid & (rel <= -n05) & (rel >= -n15)
    win_out = valid & (rel >= n05) & (rel <= n15)
    v_in = np.where(win_in, prof, 0).sum(axis=1) / np.maximum(win_in.sum(axis=1), 1)
    v_out = np.where(win_out, prof, 0).sum(axis=1) / np.maximum(win_out.sum(axis=1), 1)
    gate = np.clip((v_in - far_weight * v_out) / np.maximum((1.0 - far_weight) * v_in, 1e-6), 0.0, 1.0)
    val = np.full(covered.shape, np.inf)
    val[ci[ok], ri[ok]] = (peak * gate)[ok]
    used = np.isfinite(val).sum(axis=1)
    q = np.floor(quantile * np.maximum(used - 1, 0) + 1e-9).astype(np.int64)  # the lower quantile
    srt = np.sort(val, axis=1)
    out = np.where(used > 0, srt[np.arange(m), np.minimum(q, val.shape[1] - 1)], 0.0)
    return out, used


@pytest.mark.parametrize("category", ["1+", "2+", "3+", "2+/unusual"])
def test_gated_membrane_od_equals_the_numpy_reference(category, monkeypatch):
    """The C++ kernel against the NumPy steps it replaced, on the pipeline's inputs of phantom tiles."""
    import her2fast.stages.cells.measure as measure_mod  # measure_tile looks the kernel up here
    from her2fast.stages import membrane, stain
    from her2fast.stages.nuclei import segment_nuclei
    from her2fast.synth import make_tile

    cat, _, variant = category.partition("/")
    t = make_tile(384, category=cat, variant=variant or "typical", seed=61)
    conc = stain.deconvolve(t.rgb, stain.estimate_stain_vectors(t.rgb))
    prob = membrane.predict(t.rgb, 0.5)
    nuc = segment_nuclei(conc.hematoxylin, 0.5)
    calls = []
    native = measure_mod._gated_membrane_od

    def spy(*args):
        out = native(*args)
        calls.append((args, out))
        return out

    monkeypatch.setattr(measure_mod, "_gated_membrane_od", spy)
    measure_tile(prob, conc.dab, nuc, mpp=0.5, origin=(0, 0), core=(48, 48, 336, 336))
    ((args, (got, used)),) = calls
    exp, used_ref = _gated_membrane_od_numpy(*args)
    assert used.sum() > 100
    np.testing.assert_array_equal(used, used_ref)
    np.testing.assert_allclose(got, exp, rtol=0, atol=2e-5)  # bilinear sums in another order: float32 rounding


def _nucleus_labels_numpy(nuclei, min_px):
    """NumPy reference of :func:`her2fast.stages.cells._nucleus_labels` (its previous version)."""
    from scipy import ndimage as ndi

    if nuclei.dtype == np.bool_:
        lab, n = ndi.label(nuclei, structure=np.ones((3, 3), bool))
    else:
        uniq, inv = np.unique(nuclei, return_inverse=True)
        lab = inv.reshape(nuclei.shape)
        if uniq[0] != 0:
            lab = lab + 1
        n = int(lab.max())
    lab = lab.astype(np.int32, copy=False)
    flat = lab.ravel()
    count = np.bincount(flat, minlength=n + 1)
    keep = count >= max(min_px, 1)
    keep[0] = False
    remap = np.zeros(n + 1, np.int32)
    remap[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    lab = remap[lab]
    flat = lab.ravel()
    n = int(keep.sum())
    count = np.bincount(flat, minlength=n + 1)
    ys, xs = np.divmod(np.arange(flat.size), lab.shape[1])
    sx = np.bincount(flat, weights=xs, minlength=n + 1)
    sy = np.bincount(flat, weights=ys, minlength=n + 1)
    return lab, n, count[1:], np.rint(sx[1:]).astype(np.int64), np.rint(sy[1:]).astype(np.int64)


def test_nucleus_labels_equal_the_numpy_reference():
    from her2fast.stages.cells import _nucleus_labels

    rng = np.random.default_rng(5)
    cases = []
    for _ in range(40):
        h, w = rng.integers(1, 70, 2)
        lab = rng.integers(0, rng.integers(1, 40), (h, w))
        lab[rng.random((h, w)) < 0.4] = 0
        cases.append(lab.astype(rng.choice([np.int32, np.int64, np.uint16])))
        cases.append(rng.random((h, w)) < 0.3)  # a mask: components
    cases.append(np.where(rng.random((30, 30)) < 0.5, 2**40 + rng.integers(0, 5, (30, 30)), 0))  # sparse ids
    cases.append(membrane_like(3, 200)[1])  # nuclei of a synthetic tile
    for nuc in cases:
        for min_px in (0, 1, 3, 12):
            got = _nucleus_labels(nuc, min_px)
            exp = _nucleus_labels_numpy(nuc, min_px)
            np.testing.assert_array_equal(got[0], exp[0])
            assert got[1] == exp[1]
            for a, b in zip(got[2:], exp[2:]):
                np.testing.assert_array_equal(a, b)


def test_cytoplasm_weight_subtracts_the_cells_cytoplasmic_dab():
    from her2fast.stages.cells import CellSettings, _cytoplasm_od

    yy, xx = np.indices((64, 64))
    r = np.hypot(yy - 32, xx - 32)
    mem = (r > 9) & (r < 11.5)
    nuc = r < 4
    # a blurred membrane (Gaussian profile) over 0.2 OD of cytoplasmic blush inside the cell
    od = (1.5 * np.exp(-0.5 * (r - 10.25) ** 2) + 0.2 * (r < 8)).astype(np.float32)
    cyto = od[(r >= 4) & (r < 6)].mean()  # >= 3 px (1.5 um) from every membrane pixel, off the nucleus
    assert cyto == pytest.approx(0.2, abs=1e-3)
    plain = measure_tile(mem, od, nuc, mpp=0.5, settings=CellSettings(cytoplasm_weight=0.0)).cells
    assert plain.membrane_dab_od[0] > 1.0
    sub = measure_tile(mem, od, nuc, mpp=0.5, settings=CellSettings(cytoplasm_weight=1.0)).cells
    assert sub.membrane_dab_od[0] == pytest.approx(plain.membrane_dab_od[0] - cyto, abs=1e-5)
    half = measure_tile(mem, od, nuc, mpp=0.5, settings=CellSettings(cytoplasm_weight=0.5)).cells
    assert half.membrane_dab_od[0] == pytest.approx(plain.membrane_dab_od[0] - 0.5 * cyto, abs=1e-5)
    # the helper against its definition on random territories: mean OD of territory pixels more than
    # gap from any membrane pixel (a disk), off nuclei
    rng = np.random.default_rng(3)
    for _ in range(20):
        terr = rng.integers(0, 6, (40, 50)).astype(np.int32)
        memb = rng.random((40, 50)) < 0.05
        marks = (rng.random((40, 50)) < 0.1).astype(np.int32)
        val = rng.random((40, 50)).astype(np.float32)
        gap = float(rng.uniform(0, 3))
        got = _cytoplasm_od(val, terr, marks, memb, 5, gap)
        my, mx = np.nonzero(memb)
        near = np.zeros_like(memb)
        for y, x in zip(my, mx):
            near |= (yy[:40, :50] - y) ** 2 + (xx[:40, :50] - x) ** 2 <= gap * gap + 1e-9
        ok = ~near & (marks == 0)
        for k in range(1, 6):
            sel = ok & (terr == k)
            assert got[k - 1] == pytest.approx(val[sel].mean() if sel.any() else 0.0, abs=1e-6)
    with pytest.raises(InvalidInputError, match="cytoplasm_weight"):
        CellSettings(cytoplasm_weight=-1)
    with pytest.raises(InvalidInputError, match="cytoplasm_gap_um"):
        CellSettings(cytoplasm_gap_um=13.0)
    # negative cytoplasmic OD (deconvolution noise) never raises the membrane OD
    neg = (1.5 * np.exp(-0.5 * (r - 10.25) ** 2) - 0.1 * (r < 8)).astype(np.float32)
    a = measure_tile(mem, neg, nuc, mpp=0.5, settings=CellSettings(cytoplasm_weight=0.0)).cells
    b = measure_tile(mem, neg, nuc, mpp=0.5, settings=CellSettings(cytoplasm_weight=1.0)).cells
    assert b.membrane_dab_od[0] == a.membrane_dab_od[0]


# ---------------------------------------------------------------------------------- native helpers
def _region_max_dist2_numpy(regions, region_ids, base, frac):
    """The NumPy formulation that her2fast.stages.cells._region_max_dist2 replaced (one native pass now)."""
    n_regions = int(regions.max()) + 1
    which = np.full(n_regions + 1, -1, np.int64)  # region -> row in region_ids (index n_regions: none)
    which[region_ids] = np.arange(region_ids.size)
    flat = regions.ravel()
    row = which[np.where(flat >= 0, flat, n_regions)]
    pix = np.flatnonzero(row >= 0)
    out = np.zeros(region_ids.size, np.float64)
    if pix.size == 0:
        return out
    r = row[pix]
    ys, xs = np.divmod(pix, regions.shape[1])
    dx = (xs - base[r, 0]).astype(np.float64) - frac[r, 0]
    dy = (ys - base[r, 1]).astype(np.float64) - frac[r, 1]
    np.maximum.at(out, r, dx * dx + dy * dy)
    return out


def test_region_max_dist2_equals_its_numpy_formulation_on_random_maps():
    from her2fast.stages.cells import _region_max_dist2

    rng = np.random.default_rng(21)
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        n_reg = int(rng.integers(1, 15))
        regions = (rng.integers(0, n_reg + 1, (h, w)) - 1).astype(np.int32)  # -1 = skeleton
        m = int(rng.integers(0, n_reg + 1))
        ids = rng.choice(n_reg, m, replace=False).astype(np.int32)  # distinct, as measure_tile lists them
        base = np.stack([rng.integers(0, w, m), rng.integers(0, h, m)], axis=1).astype(np.int32)
        frac = rng.uniform(0, 1, (m, 2))
        np.testing.assert_array_equal(
            _region_max_dist2(regions, ids, base, frac), _region_max_dist2_numpy(regions, ids, base, frac)
        )


def test_cell_landscape_equals_its_numpy_formulation_bit_for_bit():
    """The flood's landscape (one native pass) against the float32 NumPy expression it replaced."""
    from her2fast import _native

    rng = np.random.default_rng(8)
    for k in range(20):
        h, w = (int(v) for v in rng.integers(1, 80, 2))
        prob = rng.random((h, w)).astype(np.float32)
        prob[rng.random((h, w)) < 0.2] = 0.0
        od = rng.uniform(-0.3, 4.0, (h, w)).astype(np.float32)
        settings = (
            CellSettings()
            if k == 0
            else CellSettings(
                membrane_threshold=float(rng.uniform(0.2, 0.8)), membrane_od_weight=float(rng.uniform(0, 1.5))
            )
        )
        thr = np.float32(settings.membrane_threshold)
        mem = prob >= thr
        stain = np.maximum(od, np.float32(0))
        stain /= stain + np.float32(1)
        stain *= np.float32(settings.membrane_od_weight)
        ref = np.where(
            mem, prob + stain, thr * np.float32(0.5) * (prob / thr + np.minimum(stain, np.float32(1 - 1e-6)))
        )
        land, mask = _native.cell_landscape(
            prob,
            od,
            float(thr),
            float(thr * np.float32(0.5)),
            float(np.float32(settings.membrane_od_weight)),
            float(np.float32(1 - 1e-6)),
        )
        assert land.dtype == np.float32 and mask.dtype == np.bool_
        np.testing.assert_array_equal(mask, mem)
        np.testing.assert_array_equal(land.view(np.uint32), ref.astype(np.float32).view(np.uint32))


def test_rays_of_a_subset_of_cells_equal_those_of_the_full_call():
    """measure_tile measures the owned cells only, naming their territory labels (cell_labels)."""
    from her2fast import _native

    for seed in range(6):
        prob, nuc = membrane_like(seed, 96)
        from scipy import ndimage as ndi

        lab, n = ndi.label(nuc)
        centres = np.array(ndi.center_of_mass(nuc, lab, range(1, n + 1)))[:, ::-1]
        terr = seeded_watershed(prob, lab, barrier=0.5)
        mem = (prob >= 0.5).view(np.uint8)
        od = (prob * 2).astype(np.float32)
        base = np.floor(centres).astype(np.int32)
        frac = centres - base
        full = _native.membrane_rays(terr, mem, od, base, frac, 36, 26.0, 3.0, 8.0, 24.0, 2.0)
        pick = np.random.default_rng(seed).permutation(n)[: max(1, n // 3)]
        part = _native.membrane_rays(
            terr,
            mem,
            od,
            np.ascontiguousarray(base[pick]),
            np.ascontiguousarray(frac[pick]),
            36,
            26.0,
            3.0,
            8.0,
            24.0,
            2.0,
            (pick + 1).astype(np.int32),
        )
        for a, b in zip(part, full):
            np.testing.assert_array_equal(a, b[pick])
        with pytest.raises(ValueError, match="cell_labels"):
            _native.membrane_rays(terr, mem, od, base, frac, 36, 26.0, 3.0, 8.0, 24.0, 2.0, np.ones(n + 1, np.int32))


def test_ray_summary_equals_the_numpy_steps_on_random_tables():
    from her2fast.stages.cells import _ray_summary, _ray_summary_reference

    rng = np.random.default_rng(21)
    for trial in range(60):
        m, r = int(rng.integers(0, 12)), int(rng.integers(1, 80))
        run = np.where(rng.random((m, r)) < rng.uniform(0, 1), rng.random((m, r)) * 6, 0).astype(np.float32)
        run[rng.random((m, r)) < 0.1] = 2.0  # ties
        peak = rng.random((m, r)).astype(np.float32)
        tol = None
        if trial % 2:
            tol = np.where((run > 0) | (rng.random((m, r)) < 0.3), 1.0, 0.0).astype(np.float32)
        gap = int(rng.integers(-1, 2 * r + 3))  # up to beyond the whole circle
        got, want = _ray_summary(run, peak, tol, gap), _ray_summary_reference(run, peak, tol, gap)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_array_equal(g, w)


_HELPERS = ("_ray_summary", "_near_membrane", "_label_counts", "_region_sums", "_skeleton_regions")
#: the module of her2fast.stages.cells that looks each helper up (``_near_membrane`` is called by
#: ``intensity._cytoplasm_od``, the others by ``measure.measure_tile``): a swap is set there
_LOOKED_UP_IN = {k: "intensity" if k == "_near_membrane" else "measure" for k in _HELPERS}


@pytest.mark.parametrize("category", ["1+", "3+"])
def test_native_helpers_equal_the_numpy_steps_on_phantom_windows(category, monkeypatch):
    """measure_tile's native helpers (ray summary, cytoplasm dilation, label counts and sums, skeleton and
    regions) against the NumPy steps they replaced (the ``*_reference`` helpers), call by call, on the
    pipeline's inputs (U-Net membrane, deconvolved DAB, segmented nuclei); the tables are identical."""
    import importlib

    import her2fast.stages.cells as cells_mod
    from her2fast.stages import membrane, stain
    from her2fast.stages.nuclei import segment_nuclei
    from her2fast.synth import make_tile

    t = make_tile(480, category=category, seed=71)
    conc = stain.deconvolve(t.rgb, stain.estimate_stain_vectors(t.rgb))
    prob = membrane.predict(t.rgb, 0.5)
    nuc = segment_nuclei(conc.hematoxylin, 0.5)
    kw = dict(mpp=0.5, origin=(0, 0), core=(48, 48, 432, 432))
    native = measure_tile(prob, conc.dab, nuc, **kw)
    where = {k: importlib.import_module(f"her2fast.stages.cells.{m}") for k, m in _LOOKED_UP_IN.items()}
    natives = {k: getattr(where[k], k) for k in _HELPERS}
    calls: dict[str, list] = {k: [] for k in _HELPERS}

    def spy(name):
        def call(*args):
            out = getattr(cells_mod, name + "_reference")(*args)
            calls[name].append((args, out))
            return out

        return call

    for k in _HELPERS:
        monkeypatch.setattr(where[k], k, spy(k))
    reference = measure_tile(prob, conc.dab, nuc, **kw)
    assert all(calls[k] for k in _HELPERS if k != "_region_sums")
    for k in _HELPERS:
        for args, want in calls[k]:
            got = natives[k](*args)
            if k == "_skeleton_regions":
                np.testing.assert_array_equal(got[0], want[0])
                got, want = (
                    (got[1].labels, got[1].area, got[1].touches_border),
                    (
                        want[1].labels,
                        want[1].area,
                        want[1].touches_border,
                    ),
                )
            for g, w in zip(got, want) if isinstance(want, tuple) else [(got, want)]:
                assert g.dtype == w.dtype
                np.testing.assert_array_equal(g, w)
    assert native.n_artefact_loops == reference.n_artefact_loops
    for name in ("x", "y", "intensity", "completeness", "membrane_dab_od", "closed", "membrane_thickness", "area"):
        np.testing.assert_array_equal(getattr(native.cells, name), getattr(reference.cells, name))


def test_region_sums_equal_the_numpy_steps_on_random_maps():
    from her2fast.stages.cells import _label_counts, _label_counts_reference, _region_sums, _region_sums_reference

    rng = np.random.default_rng(33)
    for _ in range(10):
        n = int(rng.integers(1, 12))
        lab = rng.integers(-1, n, size=(int(rng.integers(1, 60)), int(rng.integers(1, 60)))).astype(np.int32)
        ids = np.unique(rng.integers(0, n, size=int(rng.integers(1, n + 1))))
        for g, w in zip(_region_sums(lab, n, ids), _region_sums_reference(lab, n, ids)):
            assert g.dtype == w.dtype
            np.testing.assert_array_equal(g, w)
        terr = np.maximum(lab, 0)
        np.testing.assert_array_equal(_label_counts(terr, n + 1), _label_counts_reference(terr, n + 1))


def test_label_sums_equal_the_numpy_bincounts(her2_patch):
    """Counts and exact coordinate sums per label against np.bincount (with float weights and np.rint, as
    measure_tile computed them) on random label maps and on the regions of a real patch's skeleton."""
    from her2fast import _native
    from her2fast.stages import stain
    from her2fast.stages.cells import enclosed_regions, membrane_skeleton

    rng = np.random.default_rng(31)
    dab = stain.deconvolve(her2_patch[:400, :400]).dab
    real = enclosed_regions(membrane_skeleton(dab > np.quantile(dab, 0.8))).labels
    maps = [
        rng.integers(-1, 9, size=(int(rng.integers(1, 70)), int(rng.integers(1, 70))), dtype=np.int32) for _ in range(8)
    ]
    for lab in [*maps, real]:
        n = int(lab.max()) + 1
        count, sx, sy = _native.label_sums(np.ascontiguousarray(lab), n)
        ys, xs = np.indices(lab.shape)
        on = lab >= 0
        np.testing.assert_array_equal(count, np.bincount(lab[on], minlength=n))
        np.testing.assert_array_equal(sx, np.rint(np.bincount(lab[on], weights=xs[on], minlength=n)).astype(np.int64))
        np.testing.assert_array_equal(sy, np.rint(np.bincount(lab[on], weights=ys[on], minlength=n)).astype(np.int64))
        # labels at or above n_labels are left out
        np.testing.assert_array_equal(
            _native.label_sums(np.ascontiguousarray(lab), max(n - 2, 0))[0], count[: max(n - 2, 0)]
        )
