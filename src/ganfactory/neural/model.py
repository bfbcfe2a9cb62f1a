"""The weights-only format of a trained mapping network and the built-ins shipped beside their generator.

A model is a directory with ``config.json`` (format header, the ``MappingConfig``, the generator and inverse model
it belongs to, training facts) and ``model.safetensors`` (the state dict, float16 for shipped models, read back as
float32). No pickle. Built-in models live in ``ganfactory/assets/neural/<name>/``, named like their generator.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ganfactory.atomic import atomic_path, write_json
from ganfactory.errors import GanfactoryError
from ganfactory.formats import check_format_header
from ganfactory.neural.mapping import MappingConfig, NeuralMapping

__all__ = ["BUILTIN_MAPPINGS", "DEFAULT_MAPPING", "FORMAT", "FORMAT_VERSION", "MappingError", "load_mapping",
           "mapping_path", "save_mapping"]

FORMAT = "ganfactory.neural"
FORMAT_VERSION = 1
BUILTIN_MAPPINGS = {
    "cars64": "The StyleGAN-R mapping of the built-in cars64 generator through the cars64-3d inverse network; "
              "docs/neural.",
}
"""Name -> description of the mapping networks in ganfactory/assets/neural (named like their generator)."""
DEFAULT_MAPPING = "cars64"


class MappingError(GanfactoryError, ValueError):
    """A mapping model directory that cannot be read."""


def save_mapping(mapping: NeuralMapping, path: str | Path, generator: str, inverse_model: str,
                 facts: dict | None = None, half: bool = False) -> Path:
    """Write the weights and config.json (last, so a directory with a config is whole) to the directory ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if half else torch.float32
    tensors = {k: v.detach().to(dtype).contiguous().cpu() for k, v in mapping.state_dict().items()}
    with atomic_path(path / "model.safetensors") as tmp:
        save_file(tensors, str(tmp))
    write_json(path / "config.json", {"format": FORMAT, "format_version": FORMAT_VERSION,
                                      "mapping": mapping.config.to_json(), "generator": generator,
                                      "inverse_model": inverse_model, "facts": facts or {}})
    return path


def mapping_path(name_or_path: str | Path) -> Path:
    """A built-in's directory, a training run's ``model/``, or a model directory itself."""
    name = str(name_or_path)
    if name in BUILTIN_MAPPINGS:
        return Path(str(resources.files("ganfactory") / "assets" / "neural" / name))
    path = Path(name).expanduser()
    if (path / "model" / "config.json").is_file():
        return path / "model"
    if (path / "config.json").is_file():
        return path
    raise MappingError(f"{name}: not a mapping model directory, a 'neural-render train' run or a built-in "
                       f"({', '.join(BUILTIN_MAPPINGS)})")


def load_mapping(name_or_path: str | Path, device: torch.device | str = "cpu") -> tuple[NeuralMapping, dict]:
    """(mapping network in eval mode on ``device``, its config.json)."""
    path = mapping_path(name_or_path)
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise MappingError(f"{path}/config.json: cannot read ({e})") from None
    check_format_header(config, path / "config.json", FORMAT, FORMAT_VERSION, MappingError)
    mapping = NeuralMapping(MappingConfig.from_json(config["mapping"]))
    try:
        state = {k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()}
        mapping.load_state_dict(state)
    except (OSError, RuntimeError) as e:
        raise MappingError(f"{path}: weights cannot be read or do not match the config "
                           f"({str(e).splitlines()[0]})") from None
    return mapping.to(device).eval(), config
