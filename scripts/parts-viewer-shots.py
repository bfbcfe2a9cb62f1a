"""Screenshots of an animated parts GLB in the viewer (docs/parts): the page with parts in colour, and canvas frames
of the animation (texture and part colours, t = 0 and two later times).

    python scripts/parts-viewer-shots.py RECON_DIR/STEM.parts.glb docs/parts
"""

from __future__ import annotations

import base64
import io
import shutil
import sys
from pathlib import Path

from PIL import Image

from ganfactory.inverse.view_page import create_view_app, find_items
from ganfactory.web import serving

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def canvas(page) -> Image.Image:
    url = page.evaluate("document.getElementById('canvas').toDataURL('image/png')")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


def main() -> None:
    from playwright.sync_api import sync_playwright

    glb, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with serving(create_view_app(find_items(glb))) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        page.goto(url)
        page.wait_for_selector('body[data-ready="1"]', timeout=60000)
        page.evaluate("window.viewer.setView({azimuth: 50, elevation: 20, distance: 9, fov: 30})")
        page.evaluate("window.viewer.setPartsColour(true)")
        page.evaluate("window.viewer.setPlaying('spin', true); window.viewer.setPlaying('steer', true)")
        page.evaluate("window.viewer.setAnimationTime(0.5)")
        page.screenshot(path=str(out / "viewer.png"))
        page.evaluate("window.viewer.setSize(320, 320)")
        frames = []
        for colour in (False, True):
            page.evaluate(f"window.viewer.setPartsColour({'true' if colour else 'false'})")
            for t in (0.0, 0.2, 0.5):
                page.evaluate(f"window.viewer.setAnimationTime({t})")
                frames.append(canvas(page))
        browser.close()
    w, h = frames[0].size
    sheet = Image.new("RGB", (3 * w, 2 * h), "white")
    for k, f in enumerate(frames):
        sheet.paste(f, ((k % 3) * w, (k // 3) * h))
    sheet.save(out / "viewer-frames.png")
    print(f"wrote {out / 'viewer.png'} and {out / 'viewer-frames.png'}")


if __name__ == "__main__":
    main()
