"""her2fast.service.view (`her2fast view`): tiles, overlay tiles, cell look-up, sign-off, and what a request
must never reach (paths outside the store's slides, other runs' data, a write without its CSRF token)."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flask")

from _view_store import EVIL_NAME, make_view_store  # noqa: E402
from markupsafe import escape  # noqa: E402
from PIL import Image  # noqa: E402

from her2fast.io.store import ResultsStore  # noqa: E402
from her2fast.scoring import CellClass  # noqa: E402
from her2fast.service.report import CLASS_COLOURS  # noqa: E402
from her2fast.service.view import ServerThread, create_app  # noqa: E402
from her2fast.service.view.catalog import CellIndex, read_epithelium_rings  # noqa: E402
from her2fast.service.view.tiles import DeepZoomGeometry  # noqa: E402


@pytest.fixture(scope="module")
def vs(tmp_path_factory):
    return make_view_store(tmp_path_factory.mktemp("view"))


@pytest.fixture()
def client(vs):
    return create_app(vs.out).test_client()


def png(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)))


def token_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the form"
    return m.group(1)


# ------------------------------------------------------------------------------------------ geometry
@pytest.mark.parametrize("size", [(1, 1), (254, 254), (255, 100), (768, 768), (1000, 37), (40000, 30), (7, 40001)])
def test_deep_zoom_geometry_is_openslides(size):
    """The overlay grid must be OpenSlide's DeepZoomGenerator's, tile for tile."""
    from openslide import ImageSlide
    from openslide.deepzoom import DeepZoomGenerator

    g = DeepZoomGeometry(*size)
    dz = DeepZoomGenerator(ImageSlide(Image.new("RGB", size)), tile_size=254, overlap=1, limit_bounds=False)
    assert g.level_dimensions == tuple(dz.level_dimensions)
    assert g.level_tiles == tuple(dz.level_tiles)
    for level in (0, g.level_count // 2, g.level_count - 1):
        cols, rows = g.level_tiles[level]
        for col, row in {(0, 0), (cols - 1, rows - 1), (cols // 2, rows // 2)}:
            _, _, w, h = g.tile_rect(level, col, row)
            assert (w, h) == dz.get_tile_dimensions(level, (col, row)), (level, col, row)


def test_cell_index_finds_what_brute_force_finds():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 5000, 3000), rng.uniform(0, 3000, 3000)
    idx = CellIndex(x, y, 100)
    for x0, y0, x1, y1 in [(0, 0, 5000, 3000), (1234, 567, 1800, 900), (4990, 2990, 6000, 4000), (-50, -50, 10, 10)]:
        inside = set(np.flatnonzero((x >= x0) & (x < x1) & (y >= y0) & (y < y1)).tolist())
        assert inside <= set(idx.in_rect(x0, y0, x1, y1).tolist())
    for px, py in [(100.0, 200.0), (4999.0, 1.0), (2500.5, 1500.5)]:
        d = np.hypot(x - px, y - py)
        assert idx.nearest(px, py, 1e9) == int(np.argmin(d))
        assert idx.nearest(px, py, float(d.min()) * 0.99) is None


def test_epithelium_rings_come_from_the_geojson_head(tmp_path):
    feats = [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 5]}},
    ]
    feats[0]["properties"] = {"objectType": "annotation"}
    feats[1]["properties"] = {"objectType": "detection"}
    p = tmp_path / "a.geojson"
    p.write_text('{"type":"FeatureCollection","features":[' + ",".join(json.dumps(f) for f in feats) + "]}")
    rings = read_epithelium_rings(p)
    assert len(rings) == 1 and rings[0].shape == (4, 2) and rings[0][1].tolist() == [10, 0]
    (tmp_path / "b.geojson").write_text('{"features": []}')
    assert read_epithelium_rings(tmp_path / "b.geojson") == []


# ------------------------------------------------------------------------------------------ pages
def test_worklist_lists_every_slide_escaped(client, vs):
    r = client.get("/")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "ph3.tiff" in html and "broken.tiff" in html and "gone.svs" in html
    assert str(escape(EVIL_NAME)) in html and EVIL_NAME not in html and "<b>ain" not in html
    for status in ("scored", "failed"):
        assert f"status-{status}" in html
    assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert r.headers["X-Frame-Options"] == "DENY"


def test_slide_page_shows_the_result(client, vs):
    r = client.get(f"/slide/{vs.ok}")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    with ResultsStore(vs.out) as store:
        row = store.get(vs.ok)
    assert f'<td id="score">{row["score"]}</td>' in html
    assert 'id="viewer"' in html and "openseadragon.min.js" in html and token_of(html)


def test_static_openseadragon_and_its_licence_ship(client):
    with client.get("/static/openseadragon/openseadragon.min.js") as js:
        assert js.status_code == 200 and b"openseadragon 4.1.0" in js.data[:200]
    with client.get("/static/openseadragon/LICENSE.txt") as lic:
        assert lic.status_code == 200 and b"OpenSeadragon contributors" in lic.data


# ------------------------------------------------------------------------------------------ tiles
def test_slide_tiles_are_openslides_deep_zoom(client, vs):
    import openslide
    from openslide.deepzoom import DeepZoomGenerator

    dzi = client.get(f"/slide/{vs.ok}/slide.dzi")
    assert dzi.status_code == 200 and f'Height="{768}" Width="{768}"' in dzi.get_data(as_text=True)
    dz = DeepZoomGenerator(openslide.OpenSlide(str(vs.slide)), tile_size=254, overlap=1, limit_bounds=False)
    level = dz.level_count - 1
    r = client.get(f"/slide/{vs.ok}/slide_files/{level}/1_2.jpeg")
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    got = png(r.data).astype(int)
    want = np.asarray(dz.get_tile(level, (1, 2))).astype(int)
    other = np.asarray(dz.get_tile(level, (2, 1))).astype(int)
    assert got.shape == want.shape and np.abs(got - want).mean() < 6  # JPEG
    assert np.abs(got - other).mean() > 3 * np.abs(got - want).mean()


def test_plain_image_tiles_come_from_her2fasts_reader(client, vs):
    g = DeepZoomGeometry(768, 768)
    level = g.level_count - 1
    r = client.get(f"/slide/{vs.plain}/slide_files/{level}/1_1.jpeg")
    assert r.status_code == 200
    x, y, w, h = g.tile_rect(level, 1, 1)
    got = png(r.data).astype(int)
    assert got.shape == (h, w, 3)
    err = np.abs(got - vs.pixels[y : y + h, x : x + w].astype(int)).mean()
    assert err < 6 and np.abs(got - vs.pixels[y + 50 : y + h + 50, x : x + w].astype(int)).mean() > 3 * err
    small = client.get(f"/slide/{vs.plain}/slide_files/{level - 2}/0_0.jpeg")
    assert small.status_code == 200 and png(small.data).shape[:2] == (192, 192)


@pytest.mark.parametrize("tile", ["99/0_0", "10/9_0", "10/0_9", "0/1_0"])
def test_tiles_outside_the_pyramid_are_404(client, vs, tile):
    assert client.get(f"/slide/{vs.ok}/slide_files/{tile}.jpeg").status_code == 404
    assert client.get(f"/slide/{vs.ok}/cells_files/{tile}.png").status_code == 404


def _tumour_cell(app, run_id):
    cat = app.extensions["her2fast_catalog"]
    data = cat.data(run_id, cat.run(run_id))
    # the tumour cell farthest from every other tumour cell: its disc is not covered by a neighbour's
    x, y = data.cells.x[data.tumour].astype(float), data.cells.y[data.tumour].astype(float)
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    np.fill_diagonal(d, np.inf)
    i = int(np.argmax(d.min(axis=1)))
    return data, i, float(x[i]), float(y[i])


def test_cell_overlay_is_drawn_where_the_cells_are(vs):
    app = create_app(vs.out)
    client = app.test_client()
    data, i, x, y = _tumour_cell(app, vs.ok)
    cls = CellClass(int(data.classes[data.tumour[i]]))
    g = DeepZoomGeometry(768, 768)
    level = g.level_count - 1
    col, row = int(x // 254), int(y // 254)
    tx, ty, _, _ = g.tile_rect(level, col, row)
    r = client.get(f"/slide/{vs.ok}/cells_files/{level}/{col}_{row}.png")
    assert r.status_code == 200 and r.mimetype == "image/png"
    tile = png(r.data)
    px, py = int(round(x)) - tx, int(round(y)) - ty
    assert tile[py, px, 3] > 200 and tuple(tile[py, px, :3]) == CLASS_COLOURS[cls]
    # pixels far from every tumour cell stay clear
    cx, cy = data.cells.x[data.tumour], data.cells.y[data.tumour]
    yy, xx = np.mgrid[0 : tile.shape[0], 0 : tile.shape[1]]
    far = np.ones(tile.shape[:2], bool)
    for a, b in zip(cx - tx, cy - ty):
        far &= (xx - a) ** 2 + (yy - b) ** 2 > 15**2
    assert far.any() and (tile[far, 3] == 0).all()
    # the coarsest levels still draw every cell somewhere (200,000 cells or 200)
    top = png(client.get(f"/slide/{vs.ok}/cells_files/{level - 3}/0_0.png").data)
    assert (top[..., 3] > 0).sum() > 0


def test_epithelium_and_heatmap_tiles(client, vs):
    g = DeepZoomGeometry(768, 768)
    level = g.level_count - 3  # 192 x 192: one tile
    epi = png(client.get(f"/slide/{vs.ok}/epithelium_files/{level}/0_0.png").data)
    green = (epi[..., 3] > 0) & (epi[..., 1] > 150) & (epi[..., 0] < 50)
    assert green.sum() > 50
    heat = png(client.get(f"/slide/{vs.ok}/heatmap_files/{level}/0_0.png").data)
    assert 0 < (heat[..., 3] > 0).mean() <= 1
    assert client.get(f"/slide/{vs.ok}/nonsense_files/{level}/0_0.png").status_code == 404
    assert client.get(f"/slide/{vs.ok}/nonsense.dzi").status_code == 404


def test_cell_lookup(vs):
    app = create_app(vs.out)
    client = app.test_client()
    data, i, x, y = _tumour_cell(app, vs.ok)
    got = client.get(f"/slide/{vs.ok}/cell?x={x + 2}&y={y - 1}").json["cell"]
    row = data.tumour[i]
    assert got["cell_id"] == int(data.cells.cell_id[row])
    assert got["completeness"] == pytest.approx(float(data.cells.completeness[row]), abs=1e-4)
    assert client.get(f"/slide/{vs.ok}/cell?x=-5000&y=-5000").json == {"cell": None}
    for bad in ("", "?x=1", "?x=a&y=2", "?x=nan&y=1", "?x=inf&y=1"):
        assert client.get(f"/slide/{vs.ok}/cell{bad}").status_code == 400


# ------------------------------------------------------------------------------------------ safety
@pytest.mark.parametrize(
    "url",
    [
        "/slide/../results.db",
        "/slide/%2e%2e/results.db",
        "/slide/..%2fresults.db",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2f..%2fio%2fstore.py",
        "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "//etc/passwd",
        "/etc/passwd",
        "/slide/1/slide_files/../../../../etc/passwd",
        "/slide/1/..%2f..%2f..%2fetc%2fpasswd",
        "/slide/-1",
        "/slide/1.0",
        "/slide/1e3",
        "/slide/0x1",
        "/slide/99999",
        "/slide/99999/slide_files/0/0_0.jpeg",
        "/slide/link",
        "/slide/link/slide.dzi",
        "/results.db",
        "/out/results.db",
        "/ph3.her2fast.json",
    ],
)
def test_no_request_outside_the_store_gets_file_content(client, vs, url):
    link = vs.out / "link"
    if not link.exists():
        link.symlink_to("/etc/passwd")
    r = client.get(url, follow_redirects=True)  # werkzeug merges "//" with a redirect
    assert r.status_code in (400, 404, 405), (url, r.status_code)
    body = r.data
    assert b"root:" not in body and b"SQLite format" not in body and b"import " not in body


def test_static_does_not_follow_a_path_out_of_the_package(client):
    """Static files are the package's own: the server answers nothing from outside its static folder."""
    here = Path(__file__).resolve()
    for url in (f"/static/{here}", f"/static/{here.as_uri()}", "/static/" + "../" * 12 + "etc/passwd"):
        r = client.get(url, follow_redirects=True)
        assert r.status_code == 404 and b"import " not in r.data, url


def test_broken_slide_gives_an_error_page_and_the_server_keeps_going(client, vs):
    r = client.get(f"/slide/{vs.broken}")
    html = r.get_data(as_text=True)
    assert r.status_code == 500 and "This slide cannot be shown" in html and "broken.tiff" in html
    assert client.get(f"/slide/{vs.broken}/slide_files/0/0_0.jpeg").status_code == 500
    assert client.get(f"/slide/{vs.broken}/thumbnail.jpg").status_code == 500
    assert client.get("/").status_code == 200
    assert client.get(f"/slide/{vs.ok}/slide_files/0/0_0.jpeg").status_code == 200
    failed = client.get(f"/slide/{vs.failed}")
    assert failed.status_code == 500 and "slide file not found" in failed.get_data(as_text=True)


def test_loopback_server_refuses_other_host_names(vs):
    """DNS rebinding: a page served as evil.example that resolves to 127.0.0.1 must not reach the viewer."""
    client = create_app(vs.out, trusted_hosts=["127.0.0.1", "localhost", "::1"]).test_client()
    assert client.get("/", base_url="http://localhost:8000").status_code == 200
    assert client.get("/", base_url="http://127.0.0.1:8000").status_code == 200
    r = client.get(f"/slide/{vs.ok}/cell?x=1&y=1", base_url="http://evil.example:8000")
    assert r.status_code == 400 and b"cell" not in r.data


def test_unknown_ids_are_404(client):
    for url in ("/slide/424242", "/slide/424242/cell?x=1&y=1", "/slide/424242/cells.dzi"):
        assert client.get(url).status_code == 404
    assert client.post("/slide/424242/review", data={}).status_code in (403, 404)


# ------------------------------------------------------------------------------------------ sign-off
def _reviews(vs, run_id):
    with ResultsStore(vs.out) as store:
        return store.reviews(run_id)


def test_review_needs_its_csrf_token(client, vs):
    before = len(_reviews(vs, vs.ok))
    form = {"reviewer": "Dr A", "action": "accept"}
    assert client.post(f"/slide/{vs.ok}/review", data=form).status_code == 403  # no token, no session
    client.get(f"/slide/{vs.ok}")  # a session with a token
    assert client.post(f"/slide/{vs.ok}/review", data=form).status_code == 403  # token missing
    assert client.post(f"/slide/{vs.ok}/review", data={**form, "csrf_token": "x" * 43}).status_code == 403
    other = create_app(vs.out).test_client()  # another server's token is not this one's
    stolen = token_of(other.get(f"/slide/{vs.ok}").get_data(as_text=True))
    assert client.post(f"/slide/{vs.ok}/review", data={**form, "csrf_token": stolen}).status_code == 403
    assert client.get(f"/slide/{vs.ok}/review").status_code == 405  # writing is POST only
    assert len(_reviews(vs, vs.ok)) == before


def test_override_is_stored_as_a_review_row_and_the_run_is_untouched(client, vs):
    with ResultsStore(vs.out) as store:
        run_before = store.get(vs.plain)
    token = token_of(client.get(f"/slide/{vs.plain}").get_data(as_text=True))
    new = "1+" if run_before["score"] != "1+" else "2+"
    no_reason = {"csrf_token": token, "reviewer": "Dr B", "action": "override", "score": new, "reason": " "}
    r = client.post(f"/slide/{vs.plain}/review", data=no_reason)
    assert r.status_code == 400 and "reason" in r.get_data(as_text=True)
    assert _reviews(vs, vs.plain) == []
    evil = "<script>alert(1)</script>"
    form = {**no_reason, "reviewer": f"Dr {evil}", "reason": "membranes are <b>incomplete</b> in most fields"}
    r = client.post(f"/slide/{vs.plain}/review", data=form)
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/slide/{vs.plain}")
    (rev,) = _reviews(vs, vs.plain)
    assert (rev["action"], rev["score_before"], rev["score_after"]) == ("override", run_before["score"], new)
    assert rev["reviewer"] == f"Dr {evil}"
    with ResultsStore(vs.out) as store:
        assert store.get(vs.plain) == run_before  # the algorithm's row is never changed
        store.export_csv(vs.out / "export.csv")
    with open(vs.out / "export.csv", encoding="utf-8") as fh:
        by_id = {int(r["id"]): r for r in csv.DictReader(fh)}
    assert by_id[vs.plain]["review_score"] == new and by_id[vs.plain]["review_action"] == "override"
    assert by_id[vs.ok]["review_score"] in ("", by_id[vs.ok]["score"])
    page = client.get("/").get_data(as_text=True)
    assert evil not in page and "&lt;script&gt;" in page and "status-reviewed" in page
    slide = client.get(f"/slide/{vs.plain}").get_data(as_text=True)
    assert "<b>incomplete</b>" not in slide and "&lt;b&gt;incomplete&lt;/b&gt;" in slide


def test_accept_and_failed_runs(client, vs):
    token = token_of(client.get(f"/slide/{vs.ok}").get_data(as_text=True))
    r = client.post(f"/slide/{vs.ok}/review", data={"csrf_token": token, "reviewer": "Dr C", "action": "accept"})
    assert r.status_code == 303
    rev = _reviews(vs, vs.ok)[-1]
    assert rev["action"] == "accept" and rev["score_after"] == rev["score_before"]
    r = client.post(f"/slide/{vs.failed}/review", data={"csrf_token": token, "reviewer": "Dr C", "action": "accept"})
    assert r.status_code == 400 and _reviews(vs, vs.failed) == []
    r = client.post(f"/slide/{vs.ok}/review", data={"csrf_token": token, "reviewer": "", "action": "accept"})
    assert r.status_code == 400


# ------------------------------------------------------------------------------------------ server
def test_threaded_server_answers_concurrent_requests(vs):
    server = ServerThread(create_app(vs.out), threads=4).start()
    base = server.url
    g = DeepZoomGeometry(768, 768)
    urls = [
        f"{base}slide/{vs.ok}/{layer}_files/{lv}/0_0.{ext}"
        for lv in range(4, g.level_count)
        for layer, ext in (("slide", "jpeg"), ("cells", "png"))
    ]
    urls += [f"{base}slide/{vs.broken}/slide_files/0/0_0.jpeg", base]

    def fetch(url):
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(fetch, urls * 2))
    finally:
        server.stop()
    assert codes.count(500) == 2 and set(codes) == {200, 500}


def test_cli_view(tmp_path, vs):
    run = [sys.executable, "-m", "her2fast", "view"]
    out = subprocess.run([*run, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--port" in out.stdout and "--host" in out.stdout
    out = subprocess.run([*run, str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "no results store" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "nothing").exists()  # no empty store was created
    out = subprocess.run([*run, str(vs.out), "--port", "70000"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "--port" in out.stderr


def test_cli_view_serves_on_loopback_and_prints_its_address(vs):
    proc = subprocess.Popen(
        [sys.executable, "-m", "her2fast", "view", str(vs.out), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stderr.readline()
        m = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        assert m, line
        with urllib.request.urlopen(m.group(1), timeout=60) as r:
            assert r.status == 200 and b"ph3.tiff" in r.read()
        assert "warning" not in line
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        proc.stderr.close()
    assert proc.returncode == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_view_stops_at_once_on_a_signal_even_mid_request(vs, sig):
    """Ctrl-C or SIGTERM stops the viewer within seconds, also while requests are being served."""
    import threading

    proc = subprocess.Popen(
        [sys.executable, "-m", "her2fast", "view", str(vs.out), "--port", "0"], stderr=subprocess.PIPE, text=True
    )
    try:
        m = re.search(r"at (http://127\.0\.0\.1:\d+/)", proc.stderr.readline())
        assert m

        def hammer():
            for _ in range(20):
                try:
                    urllib.request.urlopen(m.group(1), timeout=5).read()
                except OSError:
                    return

        t = threading.Thread(target=hammer, daemon=True)
        t.start()
        time.sleep(0.2)
        proc.send_signal(sig)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == 0


def test_evaluate_exports_the_sign_off(vs, tmp_path):
    """`her2fast evaluate` on a store with a sign-off: slides.csv carries the reviewed score and the reviewer;
    the agreement is the algorithm's own."""
    from her2fast.validation.evaluate import run_evaluation

    with ResultsStore(vs.out) as store:
        run = store.get(vs.ok)
        new = "2+" if run["score"] != "2+" else "1+"
        store.add_review(vs.ok, "Dr Eval", "override", score_after=new, reason="fields at 40x")
    ref = tmp_path / "reference.csv"
    ref.write_text(f"slide,score\n{vs.slide},{run['score']}\n", encoding="utf-8")
    report, files = run_evaluation(ref, vs.out, workers=1, progress=False, pictures=False, geojson=False, n_boot=10)
    (outcome,) = report.outcomes
    assert outcome.skipped and outcome.score == run["score"]  # taken from the store, not scored again
    assert (outcome.reviewed_score, outcome.reviewer) == (new, "Dr Eval")
    with open(files["slides"], encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["reviewed_score"] == new and row["reviewer"] == "Dr Eval" and row["agrees"] == "yes"
