"""The weights-only format of a trained mapping network and the built-ins shipped beside their generator.

A model is a directory with ``config.json`` (format header, the ``MappingConfig``, the generator and inverse model
it belongs to, training facts) and ``model.safetensors`` (the state dict, float16 for shipped models, read back as
float32). No pickle. Built-in models live in ``ganfactory/assets/neural/<name>/``, named like their generator.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ganfactory.errors import GanfactoryError
from ganfactory.neural.mapping import MappingConfig, NeuralMapping
from ganfactory.weights import find_model_dir, load_weights, read_model_dir, save_model_dir

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
    return save_model_dir(mapping, path, {"format": FORMAT, "format_version": FORMAT_VERSION,
                                          "mapping": mapping.config.to_json(), "generator": generator,
                                          "inverse_model": inverse_model, "facts": facts or {}}, half)


def mapping_path(name_or_path: str | Path) -> Path:
    """A built-in's directory, a training run's ``model/``, or a model directory itself."""
    return find_model_dir(name_or_path, BUILTIN_MAPPINGS, "neural", MappingError,
                          "a mapping model directory, a 'neural-render train' run or a built-in")


def load_mapping(name_or_path: str | Path, device: torch.device | str = "cpu") -> tuple[NeuralMapping, dict]:
    """(mapping network in eval mode on ``device``, its config.json)."""
    path = mapping_path(name_or_path)
    config, state = read_model_dir(path, FORMAT, FORMAT_VERSION, MappingError)
    mapping = NeuralMapping(MappingConfig.from_json(config["mapping"]))
    load_weights(mapping, state, path, MappingError)
    return mapping.to(device).eval(), config
