"""The inverse-graphics network: one image in, a textured mesh deformed from a sphere and a camera out.

Architecture (GANverse3D / DIB-R, sized for a CPU), for 64 px inputs:

    encoder   conv5x5/2 + BN + ReLU: 3->32->64->128->256 (64 -> 4 px), FC 4096 -> latent (256)
    shape     FC -> 642 x 3 vertex offsets (initialised to 0), FC -> per-axis scale (exp) and translation
    texture   FC -> 128 x 4 x 4, then (upsample 2x, conv3x3, BN, ReLU) x 4 -> 64 x 64 RGB UV map (sigmoid)
    camera    FC -> azimuth logits over ``azimuth_bins`` + a residual per bin, elevation, view offset t
    light     (optional) FC -> 9 SH coefficients of a grey irradiance, initialised to a uniform light

Vertices are ``centre + half_extents * scale * (sphere + offsets)``: the regularisers (Laplacian, move) see
offsets in units of the unit sphere, so the paper's weights keep their meaning for objects measured in
metres. The template's half extents and centre start at a typical car's (``NetworkConfig``).

Symmetry (cars, switchable): the object frame's left-right axis is y. Offsets are averaged with the
mirrored offsets of each vertex's mirror vertex (the icosphere is symmetric in y), and the texture with its
left-right flip (the UV map's u is the angle around z, so the mirror maps u to 1 - u: a column flip).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganfactory.inverse.camera import OrbitCamera
from ganfactory.render import Mesh, SHLights, icosphere

__all__ = ["InverseGraphicsNet", "NetworkConfig", "Prediction", "SphereTemplate", "azimuth_bin_targets"]

SH_UNIFORM = 1.0 / 0.28209479177387814
"""The band-0 SH coefficient whose irradiance is 1 everywhere (``functional.shading.sh9_basis``)."""


@dataclass(frozen=True)
class NetworkConfig:
    """The architecture and what it predicts; stored with every checkpoint."""

    image_size: int = 64
    """Input (and rendered) image side in pixels; a multiple of 16."""
    latent: int = 256
    """Width of the encoder's output code."""
    channels: tuple[int, int, int, int] = (32, 64, 128, 256)
    """Encoder conv channels (each halves the resolution)."""
    texture_size: int = 64
    """Side of the square UV texture (4 x a power of 2)."""
    sphere_level: int = 3
    """Icosphere subdivisions: 3 gives DIB-R's 642 vertices and 1280 faces."""
    symmetric: bool = True
    """Mirror-symmetric shape and texture about the object frame's y = 0 plane (cars)."""
    sh_lighting: bool = False
    """Predict a 9-coefficient SH light beside an albedo texture (else lighting is baked into the texture)."""
    half_extents: tuple[float, float, float] = (2.3, 1.0, 0.68)
    """The template ellipsoid's half extents (x forward, y left, z up); a typical car in metres."""
    centre: tuple[float, float, float] = (0.0, 0.0, 0.58)
    """The template's centre in the object frame."""
    azimuth_bins: int = 24
    """Azimuth is classified into these bins (front/back ambiguity is multimodal) plus a residual."""
    elevation_range_deg: tuple[float, float] = (-10.0, 45.0)
    """Predicted elevation lies in this range."""
    t_init: tuple[float, float, float] = (0.0, 0.0, -10.0)
    """View-space translation predicted for a zero code: set from the training data's mean camera."""
    t_scale: tuple[float, float, float] = (0.5, 0.5, 2.0)
    """Scale of the predicted deviation from ``t_init``, per axis."""
    fov_deg: float = 30.0
    """Vertical field of view of the cameras (fixed; the data's)."""

    def __post_init__(self) -> None:
        if self.image_size % 16 or self.image_size < 16:
            raise ValueError(f"image_size must be a multiple of 16, got {self.image_size}")
        k = self.texture_size // 4
        if self.texture_size < 4 or k & (k - 1):
            raise ValueError(f"texture_size must be 4 x a power of 2, got {self.texture_size}")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> NetworkConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields})


class SphereTemplate(nn.Module):
    """The unit icosphere with a UV layout (u = angle around z, v = height) and its y-mirror map."""

    def __init__(self, level: int = 3) -> None:
        super().__init__()
        verts, faces = icosphere(level, dtype=torch.float64)
        x, y, z = verts.unbind(1)
        u = torch.atan2(y, x) / (2 * math.pi) + 0.5
        v = 0.5 + torch.asin(z.clamp(-1, 1)) / math.pi
        face_u = u[faces]
        # Faces across the seam (behind the object, u near 0 and 1): lift the small u's by one turn; the
        # texture sampler wraps, so u in [0, 2) reads the right texels.
        across = (face_u.max(1).values - face_u.min(1).values) > 0.5
        face_u = torch.where(across[:, None] & (face_u < 0.5), face_u + 1.0, face_u)
        face_uvs = torch.stack([face_u, v[faces]], -1)
        mirrored = verts * verts.new_tensor([1.0, -1.0, 1.0])
        mirror = torch.cdist(mirrored, verts).argmin(1)
        if not torch.allclose(verts[mirror], mirrored, atol=1e-9):
            raise AssertionError("the icosphere is not mirror-symmetric in y")
        self.register_buffer("verts", verts.float(), persistent=False)
        self.register_buffer("faces", faces, persistent=False)
        self.register_buffer("face_uvs", face_uvs.float(), persistent=False)
        self.register_buffer("mirror", mirror, persistent=False)

    @property
    def num_verts(self) -> int:
        return self.verts.shape[0]

    def symmetrize_offsets(self, offsets: Tensor) -> Tensor:
        """[B, V, 3] offsets averaged with their mirror images (exactly symmetric in y)."""
        flip = offsets.new_tensor([1.0, -1.0, 1.0])
        return 0.5 * (offsets + offsets[:, self.mirror] * flip)


@dataclass(frozen=True)
class Prediction:
    """What the network predicts for a batch of B images."""

    offsets: Tensor
    """[B, V, 3] vertex offsets from the unit sphere, in sphere units (what the regularisers see)."""
    verts: Tensor
    """[B, V, 3] vertices in the object frame."""
    texture: Tensor
    """[B, 3, T, T] UV texture in [0, 1] (the albedo when there is a light)."""
    camera: OrbitCamera
    """The predicted camera."""
    azimuth_logits: Tensor
    """[B, azimuth_bins] (the camera head's classification of azimuth)."""
    azimuth_residual: Tensor
    """[B, azimuth_bins] offset from each bin's centre, in bins."""
    light: SHLights | None
    """The predicted SH light, or None when lighting is baked into the texture."""


def _conv_block(cin: int, cout: int, k: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


class InverseGraphicsNet(nn.Module):
    """``net(images [B, 3, H, W] in [0, 1]) -> Prediction``; ``net.mesh(prediction) -> Mesh``."""

    def __init__(self, config: NetworkConfig = NetworkConfig()) -> None:
        super().__init__()
        self.config = c = config
        self.template = SphereTemplate(c.sphere_level)
        layers, cin = [], 3
        for ch in c.channels:
            layers.append(_conv_block(cin, ch, 5, 2))
            cin = ch
        self.encoder = nn.Sequential(*layers)
        cells = (c.image_size // 2 ** len(c.channels)) ** 2
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(cin * cells, c.latent), nn.ReLU(True))

        V = self.template.num_verts
        self.offsets = nn.Linear(c.latent, V * 3)
        self.scale = nn.Linear(c.latent, 3)
        self.shift = nn.Linear(c.latent, 3)
        for head in (self.offsets, self.scale, self.shift):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        with torch.no_grad():
            self.offsets.weight.normal_(0.0, 1e-4)

        self.texture_fc = nn.Linear(c.latent, 128 * 16)
        ups, ch = [], 128
        for _ in range(int(math.log2(c.texture_size // 4))):
            ups += [nn.Upsample(scale_factor=2, mode="nearest"), _conv_block(ch, max(ch // 2, 16), 3, 1)]
            ch = max(ch // 2, 16)
        self.texture_up = nn.Sequential(*ups, nn.Conv2d(ch, 3, 3, 1, 1))

        self.camera = nn.Linear(c.latent, 2 * c.azimuth_bins + 1 + 3)
        nn.init.zeros_(self.camera.bias)
        self.light = nn.Linear(c.latent, 9) if c.sh_lighting else None
        if self.light is not None:
            nn.init.zeros_(self.light.weight)
            nn.init.zeros_(self.light.bias)

        self.register_buffer("half_extents", torch.tensor(c.half_extents), persistent=False)
        self.register_buffer("centre", torch.tensor(c.centre), persistent=False)
        self.register_buffer("t_init", torch.tensor(c.t_init), persistent=False)
        self.register_buffer("t_scale", torch.tensor(c.t_scale), persistent=False)

    def encode(self, images: Tensor) -> Tensor:
        """[B, 3, H, W] in [0, 1] -> [B, latent]."""
        size = self.config.image_size
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != (size, size):
            raise ValueError(f"images must be [B, 3, {size}, {size}], got {tuple(images.shape)}")
        return self.fc(self.encoder(images * 2 - 1))

    def forward(self, images: Tensor) -> Prediction:
        c = self.config
        code = self.encode(images)
        B = code.shape[0]
        offsets = self.offsets(code).view(B, -1, 3)
        if c.symmetric:
            offsets = self.template.symmetrize_offsets(offsets)
        scale = torch.exp(self.scale(code)) * self.half_extents
        shift = self.shift(code) * self.half_extents
        if c.symmetric:
            shift = shift * shift.new_tensor([1.0, 0.0, 1.0])
        verts = self.centre + shift[:, None] + scale[:, None] * (self.template.verts + offsets)

        texture = torch.sigmoid(self.texture_up(self.texture_fc(code).view(B, 128, 4, 4)))
        if c.symmetric:
            texture = 0.5 * (texture + texture.flip(-1))

        cam = self.camera(code)
        K = c.azimuth_bins
        logits, residual = cam[:, :K], cam[:, K:2 * K]
        best = logits.argmax(1)
        bin_width = 2 * math.pi / K
        azimuth = (best.to(code.dtype) + residual.gather(1, best[:, None])[:, 0]) * bin_width
        lo, hi = (math.radians(a) for a in c.elevation_range_deg)
        elevation = lo + (hi - lo) * torch.sigmoid(cam[:, 2 * K])
        t = self.t_init + self.t_scale * cam[:, 2 * K + 1:]
        camera = OrbitCamera(azimuth, elevation, t, math.radians(c.fov_deg))

        light = None
        if self.light is not None:
            coeffs = self.light(code) + code.new_tensor([SH_UNIFORM] + [0.0] * 8)
            light = SHLights(coeffs)
        return Prediction(offsets=offsets, verts=verts, texture=texture, camera=camera, azimuth_logits=logits,
                          azimuth_residual=residual, light=light)

    def mesh(self, prediction: Prediction) -> Mesh:
        """The predicted textured mesh (one texture per sample)."""
        t = self.template
        return Mesh(verts=prediction.verts, faces=t.faces, face_uvs=t.face_uvs, textures=(prediction.texture,),
                    face_texture=torch.zeros(t.faces.shape[0], dtype=torch.long, device=t.faces.device))

    @property
    def faces(self) -> Tensor:
        return self.template.faces


def azimuth_bin_targets(azimuth: Tensor, bins: int) -> tuple[Tensor, Tensor]:
    """Azimuth [B] radians -> (bin index [B] long, residual [B] in bins from that bin's start, in [0, 1))."""
    position = torch.remainder(azimuth, 2 * math.pi) / (2 * math.pi / bins)
    index = position.floor().long().clamp(0, bins - 1)
    return index, position - index.to(position.dtype)

