"""One entry point for every generator a user may bring: ``load_generator(path_or_name)``.

The kind of file is recognised from its content, not its name: our checkpoint (a directory or zip
with config.json), an NVlabs pickle (pickle protocol header), or a rosinality torch zip.
Built-in models are looked up by name first.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from importlib import resources
from pathlib import Path

import torch

from ganfactory.errors import CheckpointError
from ganfactory.gan.io.checkpoint import Checkpoint, is_checkpoint, load_checkpoint
from ganfactory.gan.io.nvlabs import discriminator_config, generator_config, read_nvlabs_pickle
from ganfactory.gan.io.rosinality import read_rosinality
from ganfactory.gan.networks import Discriminator, Generator

__all__ = ["BUILTIN_GENERATORS", "DiscriminatorNotLoaded", "builtin_path", "detect_format", "load_generator",
           "read_any"]

BUILTIN_GENERATORS = {
    "cars64": "A 64x64 StyleGAN2 (preset cpu64) trained here on the cars gan-train split (TORCS renders) for 182 "
              "kimg: recognisable cars, mostly side and three-quarter views (docs/cars64). The default.",
    "tiny32": "A 32x32 StyleGAN2 trained by NVlabs' code for 48 iterations (the parity fixture): blobs, "
              "not objects. Useful for smoke tests and the quick demo.",
}
"""Name -> description of the generators shipped inside the package (ganfactory/assets/generators)."""


def builtin_path(name: str) -> Path:
    if name not in BUILTIN_GENERATORS:
        raise CheckpointError(f"no built-in generator {name!r}; built-in: {', '.join(BUILTIN_GENERATORS)}")
    return Path(str(resources.files("ganfactory") / "assets" / "generators" / name))


def detect_format(path: Path) -> str:
    """'ganfactory', 'nvlabs' or 'rosinality' by content; CheckpointError otherwise."""
    if not path.exists():
        hint = f" (built-in names: {', '.join(BUILTIN_GENERATORS)})" if "/" not in str(path) else ""
        raise CheckpointError(f"{path}: no such file or directory{hint}")
    if is_checkpoint(path):
        return "ganfactory"
    if path.is_dir():
        raise CheckpointError(f"{path}: a directory without config.json is not a checkpoint")
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "nvlabs"
    if zipfile.is_zipfile(path):
        return "rosinality"
    raise CheckpointError(f"{path}: not a ganfactory checkpoint, NVlabs pickle or rosinality .pt file")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_any(path_or_name: str | Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Any supported file (or built-in name) as a Checkpoint, with its provenance filled in."""
    name = str(path_or_name)
    path = builtin_path(name) if name in BUILTIN_GENERATORS else Path(path_or_name).expanduser()
    kind = detect_format(path)
    if kind == "ganfactory":
        return load_checkpoint(path, device=device)
    provenance = {"source_file": path.name, "sha256": _sha256(path)}
    if kind == "nvlabs":
        pkl = read_nvlabs_pickle(path)
        net = pkl.G_ema or pkl.G
        if net is None:
            raise CheckpointError(f"{path}: the pickle holds no generator")
        G = _build(Generator(generator_config(net)), net.state_dict(), path)
        D, why_not = _nvlabs_discriminator(pkl.D, path)
        repo = "stylegan3" if "in_features" in net.child("mapping.fc0").state else "stylegan2-ada-pytorch"
        provenance.update(source="nvlabs", repository=repo, network="G_ema" if pkl.G_ema else "G")
        if why_not:
            provenance["discriminator_not_loaded"] = why_not
        if pkl.training_set_kwargs:
            provenance["training_set_kwargs"] = {k: v for k, v in pkl.training_set_kwargs.items()
                                                 if isinstance(v, int | float | str | bool | None)}
        return Checkpoint(generator=G.to(device), discriminator=D.to(device) if D else None, provenance=provenance)
    G, notes = read_rosinality(path)
    provenance.update(notes)
    return Checkpoint(generator=G.to(device), provenance=provenance)


class DiscriminatorNotLoaded(UserWarning):
    """A snapshot's generator loaded but its discriminator did not (an architecture we do not build)."""


def _nvlabs_discriminator(record, path: Path) -> tuple[Discriminator | None, str | None]:
    """The pickle's discriminator, or None and the reason when we cannot build it.

    Sampling, import and inversion without D-features need the generator only, so an unsupported D
    is reported once (a DiscriminatorNotLoaded warning, and ``provenance['discriminator_not_loaded']``)
    instead of refusing the file; what needs D (resuming training, D features) finds it missing.
    """
    if record is None:
        return None, None
    try:
        return _build(Discriminator(discriminator_config(record)), record.state_dict(), path), None
    except (ValueError, KeyError, TypeError) as e:  # CheckpointError is a ValueError
        why = str(e).removeprefix(f"{path}: ").strip("'")
        warnings.warn(f"{path}: discriminator not loaded ({why}); the generator is complete", DiscriminatorNotLoaded,
                      stacklevel=4)
        return None, why


def _build(module: torch.nn.Module, state: dict, path: Path) -> torch.nn.Module:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not match the recorded architecture ({str(e)[:200]})") from None
    return module.eval()


def load_generator(path_or_name: str | Path, device: torch.device | str = "cpu") -> Generator:
    """The generator (G_ema where there is one) of any supported checkpoint, in eval mode.

    Accepts our checkpoint directories and zips, NVlabs stylegan2-ada / stylegan3-repo StyleGAN2
    pickles, rosinality .pt files, and built-in names (``BUILTIN_GENERATORS``). Never executes code
    from a file.
    """
    return read_any(path_or_name, device=device).generator
