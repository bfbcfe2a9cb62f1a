"""The ``ganfactory`` command: a thin layer over the Python API, one module per subcommand.

Each subcommand module has ``register(subparsers)``, which adds its parser and sets ``func`` to a
function of the parsed arguments. Bad input raises GanfactoryError, printed here as one line with a
non-zero exit status.
"""

from __future__ import annotations

import argparse
import sys

from ganfactory import __version__
from ganfactory.errors import GanfactoryError

SUBCOMMANDS = ["generate", "checkpoint", "train_gan", "demo", "cars", "interpreter", "synthesize", "segment", "bench",
               "annotate", "viewpoint", "multiview", "inverse", "reconstruct", "view", "neural_render"]
"""Modules of ganfactory.cli that contribute subcommands, in --help order."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganfactory",
        description="Turn a StyleGAN into a labeled-data factory and a 3D reconstructor.")
    parser.add_argument("--version", action="version", version=f"ganfactory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    import importlib

    for name in SUBCOMMANDS:
        importlib.import_module(f"ganfactory.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except GanfactoryError as e:
        print(f"ganfactory {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ganfactory {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
