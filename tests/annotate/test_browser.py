"""The annotator page in a real browser (Playwright driving Debian's chromium): paint, fill, place keypoints,
undo, zoom and pan, save, reload; the label PNG on disk holds exactly the painted classes at the painted pixels."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganfactory.annotate.importers import polygon_mask
from ganfactory.annotate.server import ServerConfig, create_app
from ganfactory.annotate.store import open_project

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (make test installs Debian's)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _pixel(page, x, y):
    return page.evaluate("([x, y]) => window.annotator.imageToClient(x, y)", [x, y])


def _stroke(page, points):
    """Press at the first image pixel, move through the others (one pixel at a time), release."""
    page.mouse.move(*_pixel(page, *points[0]))
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        steps = max(abs(x1 - x0), abs(y1 - y0))
        for i in range(1, steps + 1):
            page.mouse.move(*_pixel(page, round(x0 + (x1 - x0) * i / steps), round(y0 + (y1 - y0) * i / steps)))
    page.mouse.up()


def _click(page, x, y, **kw):
    page.mouse.click(*_pixel(page, x, y), **kw)


def _wait_saved(page):
    page.wait_for_selector('#save-state[data-state="saved"]', timeout=10000)


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1200, "height": 760})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector('body[data-ready="1"]', timeout=15000)
    return page, errors


def test_paint_fill_keypoints_undo_save_reload(browser, G, tmp_path, serve, schema_file):
    from ganfactory.cli.annotate import read_schema

    project = tmp_path / "project"
    store = open_project(project, read_schema(str(schema_file)), "tiny32")
    app = create_app(store, G, ServerConfig(active=None))
    expected = np.zeros((32, 32), np.uint8)
    with serve(app) as url:
        page, errors = _open(browser, url)
        # an empty project starts with a new sample: the first seed
        assert page.evaluate("window.annotator.itemId()") == "seed000000"
        assert page.evaluate("window.annotator.scale()") >= 8           # 32 px scaled up, whole pixels

        page.keyboard.press("2")                                         # wheel
        _stroke(page, [(4, 6), (12, 6)])
        expected[6, 4:13] = 2
        page.keyboard.press("3")                                         # window: a closed square outline
        _stroke(page, [(16, 16), (26, 16), (26, 26), (16, 26), (16, 16)])
        expected[16, 16:27] = expected[26, 16:27] = expected[16:27, 16] = expected[16:27, 26] = 3
        page.click('#palette li[data-class-id="1"]')                    # body, then fill the inside
        page.keyboard.press("f")
        _click(page, 21, 21)
        expected[17:26, 17:26] = 1
        # a polygon (class 2): a triangle, closed with Enter
        page.keyboard.press("2")
        page.keyboard.press("p")
        corners = [(1.5, 28.5), (10.5, 28.5), (1.5, 19.5)]             # vertices snap to pixel corners
        for x, y in corners:
            _click(page, x + 0.2, y - 0.3)
        page.keyboard.press("Enter")
        triangle = polygon_mask(np.array(corners), 32, 32)
        assert triangle[28, 2] and triangle[28, 9] and triangle[21, 2] and not triangle[20, 2] and not triangle[21, 10]
        expected[triangle] = 2
        # a mistake, undone (and redone, and undone again)
        page.keyboard.press("b")
        page.keyboard.press("1")
        _stroke(page, [(0, 0), (30, 0)])
        assert page.evaluate("window.annotator.labelAt(15, 0)") == 1
        page.keyboard.press("Control+z")
        page.keyboard.press("Control+y")
        assert page.evaluate("window.annotator.labelAt(15, 0)") == 1
        page.click("#undo")
        assert page.evaluate("window.annotator.labelAt(15, 0)") == 0
        # zoom (wheel at a point) and pan (right-button drag), then keypoints still land on their pixels
        page.mouse.move(*_pixel(page, 10, 10))
        scale = page.evaluate("window.annotator.scale()")
        page.mouse.wheel(0, -300)
        page.wait_for_function(f"window.annotator.scale() > {scale}")
        before = _pixel(page, 12, 12)
        zoomed = page.evaluate("window.annotator.scale()")
        page.mouse.move(*_pixel(page, 9, 10))
        page.mouse.down(button="right")
        page.mouse.move(*_pixel(page, 12, 12))
        page.mouse.up(button="right")
        assert zoomed > scale and _pixel(page, 9, 10) == pytest.approx(before, abs=1)
        page.click('#keypoints li[data-keypoint="0"] span')
        _click(page, 8, 20)                                              # front, then the selection moves to back
        _click(page, 13, 3)
        page.click('#keypoints li[data-keypoint="1"] span')
        page.keyboard.press("v")                                         # back: hidden
        page.keyboard.press("Control+s")
        _wait_saved(page)

        folder = project / "items" / "seed000000"
        saved = np.asarray(Image.open(folder / "label.png"))
        assert Image.open(folder / "label.png").mode == "L"
        assert np.array_equal(saved, expected), np.argwhere(saved != expected)[:10]
        record = json.loads((folder / "item.json").read_text())
        assert record["status"] == "annotated"
        assert record["keypoints"] == [[8, 20, 1], [13, 3, 0]]

        # reload: everything comes back from the server
        page.reload()
        page.wait_for_selector('body[data-ready="1"]')
        assert page.evaluate("window.annotator.itemId()") == "seed000000"
        shown = page.evaluate("Array.from({length: 32 * 32}, (_, i) => window.annotator.labelAt(i % 32, "
                              "Math.floor(i / 32)))")
        assert np.array_equal(np.array(shown, np.uint8).reshape(32, 32), expected)
        assert page.evaluate("window.annotator.keypoints()") == [[8, 20, 1], [13, 3, 0]]
        assert page.text_content("#keypoints li[data-keypoint='0']").startswith("front: 8, 20")
        # the label layer is drawn over the image: at full opacity a wheel pixel shows the wheel colour
        page.fill("#opacity", "100")
        page.dispatch_event("#opacity", "input")
        cx, cy = _pixel(page, 8, 6)
        box = page.locator("#canvas").bounding_box()
        rgba = page.evaluate("([x, y]) => Array.from(document.getElementById('canvas').getContext('2d')"
                             ".getImageData(x, y, 1, 1).data)", [round(cx - box["x"]), round(cy - box["y"])])
        assert rgba[:3] == [60, 180, 75]
        # next sample and back again
        page.click("#new")
        page.wait_for_function("window.annotator.itemId() === 'seed000001'")
        assert page.text_content("#position") == "2 / 2"
        assert (project / "items" / "seed000001" / "image.png").is_file()
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("window.annotator.itemId() === 'seed000000'")
        assert page.evaluate("window.annotator.labelAt(5, 6)") == 2
        page.screenshot(path=str(tmp_path / "annotator.png"))
        assert not errors, errors
        page.close()
    assert Path(tmp_path / "annotator.png").stat().st_size > 10000


def test_keypoints_are_dragged_with_the_pointer(browser, G, tmp_path, serve, schema_file):
    """Pressing on a placed keypoint drags it (keeping its visibility, not placing the next one); undo restores."""
    from ganfactory.cli.annotate import read_schema

    project = tmp_path / "project"
    store = open_project(project, read_schema(str(schema_file)), "tiny32")
    with serve(create_app(store, G, ServerConfig(active=None))) as url:
        page, errors = _open(browser, url)
        page.click('#keypoints li[data-keypoint="0"] span')
        _click(page, 8, 20)                                              # front
        _click(page, 13, 3)                                              # back
        page.click('#keypoints li[data-keypoint="1"] span')
        page.keyboard.press("v")                                         # back: hidden
        kps = "window.annotator.keypoints()"
        assert page.evaluate(kps) == [[8, 20, 1], [13, 3, 0]]
        _stroke(page, [(13, 3), (16, 5)])
        assert page.evaluate(kps) == [[8, 20, 1], [16, 5, 0]]
        _stroke(page, [(8, 20), (10, 24)])
        assert page.evaluate(kps) == [[10, 24, 1], [16, 5, 0]]
        assert page.text_content("#keypoints li.active").startswith("front: 10, 24")
        page.keyboard.press("Control+z")                                 # one drag is one undo step
        assert page.evaluate(kps) == [[8, 20, 1], [16, 5, 0]]
        page.keyboard.press("Control+s")
        _wait_saved(page)
        record = json.loads((project / "items" / "seed000000" / "item.json").read_text())
        assert record["keypoints"] == [[8, 20, 1], [16, 5, 0]]
        assert not errors, errors
        page.close()


def test_autosave_without_asking(browser, G, tmp_path, serve, schema_file):
    """An edit saves itself (no save button, no shortcut), and the page says so."""
    from ganfactory.cli.annotate import read_schema

    project = tmp_path / "project"
    store = open_project(project, read_schema(str(schema_file)), "tiny32")
    with serve(create_app(store, G, ServerConfig(active=None))) as url:
        page, errors = _open(browser, url)
        page.keyboard.press("3")
        _click(page, 30, 1)
        assert page.get_attribute("#save-state", "data-state") in ("unsaved", "saving", "saved")
        _wait_saved(page)
        saved = np.asarray(Image.open(project / "items" / "seed000000" / "label.png"))
        assert saved[1, 30] == 3 and (saved != 0).sum() == 1
        # a wide brush, then the eraser over part of it
        page.fill("#brush-size", "3")
        page.dispatch_event("#brush-size", "input")
        _stroke(page, [(10, 10), (14, 10)])
        page.keyboard.press("e")
        _click(page, 14, 10)
        _wait_saved(page)
        page.wait_for_function("window.annotator.labelAt(14, 10) === 0")
        _wait_saved(page)
        saved = np.asarray(Image.open(project / "items" / "seed000000" / "label.png"))
        expected = np.zeros((32, 32), np.uint8)
        expected[1, 30] = 3
        expected[9:12, 9:16] = 3                      # size 3: a 3x3 block at every pixel of the stroke
        expected[9:12, 13:16] = 0                     # erased: a 3x3 block around (14, 10)
        assert np.array_equal(saved, expected), np.argwhere(saved != expected)
        # skipping an item is stored as its status
        page.click("#skip")
        page.wait_for_selector('#items li[data-status="skipped"]')
        assert json.loads((project / "items" / "seed000000" / "item.json").read_text())["status"] == "skipped"
        assert not errors, errors
        page.close()


def _project_page(browser, G, tmp_path, serve, schema_file, items=1):
    """A new project with ``items`` samples, served; returns (the serve context, the store)."""
    from ganfactory.cli.annotate import read_schema

    store = open_project(tmp_path / "project", read_schema(str(schema_file)), "tiny32")
    return serve(create_app(store, G, ServerConfig(active=None))), store


def _history(page):
    return page.evaluate("[document.getElementById('undo').disabled, document.getElementById('redo').disabled]")


def test_undoing_a_placement_selects_that_keypoint_again(browser, G, tmp_path, serve, schema_file):
    """Press K, click, undo, click: the second click places the same (first) keypoint, not the next one."""
    serving, _ = _project_page(browser, G, tmp_path, serve, schema_file)
    with serving as url:
        page, errors = _open(browser, url)
        page.keyboard.press("k")
        _click(page, 10, 10)
        page.keyboard.press("Control+z")
        _click(page, 20, 20)
        assert page.evaluate("window.annotator.keypoints()") == [[20, 20, 1], [None, None, 0]]
        # V right after placing toggles the keypoint just placed, not the next (unplaced) one
        page.keyboard.press("v")
        assert page.evaluate("window.annotator.keypoints()") == [[20, 20, 0], [None, None, 0]]
        assert not errors, errors
        page.close()


def test_edits_that_change_nothing_leave_no_undo_step(browser, G, tmp_path, serve, schema_file):
    """A click on a placed keypoint without dragging, or a brush press outside the image, is no undo step; the
    undo and redo buttons are enabled only when there is a step."""
    serving, _ = _project_page(browser, G, tmp_path, serve, schema_file)
    with serving as url:
        page, errors = _open(browser, url)
        assert _history(page) == [True, True]
        page.keyboard.press("k")
        _click(page, 6, 6)
        assert _history(page) == [False, True]
        _click(page, 6, 6)                                   # on the placed keypoint, no drag
        page.keyboard.press("Control+z")                     # the one real step: the placement
        assert page.evaluate("window.annotator.keypoints()") == [[None, None, 0], [None, None, 0]]
        assert _history(page) == [True, False]
        page.keyboard.press("Control+y")
        assert page.evaluate("window.annotator.keypoints()") == [[6, 6, 1], [None, None, 0]]
        page.keyboard.press("b")
        page.keyboard.press("2")
        corner = page.evaluate("window.annotator.imageToClient(0, 0)")
        scale = page.evaluate("window.annotator.scale()")
        page.mouse.click(corner[0] - 3 * scale, corner[1] - 3 * scale)   # outside the image
        page.keyboard.press("Control+z")
        assert page.evaluate("window.annotator.keypoints()") == [[None, None, 0], [None, None, 0]]
        assert not errors, errors
        page.close()


def test_slider_keys_cursor_readout_and_favicon(browser, G, tmp_path, serve, schema_file):
    """Arrow keys on the focused opacity slider move the slider, not the item; the cursor readout shows the class a
    click just painted; the page's icon is served."""
    serving, store = _project_page(browser, G, tmp_path, serve, schema_file)
    with serving as url:
        page, errors = _open(browser, url)
        page.click("#new")
        page.wait_for_function("window.annotator.itemId() === 'seed000001'")
        page.focus("#opacity")
        before = page.input_value("#opacity")
        page.keyboard.press("ArrowLeft")
        assert page.evaluate("window.annotator.itemId()") == "seed000001"
        assert page.input_value("#opacity") != before
        page.keyboard.press("2")                             # wheel
        _click(page, 5, 5)
        assert page.text_content("#cursor-info") == "x 5, y 5: wheel"
        assert page.request.get(url + "/favicon.ico").status == 200
        assert not errors, errors
        page.close()
