"""Options several verbs share, spelled once: the generator, truncation and the device.

Flag names are the API's names (``--generator`` is ``SynthConfig.generator``, ``--truncation-psi`` is
``truncation_psi``, ``--device`` is every function's ``device``); the older spellings ``--ckpt`` and ``--trunc``
still work.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ganfactory.errors import GanfactoryError

__all__ = ["add_device", "add_generator", "add_truncation", "check_out_dir", "device_type"]

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


def device_type(text: str) -> str:
    """argparse type of ``--device``: cpu, cuda or cuda:N (checked before any work starts)."""
    if not _DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use cpu, cuda or cuda:N")
    if text.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text}: CUDA is not available on this machine; use --device cpu")
    return text


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=device_type, default="cpu",
                        help="where to compute: cpu (default), cuda or cuda:N")


def add_generator(parser: argparse.ArgumentParser, default: str | None = None, help: str | None = None) -> None:
    parser.add_argument("--generator", "--ckpt", dest="generator", required=default is None, default=default,
                        help=f"{help or 'generator checkpoint path or built-in name'} (--ckpt is the old name)")


def add_truncation(parser: argparse.ArgumentParser, help: str = "truncation psi", default: float = 1.0) -> None:
    parser.add_argument("--truncation-psi", "--trunc", dest="truncation_psi", type=float, default=default,
                        help=f"{help} (--trunc is the old name)")


def check_out_dir(path: str | Path, flag: str = "--out") -> None:
    """Before any work: an output directory may be new or a directory, not an existing file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GanfactoryError(f"{flag} {path} is an existing file, not a directory; pass a directory")
