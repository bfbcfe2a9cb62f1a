"""``ganfactory demo``: the main job on built-in defaults, in minutes on a laptop CPU.

The shipped generator and a small bundled labeled set (``ganfactory/assets/cars64-demo``: the cars
benchmark's 16 ``few`` images and its first 200 ``test`` images at 64 px) go through the whole factory: the few
images are inverted into the generator and their labels become annotations, the style interpreter learns from
them, a few hundred labeled samples are synthesized (the most uncertain 10% dropped), a small UNet is trained on
them and scored on the 200 real test images against the same UNet trained on the 16 real images, and an HTML
report shows it all. It is the cars benchmark (``ganfactory.bench``) with two arms and a small budget. Then the 3-D
half in seconds: the shipped inverse-graphics model ``cars64-3d`` reconstructs a few bundled test images into
``OUT/reconstructions`` (GLB, OBJ, camera), the report shows each from the input view and turned, and names the
command that opens them in the viewer (``ganfactory view OUT/reconstructions``).

Why bundled data instead of rendering it here: rendering needs Debian's torcs-data, which a fresh clone does not
have; 216 small PNGs (1.2 MB) make the demo run anywhere Python does.
"""

from __future__ import annotations

import argparse
import time
from importlib import resources
from pathlib import Path

from ganfactory.cli.options import add_device, add_generator, check_out_dir

DEFAULT_GENERATOR = "cars64"
DEMO_DATA = "cars64-demo"
"""Package asset directory holding the bundled ``few`` and ``test`` LabeledDatasets."""
DEMO_WHY = {
    "loses": "Why: at the demo's budget (a 5-model interpreter trained 10 epochs, a few hundred samples, 500 "
             "iterations) the synthetic labels are noisier than 16 real ones, and the bundled 16 labels already show "
             "every test car, the case where few-shot is strongest; the cars benchmark's unseen-cars protocol is "
             "the fairer test.",
    "wins": "The synthetic samples add views and cars the 16 real labels do not show."}
"""The demo report's one-sentence reason, after the measured verdict (``report.bench.datasetgan_verdict``)."""
DEMO_MODEL_3D = "cars64-3d"
RECONSTRUCTIONS = 4
"""Bundled test images the demo reconstructs (the first ones; about half a second each with the model loaded)."""
TURNS = (0, 90, 180)
"""Azimuth turns (degrees) of the views of each reconstruction in the report."""


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="run the main job on the built-in defaults",
        description="Reads the built-in generator and the bundled labeled set (16 real images, 200 real test "
                    "images). Writes --out: the annotations made by inversion, the interpreter, the synthetic "
                    "dataset, two trained networks, results.json and report/index.html. Rerun to resume.")
    p.add_argument("--out", default="out/demo", help="output directory")
    add_generator(p, default=DEFAULT_GENERATOR, help="generator (default: the built-in one)")
    p.add_argument("--samples", type=int, default=400, help="synthetic samples")
    p.add_argument("--iterations", type=int, default=500, help="training iterations of each network")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_device(p)
    p.set_defaults(func=run)


def demo_data() -> Path:
    """The bundled LabeledDatasets' parent directory (``few/`` and ``test/``)."""
    return Path(str(resources.files("ganfactory") / "assets" / DEMO_DATA))


def demo_config(generator: str, samples: int = 400, iterations: int = 500, device: str = "cpu"):
    """The demo's settings: the benchmark's few-shot, inversion and mixed (inversion + the 16 real labels) arms on a
    small budget, seen cars only (the bundled data are few and test). The interpreter is
    cut to 5 models and 10 epochs: with a 64 px cars generator DatasetGAN's 10 models x up to 50 epochs took 4.6 of
    the demo's 10 minutes on two busy cores."""
    from ganfactory.bench import BenchConfig
    from ganfactory.downstream import TrainConfig
    from ganfactory.errors import GanfactoryError

    if samples < 10 or iterations < 1:
        raise GanfactoryError(f"--samples must be at least 10 and --iterations positive, got {samples} and "
                              f"{iterations}")
    return BenchConfig(generator, arms=("few", "inversion", "mixed"), protocols=("seen",),
                       synthetic_samples=samples, sweep_sizes=(),
                       train=TrainConfig(iterations=iterations, batch_size=16, learning_rate=3e-3, log_every=25,
                                         checkpoint_every=100),
                       interpreter_models=5, interpreter_epochs=10, inversion_steps=(100, 100),
                       synth_workers=1, sample_images=8, device=device)


def run(args: argparse.Namespace) -> None:
    check_out_dir(args.out)
    from ganfactory.bench import run_bench
    from ganfactory.report import write_bench_report
    from ganfactory.report.bench import datasetgan_verdict

    t0 = time.perf_counter()
    config = demo_config(args.generator, args.samples, args.iterations, args.device)
    _start_over_if_changed(Path(args.out), config)
    results = run_bench(config, args.out, str(demo_data()), progress=not args.quiet)
    t1 = time.perf_counter()
    folder, section = reconstruct_demo(Path(args.out), RECONSTRUCTIONS, args.device)
    seconds_3d = time.perf_counter() - t1
    report = write_bench_report(args.out, title="ganfactory demo: labeled data from a generator", why=DEMO_WHY,
                                sections=(section,))
    for arm, scores in results["arms"].items():
        pck = f", PCK@0.1 {scores['pck']['pck']:.3f}" if "pck" in scores else ""
        print(f"demo: {arm:<10} trained on {scores['train_samples']:>4} samples: mIoU {scores['miou']:.3f}{pck}")
    print(f"demo: {datasetgan_verdict(results['arms'])}")
    print(f"demo: {RECONSTRUCTIONS} test images reconstructed in 3-D by {DEMO_MODEL_3D} in {seconds_3d:.1f} s; look "
          f"around them with: ganfactory view {folder.resolve()}")
    print(f"demo: finished in {time.perf_counter() - t0:.0f} s")
    print(f"demo: report written to {report.resolve()}")


def _start_over_if_changed(out: Path, config) -> None:
    """A previous demo with other settings (another generator, say) in ``out`` is replaced rather than refused:
    the directory is the demo's own output. Anything that is not a demo run is left alone (run_bench refuses it)."""
    import json
    import shutil

    previous = out / "bench.json"
    if previous.is_file() and json.loads(previous.read_text()).get("config") != config.to_json():
        print(f"demo: {out} holds a demo run with other settings; starting over")
        shutil.rmtree(out)


def reconstruct_demo(out: Path, count: int = RECONSTRUCTIONS, device: str = "cpu") -> tuple[Path, str]:
    """Reconstruct the first ``count`` bundled test images with the shipped 3-D model into ``out/reconstructions``
    (redone each run: seconds); returns that folder and the report's HTML section about it. The pictures are
    rendered from the written GLB files with the written cameras, so they show what a viewer opens."""
    import numpy as np
    import torch

    from ganfactory.atomic import write_json
    from ganfactory.inverse.model import load_model
    from ganfactory.inverse.reconstruct import load_image, reconstruct_images
    from ganfactory.report.html import embed_png, escape, image_grid

    torch.set_num_threads(1)
    images = sorted((demo_data() / "test" / "images").rglob("*.png"))[:count]
    net, _ = load_model(DEMO_MODEL_3D, device)
    folder = out / "reconstructions"
    records = reconstruct_images(net, images, folder, device)
    write_json(folder / "reconstruct.json", {"model": DEMO_MODEL_3D, "images": records})
    size = net.config.image_size
    rows = []
    for path, record in zip(images, records, strict=True):
        image = (load_image(path, size).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        rows.append([image] + list(render_turned(Path(record["glb"]), record["camera"], TURNS, size)))
    names = ", ".join(f'<a href="../reconstructions/{escape(Path(r["glb"]).name)}">{escape(Path(r["glb"]).name)}</a>'
                      for r in records)
    seconds = sum(r["seconds_predict"] + r["seconds_export"] for r in records) / len(records)
    section = (f"<h2>3-D: single-image reconstructions</h2><p class='note'>The shipped inverse-graphics model "
               f"<code>{DEMO_MODEL_3D}</code> on {len(records)} test images ({seconds:.2f} s per image): input | the "
               f"written GLB seen from the predicted camera, turned by 90 and by 180 degrees. Files: {names} (y up). "
               f"Look around them in the browser: <code>ganfactory view {escape(folder.resolve())}</code></p>"
               + embed_png(image_grid(rows), scale=2, alt="reconstructions"))
    return folder, section


def render_turned(glb: Path, camera: dict, turns: tuple[int, ...], size: int):
    """[len(turns)] uint8 images [H, W, 3] of a reconstruction's GLB seen by its camera JSON orbited by ``turns``
    degrees (``reconstruct.file_camera``)."""
    import numpy as np
    import torch

    from ganfactory.inverse.reconstruct import file_camera
    from ganfactory.render import RasterSettings, Renderer
    from ganfactory.render.io import load_mesh

    mesh = load_mesh(glb)
    views = []
    for turn in turns:
        with torch.no_grad():
            image = Renderer(RasterSettings((size, size), supersample=2))(
                mesh, file_camera(camera, size, turn), background=torch.ones(3)).image
        views.append((image[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    return views
