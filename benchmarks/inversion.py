"""Labels for real images by inversion, measured on the cars splits with a trained generator.

1. The ``few`` split (16 labeled renders) is inverted into the generator (``ganfactory.annotate.inversion``,
   default settings: 300 W steps, then 300 W+ steps with noise): PSNR per image after W and after W+.
2. The style interpreter (DatasetGAN's ensemble of 10, default settings) is trained on those inverted
   annotations: the real labels paired with the reconstructions' features.
3. The first ``--test-images`` of the ``test`` split are inverted the same way, and the interpreter labels them
   from their inverted latents: pixel accuracy and mIoU against the real test labels. This is the direct
   measure of "labels for real images": what the interpreter says about a real image it never saw, through
   the generator. (The cars benchmark's inversion arm measures the other use: a network trained on the
   synthetic data this interpreter makes.)

Everything is kept in ``--work`` (default /work/runs/inversion-<generator>), so a killed run resumes; results go to
benchmarks/results/inversion_<generator>.json and a table on stdout.

Run: ``.venv/bin/python benchmarks/inversion.py --ckpt cars64 --data /work/data/cars64`` (about 30-40 minutes on
one core at 64 px with 32 test images).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", default="cars64")
    p.add_argument("--data", required=True, help="directory holding the few and test splits at the generator's size")
    p.add_argument("--work", default=None, help="working directory (inverted projects, interpreter); resumable")
    p.add_argument("--test-images", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, nargs=2, default=None, metavar=("W", "WPLUS"),
                   help="inversion steps (default: the inversion's defaults)")
    p.add_argument("--models", type=int, default=10, help="interpreter ensemble size")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from ganfactory.annotate.inversion import REPORT, invert_labeled_dataset
    from ganfactory.annotate.training import training_images
    from ganfactory.atomic import write_json
    from ganfactory.downstream.data import relabelled
    from ganfactory.gan import load_generator
    from ganfactory.gan.invert import InversionConfig
    from ganfactory.gan.io import read_any
    from ganfactory.label import InterpreterConfig, load_interpreter, train_interpreter
    from ganfactory.metrics import pixel_metrics

    name = Path(args.ckpt).name
    work = Path(args.work or f"/work/runs/inversion-{name}")
    G = load_generator(args.ckpt)
    D = read_any(args.ckpt).discriminator
    out: dict = {"generator": args.ckpt, "data": args.data, "threads": args.threads}
    timings = {}
    inv = InversionConfig() if args.steps is None else InversionConfig(w_steps=args.steps[0], wplus_steps=args.steps[1])
    out["inversion"] = inv.to_json()

    t0 = time.perf_counter()
    few = invert_labeled_dataset(G, Path(args.data) / "few", work / "few", config=inv, D=D, generator=args.ckpt)
    timings["invert_few"] = time.perf_counter() - t0
    few_report = json.loads((work / "few" / REPORT).read_text())
    out["few"] = {"psnr_w": {k: r["psnr_w"] for k, r in few_report["items"].items()},
                  "psnr_wplus": {k: r["psnr"] for k, r in few_report["items"].items()},
                  "mean_psnr_w": few_report["mean_psnr_w"], "mean_psnr_wplus": few_report["mean_psnr"],
                  "seconds": few_report.get("seconds")}

    t0 = time.perf_counter()
    if (work / "interpreter" / "interpreter.json").is_file():
        interp = load_interpreter(work / "interpreter")
    else:
        config = InterpreterConfig(num_models=args.models, seed=args.seed)
        interp, report = train_interpreter(G, training_images(few, G), few.schema, config)
        interp.save(work / "interpreter", provenance={"annotations": str(work / "few")})
        out["interpreter_heldout_pixel_accuracy"] = report.heldout_accuracy
    timings["interpreter"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    test = invert_labeled_dataset(G, Path(args.data) / "test", work / "test", config=inv, D=D,
                                  generator=args.ckpt, limit=args.test_images)
    timings["invert_test"] = time.perf_counter() - t0
    test_report = json.loads((work / "test" / REPORT).read_text())
    items = [test.item(i, G) for i in test.annotated_ids()]
    _, pred = interp.predict(G, [it.latent for it in items])
    truth = np.stack([it.label for it in items])
    class_ids = list(few.schema.class_ids)
    names = {c.id: c.name for c in few.schema.classes}
    test_metrics = pixel_metrics(pred.labels, truth, class_ids)
    _, pred_few = interp.predict(G, [it.latent for it in (few.item(i, G) for i in few.annotated_ids())])
    few_truth = np.stack([few.item(i).label for i in few.annotated_ids()])
    out["test"] = {"images": len(items), "mean_psnr_w": test_report["mean_psnr_w"],
                   "mean_psnr_wplus": test_report["mean_psnr"], "pixel_accuracy": test_metrics["pixel_accuracy"],
                   "mean_iou": test_metrics["mean_iou"],
                   "iou": {names[c]: v for c, v in test_metrics["iou"].items()},
                   "background_only_pixel_accuracy": float((truth == 0).mean())}
    schema8, table8 = relabelled(few.schema, "cars-8")      # the cars benchmark's scored classes
    m8 = pixel_metrics(table8[pred.labels], table8[truth], list(schema8.class_ids))
    names8 = {c.id: c.name for c in schema8.classes}
    out["test_cars8"] = {"pixel_accuracy": m8["pixel_accuracy"], "mean_iou": m8["mean_iou"],
                         "iou": {names8[c]: v for c, v in m8["iou"].items()}}
    out["few_fit"] = {k: v for k, v in pixel_metrics(pred_few.labels, few_truth, class_ids).items() if k != "iou"}
    out["timings_this_run"] = {k: round(v, 1) for k, v in timings.items()}
    RESULTS.mkdir(exist_ok=True)
    write_json(RESULTS / f"inversion_{name}.json", out)

    print(f"inversion with {args.ckpt} (PSNR dB, higher is better)")
    print(f"{'split':<6} {'images':>6} {'PSNR W':>8} {'PSNR W+':>8}")
    print(f"{'few':<6} {len(out['few']['psnr_w']):>6} {out['few']['mean_psnr_w']:>8.2f} "
          f"{out['few']['mean_psnr_wplus']:>8.2f}")
    print(f"{'test':<6} {len(items):>6} {out['test']['mean_psnr_w']:>8.2f} {out['test']['mean_psnr_wplus']:>8.2f}")
    print("per few image (W -> W+): " + ", ".join(f"{out['few']['psnr_w'][k]:.1f}->{out['few']['psnr_wplus'][k]:.1f}"
                                                   for k in sorted(out["few"]["psnr_w"])))
    print(f"interpreter trained on the {len(out['few']['psnr_w'])} inverted few images, labelling inverted test "
          f"images: pixel accuracy {out['test']['pixel_accuracy']:.3f} (all-background would score "
          f"{out['test']['background_only_pixel_accuracy']:.3f}), mIoU {out['test']['mean_iou']:.3f}; on its own "
          f"training images: pixel accuracy {out['few_fit']['pixel_accuracy']:.3f}, "
          f"mIoU {out['few_fit']['mean_iou']:.3f}")
    print("per-class IoU on test: " + ", ".join(f"{k} {v:.2f}" for k, v in out["test"]["iou"].items()))
    print(f"in cars-8 (the cars benchmark's classes): pixel accuracy {m8['pixel_accuracy']:.3f}, mIoU "
          f"{m8['mean_iou']:.3f}; " + ", ".join(f"{k} {v:.2f}" for k, v in out["test_cars8"]["iou"].items()))
    print(f"wrote {RESULTS / f'inversion_{name}.json'}")


if __name__ == "__main__":
    main()
