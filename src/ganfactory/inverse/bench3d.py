"""``ganfactory bench cars3d``: BENCHMARK.md's 3-D arms scored on test3d, one resumable command.

Arms (the same network and budget; each is trained here from its data, or given as a trained model):

- ``real``: cars renders with their true cameras (arm 3, the upper bound; ``--train-data``, a cars split);
- ``gan-multiview`` and ``gan-single``: the GAN's multi-view data (``--multiview-data``, from ``ganfactory
  multiview build``), trained with two views per object and with one (arms 1 and 2).

Layout of OUT (each stage writes its result last, atomically, and is skipped when that exists)::

    OUT/bench.json                    settings (written first; a rerun with others is refused)
    OUT/data/test3d/                  the scoring split with its true meshes (built here without --test3d)
    OUT/data/train/                   the quick training split (--quick without --train-data)
    OUT/arms/<arm>/run/               training run (``ganfactory inverse train``), unless --model ARM=MODEL
    OUT/arms/<arm>/scores.json        per-sample and mean scores (``ganfactory.inverse.metrics3d``)
    OUT/arms/<arm>/sheet.png          16 inputs | reconstruction from the input view, +90, +180 | truth
    OUT/results.json, OUT/report.html every arm's numbers, training time and memory, the sheets
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ganfactory.atomic import atomic_path, write_atomic, write_json
from ganfactory.datasets.labeled import LabeledDataset
from ganfactory.errors import GanfactoryError
from ganfactory.inverse.camera import OrbitCamera, wrap_degrees
from ganfactory.inverse.data import load_views
from ganfactory.inverse.metrics3d import (
    POINTS,
    TURNS,
    chamfer_fscore,
    exterior_faces,
    hard_iou,
    normalise_points,
    render_views,
    sample_surface,
    silhouettes,
)
from ganfactory.inverse.model import load_model
from ganfactory.inverse.network import InverseGraphicsNet
from ganfactory.inverse.reconstruct import sample_mesh
from ganfactory.render import Mesh
from ganfactory.render.io import load_mesh

__all__ = ["ARMS", "Bench3DConfig", "run_bench3d", "score_model"]

ARMS = ("gan-multiview", "gan-single", "real")


@dataclass(frozen=True)
class Bench3DConfig:
    """What a cars3d run depends on (recorded in bench.json)."""

    quick: bool = False
    arms: tuple[str, ...] = ("real",)
    models: dict[str, str] = dataclasses.field(default_factory=dict)
    """Arm -> an already trained model (name, run or model directory): scored, not trained."""
    train_data: str | None = None
    """Cars renders with cameras for the ``real`` arm."""
    multiview_data: str | None = None
    """GAN multi-view data for the ``gan-*`` arms."""
    test3d: str | None = None
    """A built test3d split (default: built into OUT/data/test3d)."""
    test_samples: int | None = None
    """Score only the first N test3d samples (None: all 300; quick: 12)."""
    iterations: int | None = None
    """Training iterations of every trained arm (default: TrainConfig's; quick: 20)."""
    batch: int | None = None
    device: str = "cpu"
    threads: int = 1

    def __post_init__(self) -> None:
        unknown = [a for a in self.arms if a not in ARMS] + [a for a in self.models if a not in ARMS]
        if unknown:
            raise GanfactoryError(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _true_mesh(path: Path) -> tuple[Mesh, torch.Tensor]:
    """The true mesh with RGB textures (for pictures) and its exterior faces (for surface samples)."""
    full = load_mesh(path)
    shaded = full.replace(textures=tuple(t[:, :3] for t in full.textures))
    return shaded, exterior_faces(Mesh(full.verts, full.faces, face_two_sided=full.face_two_sided))



@torch.no_grad()
def score_model(net: InverseGraphicsNet, test3d: Path, n: int | None = None, progress: bool = True,
                sheet_rows: int = 16) -> tuple[dict, np.ndarray]:
    """Score ``net`` on the test3d split at ``test3d`` (its first ``n`` samples); (scores, contact sheet)."""
    net.eval()
    ds = LabeledDataset(test3d)
    count = len(ds) if n is None else min(n, len(ds))
    views = load_views(test3d, range(count), progress=False)
    size = net.config.image_size
    if views.images.shape[-1] != size:
        raise GanfactoryError(f"test3d images are {views.images.shape[-1]} px, the model takes {size} px")
    meshes: dict[str, tuple[Mesh, torch.Tensor]] = {}
    rows, sheet = [], []
    gen = torch.Generator().manual_seed(0)
    bar = tqdm(range(count), desc="score test3d", unit="img", disable=not progress)
    seconds = 0.0
    for i in bar:
        car = ds.meta(i)["car_id"]
        if car not in meshes:
            meshes[car] = _true_mesh(test3d / "meshes" / f"{car}.glb")
        true_mesh, exterior = meshes[car]
        b = views.batch(torch.tensor([i]), "cpu")
        t0 = time.perf_counter()
        pred = net(b["images"])
        seconds += time.perf_counter() - t0
        mesh = sample_mesh(net, pred, 0)
        cam_p = pred.camera
        cam_t = OrbitCamera(b["azimuth"], b["elevation"], b["t"], views.fov_y)
        gt = b["masks"] > 0.5
        input_iou = float(hard_iou(silhouettes(mesh, cam_p, size), gt)[0])
        input_iou_true_cam = float(hard_iou(silhouettes(mesh, cam_t, size), gt)[0])
        turned_p = [cam_p.turned(d) for d in TURNS]
        turned_t = [cam_t.turned(d) for d in TURNS]

        def cat(cams: list[OrbitCamera]) -> OrbitCamera:
            return OrbitCamera(torch.cat([c.azimuth for c in cams]), torch.cat([c.elevation for c in cams]),
                               torch.cat([c.t for c in cams]), views.fov_y)

        mv = hard_iou(silhouettes(mesh, cat(turned_p), size), silhouettes(true_mesh, cat(turned_t), size))
        # Chamfer / F-score in each one's camera frame, normalised.
        R_p = cam_p.to_camera((size, size))
        R_t = cam_t.to_camera((size, size))
        p_pts = sample_surface(mesh.verts[0], mesh.faces, POINTS, gen)
        t_pts = sample_surface(true_mesh.verts[0], true_mesh.faces[exterior], POINTS, gen)
        p_view = R_p.world_to_view(p_pts[None])[0]
        t_view = R_t.world_to_view(t_pts[None])[0]
        chamfer, fscore = chamfer_fscore(normalise_points(p_view), normalise_points(t_view))
        az_err = float(wrap_degrees(torch.rad2deg(cam_p.azimuth - cam_t.azimuth)).abs()[0])
        el_err = float(torch.rad2deg(cam_p.elevation - cam_t.elevation).abs()[0])
        rows.append({"id": views.ids[i], "car_id": car, "input_iou": input_iou,
                     "input_iou_true_camera": input_iou_true_cam, "multiview_iou": float(mv.mean()),
                     "chamfer_l1": chamfer, "fscore_5": fscore, "azimuth_error_deg": az_err,
                     "elevation_error_deg": el_err})
        if len(sheet) < sheet_rows:
            recon = render_views(mesh, cam_p, size, (0, 90, 180))
            truth = render_views(true_mesh, cam_t, size, (0,))
            tiles = [b["images"][0]] + list(recon) + [truth[0]]
            sheet.append([(t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for t in tiles])
        bar.set_postfix(iou=f"{_mean([r['input_iou'] for r in rows]):.3f}")
    az = np.array([r["azimuth_error_deg"] for r in rows])
    summary = {
        "samples": count,
        "input_iou": _mean([r["input_iou"] for r in rows]),
        "input_iou_true_camera": _mean([r["input_iou_true_camera"] for r in rows]),
        "multiview_iou": _mean([r["multiview_iou"] for r in rows]),
        "chamfer_l1": _mean([r["chamfer_l1"] for r in rows]),
        "fscore_5": _mean([r["fscore_5"] for r in rows]),
        "azimuth_error_median_deg": float(np.median(az)),
        "azimuth_within_30": float((az <= 30).mean()),
        "elevation_error_median_deg": float(np.median([r["elevation_error_deg"] for r in rows])),
        "seconds_per_image_predict": seconds / count,
    }
    from ganfactory.report.html import image_grid

    return {"summary": summary, "samples": rows}, image_grid(sheet)


def _build_split(split: str, out: Path, n: int | None, progress: bool) -> Path:
    from ganfactory.datasets.build import BuildSettings, build_split

    if not (out / "dataset.json").is_file():
        build_split(out, BuildSettings(split=split, resolution=64, n=n), workers=1, progress=progress)
    return out


def _write_png(path: Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def run_bench3d(config: Bench3DConfig, out: str | Path, progress: bool = True) -> dict:
    """Run (or resume) the benchmark into ``out``; returns results.json's content."""
    from ganfactory.inverse.train import TrainConfig, quick_config, train

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = dataclasses.asdict(config)
    if (out / "bench.json").is_file() and json.loads((out / "bench.json").read_text()) != json.loads(
            json.dumps(settings)):
        raise GanfactoryError(f"{out} holds a cars3d run with other settings (bench.json); use a new --out")
    write_json(out / "bench.json", settings)
    torch.set_num_threads(config.threads)
    n_test = config.test_samples if config.test_samples is not None else (12 if config.quick else None)
    test3d = Path(config.test3d) if config.test3d else _build_split("test3d", out / "data" / "test3d", n_test, progress)

    results: dict = {"settings": settings, "arms": {}, "conventions": _CONVENTIONS}
    for arm in config.arms:
        arm_dir = out / "arms" / arm
        arm_dir.mkdir(parents=True, exist_ok=True)
        train_facts: dict = {}
        if arm in config.models:
            model = config.models[arm]
        else:
            if arm == "real":
                data = config.train_data
                if data is None and config.quick:
                    data = str(_build_split("gan-train", out / "data" / "train", 48, progress))
            else:
                data = config.multiview_data
            if data is None:
                flag = "--train-data" if arm == "real" else "--multiview-data"
                raise GanfactoryError(f"arm {arm} needs training data ({flag}) or a model (--model {arm}=MODEL)")
            changes = {"views": 1 if arm == "gan-single" else 2, "device": config.device, "threads": config.threads}
            if config.iterations is not None:
                changes["iterations"] = config.iterations
            if config.batch is not None:
                changes["batch"] = config.batch
            tc = quick_config(data, **changes) if config.quick else TrainConfig(data=data, **changes)
            model = str(train(tc, arm_dir / "run", progress=progress))
        net, model_config = load_model(model, config.device)
        train_facts = model_config.get("facts", {})
        scores_path = arm_dir / "scores.json"
        if not scores_path.is_file():
            scores, sheet = score_model(net, test3d, n_test, progress)
            _write_png(arm_dir / "sheet.png", sheet)
            write_json(scores_path, {"model": model, **scores})
        scores = json.loads(scores_path.read_text())
        results["arms"][arm] = {"model": model, "summary": scores["summary"],
                                "training": {k: train_facts.get(k) for k in
                                             ("iterations", "train_seconds", "peak_rss_mb", "data")}}
    write_json(out / "results.json", results)
    write_atomic(out / "report.html", _report(results, out))
    return results


_CONVENTIONS = {
    "input_iou": "hard silhouettes at 64 px, prediction with its predicted camera vs the true mask (label != 0)",
    "multiview_iou": "mean over azimuth offsets 0..330 step 30 of the prediction from its predicted camera turned vs "
                     "the true mesh from the true camera turned (same elevation and view offset)",
    "chamfer_l1": f"{POINTS} area-weighted samples per mesh (truth: exterior faces only) in each one's camera frame, "
                  "each centred on its bounding-box centre and scaled to a longest side of 1; mean Euclidean "
                  "nearest-neighbour distance averaged over both directions",
    "fscore_5": "F-score at tau = 0.05 of that normalised size",
    "azimuth_error": "|predicted - true| wrapped to [0, 180] degrees: median and share within 30",
}


def _report(results: dict, out: Path) -> str:
    from ganfactory.report.html import embed_png, escape, table

    header = ["arm", "input IoU", "input IoU (true cam)", "12-view IoU", "Chamfer-L1", "F@5%", "az err med",
              "az <= 30", "iterations", "train s", "peak MB"]
    rows = []
    for arm, r in results["arms"].items():
        s, t = r["summary"], r["training"]
        rows.append([arm, f"{s['input_iou']:.3f}", f"{s['input_iou_true_camera']:.3f}", f"{s['multiview_iou']:.3f}",
                     f"{s['chamfer_l1']:.4f}", f"{s['fscore_5']:.3f}", f"{s['azimuth_error_median_deg']:.1f}",
                     f"{s['azimuth_within_30']:.2f}", t.get("iterations"), t.get("train_seconds"),
                     t.get("peak_rss_mb")])
    sheets = ""
    for arm in results["arms"]:
        path = out / "arms" / arm / "sheet.png"
        if path.is_file():
            image = np.asarray(Image.open(path).convert("RGB"))
            sheets += (f"<h2>{escape(arm)}</h2><p>input | reconstruction from the predicted camera, +90, +180 "
                       f"degrees | true mesh (true camera)</p>{embed_png(image, 2)}")
    quick = " (quick: proves the wiring, not the science)" if results["settings"]["quick"] else ""
    conv = "".join(f"<li><b>{escape(k)}</b>: {escape(v)}</li>" for k, v in results["conventions"].items())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>cars3d</title><style>"
            f"body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:right}}</style></head><body>"
            f"<h1>cars3d on test3d{escape(quick)}</h1>{table(header, rows)}<ul>{conv}</ul>{sheets}</body></html>")

