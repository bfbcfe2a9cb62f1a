"""Which style layers carry the camera, measured: swap layers between seeds and see what follows.

For pairs of seeds (a recipient r and a donor d, w from psi-truncated z, constant noise), a variant
copies a set of layers of d's ws into r's: "first c" copies layers [0, c) (a view code of c layers),
"layer k" copies layer k alone. On each mixed image we read

- the azimuth, with the viewpoint regressor: does it follow the donor (closer to d's azimuth than to r's)?
  Only pairs whose own azimuths differ by at least ``min_azimuth_gap_deg`` count;
- the car's colour (mean RGB inside the foreground mask) and the background's (outside it): do they
  follow the donor? Only pairs whose colours differ by at least ``min_colour_gap`` count;
- the part layout (the interpreter's part map): is it closer (mean IoU over parts) to d's or to r's?
  The layout moves with the view by nature; it says how much of the silhouette the layers carry.

Each measure is the share of pairs that follow the donor: 0 = the mix keeps the recipient's, 1 = it
takes the donor's. The cutoff c* is the first-c variant with the largest margin
``view - max(car colour, background)`` (the view moves, the content stays); ties go to the smaller c.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from ganfactory.inverse.viewpoint import angle_error_deg

__all__ = ["LayerSweepSettings", "choose_cutoff", "sweep_chart_svg", "sweep_view_layers", "synthesize_labelled"]


@dataclass(frozen=True)
class LayerSweepSettings:
    """What the sweep samples (stored with its results)."""

    pairs: int = 64
    """(recipient, donor) pairs: seeds first_seed + 2 i and first_seed + 2 i + 1."""
    first_seed: int = 70_000_000
    truncation_psi: float = 0.7
    noise_mode: str = "const"
    min_azimuth_gap_deg: float = 60.0
    min_colour_gap: float = 0.15
    """In RGB units of [0, 1] (Euclidean)."""
    batch_size: int = 16

    def to_json(self) -> dict:
        return asdict(self)


@torch.no_grad()
def synthesize_labelled(G, interpreter, ws: Tensor, noise_mode: str, batch_size: int = 16
                        ) -> tuple[Tensor, np.ndarray]:
    """Images [N, 3, H, W] in [-1, 1] of ``ws`` [N, num_ws, w_dim] and the interpreter's labels [N, S, S] uint8."""
    layers = interpreter.taps.layers
    images, labels = [], []
    for start in range(0, len(ws), batch_size):
        img, feats = G.synthesis(ws[start:start + batch_size].to(G.w_avg.device), noise_mode=noise_mode,
                                 return_features=True)
        labels.append(interpreter.predict_features({k: feats[k] for k in layers}).labels)
        images.append(img.cpu())
    return torch.cat(images), np.concatenate(labels)


def _region_colours(images: Tensor, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean RGB in [0, 1] of the foreground (label > 0) and of the background, [N, 3] each (NaN when empty)."""
    rgb = ((images.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    if labels.shape[1:] != rgb.shape[1:3]:
        raise ValueError(f"labels are {labels.shape[1:]}, images {rgb.shape[1:3]}: label at the image's resolution")
    fg = labels > 0
    out = []
    for mask in (fg, ~fg):
        count = mask.sum(axis=(1, 2))[:, None]
        total = (rgb * mask[..., None]).sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(count > 0, total / np.maximum(count, 1), np.nan))
    return out[0], out[1]


def _part_iou(a: np.ndarray, b: np.ndarray, classes: list[int]) -> np.ndarray:
    """[N] mean IoU over the part classes present in either map."""
    out = np.zeros(len(a))
    for i in range(len(a)):
        ious = []
        for c in classes:
            x, y = a[i] == c, b[i] == c
            union = (x | y).sum()
            if union:
                ious.append((x & y).sum() / union)
        out[i] = np.mean(ious) if ious else 1.0
    return out


def _follow_share(to_donor: np.ndarray, to_recipient: np.ndarray, valid: np.ndarray) -> float | None:
    """Share of valid pairs whose mix is closer to the donor than to the recipient (ties count half)."""
    if not valid.any():
        return None
    d, r = to_donor[valid], to_recipient[valid]
    return float(((d < r) + 0.5 * (d == r)).mean())


@torch.no_grad()
def sweep_view_layers(G, regressor, interpreter, settings: LayerSweepSettings = LayerSweepSettings(),
                      progress: bool = True) -> dict:
    """Run the sweep (module docstring); returns JSON: settings, the pairs' own azimuths, and per variant the
    shares that follow the donor, the median azimuth error to the donor, and the counts of valid pairs."""
    from tqdm import tqdm

    from ganfactory.gan.sampling import seeds_to_z

    n = settings.pairs
    seeds = list(range(settings.first_seed, settings.first_seed + 2 * n))
    device = G.w_avg.device
    ws = G.mapping(seeds_to_z(seeds, G.z_dim).to(device), None, truncation_psi=settings.truncation_psi).cpu()
    ws_r, ws_d = ws[0::2], ws[1::2]
    parts = [c.id for c in interpreter.schema.classes if c.id != 0]

    def measure(w: Tensor) -> dict:
        img, lab = synthesize_labelled(G, interpreter, w, settings.noise_mode, settings.batch_size)
        car, bg = _region_colours(img, lab)
        return {"azimuth": regressor.predict(img.to(device))["azimuth_deg"].cpu().numpy(), "car": car, "bg": bg,
                "labels": lab}

    rec, don = measure(ws_r), measure(ws_d)
    view_valid = angle_error_deg(rec["azimuth"], don["azimuth"]) >= settings.min_azimuth_gap_deg
    def colour_valid(key: str) -> np.ndarray:
        """Pairs whose regions exist in both images and differ in colour by at least the gap."""
        gap = np.linalg.norm(rec[key] - don[key], axis=1)
        return np.isfinite(gap) & (np.nan_to_num(gap, nan=0.0) >= settings.min_colour_gap)

    car_valid, bg_valid = colour_valid("car"), colour_valid("bg")
    layout_valid = _part_iou(rec["labels"], don["labels"], parts) < 0.9
    num_ws = G.num_ws
    variants = [("first", c) for c in range(1, num_ws + 1)] + [("layer", k) for k in range(num_ws)]
    results = []
    for kind, c in tqdm(variants, desc="layer sweep", unit="variant", disable=not progress):
        take = torch.zeros(num_ws, dtype=torch.bool)
        take[:c] = kind == "first"
        if kind == "layer":
            take[c] = True
        mixed = torch.where(take[None, :, None], ws_d, ws_r)
        m = measure(mixed)

        def dist(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return np.nan_to_num(np.linalg.norm(x - y, axis=1), nan=np.inf)

        az_d, az_r = angle_error_deg(m["azimuth"], don["azimuth"]), angle_error_deg(m["azimuth"], rec["azimuth"])
        results.append({
            "kind": kind, "layers": [int(i) for i in np.flatnonzero(take.numpy())],
            "label": f"0-{c - 1}" if kind == "first" else str(c),
            "view": _follow_share(az_d, az_r, view_valid),
            "car_colour": _follow_share(dist(m["car"], don["car"]), dist(m["car"], rec["car"]), car_valid),
            "background": _follow_share(dist(m["bg"], don["bg"]), dist(m["bg"], rec["bg"]), bg_valid),
            "layout": _follow_share(1 - _part_iou(m["labels"], don["labels"], parts),
                                    1 - _part_iou(m["labels"], rec["labels"], parts), layout_valid),
            "azimuth_error_to_donor_median_deg": float(np.median(az_d[view_valid])) if view_valid.any() else None,
        })
    cutoff = choose_cutoff([r for r in results if r["kind"] == "first"])
    return {"settings": settings.to_json(), "num_ws": num_ws,
            "valid_pairs": {"view": int(view_valid.sum()), "car_colour": int(car_valid.sum()),
                            "background": int(bg_valid.sum()), "layout": int(layout_valid.sum())},
            "variants": results, "cutoff": cutoff,
            "rule": "cutoff = the first-c variant maximising view - max(car_colour, background); ties: smaller c"}


def choose_cutoff(first_variants: list[dict]) -> int:
    """The number of leading layers of the view code (module docstring's rule)."""
    def margin(r: dict) -> float:
        content = max(v for v in (r["car_colour"], r["background"], 0.0) if v is not None)
        return (r["view"] or 0.0) - content

    best = max(first_variants, key=lambda r: (round(margin(r), 6), -len(r["layers"])))
    return len(best["layers"])


SERIES = (("view", "azimuth follows donor", "#4e79a7"), ("car_colour", "car colour", "#e15759"),
          ("background", "background", "#59a14f"), ("layout", "part layout", "#f28e2b"))


def sweep_chart_svg(sweep: dict, width: int = 760, height: int = 300) -> str:
    """A standalone SVG: left, the first-c variants; right, single layers; one line per measure (share of pairs
    following the donor); the chosen cutoff marked."""
    panels = [("first", "layers 0..c-1 from the donor (view code of c layers)"), ("layer", "one layer from the donor")]
    left, top, bottom, gap = 46, 30, 46, 30
    pw = (width - left - gap - 10) / 2
    ph = height - top - bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    for p, (kind, title) in enumerate(panels):
        rows = [r for r in sweep["variants"] if r["kind"] == kind]
        x0 = left + p * (pw + gap)
        parts.append(f'<text x="{x0 + pw / 2:.1f}" y="16" font-size="12" text-anchor="middle">{title}</text>')
        for t in np.linspace(0, 1, 5):
            y = top + ph - ph * t
            parts.append(f'<line x1="{x0:.1f}" x2="{x0 + pw:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                         f'<text x="{x0 - 4:.1f}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{t:.2g}</text>')

        def px(i: int, count: int = len(rows), x0: float = x0) -> float:
            return x0 + 10 + (pw - 20) * i / max(count - 1, 1)

        for i, r in enumerate(rows):
            parts.append(f'<text x="{px(i):.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle">'
                         f'{r["label"]}</text>')
        if kind == "first":
            i = next(j for j, r in enumerate(rows) if len(r["layers"]) == sweep["cutoff"])
            parts.append(f'<line x1="{px(i):.1f}" x2="{px(i):.1f}" y1="{top}" y2="{top + ph}" stroke="#000" '
                         f'stroke-dasharray="4 3"/><text x="{px(i) + 3:.1f}" y="{top + 10}" font-size="10">'
                         f'cutoff {sweep["cutoff"]}</text>')
        for key, _, color in SERIES:
            pts = [(px(i), top + ph - ph * r[key]) for i, r in enumerate(rows) if r[key] is not None]
            if len(pts) > 1:
                parts.append('<polyline fill="none" stroke-width="2" stroke="{}" points="{}"/>'.format(
                    color, " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)))
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in pts]
        parts.append(f'<text x="{x0 + pw / 2:.1f}" y="{top + ph + 30}" font-size="10" text-anchor="middle">'
                     f'{"c (layers 0..c-1)" if kind == "first" else "layer k"}</text>')
    lx = left
    for _, name, color in SERIES:
        parts.append(f'<rect x="{lx}" y="{height - 12}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{lx + 14}" y="{height - 3}" font-size="11">{name}</text>')
        lx += 14 + 7 * len(name) + 20
    parts.append(f'<text x="{width - 10}" y="{height - 3}" font-size="10" text-anchor="end">share of pairs whose '
                 'mix follows the donor</text>')
    parts.append("</svg>")
    return "".join(parts) + "\n"
