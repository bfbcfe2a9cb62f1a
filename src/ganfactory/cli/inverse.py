"""``ganfactory inverse train``: the inverse-graphics network on a LabeledDataset with cameras."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

from ganfactory.cli.options import add_device


def register(sub) -> None:
    p = sub.add_parser("inverse", help="single-image 3-D: train the inverse-graphics network",
                       description="The inverse-graphics network (GANverse3D): a sphere deformed into the object, "
                                   "a UV texture and a camera, from one image.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    t = verbs.add_parser(
        "train", help="train through the DIB-R renderer (resumable)",
        description="Reads --data, a LabeledDataset whose samples carry cameras (cars renders: meta camera K, R, t, "
                    "azimuth_deg, elevation_deg; or multi-view data: azimuth_deg, elevation_deg, fov_deg and "
                    "distance or distance_scale); masks are label != 0; samples of one car_id / content / "
                    "content_id are views of one object; samples with a view_code get a refined camera per view "
                    "code. Writes --out: "
                    "train.json, checkpoints/, log.jsonl, val.jsonl, model/ (weights only, for `ganfactory "
                    "reconstruct --model OUT`) and done.json (and cameras.json: the refined view-code cameras of "
                    "multi-view data). Run the same command again to resume; a larger --iterations continues a "
                    "finished run. Data parallel: torchrun --nproc_per_node=N -m ganfactory.cli inverse train ... "
                    "(gloo on a CPU; the batch is split over the processes).")
    t.add_argument("--data", required=True, help="LabeledDataset with cameras")
    t.add_argument("--out", required=True, help="run directory (new, or a run to resume)")
    t.add_argument("--iterations", type=int, default=None, help="training iterations (default 20000)")
    t.add_argument("--batch", type=int, default=None, help="images per iteration (default 16)")
    t.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 3e-4)")
    t.add_argument("--views", type=int, choices=[1, 2], default=None,
                   help="2 (default): render each prediction into its view and another view of the object; 1: single")
    t.add_argument("--sh-lighting", action="store_true", help="predict an SH9 light beside an albedo texture")
    t.add_argument("--no-symmetry", action="store_true", help="no left-right symmetry of shape and texture")
    t.add_argument("--perceptual", default=None,
                   help="generator whose discriminator gives the perceptual features (default cars64; 'none': off)")
    t.add_argument("--no-refine-cameras", action="store_true",
                   help="use the annotated view-code cameras as given (default: refine them jointly)")
    t.add_argument("--refine-start", type=int, default=None,
                   help="iteration from which the view-code cameras are refined (default 200)")
    t.add_argument("--checkpoint-every", type=int, default=None,
                   help="iterations between checkpoints and held-out scores (default 200)")
    t.add_argument("--accumulate", type=int, default=None,
                   help="micro-batches per process per iteration (default 1)")
    t.add_argument("--max-samples", type=int, default=None, help="use only the first N samples")
    t.add_argument("--seed", type=int, default=None)
    add_device(t)
    t.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    t.add_argument("--quick", action="store_true", help="a few iterations on a few samples (proves the wiring)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> None:
    from ganfactory.inverse.train import TrainConfig, quick_config, train

    changes: dict = {"device": args.device, "threads": args.threads}
    for flag in ("iterations", "batch", "lr", "views", "max_samples", "seed", "accumulate", "refine_start",
                 "checkpoint_every"):
        if getattr(args, flag) is not None:
            changes[flag] = getattr(args, flag)
    if args.no_refine_cameras:
        changes["refine_cameras"] = False
    if args.perceptual is not None:
        changes["perceptual_features"] = None if args.perceptual.lower() == "none" else args.perceptual
    config = quick_config(args.data, **changes) if args.quick else TrainConfig(data=args.data, **changes)
    network = dataclasses.replace(config.network, symmetric=not args.no_symmetry, sh_lighting=args.sh_lighting)
    config = dataclasses.replace(config, network=network)
    start = time.time()
    model = train(config, args.out, progress=not args.quiet)
    if os.environ.get("RANK", "0") != "0":
        return
    val = json.loads((model / "config.json").read_text())["facts"].get("val", {})
    scores = ", ".join(f"{k} {v:.3f}" for k, v in val.items())
    print(f"model in {model} ({time.time() - start:.0f} s this run); held-out: {scores}")
