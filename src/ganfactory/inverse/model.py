"""The weights-only model format of the inverse-graphics network, and the built-in models shipped with it.

A model is a directory with ``config.json`` (format header, the ``NetworkConfig``, training facts) and
``model.safetensors`` (the state dict; float16 for shipped models, read back as float32). No pickle.
Built-in models live in ``ganfactory/assets/inverse/<name>/`` and load by name.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ganfactory.errors import GanfactoryError
from ganfactory.inverse.network import InverseGraphicsNet, NetworkConfig
from ganfactory.weights import find_model_dir, load_weights, read_model_dir, save_model_dir

__all__ = ["BUILTIN_MODELS", "DEFAULT_MODEL", "FORMAT", "FORMAT_VERSION", "load_model", "model_path", "save_model"]

FORMAT = "ganfactory.inverse"
FORMAT_VERSION = 1
BUILTIN_MODELS = {
    "cars64-3d": "The inverse-graphics network trained on 64 px cars renders with their true cameras "
                 "(BENCHMARK.md's 3-D arm 3); docs/inverse.",
}
"""Name -> description of the models in ganfactory/assets/inverse."""
DEFAULT_MODEL = "cars64-3d"


class ModelError(GanfactoryError, ValueError):
    """A model directory that cannot be read."""


def save_model(net: InverseGraphicsNet, path: str | Path, facts: dict | None = None, half: bool = False) -> Path:
    """Write ``net``'s weights and config to the directory ``path`` (weights first, config.json last)."""
    return save_model_dir(net, path, {"format": FORMAT, "format_version": FORMAT_VERSION,
                                      "network": net.config.to_json(), "facts": facts or {}}, half)


def model_path(name_or_path: str | Path) -> Path:
    """A built-in model's directory, a run directory's ``model/``, or a model directory itself."""
    return find_model_dir(name_or_path, BUILTIN_MODELS, "inverse", ModelError,
                          "a model directory, a training run or a built-in model")


def load_model(name_or_path: str | Path, device: torch.device | str = "cpu") -> tuple[InverseGraphicsNet, dict]:
    """(network in eval mode on ``device``, its config.json) from a name, a run or a model directory."""
    path = model_path(name_or_path)
    config, state = read_model_dir(path, FORMAT, FORMAT_VERSION, ModelError)
    net = InverseGraphicsNet(NetworkConfig.from_json(config["network"]))
    load_weights(net, state, path, ModelError)
    return net.to(device).eval(), config
