"""The controllable neural renderer: an image (or a seed) in, the same car from any camera, with its shape,
paint or background taken from another car, drawn by the GAN.

    nr = load_neural_renderer("cars64")
    codes, images = nr.codes_from_seeds([1, 2])              # or nr.codes_from_images(photos in [-1, 1])
    turned = nr.render(codes.with_camera(azimuth_deg=90))    # [B, 3, 64, 64] in [-1, 1]
    swapped = nr.render(codes.index([0]).replace(texture=codes.texture[1:2]))
    mesh = nr.render_mesh(codes)                             # the DIB-R render of the predicted meshes

Pipeline: the frozen inverse network reads the codes (``ganfactory.neural.codes``), the mapping network turns them
into ws, the frozen generator draws (noise mode 'const': the image is a function of the codes alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ganfactory.gan.latent import seeds_to_z
from ganfactory.inverse.camera import OrbitCamera
from ganfactory.inverse.network import InverseGraphicsNet
from ganfactory.neural.codes import PropertyCodes, extract_codes
from ganfactory.neural.mapping import NeuralMapping
from ganfactory.render import Mesh, RasterSettings, Renderer

__all__ = ["NeuralRenderer", "load_neural_renderer"]


@dataclass
class NeuralRenderer:
    """A generator, the inverse network its codes come from, and the mapping between them (all frozen)."""

    G: torch.nn.Module
    net: InverseGraphicsNet
    mapping: NeuralMapping
    truncation_psi: float = 0.7
    """Truncation of the samples drawn for seeds (the mapping was trained on samples at this psi)."""
    batch_size: int = 16

    @property
    def device(self) -> torch.device:
        return self.G.w_avg.device

    @torch.no_grad()
    def sample(self, seeds: list[int]) -> Tensor:
        """The generator's own images of ``seeds`` [N, 3, H, W] in [-1, 1] (NVlabs' seed rule, const noise)."""
        ws = self.G.mapping(seeds_to_z(seeds, self.G.z_dim).to(self.device), None,
                            truncation_psi=self.truncation_psi)
        return torch.cat([self.G.synthesis(ws[i:i + self.batch_size], noise_mode="const")
                          for i in range(0, len(ws), self.batch_size)])

    def codes_from_images(self, images: Tensor) -> PropertyCodes:
        """The codes the inverse network reads from ``images`` [N, 3, H, W] in [-1, 1]."""
        c = self.mapping.config
        images = images.to(self.device)
        return PropertyCodes.cat([extract_codes(self.net, images[i:i + self.batch_size], c.texture_size,
                                                c.background_grid) for i in range(0, len(images), self.batch_size)])

    def codes_from_seeds(self, seeds: list[int]) -> tuple[PropertyCodes, Tensor]:
        """(codes, the generator's images) of ``seeds``: a seed is an image the GAN drew, read like a photo."""
        images = self.sample(seeds)
        return self.codes_from_images(images), images

    @torch.no_grad()
    def ws(self, codes: PropertyCodes) -> Tensor:
        return self.mapping(codes.to(self.device)).ws

    @torch.no_grad()
    def render(self, codes: PropertyCodes) -> Tensor:
        """The GAN's images of ``codes`` [N, 3, H, W] in [-1, 1]."""
        codes = codes.to(self.device)
        return torch.cat([self.G.synthesis(self.mapping(codes.index(slice(i, i + self.batch_size))).ws,
                                           noise_mode="const") for i in range(0, len(codes), self.batch_size)])

    @torch.no_grad()
    def render_mesh(self, codes: PropertyCodes, background: float = 1.0) -> Tensor:
        """DIB-R renders [N, 3, H, W] in [-1, 1] of the meshes the codes hold (shape, texture) from their camera.

        The mesh is the inverse network's own template deformed to the shape code; the texture is the pooled code
        upsampled (what the mapping sees, so blurrier than the inverse network's 64 px texture)."""
        codes = codes.to(self.device)
        c = self.net.config
        verts = codes.shape * codes.shape.new_tensor(c.half_extents) + codes.shape.new_tensor(c.centre)
        texture = torch.nn.functional.interpolate(codes.texture, size=c.texture_size, mode="bilinear",
                                                  align_corners=False)
        t = self.net.template
        mesh = Mesh(verts=verts, faces=t.faces, face_uvs=t.face_uvs, textures=(texture,),
                    face_texture=torch.zeros(t.faces.shape[0], dtype=torch.long, device=verts.device))
        size = c.image_size
        camera = OrbitCamera(codes.azimuth, codes.elevation, codes.t, torch.pi * c.fov_deg / 180).to_camera((size,) * 2)
        out = Renderer(RasterSettings((size, size), supersample=2))(mesh, camera,
                                                                     background=torch.full((3,), background))
        return out.image.clamp(0, 1) * 2 - 1


def load_neural_renderer(name_or_path: str = "cars64", device: torch.device | str = "cpu",
                         generator: str | None = None, inverse_model: str | None = None) -> NeuralRenderer:
    """A built-in mapping's (or a trained run's) neural renderer with the generator and inverse network it was
    trained with (``generator`` / ``inverse_model`` override them, for tests and experiments)."""
    from ganfactory.gan import load_generator
    from ganfactory.inverse.model import load_model
    from ganfactory.neural.model import load_mapping

    mapping, config = load_mapping(name_or_path, device)
    G = load_generator(generator or config["generator"], device=device).eval()
    net, _ = load_model(inverse_model or config["inverse_model"], device)
    for p in [*G.parameters(), *net.parameters()]:
        p.requires_grad_(False)
    psi = float(config.get("facts", {}).get("truncation_psi", 0.7))
    return NeuralRenderer(G, net, mapping, psi)
