"""Read NVlabs network pickles (stylegan2-ada-pytorch, and the stylegan3 repository's StyleGAN2)
without running anything from the file.

NVlabs' own loader exec()s the Python source embedded in the pickle, so a crafted pickle runs
arbitrary code. Ours unpickles with an allow-list of globals: NVlabs' persistence hook is replaced
by a function that keeps the recorded class name and module state (parameters, buffers, attributes)
and never touches the source; tensors are rebuilt by torch's own weights-only loader; every other
global is refused. The architecture is then read from the attributes the modules stored about
themselves (``conv_clamp``, ``w_avg_beta``, ``bias_gain``...), which makes the two repositories'
different defaults irrelevant.
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganfactory.errors import CheckpointError
from ganfactory.gan.networks import DiscriminatorConfig, GeneratorConfig
from ganfactory.gan.ops import setup_filter

__all__ = ["NvlabsModule", "NvlabsPickle", "read_nvlabs_pickle", "generator_config", "discriminator_config"]


@dataclass
class NvlabsModule:
    """A module as NVlabs' persistence mechanism recorded it: its class name and ``__dict__``."""

    class_name: str
    state: dict

    @property
    def children(self) -> dict[str, NvlabsModule]:
        return dict(self.state.get("_modules") or {})

    def child(self, path: str) -> NvlabsModule:
        node = self
        for name in path.split("."):
            try:
                node = node.children[name]
            except KeyError:
                raise CheckpointError(f"NVlabs pickle: module {path!r} missing under {self.class_name}") from None
        return node

    def attr(self, name: str, default=None):
        return self.state.get(name, default)

    def state_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Parameters and persistent buffers of the module tree, named as torch names them."""
        out = {}
        skip = set(self.state.get("_non_persistent_buffers_set") or ())
        for group in ("_parameters", "_buffers"):
            for name, t in (self.state.get(group) or {}).items():
                if t is not None and name not in skip:
                    out[prefix + name] = torch.as_tensor(t).detach().clone()
        for name, child in self.children.items():
            if child is not None:
                out.update(child.state_dict(f"{prefix}{name}."))
        return out


@dataclass
class NvlabsPickle:
    """What a snapshot pickle holds: the networks (any may be absent) and the training set's kwargs."""

    G: NvlabsModule | None
    D: NvlabsModule | None
    G_ema: NvlabsModule | None
    training_set_kwargs: dict | None


def _persistent_obj(meta: dict) -> NvlabsModule:
    if meta.get("type") != "class":
        raise CheckpointError(f"NVlabs pickle: unsupported persistent object type {meta.get('type')!r}")
    return NvlabsModule(class_name=str(meta["class_name"]), state=dict(meta["state"]))


class _EasyDict(dict):
    """Stands in for dnnlib.util.EasyDict: a plain dict, nothing more."""


def _load_from_bytes(b: bytes):
    return torch.load(io.BytesIO(b), weights_only=True, map_location="cpu")


def _rebuild_parameter(data, requires_grad, backward_hooks, *args):
    return data


def _numpy_scalar():
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar
    return scalar


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_obj,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar(),
    ("numpy._core.multiarray", "scalar"): _numpy_scalar(),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"refusing to load: the pickle asks for {module}.{name}, which is not a tensor, a container "
                "or NVlabs' network record (it could run code)") from None

    def persistent_load(self, pid):
        raise CheckpointError("refusing to load: the pickle uses persistent ids")


def read_nvlabs_pickle(path: str | Path) -> NvlabsPickle:
    """Unpickle an NVlabs snapshot safely. Raises CheckpointError for anything outside the allow-list."""
    path = Path(path)
    with open(path, "rb") as f:
        try:
            data = _RestrictedUnpickler(f).load()
        except CheckpointError:
            raise
        except Exception as e:  # truncated or foreign files surface as many exception types
            raise CheckpointError(f"{path}: not a readable NVlabs network pickle ({type(e).__name__}: {e})") from None
    if isinstance(data, NvlabsModule):  # a pickle of a bare network
        data = {"G_ema": data}
    if not isinstance(data, dict) or not any(isinstance(data.get(k), NvlabsModule) for k in ("G", "D", "G_ema")):
        raise CheckpointError(f"{path}: a pickle, but not an NVlabs snapshot (no G, D or G_ema network)")
    nets = {k: data.get(k) if isinstance(data.get(k), NvlabsModule) else None for k in ("G", "D", "G_ema")}
    tsk = data.get("training_set_kwargs")
    return NvlabsPickle(**nets, training_set_kwargs=dict(tsk) if isinstance(tsk, dict) else None)


def _kwargs(m: NvlabsModule) -> dict:
    return dict(m.attr("_init_kwargs") or {})


def generator_config(G: NvlabsModule) -> GeneratorConfig:
    """Our GeneratorConfig for an NVlabs StyleGAN2 generator record; refuses StyleGAN3 clearly."""
    if G.class_name != "Generator":
        raise CheckpointError(f"expected an NVlabs Generator, found {G.class_name!r}")
    synthesis, mapping = G.child("synthesis"), G.child("mapping")
    if "input" in synthesis.children:  # StyleGAN3's SynthesisInput (Fourier features)
        raise CheckpointError(
            "this is a StyleGAN3 (alias-free, config T or R) generator; ganfactory supports StyleGAN2 "
            "networks only (stylegan2-ada-pytorch, or stylegan3's --cfg=stylegan2)")
    res = int(G.attr("img_resolution"))
    blocks = [synthesis.child(f"b{2 ** i}") for i in range(2, int(np.log2(res)) + 1)]
    if any(b.attr("architecture", "skip") != "skip" for b in blocks):
        raise CheckpointError(f"generator architecture {blocks[-1].attr('architecture')!r} is not supported "
                              "(only 'skip', the NVlabs default)")
    top = blocks[-1].child("conv1")
    fc0 = mapping.child("fc0")
    channels = {2 ** (i + 2): b.child("conv1").state["_parameters"]["weight"].shape[0] for i, b in enumerate(blocks)}
    channel_base, channel_max = _channel_formula(_kwargs(G), channels)
    c_dim = int(G.attr("c_dim"))
    w_dim = int(G.attr("w_dim"))
    embed = mapping.children.get("embed")
    layer_features = fc0.state["_parameters"]["weight"].shape[0] if mapping.attr("num_layers") > 1 else None
    resample = synthesis.child("b8").state["_buffers"]["resample_filter"] if res >= 8 else None
    return GeneratorConfig(
        z_dim=int(G.attr("z_dim")), w_dim=w_dim, img_resolution=res, img_channels=int(G.attr("img_channels")),
        c_dim=c_dim, mapping_layers=int(mapping.attr("num_layers")),
        mapping_lr_multiplier=float(fc0.attr("bias_gain")),
        embed_features=embed.state["_parameters"]["weight"].shape[0] if embed is not None else None,
        layer_features=layer_features if layer_features != w_dim else None,
        w_avg_beta=float(mapping.attr("w_avg_beta")),
        channel_base=channel_base, channel_max=channel_max,
        conv_clamp=top.attr("conv_clamp"), num_fp16_res=int(_synthesis_kwargs(G).get("num_fp16_res", 0)),
        use_noise=bool(top.attr("use_noise")), resample_filter=_filter_taps(resample),
    )


def discriminator_config(D: NvlabsModule) -> DiscriminatorConfig:
    """Our DiscriminatorConfig for an NVlabs StyleGAN2 discriminator record."""
    if D.class_name != "Discriminator":
        raise CheckpointError(f"expected an NVlabs Discriminator, found {D.class_name!r}")
    res = int(D.attr("img_resolution"))
    blocks = {r: D.child(f"b{r}") for r in D.attr("block_resolutions")}
    if any(b.attr("architecture") != "resnet" for b in blocks.values()):
        raise CheckpointError("discriminator architecture is not 'resnet' (the NVlabs default): not supported")
    epilogue = D.child("b4")
    channels = {r: b.child("conv0").state["_parameters"]["weight"].shape[0] for r, b in blocks.items()}
    channels[4] = epilogue.child("conv").state["_parameters"]["weight"].shape[0]
    channel_base, channel_max = _channel_formula(_kwargs(D), channels)
    mbstd = epilogue.children.get("mbstd")
    c_dim = int(D.attr("c_dim"))
    mapping = D.children.get("mapping")
    top = blocks[res]
    return DiscriminatorConfig(
        img_resolution=res, img_channels=int(D.attr("img_channels")), c_dim=c_dim,
        channel_base=channel_base, channel_max=channel_max, conv_clamp=top.child("conv0").attr("conv_clamp"),
        num_fp16_res=int(_kwargs(D).get("num_fp16_res", 0)),
        cmap_dim=int(epilogue.attr("cmap_dim")) if c_dim > 0 else None,
        mbstd_group_size=mbstd.attr("group_size") if mbstd is not None else None,
        mbstd_num_channels=int(mbstd.attr("num_channels")) if mbstd is not None else 0,
        mapping_layers=int(mapping.attr("num_layers")) if mapping is not None else 8,
        mapping_lr_multiplier=float(mapping.child("fc0").attr("bias_gain")) if mapping is not None else 0.01,
        resample_filter=_filter_taps(top.child("conv1").state["_buffers"]["resample_filter"]),
    )


def _synthesis_kwargs(G: NvlabsModule) -> dict:
    kw = _kwargs(G)
    return dict(kw.get("synthesis_kwargs") or kw)  # stylegan3's repository flattens them


def _channel_formula(kwargs: dict, channels: dict[int, int]) -> tuple[int, int]:
    """channel_base and channel_max that reproduce the stored channel counts."""
    kw = dict(kwargs.get("synthesis_kwargs") or kwargs)
    base, cmax = int(kw.get("channel_base", 32768)), int(kw.get("channel_max", 512))
    if any(min(base // r, cmax) != c for r, c in channels.items()):
        raise CheckpointError(f"channel counts {channels} do not follow min(channel_base // res, channel_max) "
                              f"with channel_base={base}, channel_max={cmax}")
    return base, cmax


def _filter_taps(f: torch.Tensor | None) -> tuple[int, ...]:
    """Recover the integer taps of a normalised separable FIR filter (only [1,3,3,1] is in use)."""
    if f is None:
        return (1, 3, 3, 1)
    row = f[0] / f[0].min()
    taps = tuple(int(round(float(v))) for v in row)
    if not torch.allclose(setup_filter(taps), f.float(), rtol=0, atol=1e-7):
        raise CheckpointError(f"unsupported resampling filter {f.tolist()}")
    return taps
