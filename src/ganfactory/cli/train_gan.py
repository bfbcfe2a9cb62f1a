"""``ganfactory train-gan``: train a StyleGAN2 on a folder of images (one process, or torchrun)."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing

from ganfactory.gan.train import PRESETS, TrainConfig, train


def _flag_type(annotation):
    """The argparse type for a TrainConfig field annotation (int, float, str, bool, tuple[str, ...], X | None)."""
    hint = typing.get_type_hints(TrainConfig)[annotation]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = args[0]
    if typing.get_origin(hint) is tuple:
        return lambda s: tuple(x for x in s.split(",") if x)
    return hint


def register(sub) -> None:
    p = sub.add_parser(
        "train-gan", help="train a StyleGAN2 on images",
        description="Reads --data (an image folder, a .zip of images, or a LabeledDataset directory); writes "
                    "--out/snapshots/* (our checkpoint format, resumable), samples/*.png, log.txt, stats.jsonl "
                    "and config.json. Ctrl-C finishes the step, writes a snapshot and stops; --resume continues "
                    f"exactly. Presets: {', '.join(PRESETS)}; every field of a preset can be overridden. "
                    "For several processes: torchrun --nproc_per_node N -m ganfactory.cli train-gan ...")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        typ = _flag_type(f.name)
        required = f.default is dataclasses.MISSING
        if typ is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            p.add_argument(flag, type=typ, required=required,
                           default=None if required else f.default,
                           help="comma-separated" if typing.get_origin(typing.get_type_hints(TrainConfig)[f.name])
                           is tuple else None)
    p.add_argument("--resume", nargs="?", const="", default=None,
                   help="continue from a snapshot, or from the latest one in --out when given without a path")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**values)
    resume = args.resume if args.resume else (config.out if args.resume == "" else None)
    result = train(config, resume=resume, progress=not args.no_progress)
    state = "interrupted at" if result["interrupted"] else "finished at"
    print(f"train-gan: {state} {result['kimg']:.2f} kimg; snapshots in {config.out}/snapshots")
