"""Sample quality without downloads: KID on the features of a fixed, randomly initialised ResNet-18.

Why this metric:
- No ImageNet Inception weights can be downloaded here, so the feature network must need none. A
  convolutional network with fixed random weights is a fixed bank of nonlinear multi-scale filters;
  the per-channel mean and standard deviation of its activations at four depths summarise colour,
  texture, edges and layout. The network is built from a seed, so every run, machine and checkpoint is
  measured with the same features.
- KID (Binkowski et al. 2018: the squared MMD with the kernel k(x, y) = (x.y / d + 1)^3) is unbiased,
  so a few thousand samples give a usable estimate. FID is biased at small n and the bias depends on n;
  on a CPU, thousands of samples per snapshot is what we can afford.
- It runs at the training resolution (64 px for the cars; smaller images are upsampled to 64 px).

Numbers from this feature network are comparable with each other, not with published FID/KID values.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ganfactory.gan.networks import Generator
from ganfactory.gan.sampling import seeds_to_z

__all__ = ["FeatureNet", "compute_kid", "generated_features", "kid"]

FEATURE_SEED = 20211231
"""The seed that defines the feature network. Changing it changes every KID value."""


class FeatureNet(torch.nn.Module):
    """ResNet-18 with seeded random weights; features = per-channel mean and std of its four stages."""

    def __init__(self, seed: int = FEATURE_SEED):
        import torchvision  # here, not at the top: importing torchvision costs the whole CLI seconds

        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = torchvision.models.resnet18(weights=None)
        self.stem = torch.nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.stages = torch.nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        self.eval().requires_grad_(False)

    @property
    def dim(self) -> int:
        return 2 * (64 + 128 + 256 + 512)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """images [N, 3, H, W] in [-1, 1] -> features [N, 1920] (float64 for the kernel sums)."""
        x = images.float()
        if x.shape[-1] < 64:  # below 64 px the last stages would shrink to one pixel
            x = torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats += [x.mean(dim=[2, 3]), x.std(dim=[2, 3], correction=0)]
        return torch.cat(feats, dim=1).double()

    def features(self, images: Tensor, batch: int = 256) -> Tensor:
        """Features of many images (uint8 [N, 3, H, W] or float in [-1, 1]), in batches."""
        out = []
        for i in range(0, len(images), batch):
            x = images[i:i + batch]
            if x.dtype == torch.uint8:
                x = x.float() / 127.5 - 1
            out.append(self(x))
        return torch.cat(out)


def kid(features_a: Tensor, features_b: Tensor, num_subsets: int = 100, max_subset_size: int = 1000,
        seed: int = 0) -> float:
    """Unbiased squared MMD with the cubic polynomial kernel, averaged over random subsets (x 1e3 is
    the usual reporting scale). Near 0 for the same distribution; can be slightly negative."""
    a, b = features_a.double(), features_b.double()
    d = a.shape[1]
    m = min(len(a), len(b), max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 samples on each side")
    rng = np.random.RandomState(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = a[torch.from_numpy(rng.choice(len(a), m, replace=False))]
        y = b[torch.from_numpy(rng.choice(len(b), m, replace=False))]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        within = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        total += float(within - 2 * kxy.mean())
    return total / num_subsets


@torch.no_grad()
def generated_features(G: Generator, net: FeatureNet, num: int, batch: int = 64, seed_offset: int = 10**6,
                       device: torch.device | str = "cpu") -> Tensor:
    """Features of ``num`` samples of G (seeds seed_offset..., psi 1, const noise)."""
    out = []
    for start in range(0, num, batch):
        seeds = list(range(seed_offset + start, seed_offset + min(start + batch, num)))
        img = G.synthesis(G.mapping(seeds_to_z(seeds, G.z_dim).to(device)), noise_mode="const")
        out.append(net(img.clamp(-1, 1).cpu()))
    return torch.cat(out)


def compute_kid(G: Generator, real_features: Tensor, num_generated: int = 1000, net: FeatureNet | None = None,
                device: torch.device | str = "cpu") -> float:
    """KID between G's samples and precomputed real features."""
    net = net or FeatureNet()
    return kid(real_features, generated_features(G, net, num_generated, device=device))
