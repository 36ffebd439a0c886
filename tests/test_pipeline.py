"""The tile stream of her2fast.pipeline: equal to the sequential path, bounded, errors surface, thread plans."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from her2fast.errors import InvalidInputError
from her2fast.pipeline import ScoreSettings, ThreadPlan

SIZE = 1280  # 4 x 4 tiles of 320 px: enough for the queues and batches, and over 500 tumour cells
SEED = 710  # not a training seed
SETTINGS = ScoreSettings(tile_size=320)  # small tiles: many of them, so queues fill and batches split


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    from her2fast.synth import make_slide

    return make_slide(tmp_path_factory.mktemp("stream") / "p2.tiff", category="2+", width=SIZE, height=SIZE, seed=SEED)


@pytest.fixture(scope="module")
def sequential(phantom):
    import her2fast

    return her2fast.score(phantom.path, progress=False, settings=SETTINGS, threads=ThreadPlan.sequential())


def _same_cells(a, b) -> None:
    for f in dataclasses.fields(a.cells):
        np.testing.assert_array_equal(getattr(a.cells, f.name), getattr(b.cells, f.name), err_msg=f.name)


@pytest.mark.parametrize(
    "plan",
    [
        ThreadPlan(readers=1, inference_threads=1, post_workers=1, queue_tiles=1),
        ThreadPlan(readers=2, inference_threads=2, post_workers=2, queue_tiles=3),
        ThreadPlan(readers=3, inference_threads=1, post_workers=2, queue_tiles=2, inference_lanes=3),
        ThreadPlan.for_machine(),
    ],
    ids=["r1-i1-p1-q1", "r2-i2-p2-q3", "r3-i1-p2-q2-lanes3", "for_machine"],
)
def test_stream_equals_sequential(phantom, sequential, plan):
    import her2fast

    r = her2fast.score(phantom.path, progress=False, settings=SETTINGS, threads=plan)
    assert r.counts["tiles_segmented"] >= 8  # enough tiles for the queues to fill and batches to split
    _same_cells(r, sequential)
    assert (r.score, r.stratum, r.percentages, r.flags) == (
        sequential.score,
        sequential.stratum,
        sequential.percentages,
        sequential.flags,
    )
    perf = r.provenance["pipeline"]
    assert perf["threads"] == plan.to_dict()
    assert perf["tiles"] == r.counts["tiles_epithelium"] and perf["tiles_per_s"] > 0 and perf["cpu_percent"] > 0
    for stage in ("read", "membrane", "deconvolve", "nuclei", "cells", "tiles_wall"):
        assert r.timings[stage] > 0, stage


def test_blas_runs_one_thread_inside_the_stream_and_is_restored_after(phantom, monkeypatch):
    """A BLAS thread pool inside a stage would compete with the stream's own threads (docs/throughput.md)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import her2fast
    import her2fast.pipeline.stream as pipeline

    def blas_threads() -> set[int]:
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    seen: list[set[int]] = []
    real = pipeline.measure_tile

    def spy(*args, **kwargs):
        seen.append(blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "measure_tile", spy)
    with threadpool_limits(limits=2, user_api="blas"):  # what numpy would use on two cores
        before = blas_threads()
        if before != {2}:  # numpy's BLAS must be seen with 2 threads, or this test could not fail
            pytest.skip(f"numpy's BLAS reports {before} threads under a limit of 2 here")
        r = her2fast.score(phantom.path, progress=False, settings=SETTINGS, threads=ThreadPlan.for_machine())
        assert blas_threads() == before
    assert seen and all(s == {1} for s in seen)
    assert r.provenance["pipeline"]["blas_threads"] == 1  # what threadpoolctl saw in force


def test_streams_at_once_share_one_blas_limit_and_restore_it():
    """Overlapping streams (nested here; threads take the same lock): the last to end restores the limit."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import her2fast.pipeline.stream as pipeline

    def blas_threads() -> set[int]:
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    with threadpool_limits(limits=2, user_api="blas"):
        if blas_threads() != {2}:
            pytest.skip("numpy's BLAS cannot run 2 threads here")
        with pipeline._one_blas_thread() as first:
            with pipeline._one_blas_thread() as second:
                assert first == second == 1 and blas_threads() == {1}
            assert blas_threads() == {1}  # the other stream still runs: not restored yet
        assert blas_threads() == {2}
        assert pipeline._blas_state["users"] == 0 and pipeline._blas_state["limiter"] is None


def test_a_failing_stage_raises_its_error_and_stops_every_thread(phantom, monkeypatch):
    import her2fast
    import her2fast.pipeline.stream as pipeline

    calls = {"n": 0}
    real = pipeline.measure_tile

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("boom in tile 3")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "measure_tile", failing)
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="boom in tile 3"):
        her2fast.score(
            phantom.path,
            progress=False,
            settings=SETTINGS,
            threads=ThreadPlan(readers=1, inference_threads=1, post_workers=2, queue_tiles=2),
        )
    assert threading.active_count() == before  # no stage thread left behind


def test_a_failing_network_call_in_a_lane_raises_its_error_and_stops_every_thread(phantom, monkeypatch):
    """With several inference lanes, a lane that is not the calling thread fails: the error surfaces
    and every thread (readers, lanes, post workers) stops."""
    import her2fast
    import her2fast.stages.membrane as membrane

    real = membrane.predict_maps_batch

    def failing(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("network failed in a lane")
        time.sleep(0.05)  # the calling thread's lane is slow: the other lanes surely take tiles
        return real(*args, **kwargs)

    monkeypatch.setattr(membrane, "predict_maps_batch", failing)
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="network failed in a lane"):
        her2fast.score(
            phantom.path,
            progress=False,
            settings=SETTINGS,
            threads=ThreadPlan(readers=1, inference_threads=1, post_workers=2, queue_tiles=2, inference_lanes=3),
        )
    assert threading.active_count() == before


def test_a_failing_reader_raises_its_error(phantom, monkeypatch):
    import her2fast
    import her2fast.stages.tissue as tissue

    real = tissue.read_tile
    seen = {"n": 0}

    def failing(slide, grid, tile, window=None):
        seen["n"] += 1
        if seen["n"] == 5:
            raise OSError("disk went away")
        return real(slide, grid, tile, window)

    monkeypatch.setattr(tissue, "read_tile", failing)
    with pytest.raises(OSError, match="disk went away"):
        her2fast.score(phantom.path, progress=False, settings=SETTINGS, threads=ThreadPlan(readers=1, post_workers=1))


def test_thread_plans():
    assert ThreadPlan.sequential() == ThreadPlan(readers=0, inference_threads=1, post_workers=0)
    for cores in (1, 2, 3, 4, 8, 16, 64):
        p = ThreadPlan.for_machine(cores)
        # the network gets at most half the cores' worth of threads beyond one lane; post workers one per core
        assert p.inference_lanes * p.inference_threads <= max(2, cores)
        assert 1 <= p.inference_lanes <= 4 and p.post_workers <= max(1, cores)
        assert p.inference_threads >= 1 and p.post_workers >= 1 and p.readers >= 1
        g = ThreadPlan.for_machine(cores, gpu=True)
        assert g.inference_threads == 1 and g.readers >= 2 and g.readers + g.post_workers + 1 <= max(4, cores)
    with pytest.raises(InvalidInputError, match="post_workers"):
        ThreadPlan(post_workers=-1)
    with pytest.raises(InvalidInputError, match="inference_threads"):
        ThreadPlan(inference_threads=0)
    with pytest.raises(InvalidInputError, match="inference_lanes > 1 needs readers"):
        ThreadPlan(readers=0, inference_lanes=2)
    with pytest.raises(InvalidInputError, match="cores"):
        ThreadPlan.for_machine(0)


def test_threads_argument_is_checked(phantom):
    import her2fast

    with pytest.raises(InvalidInputError, match="membrane_margin"):
        ScoreSettings(membrane_margin=-1)
    with pytest.raises(InvalidInputError, match="ThreadPlan"):
        her2fast.score(phantom.path, progress=False, threads=2, settings=ScoreSettings())


# ------------------------------------------------------------------ windows around the epithelium
def _window_reference(epi: np.ndarray, padded, ov: int, m: int = 16):
    """tile_window written the plain way: the pixels that can hold an owned centre, their box
    (one pixel more on the low sides) widened by ov, rounded out to m, clipped."""
    h, w = epi.shape
    can_hold = np.zeros_like(epi)
    can_hold[ov : h - ov + 1, ov : w - ov + 1] = True
    ys, xs = np.nonzero(epi & can_hold)
    if ys.size == 0:
        return None
    x0, y0 = xs.min() - 1 - ov, ys.min() - 1 - ov
    x1, y1 = xs.max() + 1 + ov, ys.max() + 1 + ov
    x0, y0 = max(0, (x0 // m) * m), max(0, (y0 // m) * m)
    x1, y1 = min(w, int(np.ceil(x1 / m)) * m), min(h, int(np.ceil(y1 / m)) * m)
    return (padded[0] + x0, padded[1] + y0, padded[0] + x1, padded[1] + y1)


def test_tile_window_equals_the_plain_definition_and_keeps_every_owned_tumour_centre():
    from her2fast.pipeline import tile_window

    rng = np.random.default_rng(3)
    ov, size = 48, 416
    padded = (1000, 3000, 1000 + size, 3000 + size)
    n_none = n_centres = 0
    for k in range(300):
        epi = np.zeros((size, size), bool)
        for _ in range(rng.integers(0, 4)):  # a few blobs anywhere, margins included
            y, x = rng.integers(0, size, 2)
            hh, ww = rng.integers(1, 120, 2)
            epi[y : y + hh, x : x + ww] = True
        got = tile_window(epi, padded, ov)
        assert got == _window_reference(epi, padded, ov), k
        # cells as measure_tile sees them: owned when the exact centre is in the tile's core, tumour
        # when the pixel holding it (pixel j spans [j - 1/2, j + 1/2)) is epithelium
        c = rng.uniform(ov, size - ov, (4000, 2))
        c[:2000] = np.floor(c[:2000]) + rng.choice([0.0, 0.4999, 0.5, 0.9999], (2000, 2))  # the half-pixel edges
        c = c[(c >= ov).all(axis=1) & (c < size - ov).all(axis=1)]
        pix = np.floor(c + 0.5).astype(int)
        tumour = c[epi[pix[:, 1], pix[:, 0]]] + [padded[0], padded[1]]
        if got is None:
            assert len(tumour) == 0, k
            n_none += 1
            continue
        x0, y0, x1, y1 = got
        assert padded[0] <= x0 < x1 <= padded[2] and padded[1] <= y0 < y1 <= padded[3]
        assert (x0 - padded[0]) % 16 == 0 and (y0 - padded[1]) % 16 == 0
        inside = (
            (tumour[:, 0] >= x0 + ov) & (tumour[:, 0] < x1 - ov) & (tumour[:, 1] >= y0 + ov) & (tumour[:, 1] < y1 - ov)
        )
        assert inside.all(), (k, tumour[~inside][:3], got)
        n_centres += len(tumour)
    assert 0 < n_none < 300 and n_centres > 10000  # both cases were exercised
    with pytest.raises(InvalidInputError, match="padded tile's shape"):
        tile_window(np.zeros((10, 10), bool), padded, ov)
    for bad in ({"overlap": -1}, {"multiple": 0}, {"overlap": 1.5}):
        with pytest.raises(InvalidInputError):
            tile_window(np.zeros((size, size), bool), padded, **{"overlap": ov, **bad})
    with pytest.raises(InvalidInputError, match="no core"):
        tile_window(np.zeros((size, size), bool), padded, size // 2)


def test_tile_windows_partition_the_owned_centres_and_save_pixels():
    from her2fast.pipeline import tile_window, tile_windows

    rng = np.random.default_rng(11)
    ov = 48
    n_split = n_centres = n_at_cut = 0
    for k in range(300):
        hs, ws = (int(v) for v in rng.integers(200, 900, 2))
        padded = (2000, 5000, 2000 + ws, 5000 + hs)
        epi = np.zeros((hs, ws), bool)
        for _ in range(rng.integers(0, 5)):  # blobs anywhere, margins included
            y, x = rng.integers(0, (hs, ws))
            hh, ww = rng.integers(1, 200, 2)
            epi[y : y + hh, x : x + ww] = True
        if k % 2:  # a diagonal band: the best cuts then run through epithelium
            yy, xx = np.indices((hs, ws))
            epi |= np.abs(yy - xx * hs / ws - rng.integers(-100, 100)) < rng.integers(2, 12)
        n_max = int(rng.integers(1, 6))
        got = tile_windows(epi, padded, ov, max_windows=n_max)
        one = tile_window(epi, padded, ov)
        assert len(got) <= n_max
        if one is None:
            assert got == [], k
            continue
        if n_max == 1:
            assert got == [(one, (one[0] + ov, one[1] + ov, one[2] - ov, one[3] - ov))], k
        area = sum((w[2] - w[0]) * (w[3] - w[1]) for w, _ in got)
        assert area <= (one[2] - one[0]) * (one[3] - one[1]), k
        n_split += len(got) > 1
        tile_core = (padded[0] + ov, padded[1] + ov, padded[2] - ov, padded[3] - ov)
        for (x0, y0, x1, y1), (cx0, cy0, cx1, cy1) in got:
            assert padded[0] <= x0 < x1 <= padded[2] and padded[1] <= y0 < y1 <= padded[3]
            assert (x0 - padded[0]) % 16 == 0 and (y0 - padded[1]) % 16 == 0
            assert x1 % 16 == padded[0] % 16 or x1 == padded[2]
            # the core has the full margin of context inside the window, and lies in the tile's core
            assert x0 + ov <= cx0 < cx1 <= x1 - ov and y0 + ov <= cy0 < cy1 <= y1 - ov
            assert tile_core[0] <= cx0 and cx1 <= tile_core[2] and tile_core[1] <= cy0 and cy1 <= tile_core[3]
        # every centre the tile owns whose pixel is epithelium: in exactly one core (half-pixel edges too)
        c = rng.uniform(ov, (ws - ov, hs - ov), (4000, 2))
        c[:2000] = np.floor(c[:2000]) + rng.choice([0.0, 0.4999, 0.5, 0.9999], (2000, 2))
        c = c[(c >= ov).all(axis=1) & (c < (ws - ov, hs - ov)).all(axis=1)]
        pix = np.floor(c + 0.5).astype(int)
        tumour = c[epi[pix[:, 1], pix[:, 0]]] + [padded[0], padded[1]]
        owners = np.zeros(len(tumour), int)
        for _, (cx0, cy0, cx1, cy1) in got:
            owners += (tumour[:, 0] >= cx0) & (tumour[:, 0] < cx1) & (tumour[:, 1] >= cy0) & (tumour[:, 1] < cy1)
        assert (owners == 1).all(), (k, tumour[owners != 1][:3], got)
        n_centres += len(tumour)
        for _, (cx0, cy0, cx1, cy1) in got:  # centres within a pixel of a cut (a core edge inside the tile's)
            for axis, edges in ((0, (cx0, cx1)), (1, (cy0, cy1))):
                for e in edges:
                    if tile_core[axis] < e < tile_core[axis + 2]:
                        n_at_cut += int((np.abs(tumour[:, axis] - e) < 1).sum())
    assert n_split > 30 and n_centres > 10000 and n_at_cut > 300  # splits, centres and cut edges were exercised
    with pytest.raises(InvalidInputError, match="max_windows"):
        tile_windows(np.zeros((416, 416), bool), (0, 0, 416, 416), ov, max_windows=0)


def test_tiles_without_a_window_give_no_cells_in_every_plan(phantom, monkeypatch):
    """A tile whose core has no epithelium in the sampled map is skipped, the same way in every plan."""
    import her2fast
    import her2fast.pipeline.windows as pipeline

    real = pipeline.tile_window
    calls = {"n": 0}

    def every_other(epi, padded, overlap, multiple=16):
        calls["n"] += 1
        skip = (padded[0] // SETTINGS.tile_size + padded[1] // SETTINGS.tile_size) % 2
        return None if skip else real(epi, padded, overlap, multiple)

    monkeypatch.setattr(pipeline, "tile_window", every_other)
    runs = [
        her2fast.score(phantom.path, progress=False, settings=SETTINGS, threads=plan)
        for plan in (
            ThreadPlan.sequential(),
            ThreadPlan(readers=2, inference_threads=1, post_workers=2, queue_tiles=2, inference_lanes=2),
        )
    ]
    assert calls["n"] >= 2 * 8
    _same_cells(runs[0], runs[1])
    r = runs[0]
    assert 0 < r.counts["tiles_without_epithelium"] < r.counts["tiles_epithelium"]
    assert r.counts["tiles_segmented"] == r.counts["tiles_epithelium"] - r.counts["tiles_without_epithelium"]
    assert len(r.cells) > 0 and r.provenance["pipeline"]["tiles"] == r.counts["tiles_epithelium"]


def _same_tumour_cells(smaller, larger) -> None:
    """Windows that segment less of a slide (``smaller``) than others (``larger``): the same tumour cells
    at the same places, the same classes up to the network's far context, the same score, and no cell
    that ``larger`` does not have."""
    ts, tl = (r.cells.select(r.cells.is_tumour) for r in (smaller, larger))
    assert len(tl) > 500
    np.testing.assert_array_equal(ts.x, tl.x)
    np.testing.assert_array_equal(ts.y, tl.y)
    rules = SETTINGS.rules
    agree = (ts.cell_class(rules) == tl.cell_class(rules)).mean()
    assert agree >= 0.995, agree  # only the network's far context differs
    d_od = np.abs(ts.membrane_dab_od - tl.membrane_dab_od)
    assert (d_od <= 0.01).mean() >= 0.99 and d_od.max() < 0.05, np.percentile(d_od, [99, 100])
    assert smaller.score == larger.score
    centres = [set(zip(r.cells.x.tolist(), r.cells.y.tolist())) for r in (smaller, larger)]
    assert not centres[0] - centres[1]


def test_crop_to_epithelium_keeps_every_tumour_cell(phantom, sequential):
    """The windows change no tumour cell's class; only stromal cells far from the epithelium go."""
    import her2fast

    whole = her2fast.score(
        phantom.path,
        progress=False,
        threads=ThreadPlan.sequential(),
        settings=dataclasses.replace(SETTINGS, crop_to_epithelium=False),
    )
    crop = sequential
    assert crop.provenance["pipeline"]["window_fraction"] < 0.95
    assert whole.provenance["pipeline"]["window_fraction"] == 1.0
    _same_tumour_cells(crop, whole)
    assert len(crop.cells) < len(whole.cells)


def test_split_windows_keep_every_tumour_cell(phantom, sequential):
    """Several windows per tile (the default) give the tumour cells of one window per tile."""
    import her2fast

    one = her2fast.score(
        phantom.path,
        progress=False,
        threads=ThreadPlan.sequential(),
        settings=dataclasses.replace(SETTINGS, windows_per_tile=1),
    )
    split = sequential
    p1, p4 = one.provenance["pipeline"], split.provenance["pipeline"]
    assert SETTINGS.windows_per_tile == 4
    assert p4["windows"] > p1["windows"] == one.counts["tiles_segmented"]  # some tiles were cut
    assert p4["window_fraction"] < p1["window_fraction"]
    _same_tumour_cells(split, one)  # the split windows only drop stroma between them


def test_windows_per_tile_is_checked_and_old_settings_load_with_one():
    with pytest.raises(InvalidInputError, match="windows_per_tile"):
        ScoreSettings(windows_per_tile=0)
    old = {k: v for k, v in ScoreSettings().to_dict().items() if k != "windows_per_tile"}
    assert ScoreSettings.from_dict(old).windows_per_tile == 1  # saved before the split: one window
    assert ScoreSettings.from_dict(ScoreSettings().to_dict()).windows_per_tile == 4


def test_crop_to_epithelium_must_be_a_bool():
    with pytest.raises(InvalidInputError, match="crop_to_epithelium"):
        ScoreSettings(crop_to_epithelium="yes")
    old = {k: v for k, v in ScoreSettings().to_dict().items() if k != "crop_to_epithelium"}
    assert ScoreSettings.from_dict(old).crop_to_epithelium is False  # saved before the windows: whole tiles
    assert ScoreSettings.from_dict(ScoreSettings().to_dict()).crop_to_epithelium is True


@pytest.mark.parametrize("slide_mpp", [0.5, 0.25])
def test_a_window_read_equals_the_crop_of_its_tile(tmp_path, slide_mpp):
    """The stream reads only each tile's window: the same pixels as the padded tile cut to the window
    (bit for bit at the slide's own resolution; within a grey level where the read resamples)."""
    from her2fast.io.slide import open_slide
    from her2fast.pipeline import tile_window
    from her2fast.stages.tissue import detect_tissue, read_tile, tile_grid
    from her2fast.synth import make_slide

    p = make_slide(tmp_path / "w.tiff", category="3+", width=1024, height=1024, mpp=slide_mpp, seed=SEED).path
    rng = np.random.default_rng(0)
    with open_slide(p) as slide:
        grid = tile_grid(slide, detect_tissue(slide), tile_size=256, overlap=48, mpp=0.5)
        checked = 0
        for tile in [t for t in grid for _ in range(3)]:  # three random windows per tile
            px0, py0, px1, py1 = tile.padded
            epi = np.zeros((py1 - py0, px1 - px0), bool)
            y, x = (int(v) for v in rng.integers(48, 48 + 256, 2))
            epi[y : y + int(rng.integers(1, 200)), x : x + int(rng.integers(1, 200))] = True
            b = tile_window(epi, tile.padded, 48)
            if b is None or b == tile.padded:
                continue
            full = read_tile(slide, grid, tile).image[b[1] - py0 : b[3] - py0, b[0] - px0 : b[2] - px0]
            win = read_tile(slide, grid, tile, b).image
            assert win.shape == (b[3] - b[1], b[2] - b[0], 3)
            if slide_mpp == 0.5:
                np.testing.assert_array_equal(win, full)
            else:
                assert np.abs(win.astype(int) - full.astype(int)).max() <= 1
            checked += 1
        assert checked >= 8, checked
        t = next(iter(grid))
        with pytest.raises(InvalidInputError, match="inside the tile's padded box"):
            read_tile(slide, grid, t, (t.padded[0] - 1, t.padded[1], t.padded[2], t.padded[3]))
