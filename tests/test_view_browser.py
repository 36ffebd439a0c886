"""`her2fast view` in a real browser: Debian's Chromium driven by Selenium against a server on a phantom's store.

The worklist lists the slide, the slide page shows the tiles and the cell overlay (a screenshot's pixel where
a cell is has its class colour with the overlay on, and not with it off), a click on a cell shows its class,
and an override is stored, shown in the worklist and exported in the CSV.

scripts/test.sh installs ``chromium`` and ``chromium-driver`` from Debian when missing. Without them the
test is skipped on a developer's machine and fails under CI (``CI=true``).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flask")

from _view_store import make_view_store  # noqa: E402

from her2fast.io.store import ResultsStore  # noqa: E402
from her2fast.scoring import CellClass  # noqa: E402
from her2fast.service.report import CLASS_COLOURS, CLASS_NAMES  # noqa: E402
from her2fast.service.view import ServerThread, create_app  # noqa: E402

pytestmark = pytest.mark.slow


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser():
    found = _chromium()
    if found is None:
        msg = "chromium and chromium-driver (Debian) are not installed: scripts/test.sh installs them"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("selenium is not installed (pip install -e .[test])")
        pytest.skip("selenium is not installed")
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(a)
    opts.add_argument("--force-device-scale-factor=1")
    opts.binary_location = found[0]
    driver = webdriver.Chrome(service=Service(found[1]), options=opts)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    # Run in a folder of its own with relative paths, so that the pictures of docs/view.md show
    # "her2fast-results/out/results.db", not the machine's temporary folder.
    base = tmp_path_factory.mktemp("view_browser")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        vs = make_view_store(Path("her2fast-results"))
        app = create_app(vs.out)
        with ServerThread(app, threads=4) as server:
            yield vs, app, server.url


def _wait(driver, script: str, timeout: float = 60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


def _screenshot(driver) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")).astype(int)


def _isolated_cell(app, run_id):
    cat = app.extensions["her2fast_catalog"]
    data = cat.data(run_id, cat.run(run_id))
    x, y = data.cells.x[data.tumour].astype(float), data.cells.y[data.tumour].astype(float)
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    np.fill_diagonal(d, np.inf)
    i = int(np.argmax(d.min(axis=1)))
    return CellClass(int(data.classes[data.tumour[i]])), x[i], y[i]


def test_review_in_a_real_browser(browser, served, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    vs, app, url = served
    d = browser
    d.get(url)
    rows = d.find_elements(By.CSS_SELECTOR, "#worklist tbody tr")
    names = [r.find_element(By.CSS_SELECTOR, "td.name").text for r in rows]
    assert "ph3.tiff" in names and len(names) == 4

    def visible() -> list[str]:
        return [
            r.get_attribute("data-name")
            for r in d.find_elements(By.CSS_SELECTOR, "#worklist tbody tr")
            if r.is_displayed()
        ]

    d.find_element(By.ID, "filter").send_keys("ph3")
    assert visible() == ["ph3.tiff"]
    d.find_element(By.ID, "filter").clear()
    d.execute_script("document.getElementById('filter').dispatchEvent(new Event('input'))")
    Select(d.find_element(By.ID, "status-filter")).select_by_value("failed")
    assert visible() == ["gone.svs"]
    Select(d.find_element(By.ID, "status-filter")).select_by_value("")
    run_header = d.find_element(By.CSS_SELECTOR, "th[data-key=id]")
    run_header.click()
    ids = [int(r.get_attribute("data-id")) for r in d.find_elements(By.CSS_SELECTOR, "#worklist tbody tr")]
    assert ids == sorted(ids) and len(ids) == 4
    run_header.click()
    ids = [int(r.get_attribute("data-id")) for r in d.find_elements(By.CSS_SELECTOR, "#worklist tbody tr")]
    assert ids == sorted(ids, reverse=True)

    d.get(f"{url}slide/{vs.ok}")
    _wait(d, "return document.body.dataset.loaded === '1' && window.her2fastViewer.world.getItemCount() === 4")
    time.sleep(0.5)
    cls, x, y = _isolated_cell(app, vs.ok)
    js = (
        "const v = window.her2fastViewer, r = document.getElementById('viewer').getBoundingClientRect();"
        "const p = v.world.getItemAt(0).imageToViewerElementCoordinates(new OpenSeadragon.Point(arguments[0], arguments[1]));"
        "return [p.x, p.y, r.left, r.top, r.width, r.height];"
    )
    px, py, left, top, width, height = d.execute_script(js, x, y)
    sx, sy = int(round(left + px)), int(round(top + py))
    on = _screenshot(d)
    want = np.array(CLASS_COLOURS[cls])
    patch = on[sy - 1 : sy + 2, sx - 1 : sx + 2].reshape(-1, 3)
    assert np.abs(patch - want).sum(axis=1).min() < 40, (patch, want)

    # the slide's own tiles are drawn (not blank) and the overlay goes when switched off
    view = on[int(top) + 5 : int(top + height) - 5, int(left) + 5 : int(left + width) - 5]
    assert view.std() > 10
    d.find_element(By.CSS_SELECTOR, "input.layer[value=cells]").click()
    time.sleep(0.5)
    off = _screenshot(d)
    patch_off = off[sy - 1 : sy + 2, sx - 1 : sx + 2].reshape(-1, 3)
    assert np.abs(patch_off - want).sum(axis=1).min() > 40
    d.find_element(By.CSS_SELECTOR, "input.layer[value=cells]").click()

    # a click on the cell shows its class
    viewer = d.find_element(By.ID, "viewer")
    ActionChains(d).move_to_element_with_offset(viewer, int(px - width / 2), int(py - height / 2)).click().perform()
    _wait(d, "return !document.getElementById('cell').hidden")
    assert d.find_element(By.ID, "cell-class").text == CLASS_NAMES[cls]
    d.find_element(By.CSS_SELECTOR, "input.layer[value=epithelium]").click()
    time.sleep(1)
    d.save_screenshot(str(tmp_path / "slide.png"))

    # an override is stored and shown
    with ResultsStore(vs.out) as store:
        before = store.get(vs.ok)
    new = "1+" if before["score"] != "1+" else "2+"
    form = d.find_element(By.ID, "signoff")
    form.find_element(By.NAME, "reviewer").send_keys("Dr Browser")
    form.find_element(By.CSS_SELECTOR, "input[name=action][value=override]").click()
    Select(form.find_element(By.NAME, "score")).select_by_value(new)
    form.find_element(By.NAME, "reason").send_keys("checked at 40x")
    form.find_element(By.ID, "signoff-submit").click()
    _wait(d, "return document.getElementById('status') && document.getElementById('status').textContent === 'reviewed'")
    with ResultsStore(vs.out) as store:
        (review,) = store.reviews(vs.ok)
        assert store.get(vs.ok) == before
        store.export_csv(tmp_path / "results.csv")
    assert (review["reviewer"], review["score_after"], review["reason"]) == ("Dr Browser", new, "checked at 40x")
    with open(tmp_path / "results.csv", encoding="utf-8") as fh:
        row = next(r for r in csv.DictReader(fh) if int(r["id"]) == vs.ok)
    assert row["review_score"] == new and row["reviewer"] == "Dr Browser"
    d.get(url)
    tr = d.find_element(By.CSS_SELECTOR, f"#worklist tr[data-id='{vs.ok}']")
    assert tr.get_attribute("data-status") == "reviewed" and f"override: {new}" in tr.text
    d.save_screenshot(str(tmp_path / "worklist.png"))  # the pictures of docs/view.md
