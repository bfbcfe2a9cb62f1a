"""Relit reconstructions of a model trained with ``--sh-lighting``: the predicted albedo under other lights.

Each row is one test image: input | reconstruction under its predicted SH light | the albedo (uniform light) |
the albedo lit from the car's left | from its right | from the front and above. A new light is an ambient term
plus a first-order (cosine-like) lobe towards a direction, written as SH9 coefficients (bands 0 and 1):
irradiance(n) = ambient + gain * (n . d), in the object frame (x forward, y left, z up).

    python benchmarks/relight.py --model RUN --data /work/data/inverse/test3d --out relit.png --rows 6
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from PIL import Image

LIGHTS = {"left": (0.0, 1.0, 0.3), "right": (0.0, -1.0, 0.3), "front-top": (1.0, 0.0, 1.0)}
Y00, Y1 = 0.28209479177387814, 0.4886025119029199
"""The SH basis constants of bands 0 and 1 (``render.functional.shading.sh9_basis``)."""


def directional_sh(direction: tuple[float, float, float], ambient: float = 0.65, gain: float = 0.55) -> torch.Tensor:
    """[9] SH coefficients of irradiance ambient + gain * (n . d) (basis order y, z, x for band 1)."""
    d = torch.tensor(direction, dtype=torch.float32)
    d = d / d.norm()
    c = torch.zeros(9)
    c[0] = ambient / Y00
    c[1], c[2], c[3] = gain * d[1] / Y1, gain * d[2] / Y1, gain * d[0] / Y1
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a model trained with --sh-lighting (run or model directory)")
    ap.add_argument("--data", required=True, help="a LabeledDataset of 64 px images (test3d)")
    ap.add_argument("--out", required=True, help="PNG to write")
    ap.add_argument("--rows", type=int, default=6)
    ap.add_argument("--first", type=int, default=0, help="first sample")
    ap.add_argument("--scale", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from ganfactory.atomic import atomic_path
    from ganfactory.inverse.data import load_views
    from ganfactory.inverse.model import load_model
    from ganfactory.render import RasterSettings, Renderer, SHLights

    net, _ = load_model(args.model)
    if not net.config.sh_lighting:
        raise SystemExit(f"{args.model} predicts no light (trained without --sh-lighting)")
    size = net.config.image_size
    views = load_views(args.data, range(args.first, args.first + args.rows), progress=False)
    renderer = Renderer(RasterSettings((size, size)))
    with torch.no_grad():
        images = views.images.float() / 255.0
        pred = net(images)
        mesh = net.mesh(pred)
        cam = pred.camera.to_camera((size, size))
        n = images.shape[0]
        uniform = SHLights(torch.tensor([1.0 / Y00] + [0.0] * 8).expand(n, 9))
        columns = [images, renderer(mesh, cam, pred.light).image, renderer(mesh, cam, uniform).image]
        for d in LIGHTS.values():
            columns.append(renderer(mesh, cam, SHLights(directional_sh(d).expand(n, 9))).image)
    gap = 2
    sheet = np.full((n * (size + gap) - gap, len(columns) * (size + gap) - gap, 3), 255, np.uint8)
    for c, col in enumerate(columns):
        tiles = (col.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        for r in range(n):
            sheet[r * (size + gap):r * (size + gap) + size, c * (size + gap):c * (size + gap) + size] = tiles[r]
    sheet = sheet.repeat(args.scale, 0).repeat(args.scale, 1)
    with atomic_path(args.out) as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG")
    light = pred.light.coeffs
    print(f"wrote {args.out}: columns input | predicted light | albedo | " + " | ".join(LIGHTS))
    print(f"predicted SH band 0 mean {float(light[:, 0].mean() * Y00):.3f} (1 = uniform), band-1 norm mean "
          f"{float(light[:, 1:4].norm(dim=1).mean() * Y1):.3f}")
    print("predicted azimuths:", [round(math.degrees(a)) % 360 for a in pred.camera.azimuth.tolist()])


if __name__ == "__main__":
    main()
