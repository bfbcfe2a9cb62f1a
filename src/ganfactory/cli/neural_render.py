"""``ganfactory neural-render train|serve`` and ``ganfactory neural-render --input IMAGE --azimuth ... --out DIR``:
the StyleGAN-R controllable neural renderer (docs/neural)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ganfactory.cli.options import add_device, add_generator, add_truncation, check_out_dir
from ganfactory.errors import GanfactoryError

DEFAULT_AZIMUTHS = ",".join(str(a) for a in range(0, 360, 30))


def register(sub) -> None:
    from ganfactory.neural.model import BUILTIN_MAPPINGS, DEFAULT_MAPPING

    p = sub.add_parser(
        "neural-render", help="the controllable neural renderer: turn a car, swap its shape, paint or background",
        description="Without a verb: reads --input images (any size; centre-cropped and resized), reads their "
                    "camera, shape, texture and background with the inverse network, and draws each car with the "
                    "GAN at every --azimuth. Writes OUT/<stem>/az{AAA}.png, OUT/<stem>/sheet.png (input | mesh | "
                    "turned) and OUT/neural-render.json. Verbs: train (the mapping network), serve (the page).")
    p.add_argument("--input", nargs="+", default=None, metavar="IMAGE", help="image files to turn")
    p.add_argument("--azimuth", default=DEFAULT_AZIMUTHS,
                   help=f"azimuths in degrees, comma-separated (default {DEFAULT_AZIMUTHS})")
    p.add_argument("--elevation", type=float, default=None,
                   help="elevation in degrees (default: the one read from each input)")
    p.add_argument("--model", default=DEFAULT_MAPPING,
                   help=f"mapping model: built-in ({', '.join(BUILTIN_MAPPINGS)}), a train run or a model directory "
                        f"(default {DEFAULT_MAPPING})")
    p.add_argument("--out", default=None, help="output directory")
    add_device(p)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.set_defaults(func=run_render)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")

    t = verbs.add_parser(
        "train", help="train the mapping network on the generator's own samples (resumable)",
        description="Draws --samples seeds of the generator, reads their codes with the frozen inverse network "
                    "(cached under OUT/cache), warms the mapping up with the generator frozen (L2 to the true ws + "
                    "entropy of the blend weights), then fine-tunes it with cycle losses through the frozen "
                    "generator and inverse network. Writes OUT/model (weights only), OUT/log.jsonl, OUT/val.jsonl, "
                    "OUT/checkpoint.pt (resume: run the same command again; iteration counts may grow), "
                    "OUT/done.json.")
    add_generator(t, default="cars64", help="generator checkpoint path or built-in name (default cars64)")
    t.add_argument("--inverse-model", default="cars64-3d", help="inverse-graphics model (default cars64-3d)")
    t.add_argument("--out", required=True)
    t.add_argument("--samples", type=int, default=4000, help="generated samples to train on (default 4000)")
    t.add_argument("--holdout", type=int, default=200, help="of which held out for validation (default 200)")
    t.add_argument("--warmup-iterations", type=int, default=2500)
    t.add_argument("--finetune-iterations", type=int, default=600)
    t.add_argument("--warmup-batch", type=int, default=16)
    t.add_argument("--finetune-batch", type=int, default=8)
    t.add_argument("--bases", type=int, default=32, help="basis ws the content layers blend (default 32)")
    t.add_argument("--view-layers", type=int, default=3,
                   help="layers [0, N) carry the camera (default 3, measured in docs/multiview)")
    t.add_argument("--elevation-weight", type=float, default=0.0,
                   help="weight of an extra L1 on the re-read elevation in fine-tuning (default 0)")
    add_truncation(t, help="truncation psi of the training samples", default=0.7)
    t.add_argument("--seed", type=int, default=0)
    add_device(t)
    t.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=run_train)

    s = verbs.add_parser(
        "serve", help="the page: sliders turn the car, buttons swap shape, texture or background",
        description="Serves a page on 127.0.0.1 (Host and Origin checks of ganfactory.web): choose a seed or upload "
                    "an image, turn it with azimuth and elevation sliders, take its shape, texture or background "
                    "from another seed; the DIB-R render of the predicted mesh is shown beside the GAN's image. "
                    "Reads and writes no files besides the models.")
    s.add_argument("--model", default=DEFAULT_MAPPING, help=f"mapping model (default {DEFAULT_MAPPING})")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8767, help="port (0 picks a free one; default 8767)")
    add_device(s)
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=run_serve)


def run_render(args: argparse.Namespace) -> None:
    import torch

    from ganfactory.neural.export import parse_angles, turn_images
    from ganfactory.neural.renderer import load_neural_renderer

    if not args.input or args.out is None:
        raise GanfactoryError("give --input IMAGE [IMAGE ...] and --out DIR (or a verb: train, serve)")
    paths = [Path(p) for p in args.input]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise GanfactoryError(f"no such image: {', '.join(missing[:3])}")
    check_out_dir(args.out)
    azimuths = parse_angles(args.azimuth)
    torch.set_num_threads(args.threads)
    nr = load_neural_renderer(args.model, args.device)
    for r in turn_images(nr, paths, azimuths, args.out, args.elevation):
        print(f"{r['sheet']}  read azimuth {round(r['read_azimuth_deg']) % 360} elevation "
              f"{r['read_elevation_deg']:.0f}; "
              f"{len(r['files'])} views")


def run_train(args: argparse.Namespace) -> None:
    from ganfactory.neural.mapping import MappingConfig
    from ganfactory.neural.train import LossWeights, TrainConfig, train

    check_out_dir(args.out)
    if args.bases < 1 or args.view_layers < 1:
        raise GanfactoryError("--bases and --view-layers must be >= 1")
    config = TrainConfig(generator=args.generator, inverse_model=args.inverse_model, samples=args.samples,
                         holdout=args.holdout, warmup_iterations=args.warmup_iterations,
                         finetune_iterations=args.finetune_iterations, warmup_batch=args.warmup_batch,
                         finetune_batch=args.finetune_batch, truncation_psi=args.truncation_psi, seed=args.seed,
                         mapping=MappingConfig(bases=args.bases, view_layers=args.view_layers),
                         losses=LossWeights(elevation=args.elevation_weight),
                         device=args.device, threads=args.threads)
    model = train(config, args.out, progress=not args.quiet)
    print(f"mapping model: {model}")


def run_serve(args: argparse.Namespace) -> None:
    from ganfactory.neural.page import serve

    serve(args.model, host=args.host, port=args.port, device=args.device, threads=args.threads)
