"""StyleGAN2 generator and discriminator, compatible with NVlabs stylegan2-ada-pytorch.

Parameter and buffer names are NVlabs' own (``mapping.fc0.weight``, ``synthesis.b8.conv0.affine.bias``,
``b32.skip.weight``...), so an NVlabs state loads with a plain ``load_state_dict`` and our own
checkpoints are readable by anyone who knows theirs. Architectures: NVlabs' three for each network,
'orig', 'skip' and 'resnet' ("skip" generator and "resnet" discriminator are the configuration of every
published StyleGAN2-ADA model; the others are ``--cfg`` variants and the paper's ablations).

Everything runs in float32. NVlabs' fp16 blocks (``num_fp16_res``) are recorded in the config for
fidelity but not used: on a CPU they are slower and differ by ~3e-3.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ganfactory.gan import ops

__all__ = [
    "ARCHITECTURES",
    "Discriminator",
    "DiscriminatorConfig",
    "Generator",
    "GeneratorConfig",
    "MappingNetwork",
    "SynthesisNetwork",
    "NOISE_MODES",
    "mix_styles",
]

NOISE_MODES = ("const", "random", "none")


# ----------------------------------------------------------------------------------------------
# Configurations


@dataclass(frozen=True)
class GeneratorConfig:
    """Every constructor argument of a StyleGAN2 generator (NVlabs names, NVlabs defaults)."""

    z_dim: int = 512
    """Input latent dimensionality."""
    w_dim: int = 512
    """Intermediate latent dimensionality."""
    img_resolution: int = 256
    """Output resolution, a power of two >= 4."""
    img_channels: int = 3
    c_dim: int = 0
    """Class-label dimensionality, 0 = unconditional."""
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    embed_features: int | None = None
    """Label embedding size (None = w_dim)."""
    layer_features: int | None = None
    """Mapping hidden size (None = w_dim)."""
    w_avg_beta: float = 0.995
    """Decay of the tracked mean of W during training."""
    channel_base: int = 32768
    """Channels at resolution r are min(channel_base // r, channel_max)."""
    channel_max: int = 512
    conv_clamp: float | None = None
    """Clamp every conv output to +-conv_clamp (NVlabs uses 256 with mixed precision)."""
    num_fp16_res: int = 0
    """Recorded from NVlabs configs; we always compute in float32."""
    use_noise: bool = True
    resample_filter: tuple[int, ...] = (1, 3, 3, 1)
    architecture: str = "skip"
    """'skip' (every block adds its ToRGB to the upsampled image), 'orig' (ToRGB at the last block only) or
    'resnet' (a 1x1 upsampling shortcut around each block's convolutions, ToRGB at the last block)."""

    def __post_init__(self) -> None:
        _check_config(self)

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(2, int(math.log2(self.img_resolution)) + 1)]

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    @property
    def num_ws(self) -> int:
        """One w per conv layer plus one for the final ToRGB: 2 * log2(res) - 2."""
        return 2 * int(math.log2(self.img_resolution)) - 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GeneratorConfig:
        return cls(**_known_fields(cls, d))


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Every constructor argument of a StyleGAN2 discriminator (NVlabs names, NVlabs defaults)."""

    img_resolution: int = 256
    img_channels: int = 3
    c_dim: int = 0
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: float | None = None
    num_fp16_res: int = 0
    """Recorded from NVlabs configs; we always compute in float32."""
    cmap_dim: int | None = None
    """Conditioning projection size (None = channels at 4x4)."""
    mbstd_group_size: int | None = 4
    mbstd_num_channels: int = 1
    mapping_layers: int = 8
    """Depth of the label-mapping network of a conditional discriminator."""
    mapping_lr_multiplier: float = 0.01
    resample_filter: tuple[int, ...] = (1, 3, 3, 1)
    architecture: str = "resnet"
    """'resnet' (a 1x1 downsampling shortcut per block), 'orig' (plain blocks) or 'skip' (every block also
    reads the downsampled image through its own FromRGB)."""

    def __post_init__(self) -> None:
        _check_config(self)

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(int(math.log2(self.img_resolution)), 2, -1)]

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DiscriminatorConfig:
        return cls(**_known_fields(cls, d))


ARCHITECTURES = ("orig", "skip", "resnet")

def _check_config(cfg) -> None:
    """Types and ranges of a config's fields: configs come from JSON files that users may edit."""
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        kinds = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,),
                 "int | None": (int, type(None)), "float | None": (int, float, type(None))}.get(str(f.type))
        if kinds is not None and (not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds)):
            raise ValueError(f"{type(cfg).__name__}.{f.name} must be {f.type}, got {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{type(cfg).__name__}.{f.name} must be finite, got {v!r}")
        limit = 1 << 24 if f.name == "channel_base" else 1 << 16
        if isinstance(v, int) and not isinstance(v, bool) and not 0 <= v <= limit:
            raise ValueError(f"{type(cfg).__name__}.{f.name} must be in [0, {limit}], got {v!r}")
    if not (isinstance(cfg.resample_filter, tuple) and cfg.resample_filter
            and all(type(t) is int and t > 0 for t in cfg.resample_filter)):
        raise ValueError(f"resample_filter must be positive integer taps, got {cfg.resample_filter!r}")
    r = cfg.img_resolution
    if r < 4 or r & (r - 1) or r > 4096:
        raise ValueError(f"img_resolution must be a power of two in [4, 4096], got {r}")
    if min(cfg.channel_base, cfg.channel_max, cfg.img_channels) < 1 or cfg.channel_base // r < 1 \
            or cfg.channel_max > 8192:
        raise ValueError("channel_base, channel_max and img_channels must be positive (channel_base >= "
                         f"img_resolution, channel_max <= 8192), got {cfg.channel_base}, {cfg.channel_max}, "
                         f"{cfg.img_channels}")
    if cfg.architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {cfg.architecture!r}")


def _known_fields(cls, d: dict) -> dict:
    if not isinstance(d, dict):
        raise ValueError(f"{cls.__name__} must be a JSON object, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}; valid: {sorted(names)}")
    d = dict(d)
    if isinstance(d.get("resample_filter"), list):
        d["resample_filter"] = tuple(d["resample_filter"])
    return d


# ----------------------------------------------------------------------------------------------
# Layers


class FullyConnectedLayer(nn.Module):
    """A dense layer with equalized learning rate: weights are stored at unit scale and multiplied
    by ``lr_multiplier / sqrt(in_features)`` at run time."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1, bias_init: float = 0):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], np.float32(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return ops.bias_act(x.matmul(w.t()), b, act=self.activation)


class Conv2dLayer(nn.Module):
    """A plain convolution with equalized learning rate, optional 2x resampling, bias, activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1,
                 resample_filter=(1, 3, 3, 1), conv_clamp: float | None = None):
        super().__init__()
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size**2)
        self.act_gain = ops.ACTIVATIONS[activation][2]
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: Tensor, gain: float = 1) -> Tensor:
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = ops.conv2d_resample(x, w.to(x.dtype), f=self.resample_filter, up=self.up, down=self.down,
                                padding=self.padding, flip_weight=(self.up == 1))
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return ops.bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=act_clamp)


class MappingNetwork(nn.Module):
    """z (and an optional class label) -> w, broadcast to ``num_ws`` layers; truncation toward w_avg."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None,
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        embed_features = 0 if c_dim == 0 else (w_dim if embed_features is None else embed_features)
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            self.add_module(f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation="lrelu",
                                                          lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: Tensor | None, c: Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, update_w_avg: bool = False) -> Tensor:
        """ws [N, num_ws, w_dim] (or w [N, w_dim] when num_ws is None).

        ``update_w_avg`` moves the tracked mean toward this batch (training only, and explicit).
        ``truncation_cutoff`` limits truncation to the first that many layers.
        """
        x = None
        if self.z_dim > 0:
            ops._check_shape(z, [None, self.z_dim], "z")
            x = ops.normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this network is class-conditional: pass c of shape [N, {self.c_dim}]")
            ops._check_shape(c, [None, self.c_dim], "c")
            y = ops.normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x = x.clone()
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally upsampling 2x), noise, bias, lrelu, clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1,
                 use_noise: bool = True, resample_filter=(1, 3, 3, 1), conv_clamp: float | None = None,
                 kernel_size: int = 3):
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = ops.ACTIVATIONS["lrelu"][2]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "const", noise: Tensor | None = None,
                fused: bool = True, gain: float = 1) -> Tensor:
        """``noise`` [N, 1, H, W], only with noise_mode 'random': these draws instead of fresh ones.
        ``gain`` scales the activation and its clamp (the resnet generator's sqrt(0.5))."""
        styles = self.affine(w)
        scaled_noise = None
        if self.use_noise and noise_mode == "random":
            if noise is None:
                noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
            scaled_noise = noise * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            scaled_noise = self.noise_const * self.noise_strength
        x = ops.modulated_conv2d(x, self.weight, styles, noise=scaled_noise, up=self.up, padding=self.padding,
                                 resample_filter=self.resample_filter, flip_weight=(self.up == 1), fused=fused)
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return ops.bias_act(x, self.bias.to(x.dtype), act="lrelu", gain=self.act_gain * gain, clamp=act_clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor, fused: bool = True) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        x = ops.modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return ops.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the generator: [const | conv0 (up 2x)], conv1, then by architecture:
    'skip' adds its torgb to the upsampled running image; 'orig' and 'resnet' have a torgb in the last
    block only, and 'resnet' adds a 1x1 upsampling shortcut of the block input, both branches scaled
    by sqrt(0.5)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 resample_filter=(1, 3, 3, 1), conv_clamp: float | None = None, use_noise: bool = True,
                 architecture: str = "skip", is_last: bool = True):
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.architecture = architecture
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        layer_kwargs = dict(w_dim=w_dim, resolution=resolution, use_noise=use_noise,
                            resample_filter=resample_filter, conv_clamp=conv_clamp)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **layer_kwargs)
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer_kwargs)
        self.has_torgb = is_last or architecture == "skip"
        if self.has_torgb:
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, up=2, resample_filter=resample_filter)
        self.conv_names = ["conv1"] if in_channels == 0 else ["conv0", "conv1"]

    @property
    def num_conv(self) -> int:
        return len(self.conv_names)

    @property
    def num_torgb(self) -> int:
        return int(self.has_torgb)

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: str,
                noise: dict[str, Tensor], fused: bool, features: dict | None, prefix: str):
        ws = ws.unbind(dim=1)
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat([ws[0].shape[0], 1, 1, 1])
        shortcut = self.skip(x, gain=np.sqrt(0.5)) if hasattr(self, "skip") else None
        for i, name in enumerate(self.conv_names):
            gain = np.sqrt(0.5) if shortcut is not None and name == "conv1" else 1
            x = getattr(self, name)(x, ws[i], noise_mode=noise_mode, noise=noise.get(f"{prefix}.{name}"),
                                    fused=fused, gain=gain)
            if features is not None:
                features[f"{prefix}.{name}"] = x
        if shortcut is not None:
            x = shortcut.add_(x)
        if img is not None:
            img = ops.upsample2d(img, self.resample_filter)
        if self.has_torgb:
            y = self.torgb(x, ws[self.num_conv], fused=fused)
            if features is not None:
                features[f"{prefix}.torgb"] = y
            img = img.add_(y) if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, C, R, R]. Block b{r} consumes num_conv + num_torgb consecutive ws
    starting where the previous block's convolutions ended (the ToRGB w is shared with the next conv)."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.w_dim = config.w_dim
        self.img_resolution = config.img_resolution
        self.block_resolutions = config.block_resolutions
        self.num_ws = config.num_ws
        for res in self.block_resolutions:
            in_channels = config.channels(res // 2) if res > 4 else 0
            block = SynthesisBlock(in_channels, config.channels(res), w_dim=config.w_dim, resolution=res,
                                   img_channels=config.img_channels, resample_filter=config.resample_filter,
                                   conv_clamp=config.conv_clamp, use_noise=config.use_noise,
                                   architecture=config.architecture, is_last=res == config.img_resolution)
            self.add_module(f"b{res}", block)

    def layer_names(self) -> list[str]:
        """Every feature tap in forward order: b{res}.conv0, b{res}.conv1, b{res}.torgb (the 'orig' and
        'resnet' generators have a torgb in the last block only)."""
        names = []
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            names += [f"b{res}.{n}" for n in block.conv_names] + [f"b{res}.torgb"] * block.num_torgb
        return names

    def noise_shapes(self) -> dict[str, tuple[int, int]]:
        """Spatial size of the noise map of every noisy layer, by feature name."""
        shapes = {}
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            for n in block.conv_names:
                if getattr(block, n).use_noise:
                    shapes[f"b{res}.{n}"] = (res, res)
        return shapes

    def sample_noise(self, n: int, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """Fresh unit-Gaussian noise maps [n, 1, H, W] for every noisy layer, from ``generator``.
        Store them beside ws to regenerate a 'random'-noise image exactly."""
        return {k: torch.randn([n, 1, h, w], generator=generator, device=device)
                for k, (h, w) in self.noise_shapes().items()}

    def forward(self, ws: Tensor, noise_mode: str = "const", noise: dict[str, Tensor] | None = None,
                return_features: bool = False, fused_modconv: bool | None = None):
        """Images [N, C, R, R] in about [-1, 1]; with ``return_features`` also an ordered dict of every
        layer's output (names from ``layer_names``).

        noise_mode: 'const' (the stored maps), 'random' (fresh draws, or ``noise`` from
        ``sample_noise`` for reproducible ones) or 'none'.
        fused_modconv: None = fused at inference (NVlabs' choice, bit-exact with their outputs), unfused
        in training mode.
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if noise is not None and noise_mode != "random":
            raise ValueError("explicit noise maps are only used with noise_mode='random'")
        ops._check_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        fused = (not self.training) if fused_modconv is None else fused_modconv
        ws = ws.to(torch.float32)
        features = OrderedDict() if return_features else None
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, block_ws, noise_mode, noise or {}, fused, features, f"b{res}")
        return (img, features) if return_features else img


class Generator(nn.Module):
    """The StyleGAN2 generator: ``mapping`` then ``synthesis`` (the Generator contract of DESIGN.md)."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.synthesis = SynthesisNetwork(config)
        self.mapping = MappingNetwork(config.z_dim, config.c_dim, config.w_dim, config.num_ws,
                                      num_layers=config.mapping_layers, embed_features=config.embed_features,
                                      layer_features=config.layer_features,
                                      lr_multiplier=config.mapping_lr_multiplier, w_avg_beta=config.w_avg_beta)

    z_dim = property(lambda self: self.config.z_dim)
    w_dim = property(lambda self: self.config.w_dim)
    c_dim = property(lambda self: self.config.c_dim)
    num_ws = property(lambda self: self.config.num_ws)
    img_resolution = property(lambda self: self.config.img_resolution)
    img_channels = property(lambda self: self.config.img_channels)

    @property
    def w_avg(self) -> Tensor:
        """[w_dim] the tracked mean of W (the truncation centre)."""
        return self.mapping.w_avg

    def forward(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, noise_mode: str = "const") -> Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)


# ----------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(nn.Module):
    """One resolution of the discriminator: [fromrgb], conv0, conv1 (down 2x). 'resnet' adds a 1x1
    downsampling shortcut, both branches scaled by sqrt(0.5); 'skip' reads the image at every block
    through its own fromrgb and passes it on downsampled; 'orig' is the plain chain."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int,
                 resample_filter=(1, 3, 3, 1), conv_clamp: float | None = None, architecture: str = "resnet"):
        super().__init__()
        self.in_channels = in_channels
        self.architecture = architecture
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2,
                                 resample_filter=resample_filter, conv_clamp=conv_clamp)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2,
                                    resample_filter=resample_filter)

    def forward(self, x: Tensor | None, img: Tensor | None) -> Tensor:
        """``img`` at this block's resolution (read by the first block, and by every 'skip' block)."""
        if self.in_channels == 0 or self.architecture == "skip":
            y = self.fromrgb(img.to(torch.float32))
            x = x + y if x is not None else y
        if self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            return y.add_(x)
        return self.conv1(self.conv0(x))


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: minibatch stddev, conv, fc, output (projected onto the label map if conditional)."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int = 4,
                 mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 conv_clamp: float | None = None, img_channels: int = 3, architecture: str = "resnet"):
        super().__init__()
        self.cmap_dim = cmap_dim
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation="lrelu")
        self.mbstd_group_size = mbstd_group_size
        self.mbstd_num_channels = mbstd_num_channels
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation="lrelu",
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: Tensor, cmap: Tensor | None, img: Tensor | None = None) -> Tensor:
        if hasattr(self, "fromrgb"):
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd_num_channels > 0:
            x = ops.minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_channels)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """The StyleGAN2 discriminator: image [N, C, R, R] (and label) -> logits [N, 1]."""

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        self.config = config
        cmap_dim = config.channels(4) if config.cmap_dim is None else config.cmap_dim
        cmap_dim = 0 if config.c_dim == 0 else cmap_dim
        for res in config.block_resolutions:
            in_channels = config.channels(res) if res < config.img_resolution else 0
            block = DiscriminatorBlock(in_channels, config.channels(res), config.channels(res // 2),
                                       img_channels=config.img_channels, resample_filter=config.resample_filter,
                                       conv_clamp=config.conv_clamp, architecture=config.architecture)
            self.add_module(f"b{res}", block)
        if config.c_dim > 0:
            self.mapping = MappingNetwork(0, config.c_dim, cmap_dim, num_ws=None, w_avg_beta=None,
                                          num_layers=config.mapping_layers,
                                          lr_multiplier=config.mapping_lr_multiplier)
        self.b4 = DiscriminatorEpilogue(config.channels(4), cmap_dim=cmap_dim,
                                        mbstd_group_size=config.mbstd_group_size,
                                        mbstd_num_channels=config.mbstd_num_channels,
                                        conv_clamp=config.conv_clamp, img_channels=config.img_channels,
                                        architecture=config.architecture)

    def block_outputs(self, img: Tensor) -> tuple[list[Tensor], Tensor | None]:
        """The output of every resolution block (the epilogue's input last), and the image downsampled
        to 4x4 for a 'skip' epilogue (None otherwise)."""
        cfg = self.config
        ops._check_shape(img, [None, cfg.img_channels, cfg.img_resolution, cfg.img_resolution], "img")
        x, out = None, []
        for res in cfg.block_resolutions:
            block = getattr(self, f"b{res}")
            x = block(x, img)
            out.append(x)
            img = ops.downsample2d(img.to(torch.float32), block.resample_filter) if cfg.architecture == "skip" \
                else None
        return out, img

    def forward(self, img: Tensor, c: Tensor | None = None) -> Tensor:
        cfg = self.config
        outputs, img = self.block_outputs(img)
        x = outputs[-1]
        cmap = None
        if cfg.c_dim > 0:
            if c is None:
                raise ValueError(f"this discriminator is class-conditional: pass c of shape [N, {cfg.c_dim}]")
            cmap = self.mapping(None, c)
        return self.b4(x, cmap, img)


def mix_styles(ws: Tensor, ws_other: Tensor, cutoff: int) -> Tensor:
    """Style mixing: layers [0, cutoff) from ``ws``, layers [cutoff, num_ws) from ``ws_other``.

    Coarse layers (small cutoff) carry pose and shape; fine layers carry colour and texture.
    """
    if ws.shape != ws_other.shape:
        raise ValueError(f"ws shapes differ: {list(ws.shape)} vs {list(ws_other.shape)}")
    if not 0 <= cutoff <= ws.shape[1]:
        raise ValueError(f"cutoff must be in [0, {ws.shape[1]}], got {cutoff}")
    return torch.cat([ws[:, :cutoff], ws_other[:, cutoff:]], dim=1)
