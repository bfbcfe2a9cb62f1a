"""The neural renderer's page in a real browser (Playwright, Debian's chromium) and its server's checks."""

import shutil
from importlib import resources

import httpx
import pytest

from ganfactory.neural.page import create_page_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def demo_image():
    """A bundled test render (a real image, not the generator's)."""
    return resources.files("ganfactory") / "assets" / "cars64-demo" / "test" / "images" / "00000" / "03000013.png"


def test_server_checks_host_origin_and_input(untrained_renderer, serve):
    with serve(create_page_app(untrained_renderer, "untrained")) as url:
        assert httpx.get(f"{url}/api/info").json()["properties"] == ["shape", "texture", "background"]
        assert httpx.get(f"{url}/api/info", headers={"Host": "evil.example:80"}).status_code == 421
        png = demo_image().read_bytes()
        assert httpx.post(f"{url}/api/upload", content=png, headers={"Origin": "http://evil.example"}
                          ).status_code == 403
        assert httpx.post(f"{url}/api/upload", content=png, headers={"Sec-Fetch-Site": "cross-site"}
                          ).status_code == 403
        assert httpx.post(f"{url}/api/upload", content=b"not an image").status_code == 400
        assert httpx.get(f"{url}/api/source?seed=-1").status_code == 400
        assert httpx.get(f"{url}/api/render?source=seed:5").status_code == 404      # not read yet
        seed = httpx.get(f"{url}/api/source?seed=5", timeout=60).json()
        assert seed["source"] == "seed:5" and seed["input"].startswith("data:image/png;base64,")
        assert httpx.get(f"{url}/api/render?source=seed:5&elevation=80").status_code == 400
        up = httpx.post(f"{url}/api/upload", content=png, timeout=60).json()
        assert up["source"] == "upload:1" and 0 <= up["azimuth_deg"] < 360
        ok = httpx.get(f"{url}/api/render", params={"source": "upload:1", "azimuth": 90, "texture": "seed:5"},
                       timeout=60)
        assert ok.status_code == 200 and ok.json()["mesh"].startswith("data:image/png;base64,")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (make test installs Debian's)")
def test_sliders_swaps_and_upload_through_the_page(untrained_renderer, serve):
    from playwright.sync_api import sync_playwright

    with serve(create_page_app(untrained_renderer, "untrained")) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector('body[data-ready="1"]', timeout=60000)

        def settled():
            page.wait_for_function("window.nr.idle()", timeout=60000)
            return page.get_attribute("#gan", "src"), page.get_attribute("#mesh", "src")

        gan0, mesh0 = settled()
        assert gan0.startswith("data:image/png") and page.evaluate("window.nr.state()")["source"] == "seed:1"
        before = page.evaluate("window.nr.renders()")
        az = int(page.input_value("#azimuth"))
        page.fill("#azimuth", str((az + 120) % 360))          # a slider move fires 'input'
        page.dispatch_event("#azimuth", "input")
        gan1, mesh1 = settled()
        assert page.evaluate("window.nr.renders()") > before
        assert gan1 != gan0 and mesh1 != mesh0                 # the camera moved both the GAN and the mesh

        for prop in ("shape", "texture", "background"):
            before_src = settled()
            page.click(f'.take[data-property="{prop}"]')
            page.wait_for_function(f"'{prop}' in window.nr.state().takes", timeout=60000)
            after_src = settled()
            assert after_src[0] != before_src[0], prop         # the GAN's image changed
        takes = page.evaluate("window.nr.state()")["takes"]
        assert takes == {"shape": "seed:2", "texture": "seed:3", "background": "seed:4"}
        assert "shape from seed:2" in page.inner_text("#takes")
        page.click("#reset")
        page.wait_for_function("Object.keys(window.nr.state().takes).length === 0")

        inputs = page.evaluate("window.nr.inputs()")
        page.set_input_files("#upload", str(demo_image()))
        page.wait_for_function(f"window.nr.inputs() > {inputs}", timeout=60000)
        settled()
        assert page.evaluate("window.nr.state()")["source"] == "upload:1"
        assert page.get_attribute("#status", "data-state") == "idle"
        assert not errors, errors
        browser.close()
