"""Building blocks of self-contained HTML reports: embedded PNGs, overlays, tables and SVG charts.

Why hand-written SVG: the charts are bars, a histogram and a few lines; a plotting library would be a large
dependency for that, and SVG text stays crisp and searchable in the page. Images are embedded as base64 PNG, so
one file is the whole report (it can be mailed or attached to a CI run).
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

__all__ = ["PALETTE", "bar_chart", "embed_png", "escape", "histogram", "image_grid", "label_overlay", "legend",
           "line_chart", "scatter_chart", "table"]

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
"""Series colours (Tableau 10), in order."""


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def embed_png(image: np.ndarray, scale: int = 1, alt: str = "") -> str:
    """An <img> holding ``image`` [H, W, 3] uint8 as a base64 PNG, enlarged ``scale`` times by pixel repetition
    (small benchmark images stay sharp)."""
    pil = Image.fromarray(np.ascontiguousarray(image))
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", optimize=True)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" width="{pil.width}" height="{pil.height}" alt="{escape(alt)}">'


def label_overlay(image: np.ndarray, label: np.ndarray, colors: dict[int, tuple[int, int, int]], alpha: float = 0.6,
                  keypoints: np.ndarray | None = None) -> np.ndarray:
    """[H, W, 3] uint8: non-background classes tinted by their colour; ``keypoints`` [K, 2+] drawn as 3x3 white
    squares with a black centre (NaN positions skipped)."""
    table = np.zeros((256, 3), np.float32)
    for i, c in colors.items():
        table[i] = c
    tint = table[label]
    out = np.where(label[..., None] > 0, (1 - alpha) * image + alpha * tint, image).round().clip(0, 255)
    out = out.astype(np.uint8)
    if keypoints is not None:
        h, w = label.shape
        for x, y in np.asarray(keypoints, np.float64)[:, :2]:
            if not (math.isfinite(x) and math.isfinite(y)):
                continue
            xi, yi = int(round(x)), int(round(y))
            out[max(yi - 1, 0):yi + 2, max(xi - 1, 0):xi + 2] = 255
            if 0 <= yi < h and 0 <= xi < w:
                out[yi, xi] = 0
    return out


def image_grid(rows: Sequence[Sequence[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile equal-size images [H, W, 3] row by row with ``gap`` white pixels between them."""
    h, w = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    grid = np.full((len(rows) * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = img
    return grid


def table(header: Sequence[str], rows: Sequence[Sequence[object]], cls: str = "", raw: bool = False) -> str:
    """An HTML table; cells are escaped text, or HTML as given when ``raw`` (for images)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    cell = (lambda v: str(v)) if raw else escape
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def legend(items: Sequence[tuple[str, str]]) -> str:
    """Colour swatches with names; items are (name, CSS colour)."""
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{escape(c)}"></i>{escape(n)}</span>' for n, c in items) + "</div>"


def bar_chart(categories: Sequence[str], series: dict[str, Sequence[float | None]], width: int = 1100,
              height: int = 260, ymax: float = 1.0) -> str:
    """Grouped vertical bars: one group per category, one bar per series (None = no bar, marked "n/a")."""
    left, bottom, top = 40, 40, 10
    plot_h = height - bottom - top
    group = (width - left - 10) / max(len(categories), 1)
    bar = group * 0.8 / max(len(series), 1)
    parts = [_axis(left, top, width, plot_h, ymax)]
    for gi, cat in enumerate(categories):
        x0 = left + gi * group + group * 0.1
        for si, (name, values) in enumerate(series.items()):
            v = values[gi]
            x = x0 + si * bar
            if v is None or (isinstance(v, float) and math.isnan(v)):
                parts.append(f'<text x="{x + bar / 2:.1f}" y="{top + plot_h - 2}" font-size="8" '
                             f'text-anchor="middle" fill="#999">n/a</text>')
                continue
            bh = plot_h * min(max(v, 0), ymax) / ymax
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - bh:.1f}" width="{bar * 0.95:.1f}" height="{bh:.1f}" '
                         f'fill="{PALETTE[si % len(PALETTE)]}"><title>{escape(name)} {escape(cat)}: {v:.3f}'
                         '</title></rect>')
        parts.append(f'<text x="{left + gi * group + group / 2:.1f}" y="{height - bottom + 16}" font-size="12" '
                     f'text-anchor="middle">{escape(cat)}</text>')
    keys = legend([(n, PALETTE[i % len(PALETTE)]) for i, n in enumerate(series)])
    return f'<svg width="{width}" height="{height}" class="chart">{"".join(parts)}</svg>{keys}'


def _axis(left: float, top: float, width: float, plot_h: float, ymax: float, integer: bool = False) -> str:
    """Horizontal grid lines with their values (whole numbers only when ``integer``)."""
    parts = []
    ticks = np.linspace(0, ymax, 5)
    if integer:
        step = max(1, math.ceil(ymax / 4))
        ticks = np.arange(0, ymax + 1, step)
    for t in ticks:
        y = top + plot_h - plot_h * t / ymax
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{t:.2g}</text>')
    return "".join(parts)


def histogram(values: Sequence[float], threshold: float | None, bins: int = 30, width: int = 540,
              height: int = 220) -> str:
    """A histogram of ``values``; bins at or above ``threshold`` (the filtered ones) in red, with a dashed line."""
    values = np.asarray(values, np.float64)
    if not len(values):
        return "<p>no values</p>"
    lo, hi = float(values.min()), float(values.max())
    hi = hi if hi > lo else lo + 1e-9
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    left, bottom, top = 40, 36, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    cmax = max(int(counts.max()), 1)
    parts = [_axis(left, top, width, plot_h, cmax, integer=True)]
    bw = plot_w / bins
    for i, c in enumerate(counts):
        bh = plot_h * c / cmax
        removed = threshold is not None and edges[i + 1] > threshold
        parts.append(f'<rect x="{left + i * bw:.1f}" y="{top + plot_h - bh:.1f}" width="{bw * 0.92:.1f}" '
                     f'height="{bh:.1f}" fill="{"#e15759" if removed else "#4e79a7"}"><title>{edges[i]:.4g}.. '
                     f'{edges[i + 1]:.4g}: {c}</title></rect>')
    if threshold is not None:
        x = left + plot_w * (threshold - lo) / (hi - lo)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" stroke="#000" '
                     'stroke-dasharray="4 3"/>')
    for t, anchor in ((lo, "start"), ((lo + hi) / 2, "middle"), (hi, "end")):
        x = left + plot_w * (t - lo) / (hi - lo)
        parts.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="{anchor}">'
                     f'{t:.3g}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 4}" font-size="11" text-anchor="middle">per-image '
                 'uncertainty (mean of the top 10% pixel JS divergences)</text>')
    return f'<svg width="{width}" height="{height}" class="chart">{"".join(parts)}</svg>'


def line_chart(series: dict[str, Sequence[tuple[float, float | None]]], width: int = 540, height: int = 240,
               ymax: float = 1.0, xlabel: str = "") -> str:
    """Lines over a log-scaled x axis; each series is [(x, y)], points with y None are skipped."""
    xs = sorted({x for pts in series.values() for x, _ in pts})
    if not xs:
        return "<p>no points</p>"
    left, bottom, top = 40, 36, 10
    plot_w, plot_h = width - left - 20, height - bottom - top
    lx = [math.log(x) for x in xs]
    span = (max(lx) - min(lx)) or 1.0

    def px(x: float) -> float:
        return left + 10 + (plot_w - 20) * (math.log(x) - min(lx)) / span

    def py(y: float) -> float:
        return top + plot_h - plot_h * min(max(y, 0), ymax) / ymax

    parts = [_axis(left, top, width, plot_h, ymax)]
    for x in xs:
        parts.append(f'<text x="{px(x):.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle">'
                     f'{x:g}</text>')
    for i, (name, pts) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        pts = [(x, y) for x, y in pts if y is not None and not math.isnan(y)]
        if len(pts) > 1:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in pts:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{color}"><title>{escape(name)} '
                         f'{x:g}: {y:.3f}</title></circle>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 4}" font-size="11" text-anchor="middle">'
                 f'{escape(xlabel)}</text>')
    keys = legend([(n, PALETTE[i % len(PALETTE)]) for i, n in enumerate(series)])
    return f'<svg width="{width}" height="{height}" class="chart">{"".join(parts)}</svg>{keys}'


def scatter_chart(points: Sequence[tuple[float, float, str]], width: int = 540, height: int = 240,
                  ymax: float = 1.0, xlabel: str = "", ylabel: str = "") -> str:
    """Labelled points (x, y, name) over a linear x axis (KID can be near 0 or negative, so not log-scaled), joined
    in order of x so that a trend reads at a glance."""
    pts = sorted((float(x), float(y), str(n)) for x, y, n in points
                 if x is not None and y is not None and not math.isnan(x) and not math.isnan(y))
    if not pts:
        return "<p>no points</p>"
    left, bottom, top = 40, 36, 10
    plot_w, plot_h = width - left - 20, height - bottom - top
    lo, hi = min(p[0] for p in pts), max(p[0] for p in pts)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad

    def px(x: float) -> float:
        return left + plot_w * (x - lo) / (hi - lo)

    def py(y: float) -> float:
        return top + plot_h - plot_h * min(max(y, 0), ymax) / ymax

    parts = [_axis(left, top, width, plot_h, ymax)]
    for t in np.linspace(lo, hi, 5):
        parts.append(f'<text x="{px(t):.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle">'
                     f'{t:.3g}</text>')
    if len(pts) > 1:
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y, _ in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{PALETTE[0]}" stroke-width="1.5"/>')
    for x, y, name in pts:
        parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="4" fill="{PALETTE[0]}"><title>{escape(name)}: '
                     f'{x:.4g}, {y:.3f}</title></circle><text x="{px(x) + 6:.1f}" y="{py(y) - 6:.1f}" '
                     f'font-size="10">{escape(name)}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 4}" font-size="11" text-anchor="middle">'
                 f'{escape(xlabel)}</text>')
    if ylabel:
        parts.append(f'<text x="12" y="{top + plot_h / 2}" font-size="11" text-anchor="middle" '
                     f'transform="rotate(-90 12 {top + plot_h / 2})">{escape(ylabel)}</text>')
    return f'<svg width="{width}" height="{height}" class="chart">{"".join(parts)}</svg>'
