"""``ganfactory synthesize``: a generator and an interpreter make a labeled dataset."""

from __future__ import annotations

import argparse
import json

from ganfactory.cli.options import add_device, add_generator, add_truncation, check_out_dir
from ganfactory.gan.networks import NOISE_MODES
from ganfactory.gan.sampling import parse_seeds
from ganfactory.synth import BACKENDS, SynthConfig, synthesize


def register(sub) -> None:
    p = sub.add_parser(
        "synthesize", help="make a labeled dataset from a generator and an interpreter",
        description="Reads a generator and an interpreter directory (ganfactory interpreter train). Writes a "
                    "LabeledDataset at --out: images/, labels/ (uint8 ids), meta/ (keypoints, per-sample "
                    "uncertainty, the seed latent), dataset.json, coco.json, and with --webdataset wds/*.tar. "
                    "Shards are atomic; run the same command again to resume a killed run.")
    add_generator(p, help="generator checkpoint path or built-in name")
    p.add_argument("--interpreter", required=True, help="interpreter directory")
    p.add_argument("--seeds", required=True, help="seed list, e.g. 0-9999")
    p.add_argument("--out", required=True, help="output dataset directory (new, or a run to resume)")
    add_truncation(p, help="truncation psi")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const")
    p.add_argument("--shard-size", type=int, default=1000, help="candidate seeds per shard (before filtering)")
    p.add_argument("--filter", dest="filter_fraction", type=float, default=0.0,
                   help="drop this fraction of the most uncertain samples of each shard (DatasetGAN: 0.1)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--webdataset", action="store_true", help="also write WebDataset tar shards (wds/)")
    p.add_argument("--coco-object", default="object", help="COCO category of the whole object (e.g. car)")
    p.add_argument("--no-coco", action="store_true", help="skip coco.json")
    p.add_argument("--backend", choices=BACKENDS, default="local")
    p.add_argument("--workers", type=int, default=1, help="worker processes (local) or actors (ray)")
    p.add_argument("--address", default=None, help="Ray cluster address (with --backend ray)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads per worker")
    p.add_argument("--compile", action="store_true",
                   help="fuse the labeller's resize-and-sum with torch.compile (faster from 256 px; compiles once "
                        "per worker)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    check_out_dir(args.out)
    config = SynthConfig(generator=args.generator, interpreter=args.interpreter, seeds=tuple(parse_seeds(args.seeds)),
                         truncation_psi=args.truncation_psi, noise_mode=args.noise_mode,
                         candidates_per_shard=args.shard_size, filter_fraction=args.filter_fraction,
                         batch_size=args.batch, webdataset=args.webdataset,
                         coco_object=None if args.no_coco else args.coco_object, threads_per_worker=args.threads,
                         compile=args.compile, device=args.device)
    report = synthesize(config, args.out, backend=args.backend, workers=args.workers, address=args.address,
                        progress=not args.quiet)
    print(json.dumps(report.to_json()))
