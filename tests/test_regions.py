"""GeoJSON regions to include or exclude (her2fast.io.regions): reading, hostile files, point tests, masks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from her2fast.errors import InvalidInputError
from her2fast.io.regions import (
    MAX_REGION_VERTICES,
    Regions,
    RegionSelection,
    as_selection,
    read_regions,
)


def _square(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def _write(tmp_path, data, name="r.geojson"):
    p = tmp_path / name
    p.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return p


def test_reads_qupath_feature_collection_with_holes_and_multipolygons(tmp_path):
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"classification": {"name": "Control"}},
                "geometry": {"type": "Polygon", "coordinates": [_square(0, 0, 100, 100), _square(40, 40, 60, 60)]},
            },
            {
                "type": "Feature",
                "properties": {},
                "geometry": {
                    "type": "MultiPolygon",
                    "coordinates": [[_square(200, 0, 300, 100)], [_square(400, 0, 500, 100)]],
                },
            },
            {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [5, 5]}},
        ],
    }
    r = read_regions(_write(tmp_path, fc))
    assert len(r.polygons) == 3 and len(r.sha256) == 64
    x = np.array([10, 50, 250, 450, 350, -5])
    y = np.array([10, 50, 50, 50, 50, 50])
    # inside, in the hole, second polygon, third polygon, between, outside
    assert r.contains(x, y).tolist() == [True, False, True, True, False, False]


def test_bare_geometry_and_feature_list(tmp_path):
    g = {"type": "Polygon", "coordinates": [_square(0, 0, 10, 10)]}
    assert len(read_regions(_write(tmp_path, g, "a.json")).polygons) == 1
    lst = [{"type": "Feature", "geometry": g}, {"type": "Feature", "geometry": g}]
    assert len(read_regions(_write(tmp_path, lst, "b.json")).polygons) == 2


def test_contains_matches_a_reference_on_random_points():
    rng = np.random.default_rng(3)
    # a star-shaped (non-convex) polygon
    t = np.linspace(0, 2 * np.pi, 23, endpoint=False)
    rad = np.where(np.arange(t.size) % 2 == 0, 100.0, 40.0)
    ring = np.column_stack([500 + rad * np.cos(t), 500 + rad * np.sin(t)])
    from her2fast.io.regions import Polygon

    r = Regions((Polygon(ring),))
    pts = rng.uniform(350, 650, size=(4000, 2))

    # reference: even-odd ray casting written out
    def inside(px, py):
        c = False
        n = len(ring)
        for i in range(n):
            x1, y1 = ring[i]
            x2, y2 = ring[(i + 1) % n]
            if (y1 > py) != (y2 > py) and px < (x2 - x1) * (py - y1) / (y2 - y1) + x1:
                c = not c
        return c

    ref = np.array([inside(px, py) for px, py in pts])
    got = r.contains(pts[:, 0], pts[:, 1])
    assert 0.1 < ref.mean() < 0.9
    assert (got == ref).mean() == 1.0


def test_selection_keeps_and_masks(tmp_path):
    inc = read_regions(_write(tmp_path, {"type": "Polygon", "coordinates": [_square(0, 0, 800, 800)]}, "i.json"))
    exc = read_regions(_write(tmp_path, {"type": "Polygon", "coordinates": [_square(400, 400, 800, 800)]}, "e.json"))
    sel = RegionSelection(include=inc, exclude=exc)
    x = np.array([100.0, 500.0, 900.0])
    y = np.array([100.0, 500.0, 100.0])
    assert sel.keeps(x, y).tolist() == [True, False, False]
    # a grid of 100 level-0 px per pixel: include covers columns 0..7, exclude wholly covers 4..7 x 4..7
    m = sel.mask((10, 10), (100.0, 100.0))
    assert m[:3, :8].all() and not m[:, 8:].any() and not m[8:].any() and not m[4:7, 4:7].any()
    assert m[3, :8].all()  # pixels the exclude only touches: kept on the grid, cells tested exactly
    assert RegionSelection().empty and not sel.empty
    assert sel.to_dict()["exclude"]["polygons"] == 1
    assert as_selection(None, str(tmp_path / "e.json")).exclude is not None


@pytest.mark.parametrize(
    "content, match",
    [
        ("not json {", "not valid JSON"),
        ('{"type": "Topology"}', "not GeoJSON"),
        ('{"type": "FeatureCollection", "features": 3}', "must be a list"),
        ('{"type": "FeatureCollection", "features": [{"type": "Feature"}]}', "no geometry"),
        ('{"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}', "at least 3"),
        ('{"type": "Polygon", "coordinates": [[[0, 0], [1, "a"], [2, 2]]]}', "number pairs"),
        ('{"type": "Polygon", "coordinates": [[[0, 0], [1, 1e999], [2, 2]]]}', "finite"),
        ('{"type": "Polygon", "coordinates": [[[0, 0], [1, 1e12], [2, 2]]]}', "beyond"),
        ('{"type": "Point", "coordinates": [0, 0]}', "no Polygon"),
        ("[" * 100000 + "]" * 100000, "not valid JSON"),
        ("\udcff".encode("utf-8", "surrogateescape").decode("latin-1"), "not valid JSON"),
    ],
)
def test_hostile_files_give_errors_naming_the_file(tmp_path, content, match):
    p = tmp_path / "hostile; rm -rf ~.geojson"
    p.write_bytes(content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content)
    with pytest.raises(InvalidInputError, match=match) as ei:
        read_regions(p)
    assert str(p) in str(ei.value)


def test_missing_and_oversized_files(tmp_path, monkeypatch):
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_regions(tmp_path / "nope.geojson")
    big = tmp_path / "big.geojson"
    big.write_text(json.dumps({"type": "Polygon", "coordinates": [_square(0, 0, 1, 1)]}))
    import her2fast.io.regions as regions

    monkeypatch.setattr(regions, "MAX_REGION_FILE_BYTES", 10)
    with pytest.raises(InvalidInputError, match="MB"):
        read_regions(big)


def test_too_many_vertices(tmp_path, monkeypatch):
    import her2fast.io.regions as regions

    assert MAX_REGION_VERTICES >= 1_000_000  # a real export of thousands of annotations fits
    monkeypatch.setattr(regions, "MAX_REGION_VERTICES", 100)
    ring = [[0, 0], [1, 0], [1, 1]] * 20
    ok = {"type": "Polygon", "coordinates": [ring]}
    assert len(read_regions(_write(tmp_path, ok, "ok.json")).polygons) == 1
    data = {"type": "MultiPolygon", "coordinates": [[ring], [ring]]}
    with pytest.raises(InvalidInputError, match="vertices"):
        read_regions(_write(tmp_path, data))


def test_selection_rejects_wrong_types():
    with pytest.raises(InvalidInputError, match="Regions"):
        RegionSelection(include="a.geojson")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="GeoJSON path"):
        as_selection(include=3)  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_3plus_control_beside_a_0_patient_is_left_out(tmp_path):
    """A 0 patient tissue with a 3+ control tissue on the same slide: scored whole the control decides the
    slide; with the control excluded (or the patient included) the patient's 0 is read."""
    import her2fast
    from her2fast.synth import make_slide
    from her2fast.synth.perturb import read_level0, write_slide

    parts = []
    for cat, name in (("0", "patient"), ("3+", "control")):
        p = tmp_path / f"{name}.tiff"
        make_slide(p, category=cat, width=1024, height=1024, mpp=0.5, seed=61)
        parts.append(read_level0(p)[0])
    glass = np.full((1024, 256, 3), parts[0][:8, :8].reshape(-1, 3).max(axis=0), np.uint8)
    slide = tmp_path / "patient_with_control.tiff"
    write_slide(slide, np.concatenate([parts[0], glass, parts[1]], axis=1), 0.5)
    x0 = 1024 + 256
    _write(tmp_path, {"type": "Polygon", "coordinates": [_square(x0 - 60, -10, x0 + 1100, 1100)]}, "control.json")
    _write(tmp_path, {"type": "Polygon", "coordinates": [_square(-10, -10, 1100, 1100)]}, "patient.json")

    whole = her2fast.score(slide, progress=False)
    assert whole.score == "3+"
    # scored whole, the two pieces disagree: flagged, each piece's reading given, confidence capped
    assert "tissue_pieces_disagree" in whole.flags and whole.confidence <= 0.8
    pieces = whole.provenance["qc"]["pieces"]
    assert [p.get("category") for p in pieces] in (["0", "3+"], ["0+", "3+"])
    assert pieces[0]["bbox_level0"][2] <= 1100 and pieces[1]["bbox_level0"][0] >= 1200
    excluded = her2fast.score(slide, progress=False, exclude=tmp_path / "control.json")
    included = her2fast.score(slide, progress=False, include=tmp_path / "patient.json")
    for r in (excluded, included):
        assert r.score == "0", (r.score, r.percentages)
        assert "tissue_pieces_disagree" not in r.flags and "pieces" not in r.provenance["qc"]
        assert r.counts["tumour_cells"] < whole.counts["tumour_cells"]
        assert (r.cells.x < x0).all()
        assert r.provenance["qc"]["regions"]["tissue_fraction_kept"] < 0.7
    assert excluded.provenance["qc"]["regions"]["exclude"]["polygons"] == 1
    assert excluded.counts["cells_outside_regions"] >= 0
    # a region file that misses the slide's tissue: not scorable with the reason
    _write(tmp_path, {"type": "Polygon", "coordinates": [_square(90000, 90000, 91000, 91000)]}, "far.json")
    far = her2fast.score(slide, progress=False, include=tmp_path / "far.json")
    assert far.score is None and "chosen regions" in far.not_scorable


def test_command_line_checks_region_files_before_any_slide(tmp_path, capsys):
    from her2fast.cli import main

    bad = _write(tmp_path, "not json", "bad.geojson")
    out = tmp_path / "out"
    rc = main(["score", str(tmp_path / "a.svs"), "--exclude", str(bad), "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "bad.geojson" in err and "not valid JSON" in err
    ok = _write(tmp_path, {"type": "Polygon", "coordinates": [_square(0, 0, 10, 10)]}, "ok.geojson")
    rc = main(["score", "a.svs", "b.svs", "--include", str(ok), "--out", str(out), "-q"])
    assert rc == 1 and "one by one" in capsys.readouterr().err
    assert not out.exists()
