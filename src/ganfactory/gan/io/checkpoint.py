"""Our own checkpoint format: a directory (or a .zip of it) holding ``config.json`` and safetensors.

    config.json                 {"format": "ganfactory.stylegan2", "format_version": 1,
                                 "generator": GeneratorConfig, "discriminator": DiscriminatorConfig | null,
                                 "provenance": {...}, "extra": {...}}
    generator.safetensors       G_ema, the generator used for sampling
    discriminator.safetensors   optional (training, inversion losses)
    *.safetensors               optional further tensors a trainer keeps (named in config "files")

No pickle anywhere: networks are rebuilt from the JSON config by current code and filled from the
tensors, so a checkpoint can neither run code nor break when a class is renamed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import load_file, save_file

from ganfactory.errors import CheckpointError
from ganfactory.formats import check_format_header
from ganfactory.gan.networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig

__all__ = ["FORMAT", "FORMAT_VERSION", "Checkpoint", "is_checkpoint", "load_checkpoint", "save_checkpoint"]

FORMAT = "ganfactory.stylegan2"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """Networks plus what is known about where they came from."""

    generator: Generator
    discriminator: Discriminator | None = None
    provenance: dict = field(default_factory=dict)
    """Where the weights came from: source format, original file name and sha256, conversion notes."""
    extra: dict = field(default_factory=dict)
    """Anything else worth keeping with the weights: training facts, a class schema."""
    tensors: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    """Further named state dicts (for example a trainer's non-EMA generator and optimiser moments)."""


def save_checkpoint(ckpt: Checkpoint, path: str | Path) -> Path:
    """Write ``ckpt`` as a directory, or as a zip when ``path`` ends in .zip. Atomic: the result appears
    complete or not at all."""
    path = Path(path)
    if path.exists() and not (path.is_dir() or path.suffix == ".zip"):
        raise CheckpointError(f"{path} exists and is not a checkpoint directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    files = {"generator": ckpt.generator.state_dict()}
    if ckpt.discriminator is not None:
        files["discriminator"] = ckpt.discriminator.state_dict()
    for name, sd in ckpt.tensors.items():
        if name in files:
            raise ValueError(f"tensor file name {name!r} is reserved")
        files[name] = sd
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generator": ckpt.generator.config.to_dict(),
        "discriminator": ckpt.discriminator.config.to_dict() if ckpt.discriminator is not None else None,
        "files": sorted(f"{name}.safetensors" for name in files),
        "provenance": ckpt.provenance,
        "extra": ckpt.extra,
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        staging = tmp / "ckpt"
        staging.mkdir()
        (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        for name, sd in files.items():
            save_file({k: v.detach().cpu().contiguous() for k, v in sd.items()}, staging / f"{name}.safetensors")
        if path.suffix == ".zip":
            archive = tmp / "ckpt.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
                for f in sorted(staging.iterdir()):
                    zf.write(f, f.name)
            os.replace(archive, path)
        else:
            if path.exists():
                old = tmp / "old"
                os.replace(path, old)
            os.replace(staging, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def is_checkpoint(path: str | Path) -> bool:
    """True for a directory or zip holding our config.json."""
    path = Path(path)
    if path.is_dir():
        return (path / "config.json").is_file()
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return "config.json" in zf.namelist()
    return False


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu",
                    with_discriminator: bool = True) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``. Networks come back in eval mode."""
    path = Path(path)
    reader = _Reader(path)
    try:
        config = json.loads(reader.read_bytes("config.json"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: config.json is not valid JSON ({e})") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: config.json is not UTF-8 text") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: config.json holds a JSON {type(config).__name__}, not an object")
    check_format_header(config, path / "config.json", FORMAT, FORMAT_VERSION, CheckpointError)
    files = config.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise CheckpointError(f"{path}: config.json 'files' must be a list of file names")
    for fname in files:
        _check_member_name(fname, path)
    for key in ("provenance", "extra"):
        if not isinstance(config.get(key, {}), dict):
            raise CheckpointError(f"{path}: config.json {key!r} must be an object")
    try:
        G = _build(Generator, GeneratorConfig.from_dict(config["generator"]), reader.tensors("generator.safetensors"),
                   path)
        D = None
        if with_discriminator and config.get("discriminator"):
            D = _build(Discriminator, DiscriminatorConfig.from_dict(config["discriminator"]),
                       reader.tensors("discriminator.safetensors"), path)
        tensors = {}
        for fname in files:
            name = fname.removesuffix(".safetensors")
            if name not in ("generator", "discriminator"):
                tensors[name] = reader.tensors(fname)
    except CheckpointError:
        raise
    except KeyError as e:
        raise CheckpointError(f"{path}: incomplete checkpoint, config.json has no {e}") from None
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: config.json: {e}") from None
    return Checkpoint(generator=G.to(device).eval(), discriminator=D.to(device).eval() if D else None,
                      provenance=config.get("provenance", {}), extra=config.get("extra", {}), tensors=tensors)


def _check_member_name(name: str, path: Path) -> None:
    """A file named in config.json must be a plain ``*.safetensors`` name inside the checkpoint: no
    directories, no ``..``, no absolute paths (a crafted config must not make us open /etc/passwd)."""
    if (not name.endswith(".safetensors") or name != Path(name).name or "/" in name or "\\" in name
            or name.startswith(".") or "\0" in name):
        raise CheckpointError(f"{path}: config.json names {name!r}, which is not a .safetensors file inside "
                              "the checkpoint; refusing to read it")


class _Reader:
    """Reads the members of a checkpoint directory or zip; every failure is one CheckpointError line."""

    def __init__(self, path: Path):
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        if path.is_dir():
            return
        if path.is_file() and zipfile.is_zipfile(path):
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as e:
                raise CheckpointError(f"{path}: a damaged zip ({e})") from None
            return
        if not path.exists():
            raise CheckpointError(f"{path}: no such file or directory")
        raise CheckpointError(f"{path}: not a checkpoint directory or zip")

    def member(self, name: str) -> Path:
        """The path of a member of a checkpoint directory, refused when a symlink leads outside it."""
        member = self.path / name
        if not member.resolve().is_relative_to(self.path.resolve()):
            raise CheckpointError(f"{self.path}: {name} points outside the checkpoint; refusing to read it")
        return member

    def read_bytes(self, name: str) -> bytes:
        try:
            return self.zip.read(name) if self.zip is not None else self.member(name).read_bytes()
        except (KeyError, FileNotFoundError):
            if name == "config.json":
                raise CheckpointError(f"{self.path}: no config.json (not a ganfactory checkpoint)") from None
            raise CheckpointError(f"{self.path}: incomplete checkpoint, {name} is missing") from None
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, RuntimeError) as e:
            raise CheckpointError(f"{self.path}: cannot read {name} ({e})") from None

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        if self.zip is None and not self.member(name).is_file():
            raise CheckpointError(f"{self.path}: incomplete checkpoint, {name} is missing")
        try:
            return st_load(self.read_bytes(name)) if self.zip is not None else load_file(self.member(name))
        except CheckpointError:
            raise
        except Exception as e:  # safetensors raises its own SafetensorError (and others for odd headers)
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise CheckpointError(f"{self.path}: {name} is not a readable safetensors file ({reason}); "
                                  "the file is damaged or truncated") from None


def _build(cls, config, state: dict[str, torch.Tensor], path: Path):
    """``cls(config)`` filled from ``state``. The sizes the config implies are compared with the file's
    first, so that a config.json edited to claim a huge network fails in one line instead of allocating it."""
    expected = _generator_shapes(config) if cls is Generator else _discriminator_shapes(config)
    prefix = "mapping.fc"
    layers = len([k for k in state if k.startswith(prefix) and k.endswith(".weight")])
    if layers != config.mapping_layers and (cls is Generator or config.c_dim):
        raise CheckpointError(f"{path}: weights do not match the config (mapping_layers {config.mapping_layers}, "
                              f"the file holds {layers})")
    for key, shape in expected.items():
        found = list(state[key].shape) if key in state else None
        if found != shape:
            raise CheckpointError(f"{path}: weights do not match the config ({key}: the config implies {shape}, "
                                  f"the file holds {found if found is not None else 'nothing'})")
    module = cls(config)
    _fill(module, state, path)
    return module


def _generator_shapes(cfg: GeneratorConfig) -> dict[str, list[int]]:
    """Shapes of the generator tensors that grow with each size field of its config."""
    c, top = cfg.channels, cfg.img_resolution
    embed = (cfg.embed_features or cfg.w_dim) if cfg.c_dim else 0
    hidden = (cfg.layer_features or cfg.w_dim) if cfg.mapping_layers > 1 else cfg.w_dim
    shapes = {f"synthesis.b{r}.conv1.weight": [c(r), c(r), 3, 3] for r in cfg.block_resolutions}
    shapes["synthesis.b4.conv1.affine.weight"] = [c(4), cfg.w_dim]
    shapes[f"synthesis.b{top}.torgb.weight"] = [cfg.img_channels, c(top), 1, 1]
    shapes["mapping.fc0.weight"] = [hidden, cfg.z_dim + embed]
    if cfg.c_dim:
        shapes["mapping.embed.weight"] = [embed, cfg.c_dim]
    return shapes


def _discriminator_shapes(cfg: DiscriminatorConfig) -> dict[str, list[int]]:
    """Shapes of the discriminator tensors that grow with each size field of its config."""
    c, top = cfg.channels, cfg.img_resolution
    cmap = (c(4) if cfg.cmap_dim is None else cfg.cmap_dim) if cfg.c_dim else 0
    shapes = {f"b{r}.conv0.weight": [c(r), c(r), 3, 3] for r in cfg.block_resolutions}
    shapes[f"b{top}.fromrgb.weight"] = [c(top), cfg.img_channels, 1, 1]
    shapes["b4.conv.weight"] = [c(4), c(4) + cfg.mbstd_num_channels, 3, 3]
    shapes["b4.fc.weight"] = [c(4), c(4) * 16]
    shapes["b4.out.weight"] = [cmap or 1, c(4)]
    if cfg.c_dim:
        shapes["mapping.embed.weight"] = [cmap, cfg.c_dim]
    return shapes


def _fill(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise CheckpointError(f"{path}: weights do not match the config ({str(e).splitlines()[-1].strip()})") from None
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the config (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})")
