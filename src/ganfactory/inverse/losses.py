"""GANverse3D's training objective, term by term, with the paper's weights as the defaults.

    20 colour (L1 inside the target mask) + 0.5 perceptual (from iteration 3,000) + 3 IoU (soft silhouette)
    + 5 Laplacian + 5 flatten + 2.5 move (+ the camera head's supervision by the data's camera)

The renderer's small pure functions (``ganfactory.render.losses``) compute the image and mesh terms; this
module weighs them. The perceptual term needs no download: it compares features of the GAN's own
discriminator (its first blocks), which saw the same kind of images during GAN training. "move" keeps the
deformation small and even: the mean squared offset from the sphere, in sphere units (the template's scale
and translation are free).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as nnf
from torch import Tensor, nn

from ganfactory.inverse.network import Prediction, azimuth_bin_targets
from ganfactory.render import flatten_loss, masked_l1, silhouette_iou_loss, uniform_laplacian_loss

__all__ = ["DiscriminatorFeatures", "LossWeights", "camera_loss", "mesh_terms", "move_loss", "perceptual_loss",
           "reconstruction_terms", "weighted_total"]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the terms (GANverse3D's defaults, ../shared/notes/ganverse3d.md)."""

    color: float = 20.0
    perceptual: float = 0.5
    perceptual_start: int = 3000
    """The perceptual term is added from this iteration on (the paper: after 3k iterations)."""
    iou: float = 3.0
    laplacian: float = 5.0
    flatten: float = 5.0
    move: float = 2.5
    camera: float = 1.0
    """Supervision of the camera head by the data's camera (the paper renders with the annotated camera and
    predicts none at test time; we need one at test time)."""


def move_loss(offsets: Tensor) -> Tensor:
    """Mean squared vertex offset from the template (sphere units)."""
    return (offsets ** 2).sum(-1).mean()


def camera_loss(prediction: Prediction, azimuth: Tensor, elevation: Tensor, t: Tensor, t_scale: Tensor) -> Tensor:
    """Cross-entropy on the azimuth bin + L1 on that bin's residual, elevation (radians) and t / t_scale."""
    bins = prediction.azimuth_logits.shape[1]
    index, residual = azimuth_bin_targets(azimuth, bins)
    ce = nnf.cross_entropy(prediction.azimuth_logits, index)
    res = (prediction.azimuth_residual.gather(1, index[:, None])[:, 0] - residual).abs().mean()
    el = (prediction.camera.elevation - elevation).abs().mean()
    tt = ((prediction.camera.t - t) / t_scale).abs().mean()
    return ce + res + el + tt


class DiscriminatorFeatures(nn.Module):
    """Frozen features of a StyleGAN2 discriminator's first ``blocks`` blocks: images in [0, 1] -> a list."""

    def __init__(self, discriminator: nn.Module, blocks: int = 2) -> None:
        super().__init__()
        res = discriminator.config.block_resolutions
        self.names = [f"b{r}" for r in res[:blocks]]
        self.blocks = nn.ModuleList(getattr(discriminator, n) for n in self.names)
        self.resolution = discriminator.config.img_resolution
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> DiscriminatorFeatures:  # always frozen, always eval
        return super().train(False)

    def forward(self, images: Tensor) -> list[Tensor]:
        x, img = None, images * 2 - 1
        if img.shape[-1] != self.resolution:
            img = nnf.interpolate(img, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False)
        feats = []
        for block in self.blocks:
            x = block(x, img)
            feats.append(x)
        return feats


def perceptual_loss(features: DiscriminatorFeatures, image: Tensor, target: Tensor) -> Tensor:
    """Mean L1 between channel-normalised features of ``image`` and ``target`` ([B, 3, H, W] in [0, 1])."""
    total = image.new_zeros(())
    for a, b in zip(features(image), features(target), strict=True):
        total = total + (nnf.normalize(a, dim=1) - nnf.normalize(b, dim=1)).abs().mean()
    return total


def reconstruction_terms(rendered: Tensor, soft_mask: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """The image terms of one rendered view: colour L1 inside the target mask and the silhouette IoU loss."""
    return {"color": masked_l1(rendered, target, mask), "iou": silhouette_iou_loss(soft_mask, mask)}


def mesh_terms(prediction: Prediction, faces: Tensor, face_pairs: Tensor) -> dict[str, Tensor]:
    """The shape regularisers: Laplacian and move on the offsets, flatten on the vertices (scale-free)."""
    return {"laplacian": uniform_laplacian_loss(prediction.offsets, faces),
            "flatten": flatten_loss(prediction.verts, face_pairs, faces),
            "move": move_loss(prediction.offsets)}


def weighted_total(terms: dict[str, Tensor], weights: LossWeights) -> Tensor:
    return sum(getattr(weights, name) * value for name, value in terms.items())

