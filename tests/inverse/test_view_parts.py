"""The viewer with an animated parts GLB (``inverse.animate``) in Debian's chromium: parts listed, coloured and
toggled; the animation moves the wheels and leaves every pixel the wheels never cover unchanged."""

import json

import numpy as np
import pytest

from ganfactory.datasets.parts import CLASS_COLORS
from ganfactory.inverse.animate import write_animated_glb
from ganfactory.inverse.view_page import create_view_app, find_items

from .test_animate import ellipsoid_car
from .test_view_page import ARGS, CHROMIUM, HAVE_THREE, _canvas

SIZE = 256
VIEWS = [(60, 10, 9.0), (300, 20, 9.0)]
"""(azimuth, elevation, distance): front left and front right, both front wheels and one rear wheel in sight."""


@pytest.fixture(scope="module")
def parts_glb(tmp_path_factory):
    """The ellipsoid car of test_animate with a striped texture (so that a turning wheel changes its pixels)."""
    verts, faces, uvs, labels = ellipsoid_car()
    x = np.arange(64)
    stripes = ((x[:, None] // 2 + x[None, :] // 2) % 2).astype(np.uint8) * 200 + 30
    texture = np.stack([stripes, 255 - stripes, stripes // 2], -1).astype(np.uint8)
    path = tmp_path_factory.mktemp("parts") / "car.parts.glb"
    write_animated_glb(path, verts, faces, uvs, texture, labels)
    return path


@pytest.mark.skipif(CHROMIUM is None or not HAVE_THREE,
                    reason="needs chromium and three.js (make test installs both: make browser js)")
def test_parts_colours_toggles_and_animation(parts_glb, serve):
    from playwright.sync_api import sync_playwright

    with serve(create_view_app(find_items(parts_glb))) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 760})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector('body[data-ready="1"]', timeout=30000)
        assert sorted(page.evaluate("window.viewer.parts()")) == ["body", "wheel", "window"]
        assert [a["name"] for a in page.evaluate("window.viewer.animations()")] == ["spin", "steer"]
        assert page.locator("#parts li").count() == 3 and page.locator("#animations input").count() == 2
        page.evaluate(f"window.viewer.setSize({SIZE}, {SIZE})")
        report = []
        for az, el, dist in VIEWS:
            page.evaluate(f"window.viewer.setView({{azimuth: {az}, elevation: {el}, distance: {dist}, fov: 30}})")
            page.evaluate("window.viewer.setPartsColour(true)")
            coloured = _canvas(page)
            for part in ("body", "window", "wheel"):
                rgb = np.array(CLASS_COLORS[part]) / 255
                assert (np.abs(coloured - rgb).max(-1) < 0.02).sum() > 30, part  # drawn in its colour
            page.evaluate("window.viewer.setPartsColour(false)")

            def frame(t, spin=True, steer=True, wheels_only=False):
                page.evaluate(f"window.viewer.setPlaying('spin', {json.dumps(spin)})")
                page.evaluate(f"window.viewer.setPlaying('steer', {json.dumps(steer)})")
                for part in ("body", "window"):
                    page.evaluate(f"window.viewer.setPartVisible('{part}', {json.dumps(not wheels_only)})")
                page.evaluate(f"window.viewer.setAnimationTime({t})")
                return _canvas(page)

            still = frame(0.0)
            for t in (0.1, 0.3, 0.55):
                moved = frame(t)
                wheels = (frame(0.0, wheels_only=True) < 0.99).any(-1) | (frame(t, wheels_only=True) < 0.99).any(-1)
                changed = np.abs(moved - still).max(-1) > 2 / 255
                report.append((az, t, int(changed.sum()), int(changed[~wheels].sum()), int(wheels.sum())))
                assert changed.sum() > 50          # the wheels turn
                assert not changed[~wheels].any()  # the body does not move
            # Spinning alone: the front wheels stay straight, so a spin of one full turn is the still frame again.
            assert np.abs(frame(1.0, steer=False) - frame(0.0, steer=False)).max() < 2 / 255
            frame(0.0, spin=False, steer=False)
        # Toggling a part hides it: without the wheels, only the body's pixels remain.
        page.evaluate("window.viewer.setPartVisible('wheel', false)")
        page.evaluate("window.viewer.setPartsColour(true)")
        hidden = _canvas(page)
        assert (np.abs(hidden - np.array(CLASS_COLORS["wheel"]) / 255).max(-1) < 0.02).sum() == 0
        browser.close()
    print(json.dumps({"az_t_changed_changed-outside-wheels_wheel-pixels": report}))
    assert not errors, errors
