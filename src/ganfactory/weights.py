"""The one weights-only directory format of the small networks ganfactory trains and ships.

A model directory holds ``model.safetensors`` (the state dict; float16 for shipped models, read back as
float32; no pickle) and ``config.json`` (a format header, the network's config, facts), written in that order so
that a directory with a config is whole. The inverse-graphics network, its part head and the neural renderer's
mapping each name their own format and config key; finding, writing and reading the files is done here once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ganfactory.atomic import atomic_path, write_json
from ganfactory.formats import check_format_header

__all__ = ["find_model_dir", "load_weights", "read_model_dir", "save_model_dir"]


def save_model_dir(module: torch.nn.Module, path: str | Path, header: dict, half: bool = False) -> Path:
    """Write ``module``'s state dict (floating tensors as float16 when ``half``), then ``header`` as config.json."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if half else torch.float32
    tensors = {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous().cpu()
               for k, v in module.state_dict().items()}
    with atomic_path(path / "model.safetensors") as tmp:
        save_file(tensors, str(tmp))
    write_json(path / "config.json", header)
    return path


def find_model_dir(name_or_path: str | Path, builtins: Iterable[str], assets: str, error: type[Exception],
                   what: str) -> Path:
    """A built-in's directory (``ganfactory/assets/<assets>/<name>``), a training run's ``model/``, or a model
    directory itself; ``error`` naming ``what`` was expected otherwise."""
    name = str(name_or_path)
    builtins = list(builtins)
    if name in builtins:
        return Path(str(resources.files("ganfactory") / "assets" / assets / name))
    path = Path(name).expanduser()
    if (path / "model" / "config.json").is_file():
        return path / "model"
    if (path / "config.json").is_file():
        return path
    raise error(f"{name}: not {what} ({', '.join(builtins)})")


def read_model_dir(path: Path, fmt: str, version: int, error: type[Exception]) -> tuple[dict, dict]:
    """(config.json checked as format ``fmt`` <= ``version``, the state dict with floating tensors as float32);
    ``error`` with one line for a file that cannot be read."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise error(f"{path}/config.json: cannot read ({e})") from None
    if not isinstance(config, dict):
        raise error(f"{path}/config.json: not a JSON object")
    check_format_header(config, path / "config.json", fmt, version, error)
    try:
        state = load_file(str(path / "model.safetensors"))
    except (OSError, RuntimeError) as e:
        raise error(f"{path}/model.safetensors: cannot read ({e})") from None
    return config, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_weights(module: torch.nn.Module, state: dict, path: Path, error: type[Exception]) -> None:
    """``module.load_state_dict(state)``, with ``error`` in one line when the weights do not fit the config."""
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise error(f"{path}: weights do not match the config ({str(e).splitlines()[0]})") from None
