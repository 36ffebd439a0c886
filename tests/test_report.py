"""Reports: QuPath GeoJSON structure, epithelium polygons, pictures, heat map, write_report files."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="session")
def scored(tmp_path_factory):
    import her2fast
    from her2fast.synth import make_slide

    folder = tmp_path_factory.mktemp("report")
    gt = make_slide(folder / "r3.tiff", category="3+", width=1024, height=1024, seed=701)
    return her2fast.score(gt.path, progress=False)


def test_geojson_is_a_qupath_feature_collection(scored):
    from her2fast.service.report import CLASS_NAMES, NON_TUMOUR, to_geojson

    gj = json.loads(json.dumps(to_geojson(scored)))  # plain JSON types only
    assert gj["type"] == "FeatureCollection"
    feats = gj["features"]
    det = [f for f in feats if f["properties"]["objectType"] == "detection"]
    ann = [f for f in feats if f["properties"]["objectType"] == "annotation"]
    assert len(det) == len(scored.cells) and ann
    names = set(CLASS_NAMES.values()) | {NON_TUMOUR[0]}
    w, h = scored.provenance["slide"]["width"], scored.provenance["slide"]["height"]
    for f in det[:200] + ann:
        assert f["type"] == "Feature" and isinstance(f["id"], str)
        cls = f["properties"]["classification"]
        assert isinstance(cls["name"], str) and len(cls["color"]) == 3 and all(0 <= c <= 255 for c in cls["color"])
        g = f["geometry"]
        assert g["type"] == "Polygon"
        for ring in g["coordinates"]:
            assert len(ring) >= 4 and ring[0] == ring[-1]
            xy = np.array(ring)
            assert xy[:, 0].min() >= -50 and xy[:, 0].max() <= w + 50 and xy[:, 1].max() <= h + 50
    for f in det[:200]:
        assert f["properties"]["classification"]["name"] in names
        m = f["properties"]["measurements"]
        assert set(m) >= {"completeness", "membrane DAB OD", "closed membrane", "area um2"}
        assert all(isinstance(v, (int, float)) for v in m.values())
    # detections sit on their cell centres (level-0 pixels)
    first = det[0]["geometry"]["coordinates"][0]
    cx, cy = np.mean(np.array(first[:-1]), axis=0)
    assert abs(cx - scored.cells.x[0]) < 1 and abs(cy - scored.cells.y[0]) < 1
    pts = to_geojson(scored, cell_shape="point", include_non_tumour=False)["features"]
    pd = [f for f in pts if f["properties"]["objectType"] == "detection"]
    assert len(pd) == int(scored.cells.is_tumour.sum()) and pd[0]["geometry"]["type"] == "Point"


def test_epithelium_polygons_known_answer():
    from her2fast.service.report import epithelium_polygons

    m = np.zeros((40, 60), bool)
    m[5:25, 10:40] = True
    m[10:15, 20:25] = False  # a hole
    m[30:35, 50:55] = True
    polys = epithelium_polygons(m, (4.0, 2.0), tolerance=0.1)
    assert len(polys) == 2
    big = max(polys, key=lambda p: np.ptp(p[0][:, 0]))
    assert len(big) == 2  # outer ring + hole
    outer = big[0]
    # the outer ring runs through the boundary pixels' centres: x in [10.5, 39.5] * 4, y in [5.5, 24.5] * 2
    assert outer[:, 0].min() == pytest.approx(10.5 * 4, abs=2) and outer[:, 0].max() == pytest.approx(39.5 * 4, abs=2)
    assert outer[:, 1].min() == pytest.approx(5.5 * 2, abs=1) and outer[:, 1].max() == pytest.approx(24.5 * 2, abs=1)


def test_tile_percent_complete_matches_cells(scored):
    from her2fast.service.report import tile_percent_complete

    pct, n = tile_percent_complete(scored)
    assert pct.shape == (scored.maps.n_rows, scored.maps.n_cols) == n.shape
    assert n.sum() == scored.counts["tumour_cells"]
    total = np.nansum(pct * n) / 100.0
    assert total / n.sum() * 100 == pytest.approx(scored.percent_complete, abs=1e-3)
    assert np.all(np.isnan(pct[n == 0]))


def test_write_report_files(scored, tmp_path):
    from PIL import Image

    from her2fast import SlideResult
    from her2fast.scoring import CellTable
    from her2fast.service.report import write_report

    files = write_report(scored, tmp_path)
    assert set(files) == {"json", "cells", "geojson", "overlay", "zoom", "heatmap"}
    assert files["json"].name == "r3.her2fast.json"
    back = SlideResult.from_json(files["json"])
    assert back.score == scored.score and back.counts == scored.counts
    cells = CellTable.load_npz(files["cells"])
    assert np.array_equal(cells.x, scored.cells.x)
    for key in ("overlay", "zoom", "heatmap"):
        with Image.open(files[key]) as im:
            arr = np.asarray(im.convert("RGB"))
        assert arr.ndim == 3 and min(arr.shape[:2]) >= 256 and arr.std() > 5, key
    with Image.open(files["overlay"]) as im:
        arr = np.asarray(im.convert("RGB")).reshape(-1, 3)
    # class colours are drawn
    assert (np.all(arr == (220, 25, 25), axis=1).sum() + np.all(arr == (245, 140, 30), axis=1).sum()) > 50


def test_pictures_need_maps(scored):
    from her2fast import SlideResult
    from her2fast.errors import InvalidInputError
    from her2fast.service.report import tile_percent_complete

    with pytest.raises(InvalidInputError, match="no maps"):
        tile_percent_complete(SlideResult.from_json(scored.to_json()))


def test_write_geojson_streams_the_same_json_as_to_geojson(scored, tmp_path):
    """write_geojson writes feature by feature; the file equals json.dumps(to_geojson(...))."""
    from her2fast.service.report import to_geojson, write_geojson

    assert len(scored.cells) > 10
    path = write_geojson(scored, tmp_path / "r.geojson")
    assert path.read_text(encoding="utf-8") == json.dumps(to_geojson(scored), separators=(",", ":"))
    points = write_geojson(scored, tmp_path / "p.geojson", cell_shape="point", include_non_tumour=False)
    assert json.loads(points.read_text()) == to_geojson(scored, cell_shape="point", include_non_tumour=False)


def _polygons_full_size_holes(mask, l0, tolerance=0.75, min_pixels=4):
    """The previous implementation (one full-size mask per hole), as the reference."""
    from scipy import ndimage as ndi
    from skimage.measure import approximate_polygon, find_contours

    sx, sy = l0
    lab, _ = ndi.label(mask, structure=np.ones((3, 3), bool))
    out = []
    for k, sl in enumerate(ndi.find_objects(lab), start=1):
        comp = lab[sl] == k
        if comp.sum() < min_pixels:
            continue
        y0, x0 = sl[0].start, sl[1].start
        filled = ndi.binary_fill_holes(comp)
        hl, hn = ndi.label(filled & ~comp)
        areas = np.bincount(hl.ravel(), minlength=hn + 1)
        rings = []
        for region in [filled] + [hl == j for j in range(1, hn + 1) if areas[j] >= min_pixels]:
            cs = find_contours(np.pad(region, 1).astype(np.float32), 0.5)
            if not cs:
                if not rings:
                    break
                continue
            c = approximate_polygon(max(cs, key=len), tolerance)
            rings.append(np.stack([(c[:, 1] - 1 + x0 + 0.5) * sx, (c[:, 0] - 1 + y0 + 0.5) * sy], axis=1))
        if rings:
            out.append(rings)
    return out


def test_epithelium_polygons_with_many_holes_equal_the_reference_in_bounded_memory():
    """A whole slide's epithelium is a few large regions with thousands of stroma holes: each hole is
    traced on its own crop (a full-size mask per hole took 12.5 GB on a 40k^2 slide)."""
    import tracemalloc

    from her2fast.service.report import epithelium_polygons

    rng = np.random.default_rng(3)
    m = np.ones((300, 400), bool)
    m[0, :] = m[-1, :] = m[:, 0] = m[:, -1] = False
    for _ in range(120):  # holes of 1..30 pixels across, some touching each other
        y, x = rng.integers(5, 295), rng.integers(5, 395)
        r = rng.integers(1, 8)
        m[max(1, y - r) : y + r, max(1, x - r) : x + r] = False
    m[150:160, 200:210] = True  # islands inside holes
    got = epithelium_polygons(m, (4.0, 2.0))
    ref = _polygons_full_size_holes(m, (4.0, 2.0))
    assert len(got) == len(ref) and len(got[0]) > 50
    for a, b in zip(got, ref):
        assert len(a) == len(b)
        for ra, rb in zip(a, b):
            np.testing.assert_array_equal(ra, rb)
    tracemalloc.start()
    epithelium_polygons(m, (4.0, 2.0))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 40 * m.size  # a few mask-sized temporaries, not one per hole (> 100 here)
