"""The neural renderer, measured: camera control, disentanglement, and what a background swap does to the car.

    python benchmarks/neural_render.py [--model cars64] [--inputs 100] [--real 0] \
        [--out docs/neural/results.json] [--sheets docs/neural]

Inputs are the generator's own samples at the mapping's truncation (seeds 40,000,000 on, never trained on: the
training samples start at 30,000,000), each read by the inverse network like a photo; ``--real N`` adds N of the
bundled cars64-demo test renders as a second, out-of-domain set.

- **Control**: each input is asked for 12 azimuths (0, 30, ..., 330) at elevations cycling 0, 10, 20, 30 degrees;
  the built-in viewpoint regressor ``cars`` (trained on real renders with their true cameras; not used in
  training) reads the GAN's output. Median absolute error of azimuth (wrapped) and of elevation, the share within
  30 degrees, the share of front/rear flips (error over 150). For scale: the same regressor against the inverse
  network's camera on the unmodified inputs (how far the two instruments disagree where nothing was changed).
- **Disentanglement**: the inverse network re-reads the 12 turned images of each input. Shape: the re-predicted
  mesh's silhouette in one canonical camera (azimuth 45, elevation 20, the mean view offset); IoU between two views
  of one object against IoU between two objects at the same asked camera. Texture: mean absolute difference of the
  re-predicted pooled textures, within against between. A disentangled renderer has within-object IoU near 1 and
  texture distance near 0, far from the between-object values.
- **Background swap**: each input takes the background of the next input, at its own camera; the inverse
  network's silhouette of the car (its mesh in its camera) before and after: IoU; and the mean pixel change inside
  the car against outside it.
- **Fidelity**: the mapping's image at the input's own camera against the input (PSNR), and for generated inputs
  the L2 of the mapped ws to the true ws.

Sheets (``--sheets``): ``turn-sheet.png`` (8 inputs: input | mesh | 12 azimuths) and ``swap-sheet.png`` (6 inputs:
input | mapped at its camera | with the shape, the texture, the background of the donor | the donor). Prints a table
and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ganfactory.atomic import write_json
from ganfactory.gan.latent import seeds_to_z
from ganfactory.gan.sampling import to_uint8
from ganfactory.inverse import load_viewpoint_regressor
from ganfactory.inverse.camera import OrbitCamera
from ganfactory.inverse.viewpoint import angle_error_deg
from ganfactory.neural import load_neural_renderer
from ganfactory.neural.codes import car_mask
from ganfactory.neural.export import save_png
from ganfactory.render import RasterSettings, Renderer

AZIMUTHS = list(range(0, 360, 30))
ELEVATIONS = [0, 10, 20, 30]
FIRST_SEED = 40_000_000


def real_inputs(n: int) -> torch.Tensor:
    from ganfactory.inverse.reconstruct import load_image

    folder = Path(str(resources.files("ganfactory") / "assets" / "cars64-demo" / "test" / "images"))
    paths = sorted(folder.rglob("*.png"))[:n]
    return torch.stack([load_image(p, 64) for p in paths]) * 2 - 1


def silhouettes(nr, prediction) -> torch.Tensor:
    """[B, H, W] bool: the predicted meshes seen from one canonical camera."""
    net = nr.net
    size = net.config.image_size
    B = prediction.verts.shape[0]
    cam = OrbitCamera(torch.full((B,), math.radians(45.0)), torch.full((B,), math.radians(20.0)),
                      net.t_init.expand(B, 3), math.radians(net.config.fov_deg))
    out = Renderer(RasterSettings((size, size)))(net.mesh(prediction), cam.to_camera((size, size)))
    return out.face_idx >= 0


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a & b).flatten(1).sum(1) / (a | b).flatten(1).sum(1).clamp(min=1)


def circular_error(a, b) -> np.ndarray:
    return np.asarray(angle_error_deg(np.asarray(a), np.asarray(b)))


def measure(nr, regressor, images: torch.Tensor, true_ws: torch.Tensor | None, name: str) -> tuple[dict, dict]:
    n = len(images)
    t0 = time.perf_counter()
    codes = nr.codes_from_images(images)
    # Instruments against each other on the unmodified inputs.
    read = regressor.predict(images)
    inst_az = circular_error(read["azimuth_deg"].numpy(), torch.rad2deg(codes.azimuth).numpy() % 360)
    # Fidelity at the input's own camera.
    own = nr.render(codes)
    mse = ((own - images) ** 2).flatten(1).mean(1) / 4            # images in [-1, 1] -> [0, 1] scale
    psnr = (10 * torch.log10(1 / mse.clamp(min=1e-10))).numpy()
    fidelity = {"psnr_own_camera_median": float(np.median(psnr))}
    if true_ws is not None:
        fidelity["ws_l2_to_truth"] = float(((nr.ws(codes) - true_ws) ** 2).mean())
        fidelity["ws_l2_of_w_avg"] = float(((nr.G.w_avg - true_ws) ** 2).mean())
    # Control.
    asked_az, asked_el, turned, reread_sil, reread_tex = [], [], [], [], []
    for k, az in enumerate(AZIMUTHS):
        el = ELEVATIONS[k % len(ELEVATIONS)]
        out = nr.render(codes.with_camera(float(az), float(el)))
        turned.append(out)
        asked_az.append(np.full(n, az, float))
        asked_el.append(np.full(n, el, float))
        with torch.no_grad():
            pred = nr.net(((out + 1) / 2).clamp(0, 1))
            reread_sil.append(silhouettes(nr, pred))
            reread_tex.append(torch.nn.functional.adaptive_avg_pool2d(pred.texture, 16))
    turned_all = torch.stack(turned, 1)                               # [n, 12, 3, H, W]
    got = regressor.predict(turned_all.flatten(0, 1))
    asked_az_a = np.stack(asked_az, 1).reshape(-1)
    asked_el_a = np.stack(asked_el, 1).reshape(-1)
    az_err = circular_error(got["azimuth_deg"].numpy(), asked_az_a)
    el_err = np.abs(got["elevation_deg"].numpy() - asked_el_a)
    per_az = {str(a): float(np.median(az_err.reshape(n, -1)[:, k])) for k, a in enumerate(AZIMUTHS)}
    control = {"azimuth_error_median_deg": float(np.median(az_err)), "azimuth_error_mean_deg": float(az_err.mean()),
               "azimuth_within_30": float((az_err <= 30).mean()),
               "azimuth_flips_over_150": float((az_err > 150).mean()),
               "elevation_error_median_deg": float(np.median(el_err)),
               "elevation_read_mean_by_asked": {str(e): float(got["elevation_deg"].numpy()[asked_el_a == e].mean())
                                                for e in ELEVATIONS},
               "azimuth_error_median_by_asked": per_az,
               "instruments_disagree_on_inputs_median_deg": float(np.median(inst_az))}
    # Disentanglement.
    sil = torch.stack(reread_sil, 1)                                  # [n, 12, H, W]
    tex = torch.stack(reread_tex, 1)                                  # [n, 12, 3, 16, 16]
    within_iou, within_tex = [], []
    for i in range(12):
        for j in range(i + 1, 12):
            within_iou.append(iou(sil[:, i], sil[:, j]))
            within_tex.append((tex[:, i] - tex[:, j]).abs().flatten(1).mean(1))
    between_iou, between_tex = [], []
    perm = torch.roll(torch.arange(n), 1)
    for k in range(12):
        between_iou.append(iou(sil[:, k], sil[perm, k]))
        between_tex.append((tex[:, k] - tex[perm, k]).abs().flatten(1).mean(1))
    disent = {"shape_iou_within_object": float(torch.cat(within_iou).mean()),
              "shape_iou_between_objects": float(torch.cat(between_iou).mean()),
              "texture_l1_within_object": float(torch.cat(within_tex).mean()),
              "texture_l1_between_objects": float(torch.cat(between_tex).mean())}
    # Background swap at the input's own camera.
    donor = codes.index(perm)
    swapped = nr.render(codes.replace(background=donor.background))
    with torch.no_grad():
        m0 = car_mask(nr.net, nr.net(((own + 1) / 2).clamp(0, 1)), dilate=0)[:, 0] > 0.5
        m1 = car_mask(nr.net, nr.net(((swapped + 1) / 2).clamp(0, 1)), dilate=0)[:, 0] > 0.5
    change = (swapped - own).abs().mean(1)                            # [n, H, W]
    inside = (change * m0).flatten(1).sum(1) / m0.flatten(1).sum(1).clamp(min=1)
    outside = (change * ~m0).flatten(1).sum(1) / (~m0).flatten(1).sum(1).clamp(min=1)
    texture_swap = nr.render(codes.replace(texture=donor.texture))
    with torch.no_grad():
        m2 = car_mask(nr.net, nr.net(((texture_swap + 1) / 2).clamp(0, 1)), dilate=0)[:, 0] > 0.5
    background = {"car_mask_iou_after_background_swap": float(iou(m0, m1).mean()),
                  "car_mask_iou_after_texture_swap": float(iou(m0, m2).mean()),
                  "car_mask_iou_between_objects": float(iou(m0, m0[perm]).mean()),
                  "pixel_change_inside_car": float(inside.mean()), "pixel_change_outside_car": float(outside.mean()),
                  "background_code_l1_to_asked": float(
                      (nr.codes_from_images(swapped).background - donor.background).abs().mean()),
                  "background_code_l1_donor_vs_own": float((donor.background - codes.background).abs().mean())}
    seconds = time.perf_counter() - t0
    row = {"inputs": n, "set": name, "control": control, "disentanglement": disent, "background": background,
           "fidelity": fidelity, "seconds": round(seconds, 1),
           "renders_per_second": round(n * 14 / seconds, 2)}
    extras = {"codes": codes, "turned": turned_all, "own": own, "donor": donor}
    return row, extras


def turn_sheet(nr, images, extras, rows: int = 8) -> np.ndarray:
    mesh = to_uint8(nr.render_mesh(extras["codes"].index(slice(0, rows))))
    inp = to_uint8(images[:rows])
    turned = to_uint8(extras["turned"][:rows].flatten(0, 1)).reshape(rows, 12, 64, 64, 3)
    lines = [np.concatenate([inp[r], mesh[r], np.full((64, 4, 3), 255, np.uint8), *turned[r]], 1)
             for r in range(rows)]
    return np.concatenate(lines, 0)


def swap_sheet(nr, images, extras, rows: int = 6) -> np.ndarray:
    codes = extras["codes"].index(slice(0, rows))
    donor = extras["codes"].index(torch.arange(rows) + rows)          # donors: other inputs
    donor_images = images[rows:2 * rows]
    cols = [images[:rows], nr.render(codes)]
    for p in ("shape", "texture", "background"):
        cols.append(nr.render(codes.replace(**{p: getattr(donor, p)})))
    cols.append(donor_images)
    pix = [to_uint8(c) for c in cols]
    gap = np.full((64, 4, 3), 255, np.uint8)
    lines = [np.concatenate([pix[0][r], pix[1][r], gap, pix[2][r], pix[3][r], pix[4][r], gap, pix[5][r]], 1)
             for r in range(rows)]
    return np.concatenate(lines, 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="cars64")
    ap.add_argument("--inputs", type=int, default=100)
    ap.add_argument("--real", type=int, default=0, help="also measure on this many bundled test renders")
    ap.add_argument("--out", default="benchmarks/results/neural_render.json")
    ap.add_argument("--sheets", default=None, help="write turn-sheet.png and swap-sheet.png here")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    nr = load_neural_renderer(args.model)
    regressor = load_viewpoint_regressor("cars")
    seeds = list(range(FIRST_SEED, FIRST_SEED + args.inputs))
    with torch.no_grad():
        true_ws = nr.G.mapping(seeds_to_z(seeds, nr.G.z_dim), None, truncation_psi=nr.truncation_psi)
    images = nr.sample(seeds)
    rows, extras = [], None
    row, extras = measure(nr, regressor, images, true_ws, "generated")
    rows.append(row)
    if args.sheets:
        sheets = Path(args.sheets)
        sheets.mkdir(parents=True, exist_ok=True)
        save_png(turn_sheet(nr, images, extras), sheets / "turn-sheet.png")
        save_png(swap_sheet(nr, images, extras), sheets / "swap-sheet.png")
    if args.real:
        real = real_inputs(args.real)
        row_r, extras_r = measure(nr, regressor, real, None, "real renders (cars64-demo test)")
        rows.append(row_r)
        if args.sheets:
            save_png(turn_sheet(nr, real, extras_r), Path(args.sheets) / "turn-sheet-real.png")
    result = {"model": args.model, "azimuths": AZIMUTHS, "elevations": ELEVATIONS, "first_seed": FIRST_SEED,
              "truncation_psi": nr.truncation_psi, "regressor": "cars", "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    print(f"{'set':<34} {'n':>4} {'az med':>7} {'<=30':>6} {'flips':>6} {'el med':>7} {'instr.':>7} "
          f"{'IoU in':>7} {'IoU btw':>7} {'tex in':>7} {'tex btw':>7} {'bg IoU':>7} {'PSNR':>6}")
    for r in rows:
        c, d, b = r["control"], r["disentanglement"], r["background"]
        print(f"{r['set']:<34} {r['inputs']:>4} {c['azimuth_error_median_deg']:>7.1f} {c['azimuth_within_30']:>6.2f} "
              f"{c['azimuth_flips_over_150']:>6.2f} {c['elevation_error_median_deg']:>7.1f} "
              f"{c['instruments_disagree_on_inputs_median_deg']:>7.1f} {d['shape_iou_within_object']:>7.3f} "
              f"{d['shape_iou_between_objects']:>7.3f} {d['texture_l1_within_object']:>7.3f} "
              f"{d['texture_l1_between_objects']:>7.3f} {b['car_mask_iou_after_background_swap']:>7.3f} "
              f"{r['fidelity']['psnr_own_camera_median']:>6.1f}")
    print(json.dumps({r["set"]: {"per_azimuth_median": r["control"]["azimuth_error_median_by_asked"],
                                 "background": r["background"], "fidelity": r["fidelity"]} for r in rows}, indent=1))


if __name__ == "__main__":
    main()
