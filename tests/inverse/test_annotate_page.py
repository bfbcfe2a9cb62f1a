"""The view-code annotation page in a real browser (Playwright, Debian's chromium) and its server's checks."""

import json
import shutil
import time

import httpx
import pytest

from ganfactory.inverse.annotate_page import create_page_app
from ganfactory.inverse.multiview import MultiviewSettings, read_cameras

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SETTINGS = MultiviewSettings(generator="tiny32", cutoff=4, view_codes=12, content_codes=4)
KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "-", "="]


def test_server_refuses_other_hosts_and_bad_answers(tiny_G, tmp_path, serve):
    app = create_page_app(tiny_G, SETTINGS, tmp_path / "p", grid=2)
    with serve(app) as url:
        assert httpx.get(f"{url}/api/project").json()["view_codes"] == 12
        assert httpx.get(f"{url}/api/project", headers={"Host": "evil.example:80"}).status_code == 421
        assert httpx.put(f"{url}/api/views/0", json={"azimuth_bin": 1, "elevation_deg": 0},
                         headers={"Origin": "http://evil.example"}).status_code == 403
        assert httpx.put(f"{url}/api/views/0", json={"azimuth_bin": 12, "elevation_deg": 0}).status_code == 400
        assert httpx.put(f"{url}/api/views/12", json={"azimuth_bin": 1, "elevation_deg": 0}).status_code == 404
        assert httpx.get(f"{url}/static/../../etc/passwd").status_code == 404
        png = httpx.get(f"{url}/api/views/3/grid.png")
        assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
        assert httpx.put(f"{url}/api/views/3", json={"azimuth_bin": 7, "elevation_deg": 20}).status_code == 200
    cams = read_cameras(tmp_path / "p" / "cameras.json", SETTINGS)
    assert cams[3].azimuth_bin == 7 and cams[3].elevation_deg == 20 and cams[3].annotator == "person"


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (make test installs Debian's)")
def test_annotate_12_view_codes_through_the_page(tiny_G, tmp_path, serve):
    """Keys for some view codes, dial clicks for others, an elevation change, a wrong answer undone; the stored
    cameras hold exactly the intended bins; a reload shows them all. Also counts what a person does."""
    from playwright.sync_api import sync_playwright

    want_bins = [0, 3, 6, 9, 1, 11, 5, 2, 8, 4, 10, 7]
    want_elev = [0, 0, 0, 10, 10, 10, 10, 20, 20, 20, 30, 30]
    project = tmp_path / "project"
    app = create_page_app(tiny_G, SETTINGS, project, grid=4)
    with serve(app) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        errors, grids = [], []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: grids.append(r.url) if r.url.endswith("grid.png") else None)
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_selector('body[data-ready="1"]', timeout=20000)
        clicks = keys = 0
        for v in range(12):
            assert page.evaluate("window.mv.viewCode()") == v
            if v == 0 or want_elev[v] != want_elev[v - 1]:
                page.keyboard.press("qwer"[want_elev[v] // 10])
                keys += 1
            if v == 5:                                   # a slip: the wrong bin, then undo
                page.keyboard.press(KEYS[(want_bins[v] + 1) % 12])
                page.wait_for_function("window.mv.viewCode() === 6")
                page.keyboard.press("z")
                page.wait_for_function("window.mv.viewCode() === 5 && window.mv.saved()")
                assert "5" not in page.evaluate("window.mv.answers()")
                keys += 2
            if v % 2:
                page.click(f'.bin[data-bin="{want_bins[v]}"]')
                clicks += 1
            else:
                page.keyboard.press(KEYS[want_bins[v]])
                keys += 1
            page.wait_for_function("window.mv.saved()")
        seconds = time.perf_counter() - t0
        assert page.inner_text("#progress") == "12 / 12 annotated"
        page.reload()
        page.wait_for_selector('body[data-ready="1"]', timeout=20000)
        assert page.inner_text("#progress") == "12 / 12 annotated"
        chosen = page.evaluate("document.querySelector('.bin.chosen').dataset.bin")
        assert int(chosen) == want_bins[page.evaluate("window.mv.viewCode()")]
        browser.close()
    assert not errors, errors
    cams = read_cameras(project / "cameras.json", SETTINGS)
    assert [cams[v].azimuth_bin for v in range(12)] == want_bins
    assert [cams[v].elevation_deg for v in range(12)] == want_elev
    assert json.loads((project / "cameras.json").read_text())["generator"] == "tiny32"
    # one grid image per view code (and a prefetch of the next), never one per sample
    assert len(set(grids)) <= 13
    print(json.dumps({"view_codes": 12, "clicks": clicks, "keys": keys, "grid_loads": len(set(grids)),
                      "seconds_in_browser": round(seconds, 2)}))
