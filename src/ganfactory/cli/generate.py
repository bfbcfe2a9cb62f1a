"""``ganfactory generate``: images, a grid and regenerable latents from seeds."""

from __future__ import annotations

import argparse

from ganfactory.cli.options import add_device, add_generator, add_truncation, check_out_dir
from ganfactory.gan.io import read_any
from ganfactory.gan.networks import NOISE_MODES
from ganfactory.gan.sampling import generate, parse_seeds, save_samples


def register(sub) -> None:
    p = sub.add_parser(
        "generate", help="sample a generator at seeds",
        description="Reads a generator (our checkpoint, an NVlabs .pkl, a rosinality .pt or a built-in name). "
                    "Writes seedNNNN.png per seed, grid.png, and latents.npz (seeds, z, ws, noise), from which "
                    "every image regenerates exactly.")
    add_generator(p, help="checkpoint path or built-in name (e.g. tiny32)")
    p.add_argument("--seeds", required=True, help="seed list, e.g. 0-15 or 1,5,9-12")
    add_truncation(p, help="truncation psi (1 = none; 0.7 is typical)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="const")
    p.add_argument("--class", dest="class_idx", type=int, default=None, help="class index (conditional G)")
    p.add_argument("--mix-seed", type=int, default=None, help="take the fine layers from this seed")
    p.add_argument("--mix-cutoff", type=int, default=None, help="first layer taken from --mix-seed")
    p.add_argument("--batch", type=int, default=8)
    add_device(p)
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    check_out_dir(args.out)
    seeds = parse_seeds(args.seeds)
    ckpt = read_any(args.generator, device=args.device)
    samples = generate(ckpt.generator, seeds, truncation_psi=args.truncation_psi, noise_mode=args.noise_mode,
                       class_idx=args.class_idx, mix_seed=args.mix_seed, mix_cutoff=args.mix_cutoff,
                       batch_size=args.batch, device=args.device)
    paths = save_samples(samples, args.out, provenance={"ckpt": str(args.generator), **ckpt.provenance})
    print(f"wrote {len(seeds)} images, {paths['grid']} and {paths['latents']}")
