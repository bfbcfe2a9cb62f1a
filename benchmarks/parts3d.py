"""Parts on reconstructions, scored on test3d: part mIoU in the input view and in novel views, wheel axes and hubs.

    nice -n 10 python benchmarks/parts3d.py --head cars64-3d-parts --out runs/parts3d [--n 300] [--sheet PNG]

Measures (all cars-8, BENCHMARK.md's mIoU: one dataset-level confusion matrix, background included; only the
samples of the 11 cars whose part labels are trusted count for mIoU):

- **input view**: the predicted per-face part probabilities rendered with the *predicted* camera (the soft map's
  argmax) against the true label map; also with the *true* camera (the camera's share of the error).
- **novel views**: the prediction seen from its predicted camera turned by 60, 120, ..., 300 degrees of
  azimuth against the true mesh's face parts seen from the true camera turned by the same angle (aligned by the
  predicted camera, as the 12-view silhouette IoU of ``inverse.metrics3d``).
- **wheels** (all 17 cars): how many wheels are split off; per fitted wheel the angle between its axis and the
  true axle direction (the car's lateral axis y; the reconstruction and the truth share the car frame), for
  each axis mode of ``inverse.animate.AXIS_MODES``; the hub error: the fitted hub projected with the predicted
  (and with the true) camera against the true hub keypoint, in pixels of the 64 px image and as a share of the
  true object's size (the longer side of its mask's box, PCK's normaliser), matched by name (front/rear,
  left/right), over hubs that the data marks visible; for each hub mode of ``inverse.animate.HUB_MODES``.
- **truth check**: the true mesh's face parts rendered with the true camera against the stored label map (how
  exactly a rendered true label matches the data's; the ceiling of the novel-view score).
- **2-D segmenter** (``--segmenter``): a 2-D network's labels of the same input images (no 3-D at all).
- **constant baseline**: the part head's base layout alone (the same labels for every car), to show what the
  per-image part of the head adds.

Prints a table and writes OUT/results.json (and a contact sheet with --sheet).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from ganfactory.atomic import write_json
from ganfactory.datasets.labeled import LabeledDataset
from ganfactory.datasets.parts import CARS8, CARS13_TO_CARS8
from ganfactory.inverse.animate import AXIS_MODES, HUB_MODES, WHEEL_NAMES, split_wheels
from ganfactory.inverse.camera import OrbitCamera
from ganfactory.inverse.data import load_views
from ganfactory.inverse.model import load_model
from ganfactory.inverse.parts import label_table, load_part_head, part_palette, render_part_probs
from ganfactory.metrics import confusion_matrix, object_size, segmentation_scores
from ganfactory.render import Mesh, RasterSettings, Renderer
from ganfactory.render.io import load_mesh

NOVEL_TURNS = (60, 120, 180, 240, 300)
K = len(CARS8)


def true_part_mesh(path: Path) -> Mesh:
    """The true mesh with cars-8 face parts (its part names are cars-13 class names)."""
    m = load_mesh(path)
    table = torch.tensor([CARS8.index(CARS13_TO_CARS8.get(n, "other")) for n in m.part_names])
    return Mesh(m.verts, m.faces, face_two_sided=m.face_two_sided, face_alpha=m.face_alpha,
                face_parts=table[m.face_parts])


def true_labels(mesh: Mesh, camera: OrbitCamera, size: int) -> torch.Tensor:
    """[B, H, W] cars-8 labels of the true mesh seen by ``camera`` (0 on background)."""
    B = camera.azimuth.shape[0]
    out = Renderer(RasterSettings((size, size)))(mesh.replace(verts=mesh.verts.expand(B, -1, -1)),
                                                 camera.to_camera((size, size)))
    return out.labels.clamp(min=0)


def cat(cams: list[OrbitCamera]) -> OrbitCamera:
    return OrbitCamera(torch.cat([c.azimuth for c in cams]), torch.cat([c.elevation for c in cams]),
                       torch.cat([c.t for c in cams]), cams[0].fov_y)


def project(points: np.ndarray, camera: OrbitCamera, size: int) -> np.ndarray:
    """[n, 2] pixel (x, y) of car-frame points [n, 3] (pixel centres at integers, as the keypoints)."""
    cam = camera.to_camera((size, size))
    K_, R, t = cam.to_opencv()
    p = torch.as_tensor(points, dtype=torch.float32)
    x = (R[0] @ p.T).T + t[0]
    uv = (K_[0] @ x.T).T
    return (uv[:, :2] / uv[:, 2:3]).numpy()


@torch.no_grad()
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="cars64-3d")
    p.add_argument("--head", default="cars64-3d-parts")
    p.add_argument("--test3d", default="/work/data/inverse/test3d")
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--segmenter", default=None,
                   help="a 2-D segmenter (ganfactory segment train run, cars-8) scored on the same input views")
    p.add_argument("--sheet", default=None, help="write a contact sheet of the first 8 trusted samples here")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    net, _ = load_model(args.model)
    head, _ = load_part_head(args.head, net)
    root = Path(args.test3d)
    ds = LabeledDataset(root)
    count = len(ds) if args.n is None else min(args.n, len(ds))
    views = load_views(root, range(count), progress=False)
    table = label_table(ds.schema)
    hub_ids = [ds.schema.keypoints.index(n.replace("wheel", "hub")) for n in WHEEL_NAMES]
    size = net.config.image_size
    kinds = ("input_pred_cam", "input_true_cam", "novel", "input_base", "truth_check", "segmenter_2d")
    segmenter = None
    if args.segmenter:
        from ganfactory.downstream.train import load_segmenter

        segmenter = load_segmenter(args.segmenter)
        if tuple(segmenter.class_names) != CARS8:
            raise SystemExit(f"{args.segmenter}: the segmenter's classes are not cars-8")
    cms = {k: np.zeros((K, K), np.int64) for k in kinds}
    axis_err = {m: [] for m in AXIS_MODES}
    hub_err = {f"{h}_{c}": [] for h in HUB_MODES for c in ("pred_cam", "true_cam")}
    wheel_counts, trusted_n, sheet, meshes = [], 0, [], {}
    t0 = time.perf_counter()
    palette = torch.from_numpy(part_palette(CARS8)).float() / 255
    for i in range(count):
        meta = ds.meta(i)
        b = views.batch(torch.tensor([i]), "cpu")
        pred = net(b["images"])
        logits = head(net.encode(b["images"]))
        probs = torch.softmax(logits, -1)
        cam_p = pred.camera
        cam_t = OrbitCamera(b["azimuth"], b["elevation"], b["t"], views.fov_y)
        face_labels = probs.argmax(-1)[0].numpy()
        verts = pred.verts[0].numpy().astype(np.float64)
        faces = net.faces.numpy()
        # wheels (all cars)
        for mode in AXIS_MODES:
            wheels = split_wheels(verts, faces, face_labels, CARS8.index("wheel"), mode)
            for w in wheels:
                axis_err[mode].append(math.degrees(math.acos(min(1.0, abs(float(w.axis[1]))))))
        wheel_counts.append(len(wheels))
        kps = meta["keypoints"]
        label_raw = ds.label(i)
        obj = object_size(label_raw)
        for hub_mode, cam_name, cam in [(h, c, k) for h in HUB_MODES for c, k in (("pred_cam", cam_p),
                                                                                  ("true_cam", cam_t))]:
            wheels = split_wheels(verts, faces, face_labels, CARS8.index("wheel"), "level", hub_mode)
            if not wheels:
                continue
            uv = project(np.stack([w.hub for w in wheels]), cam, size)
            for w, xy in zip(wheels, uv, strict=True):
                x, y, vis = kps[hub_ids[WHEEL_NAMES.index(w.name)]]
                if x is None or not vis:
                    continue
                d = float(np.hypot(xy[0] - x, xy[1] - y))
                hub_err[f"{hub_mode}_{cam_name}"].append((d, d / max(obj, 1.0)))
        if not meta.get("labels_trusted", True):
            continue
        trusted_n += 1
        truth = table[torch.from_numpy(label_raw.astype(np.int64))].numpy()
        soft_p = render_part_probs(pred.verts, net.faces, probs, cam_p, size)
        soft_t = render_part_probs(pred.verts, net.faces, probs, cam_t, size)
        cms["input_pred_cam"] += confusion_matrix(soft_p.argmax(1)[0].numpy(), truth, K)
        if segmenter is not None:
            cms["segmenter_2d"] += confusion_matrix(segmenter.predict(ds.image(i)[None])[0][0], truth, K)
        cms["input_true_cam"] += confusion_matrix(soft_t.argmax(1)[0].numpy(), truth, K)
        base = torch.softmax(head.base.index_fill(-1, torch.tensor([0]), -1e4), -1)[None]
        cms["input_base"] += confusion_matrix(
            render_part_probs(pred.verts, net.faces, base, cam_p, size).argmax(1)[0].numpy(), truth, K)
        car = meta["car_id"]
        if car not in meshes:
            meshes[car] = true_part_mesh(root / "meshes" / f"{car}.glb")
        # The true mesh's parts rendered in the true camera against the stored map: how exactly the renderer
        # reproduces the data's labels (the ceiling of the novel-view comparison).
        cms["truth_check"] += confusion_matrix(true_labels(meshes[car], cam_t, size)[0].numpy(), truth, K)
        tp = cat([cam_p.turned(d) for d in NOVEL_TURNS])
        tt = cat([cam_t.turned(d) for d in NOVEL_TURNS])
        n = len(NOVEL_TURNS)
        pv = render_part_probs(pred.verts.expand(n, -1, -1), net.faces, probs.expand(n, -1, -1), tp, size)
        tv = true_labels(meshes[car], tt, size)
        cms["novel"] += confusion_matrix(pv.argmax(1).numpy(), tv.numpy(), K)
        if args.sheet and len(sheet) < 8:
            s3 = cat([cam_p.turned(d) for d in (0, 90, 180)])
            p3 = render_part_probs(pred.verts.expand(3, -1, -1), net.faces, probs.expand(3, -1, -1), s3, size)
            col = Renderer(RasterSettings((size, size), supersample=2))(
                net.mesh(pred), cam_p.to_camera((size, size)), background=torch.ones(3)).image[0].clamp(0, 1)
            t3 = true_labels(meshes[car], cat([cam_t.turned(d) for d in (0, 90, 180)]), size)
            tiles = [b["images"][0], palette[torch.from_numpy(truth)].permute(2, 0, 1), col]
            tiles += [(x.permute(1, 2, 0) @ palette).permute(2, 0, 1) for x in p3]
            tiles += [palette[x].permute(2, 0, 1) for x in t3[1:]]
            sheet.append([(t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for t in tiles])
    seconds = time.perf_counter() - t0

    def stats(v: list[float]) -> dict:
        a = np.asarray(v, dtype=np.float64)
        return {"n": int(a.size), "median": float(np.median(a)) if a.size else None,
                "mean": float(a.mean()) if a.size else None,
                "within_10": float((a <= 10).mean()) if a.size else None}

    results = {
        "model": args.model, "head": args.head, "test3d": str(root), "samples": count,
        "trusted_samples": trusted_n, "classes": list(CARS8), "novel_turns_deg": list(NOVEL_TURNS),
        "segmenter": args.segmenter,
        "miou": {k: segmentation_scores(cm, CARS8) for k, cm in cms.items()},
        "wheels_split": {str(k): int(v) for k, v in zip(*np.unique(wheel_counts, return_counts=True), strict=True)},
        "axis_error_deg": {m: stats(v) for m, v in axis_err.items()},
        "hub_error_px": {c: stats([d for d, _ in v]) for c, v in hub_err.items()},
        "hub_error_rel": {c: {**stats([r for _, r in v]), "pck_0.1": float(np.mean([r <= 0.1 for _, r in v]))
                              if v else None} for c, v in hub_err.items()},
        "seconds": round(seconds, 1),
    }
    write_json(out / "results.json", results)
    if args.sheet:
        from PIL import Image

        from ganfactory.report.html import image_grid

        Image.fromarray(image_grid(sheet)).save(args.sheet)
    print(f"test3d: {count} samples ({trusted_n} with trusted part labels), {seconds:.0f} s")
    print("| part mIoU (cars-8) | input view, predicted camera | input view, true camera | novel views | "
          "input view, base layout only | truth check | 2-D segmenter, input view |")
    print("|---|---|---|---|---|---|---|")
    m = results["miou"]
    print(f"| all classes | {m['input_pred_cam']['miou']:.3f} | {m['input_true_cam']['miou']:.3f} | "
          f"{m['novel']['miou']:.3f} | {m['input_base']['miou']:.3f} | {m['truth_check']['miou']:.3f} | "
          f"{m['segmenter_2d']['miou']:.3f} |")
    for c in CARS8:
        row = [m[k]["per_class_iou"][c] for k in kinds]
        print(f"| {c} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in row) + " |")
    print(f"wheels split off per sample: {results['wheels_split']}")
    for mode, s in results["axis_error_deg"].items():
        print(f"axis error ({mode}): median {s['median']:.1f} deg, mean {s['mean']:.1f}, within 10 deg "
              f"{s['within_10']:.0%} (n={s['n']})")
    for c in hub_err:
        s, r = results["hub_error_px"][c], results["hub_error_rel"][c]
        print(f"hub error ({c}): median {s['median']:.2f} px, mean {s['mean']:.2f} px, "
              f"median {r['median']:.3f} of the object size, within 0.1: {r['pck_0.1']:.0%} (n={s['n']})")


if __name__ == "__main__":
    main()
