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
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganfactory.errors import CheckpointError
from ganfactory.gan.networks import ARCHITECTURES, DiscriminatorConfig, GeneratorConfig
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
    """A tensor storage, stored by torch as a nested legacy ``torch.save`` blob; read weights-only."""
    if not isinstance(b, bytes | bytearray):
        raise CheckpointError(f"refusing to load: tensor storage given as {type(b).__name__}, not bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's note on an unusual pickle protocol
            return torch.load(io.BytesIO(b), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:  # torch's message is six lines and suggests weights_only=False
        asked = re.search(r"GLOBAL (\S+)", str(e))
        what = f"asks for {asked.group(1)}" if asked else "holds something other than tensor data"
        raise CheckpointError(f"refusing to load: a tensor's storage bytes hide a pickle that {what} "
                              "(it could run code)") from None


def _rebuild_parameter(data, requires_grad, backward_hooks, *args):
    return data


def _numpy_scalar():
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar
    return scalar


# Plain data that pickle protocols 2-5 and numpy write through globals. Each entry below is a function
# that checks its arguments and returns data (a set, bytes, a numeric array or dtype), never a class or
# another callable, so a pickle cannot use it to reach code: the test of the allow-list tries.

_PLAIN_KINDS = frozenset("biufc")
"""numpy dtype kinds kept: bool, signed and unsigned integers, floats, complex (no objects, no records)."""


def _plain_dtype(obj, align=False, copy=False):
    """numpy.dtype for numeric types only: an object or record dtype could carry arbitrary objects."""
    if not isinstance(obj, str) or not isinstance(align, bool) or not isinstance(copy, bool):
        raise CheckpointError(f"refusing to load: numpy.dtype({obj!r}) is not a plain numeric type")
    try:
        dtype = np.dtype(obj)
    except TypeError:
        raise CheckpointError(f"refusing to load: numpy.dtype({obj!r}) is not a numpy type") from None
    if dtype.kind not in _PLAIN_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise CheckpointError(f"refusing to load: numpy.dtype({obj!r}) is not a plain numeric type")
    return np.dtype(obj, align, copy)  # a fresh dtype: BUILD then sets its byte order


def _plain_scalar(dtype, data):
    """A numpy scalar of a plain numeric dtype from its raw bytes."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in _PLAIN_KINDS or not isinstance(data, bytes):
        raise CheckpointError("refusing to load: a numpy scalar that is not a plain number")
    return _numpy_scalar()(dtype, data)


class _NdarrayMarker:
    """What ``numpy.ndarray`` unpickles to: a marker that ``_reconstruct`` accepts, not the class (which
    a pickle could call)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<numpy.ndarray marker>"


_NDARRAY = _NdarrayMarker()


class _PlainArray(np.ndarray):
    """An empty array waiting for pickle's BUILD; its ``__setstate__`` accepts numeric data only."""

    def __setstate__(self, state):
        if (not isinstance(state, tuple) or len(state) != 5 or not isinstance(state[2], np.dtype)
                or state[2].kind not in _PLAIN_KINDS or state[2].fields is not None
                or not isinstance(state[4], bytes | bytearray)):
            raise CheckpointError("refusing to load: a numpy array that does not hold plain numeric data")
        super().__setstate__(state)


def _ndarray_reconstruct(subtype, shape, typecode):
    """numpy's ``_reconstruct(ndarray, (0,), b'b')``, the first half of a pickled array (protocols 2-4)."""
    if subtype is not _NDARRAY or shape != (0,) or typecode != b"b":
        raise CheckpointError("refusing to load: numpy _reconstruct of something other than a plain array")
    return np.ndarray.__new__(_PlainArray, (0,), np.int8)


def _ndarray_frombuffer(buf, dtype, shape, order):
    """numpy's ``_frombuffer``, how protocol 5 stores a contiguous array."""
    if (not isinstance(buf, bytes | bytearray | pickle.PickleBuffer) or not isinstance(dtype, np.dtype)
            or dtype.kind not in _PLAIN_KINDS or dtype.fields is not None or not isinstance(shape, tuple)
            or not all(type(n) is int and n >= 0 for n in shape) or order not in ("C", "F")):
        raise CheckpointError("refusing to load: numpy _frombuffer of something other than a plain array")
    return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape, order=order).copy(order="K")


def _plain_set(items=()):
    """``builtins.set`` as protocols 2 and 3 write it: ``set([items])``."""
    if not isinstance(items, list | tuple):
        raise CheckpointError(f"refusing to load: set() of a {type(items).__name__}")
    return set(items)


def _latin1_bytes(text, encoding="latin1", errors="strict"):
    """``_codecs.encode(str, 'latin1')``: how protocol 2 writes bytes. No other codec is reachable."""
    if type(text) is not str or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise CheckpointError(f"refusing to load: codecs.encode with {encoding!r} (only protocol 2's latin1 bytes)")
    return text.encode("latin1")


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_obj,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("numpy", "dtype"): _plain_dtype,
    ("numpy.core.multiarray", "scalar"): _plain_scalar,
    ("numpy._core.multiarray", "scalar"): _plain_scalar,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy.core.multiarray", "_reconstruct"): _ndarray_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _ndarray_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _ndarray_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _ndarray_frombuffer,
    ("builtins", "set"): _plain_set,
    ("__builtin__", "set"): _plain_set,
    ("_codecs", "encode"): _latin1_bytes,
    ("codecs", "encode"): _latin1_bytes,
}
"""(module, name) -> what a pickle gets for that global. Everything else is refused."""


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
    architecture = _architecture(blocks, "generator")
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
        use_noise=bool(top.attr("use_noise")), resample_filter=_filter_taps(resample), architecture=architecture,
    )


def discriminator_config(D: NvlabsModule) -> DiscriminatorConfig:
    """Our DiscriminatorConfig for an NVlabs StyleGAN2 discriminator record."""
    if D.class_name != "Discriminator":
        raise CheckpointError(f"expected an NVlabs Discriminator, found {D.class_name!r}")
    res = int(D.attr("img_resolution"))
    blocks = {r: D.child(f"b{r}") for r in D.attr("block_resolutions")}
    epilogue = D.child("b4")
    architecture = _architecture([*blocks.values(), epilogue], "discriminator")
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
        architecture=architecture,
    )


def _architecture(blocks: list[NvlabsModule], network: str) -> str:
    """The one architecture ('orig', 'skip' or 'resnet') every block of a network records."""
    found = {b.attr("architecture") for b in blocks}
    if len(found) != 1 or not found <= set(ARCHITECTURES):
        raise CheckpointError(f"{network} architecture {sorted(map(str, found))} is not supported "
                              f"(one of {', '.join(ARCHITECTURES)})")
    return found.pop()


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
