"""``ganfactory import-checkpoint`` and ``ganfactory info``."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import warnings

import torch

from ganfactory import __version__
from ganfactory.gan.io import Checkpoint, read_any, save_checkpoint
from ganfactory.gan.io.load import DiscriminatorNotLoaded


def register(sub) -> None:
    p = sub.add_parser(
        "import-checkpoint", help="convert an NVlabs .pkl or rosinality .pt into our format",
        description="Reads SRC (NVlabs stylegan2-ada / stylegan3-repo StyleGAN2 pickle, rosinality .pt, or our "
                    "own checkpoint) without running code from it; writes DST as our checkpoint (a directory, "
                    "or a zip if DST ends in .zip) with config.json and safetensors weights.")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--weights-only", action="store_true",
                   help="keep the networks' weights only (G_ema, D and a training snapshot's non-EMA generator, "
                        "which `train-gan --init-from` continues); drop the optimiser moments, RNG and counters: "
                        "about half the size, for shipping")
    p.set_defaults(func=run_import)

    p = sub.add_parser("info", help="describe a checkpoint (architecture, size, provenance)",
                       description="Reads a checkpoint or built-in name and prints what it holds.")
    p.add_argument("ckpt")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run_info)


def read_checkpoint(path_or_name: str, verb: str, device: str = "cpu") -> Checkpoint:
    """``read_any`` for a CLI verb: a discriminator that could not be loaded is said once, on one line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ckpt = read_any(path_or_name, device=device)
    for w in caught:
        if issubclass(w.category, DiscriminatorNotLoaded):
            print(f"ganfactory {verb}: note: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return ckpt


def run_import(args: argparse.Namespace) -> None:
    ckpt = read_checkpoint(args.src, "import-checkpoint")
    ckpt.provenance.setdefault("imported_by", f"ganfactory {__version__}")
    if args.weights_only:
        ckpt.tensors = {k: v for k, v in ckpt.tensors.items() if k == "G_train"}
        ckpt.extra.pop("optimizer_param_groups", None)
    path = save_checkpoint(ckpt, args.dst)
    G = ckpt.generator
    print(f"wrote {path}: {G.img_resolution}x{G.img_resolution} generator"
          f"{' and discriminator' if ckpt.discriminator is not None else ''} from {ckpt.provenance.get('source')}")


def describe(path_or_name: str) -> dict:
    ckpt = read_checkpoint(path_or_name, "info")
    G, D = ckpt.generator, ckpt.discriminator
    info = {
        "checkpoint": str(path_or_name),
        "generator": {"architecture": f"StyleGAN2 ({G.config.architecture})", "resolution": G.img_resolution,
                      "num_ws": G.num_ws,
                      "z_dim": G.z_dim, "w_dim": G.w_dim, "c_dim": G.c_dim,
                      "parameters": sum(p.numel() for p in G.parameters()), "config": G.config.to_dict()},
        "discriminator": None if D is None else {
            "architecture": f"StyleGAN2 ({D.config.architecture})",
            "parameters": sum(p.numel() for p in D.parameters())},
        "provenance": ckpt.provenance,
        "extra": ckpt.extra,
        "software": {"ganfactory": __version__, "torch": torch.__version__, "python": platform.python_version()},
    }
    return info


def run_info(args: argparse.Namespace) -> None:
    info = describe(args.ckpt)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return
    g, d = info["generator"], info["discriminator"]
    print(f"checkpoint     {info['checkpoint']}")
    print(f"generator      {g['architecture']}, {g['resolution']}x{g['resolution']}, num_ws {g['num_ws']}, "
          f"z {g['z_dim']}, w {g['w_dim']}, classes {g['c_dim']}, {g['parameters']:,} parameters")
    why_not = info["provenance"].get("discriminator_not_loaded")
    print("discriminator  " + (f"{d['architecture']}, {d['parameters']:,} parameters" if d else
                               f"not loaded ({why_not})" if why_not else "none"))
    for k, v in info["provenance"].items():
        print(f"provenance     {k}: {v}")
    if "kimg" in info["extra"]:
        print(f"training       {info['extra']['kimg']:g} kimg")
    s = info["software"]
    print(f"software       ganfactory {s['ganfactory']}, torch {s['torch']}, python {s['python']}")
