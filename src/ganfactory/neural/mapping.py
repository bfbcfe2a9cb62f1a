"""StyleGAN-R's mapping network: (camera, shape, texture, background) -> the generator's ws.

Architecture (GANverse3D's design, sized for a CPU; ``MappingConfig`` holds every number)::

    camera      (sin az, cos az, sin el, cos el) -> MLP 4-256-256 -> ws of the view layers [0, view_layers),
                as an offset from the generator's w_avg
    shape       [V, 3] vertices -> MLP 3V-256-code           \\
    texture     [3, 16, 16] -> conv 32, 64 (stride 2) -> code  } each code -> per-dimension softmax weights over
    background  [3, 8, 8]  -> conv 32 (stride 2) -> code      /  K learned basis ws -> a candidate for the content
                                                                 layers [view_layers, num_ws)
    blend       per dimension of the content layers a learned softmax over the three properties mixes their
                candidates: each dimension is meant to be owned by one property (the entropy term of training)

Why convex combinations: every output dimension is a convex combination of basis ws, which start as ws the
generator's own mapping drew, so the output stays inside the box those samples span instead of wandering off the
generator's manifold (where StyleGAN draws garbage). The per-dimension weights are factorised (a code gives a
``rank x K`` matrix; a learned ``D x rank`` matrix and a ``D x K`` bias turn it into ``D x K`` logits) so the network
stays small (about a million parameters) while every dimension still has its own softmax.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganfactory.neural.codes import PROPERTIES, PropertyCodes, camera_features

__all__ = ["MappingConfig", "MappingOutput", "NeuralMapping", "entropy"]


@dataclass(frozen=True)
class MappingConfig:
    """The mapping network's shape; stored with every model."""

    num_ws: int = 10
    """The generator's number of style layers."""
    w_dim: int = 128
    """The generator's w width."""
    view_layers: int = 3
    """Layers [0, view_layers) carry the camera (docs/multiview measured 3 for cars64)."""
    verts: int = 642
    """Vertices of the inverse network's template (the shape code is [verts, 3])."""
    texture_size: int = 16
    """Side of the pooled UV texture code."""
    background_grid: int = 8
    """Side of the background colour grid code."""
    bases: int = 32
    """K: learned basis ws the content layers blend (initialised from the generator's samples)."""
    rank: int = 16
    """Rank of the factorised per-dimension blend logits."""
    hidden: int = 256
    """Width of the hidden layers."""
    code: int = 128
    """Width of each property's code."""

    def __post_init__(self) -> None:
        if not 0 < self.view_layers < self.num_ws:
            raise ValueError(f"view_layers must be in [1, {self.num_ws}), got {self.view_layers}")

    @property
    def content_dims(self) -> int:
        return (self.num_ws - self.view_layers) * self.w_dim

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> MappingConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class MappingOutput:
    ws: Tensor
    """[B, num_ws, w_dim] for ``G.synthesis``."""
    basis_weights: dict[str, Tensor]
    """Per property [B, D, K] softmax weights over the basis ws (D = content dims)."""
    blend: Tensor
    """[D, 3] softmax weights of the properties per content dimension (order of ``PROPERTIES``)."""


def entropy(weights: Tensor, dim: int = -1) -> Tensor:
    """Mean entropy (nats) of probability vectors along ``dim``."""
    return -(weights * weights.clamp(min=1e-12).log()).sum(dim).mean()


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers)


class NeuralMapping(nn.Module):
    """``mapping(codes: PropertyCodes) -> MappingOutput``. Build with ``bases`` [K, num_ws - view_layers, w_dim]
    (ws sampled from the generator) and the generator's ``w_avg`` [w_dim]; both are stored with the weights."""

    def __init__(self, config: MappingConfig = MappingConfig(), bases: Tensor | None = None,
                 w_avg: Tensor | None = None) -> None:
        super().__init__()
        self.config = c = config
        content = c.num_ws - c.view_layers
        D, K = c.content_dims, c.bases
        self.bases = nn.Parameter(torch.zeros(K, content, c.w_dim) if bases is None else bases.clone().float())
        if tuple(self.bases.shape) != (K, content, c.w_dim):
            raise ValueError(f"bases must be [{K}, {content}, {c.w_dim}], got {tuple(self.bases.shape)}")
        self.register_buffer("w_avg", torch.zeros(c.w_dim) if w_avg is None else w_avg.clone().float())

        self.view = nn.Sequential(_mlp([4, c.hidden, c.hidden]), nn.Linear(c.hidden, c.view_layers * c.w_dim))
        nn.init.zeros_(self.view[-1].bias)
        with torch.no_grad():
            self.view[-1].weight.mul_(0.1)
        t, g = c.texture_size, c.background_grid
        self.encoders = nn.ModuleDict({
            "shape": nn.Sequential(nn.Flatten(), _mlp([c.verts * 3, c.hidden, c.code])),
            "texture": nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(32, 64, 3, 2, 1),
                                     nn.LeakyReLU(0.2), nn.Flatten(), _mlp([64 * (t // 4) ** 2, c.code])),
            "background": nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(),
                                        _mlp([32 * (g // 2) ** 2, c.code])),
        })
        self.heads = nn.ModuleDict({p: nn.Linear(c.code, c.rank * K) for p in PROPERTIES})
        self.dim_factors = nn.ParameterDict({p: nn.Parameter(torch.randn(D, c.rank) / c.rank ** 0.5)
                                             for p in PROPERTIES})
        self.dim_bias = nn.ParameterDict({p: nn.Parameter(torch.zeros(D, K)) for p in PROPERTIES})
        self.blend_logits = nn.Parameter(torch.zeros(D, len(PROPERTIES)))

    def inputs(self, codes: PropertyCodes) -> dict[str, Tensor]:
        """What each branch reads, in the shapes it checks."""
        c = self.config
        tex, bg = codes.texture, codes.background
        if codes.shape.shape[1:] != (c.verts, 3):
            raise ValueError(f"shape code must be [B, {c.verts}, 3], got {tuple(codes.shape.shape)}")
        t, g = c.texture_size, c.background_grid
        if tex.shape[1:] != (3, t, t) or bg.shape[1:] != (3, g, g):
            raise ValueError(f"texture must be [B, 3, {c.texture_size}, {c.texture_size}] and background "
                             f"[B, 3, {c.background_grid}, {c.background_grid}]")
        return {"shape": codes.shape, "texture": tex * 2 - 1, "background": bg}

    def forward(self, codes: PropertyCodes) -> MappingOutput:
        c = self.config
        B = len(codes)
        view = self.view(camera_features(codes.azimuth, codes.elevation)).view(B, c.view_layers, c.w_dim)
        view = view + self.w_avg
        flat_bases = self.bases.flatten(1).t()                      # [D, K]
        candidates, weights = [], {}
        for p, x in self.inputs(codes).items():
            h = self.heads[p](self.encoders[p](x)).view(B, c.rank, c.bases)
            logits = torch.einsum("dr,brk->bdk", self.dim_factors[p], h) + self.dim_bias[p]
            w = F.softmax(logits, -1)
            weights[p] = w
            candidates.append((w * flat_bases).sum(-1))             # [B, D]
        blend = F.softmax(self.blend_logits, -1)                    # [D, 3]
        content = (torch.stack(candidates, -1) * blend).sum(-1)
        ws = torch.cat([view, content.view(B, c.num_ws - c.view_layers, c.w_dim)], 1)
        return MappingOutput(ws=ws, basis_weights=weights, blend=blend)
