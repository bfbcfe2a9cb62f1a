"""The weights-only model format of the inverse-graphics network, and the built-in models shipped with it.

A model is a directory with ``config.json`` (format header, the ``NetworkConfig``, training facts) and
``model.safetensors`` (the state dict; float16 for shipped models, read back as float32). No pickle.
Built-in models live in ``ganfactory/assets/inverse/<name>/`` and load by name.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ganfactory.atomic import atomic_path, write_json
from ganfactory.errors import GanfactoryError
from ganfactory.formats import check_format_header
from ganfactory.inverse.network import InverseGraphicsNet, NetworkConfig

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
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if half else torch.float32
    tensors = {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous().cpu()
               for k, v in net.state_dict().items()}
    with atomic_path(path / "model.safetensors") as tmp:
        save_file(tensors, str(tmp))
    write_json(path / "config.json", {"format": FORMAT, "format_version": FORMAT_VERSION,
                                      "network": net.config.to_json(), "facts": facts or {}})
    return path


def model_path(name_or_path: str | Path) -> Path:
    """A built-in model's directory, a run directory's ``model/``, or a model directory itself."""
    name = str(name_or_path)
    if name in BUILTIN_MODELS:
        return Path(str(resources.files("ganfactory") / "assets" / "inverse" / name))
    path = Path(name).expanduser()
    if (path / "model" / "config.json").is_file():
        return path / "model"
    if (path / "config.json").is_file():
        return path
    raise ModelError(f"{name}: not a model directory, a training run or a built-in model "
                     f"({', '.join(BUILTIN_MODELS)})")


def load_model(name_or_path: str | Path, device: torch.device | str = "cpu") -> tuple[InverseGraphicsNet, dict]:
    """(network in eval mode on ``device``, its config.json) from a name, a run or a model directory."""
    path = model_path(name_or_path)
    import json

    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"{path}/config.json: cannot read ({e})") from None
    check_format_header(config, path / "config.json", FORMAT, FORMAT_VERSION, ModelError)
    net = InverseGraphicsNet(NetworkConfig.from_json(config["network"]))
    try:
        state = load_file(str(path / "model.safetensors"))
    except (OSError, RuntimeError) as e:
        raise ModelError(f"{path}/model.safetensors: cannot read ({e})") from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise ModelError(f"{path}: weights do not match the config ({str(e).splitlines()[0]})") from None
    return net.to(device).eval(), config
