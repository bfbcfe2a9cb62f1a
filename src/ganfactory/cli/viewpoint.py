"""``ganfactory viewpoint train|eval``: the viewpoint regressor (azimuth, elevation) of ganfactory.inverse.viewpoint.

A verb of its own, not under ``multiview``: it measures any car image (the generator's view coverage, the
neural renderer's control), of which the multi-view dataset is one user.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganfactory.cli.options import add_device
from ganfactory.errors import GanfactoryError


def register(sub) -> None:
    p = sub.add_parser("viewpoint", help="train or score the viewpoint regressor (azimuth, elevation)",
                       description="A small CNN trained from scratch on renders with their true cameras; it reads "
                                   "azimuth (0 = the car's front, 90 = its left side) and elevation in degrees.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    t = verbs.add_parser(
        "train", help="train on LabeledDatasets with true cameras (the cars splits)",
        description="Reads LabeledDataset directories (--data, repeatable) whose samples carry azimuth_deg and "
                    "elevation_deg. Writes the run directory --out: config.json, log.jsonl, checkpoint.pt while "
                    "training, then model.safetensors and model.json (written last; load it with "
                    "load_viewpoint_regressor(OUT)). Run the same command again to resume a killed run.")
    t.add_argument("--data", action="append", required=True, help="LabeledDataset directory (repeatable)")
    t.add_argument("--out", required=True, help="run directory")
    t.add_argument("--iterations", type=int, default=3000)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--channels", default="16,32,64,128", help="width of each of the stages (each halves the size)")
    t.add_argument("--bins", type=int, default=24, help="azimuth classes of the bin head")
    t.add_argument("--shift", type=float, default=2.0, help="random translation up to this many pixels")
    t.add_argument("--scale-jitter", type=float, default=0.05, help="random scale in [1 - s, 1 + s]")
    t.add_argument("--color", action="store_true", help="also permute colour channels and jitter saturation, "
                   "contrast, brightness (slower to learn)")
    t.add_argument("--blur", type=float, default=0.3, help="probability of a small Gaussian blur")
    t.add_argument("--val-fraction", type=float, default=0.05, help="share of --data held out to choose the decode")
    t.add_argument("--checkpoint-every", type=int, default=250, help="iterations between resume checkpoints")
    t.add_argument("--threads", type=int, default=1, help="intra-op threads (1 is fastest on a busy CPU)")
    t.add_argument("--seed", type=int, default=0)
    add_device(t)
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=run_train)
    e = verbs.add_parser(
        "eval", help="score a regressor on a LabeledDataset with true cameras",
        description="Prints (and writes to --out) JSON: median and mean azimuth error, shares within 10/15/30 "
                    "degrees, the share of front/rear flips (error over 150), elevation errors; for each decode.")
    e.add_argument("--model", default="cars", help="built-in name or run directory (default: cars)")
    e.add_argument("--data", required=True, help="LabeledDataset with azimuth_deg/elevation_deg")
    e.add_argument("--limit", type=int, default=None, help="score the first N samples only")
    e.add_argument("--out", default=None, help="JSON file to write the scores to")
    add_device(e)
    e.set_defaults(func=run_eval)


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise GanfactoryError(f"{flag} must be positive integers separated by commas, got {text!r}")
    return values


def run_train(args: argparse.Namespace) -> None:
    import torch

    from ganfactory.inverse.viewpoint import (
        RegressorConfig,
        TrainSettings,
        ViewpointData,
        load_viewpoint_data,
        train_viewpoint_regressor,
    )

    if args.iterations < 1 or args.batch < 1 or args.bins < 2:
        raise GanfactoryError("--iterations and --batch must be positive and --bins at least 2")
    parts = [load_viewpoint_data(d) for d in args.data]
    data = parts[0] if len(parts) == 1 else ViewpointData(
        torch.cat([p.images for p in parts]), torch.cat([p.azimuth_deg for p in parts]),
        torch.cat([p.elevation_deg for p in parts]), ";".join(p.source for p in parts))
    config = RegressorConfig(resolution=int(data.images.shape[2]), channels=_ints(args.channels, "--channels"),
                             azimuth_bins=args.bins)
    settings = TrainSettings(iterations=args.iterations, batch_size=args.batch, learning_rate=args.lr,
                             shift_px=args.shift, scale=args.scale_jitter, color=args.color, blur=args.blur,
                             val_fraction=args.val_fraction, seed=args.seed, threads=args.threads,
                             checkpoint_every=args.checkpoint_every)
    model = train_viewpoint_regressor(data, args.out, config, settings,
                                      provenance={"data": [str(Path(d).resolve()) for d in args.data]},
                                      device=args.device, progress=not args.quiet)
    record = json.loads((Path(args.out) / "model.json").read_text())
    print(json.dumps({"out": str(args.out), "decode": model.decode, "validation": record["validation"],
                      "seconds": record["seconds"]}))


def run_eval(args: argparse.Namespace) -> None:
    from ganfactory.inverse.viewpoint import DECODES, evaluate_regressor, load_viewpoint_data, load_viewpoint_regressor

    model = load_viewpoint_regressor(args.model, args.device)
    data = load_viewpoint_data(args.data, args.limit)
    scores = {"model": str(args.model), "data": str(args.data), "decode": model.decode,
              **{d: evaluate_regressor(model, data, d) for d in DECODES}}
    text = json.dumps(scores, indent=1)
    if args.out:
        from ganfactory.atomic import write_atomic

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out, text + "\n")
    print(text)
