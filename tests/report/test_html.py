"""Report building blocks: embedded images round-trip, overlays by hand, charts mark what they claim."""

import base64
import io
import re

import numpy as np
from PIL import Image

from ganfactory.report.html import bar_chart, embed_png, histogram, image_grid, label_overlay, line_chart, table


def _decode(tag: str) -> np.ndarray:
    data = re.search(r'base64,([^"]+)"', tag)[1]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def test_embedded_png_round_trips_and_scales_by_repetition():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    assert np.array_equal(_decode(embed_png(image)), image)
    big = _decode(embed_png(image, scale=3))
    assert big.shape == (15, 21, 3) and np.array_equal(big[::3, ::3], image) and np.array_equal(big[2::3, 1::3], image)


def test_label_overlay_by_hand():
    image = np.full((3, 3, 3), 100, np.uint8)
    label = np.array([[0, 1, 1], [0, 2, 0], [0, 0, 0]], np.uint8)
    out = label_overlay(image, label, {1: (200, 0, 0), 2: (0, 0, 250)}, alpha=0.5)
    assert out[0, 0].tolist() == [100, 100, 100]                 # background untouched
    assert out[0, 1].tolist() == [150, 50, 50]                   # (100 + 200) / 2, (100 + 0) / 2
    assert out[1, 1].tolist() == [50, 50, 175]
    marked = label_overlay(np.zeros((5, 5, 3), np.uint8), np.zeros((5, 5), np.uint8), {},
                           keypoints=np.array([[2.0, 2.0], [np.nan, np.nan]]))
    assert marked[2, 2].tolist() == [0, 0, 0] and marked[1, 1].tolist() == [255, 255, 255]
    assert marked[:, 4].sum() == 0 and marked[4].sum() == 0      # only the 3x3 square around (2, 2)


def test_image_grid_layout():
    a, b = np.zeros((2, 3, 3), np.uint8), np.full((2, 3, 3), 9, np.uint8)
    grid = image_grid([[a, b], [b]], gap=1)
    assert grid.shape == (5, 7, 3)
    assert (grid[0:2, 4:7] == 9).all() and (grid[3:5, 0:3] == 9).all()
    assert (grid[2] == 255).all() and (grid[:, 3] == 255).all() and (grid[3:5, 4:7] == 255).all()


def test_histogram_marks_the_filtered_bins():
    values = [0.1] * 5 + [0.5] * 3 + [0.9] * 2
    svg = histogram(values, threshold=0.85, bins=4)
    bars = re.findall(r'<rect [^>]*fill="(#[0-9a-f]+)"><title>([^<]+)</title>', svg)
    assert [fill for fill, _ in bars] == ["#4e79a7"] * 3 + ["#e15759"]
    assert [t.rsplit(": ", 1)[1] for _, t in bars] == ["5", "0", "3", "2"]
    assert "stroke-dasharray" in svg


def test_bar_chart_and_line_chart_and_table():
    svg = bar_chart(["bg", "body"], {"few": [0.5, None], "full": [1.0, 0.25]}, height=140, ymax=1.0)
    heights = [float(h) for h in re.findall(r'height="([0-9.]+)" fill=', svg)]
    assert heights == [45.0, 90.0, 22.5]                        # plot height 90: 0.5, 1.0, 0.25
    assert "n/a" in svg
    lines = line_chart({"a": [(500, 0.2), (2000, 0.4)], "b": [(500, None)]})
    assert lines.count("<circle") == 2 and lines.count("<polyline") == 1
    assert table(["x"], [["<b>"]]) == "<table class=\"\"><thead><tr><th>x</th></tr></thead><tbody><tr><td>&lt;b&gt;" \
                                      "</td></tr></tbody></table>"
