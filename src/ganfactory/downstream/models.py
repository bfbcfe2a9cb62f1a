"""Downstream networks: a small UNet for the CPU at 64 px and torchvision's DeepLabv3-ResNet50.

Every network maps images [N, 3, H, W] (in [-1, 1]) to one tensor [N, C + K, H, W]: C class logits followed by
K keypoint heatmap logits (K = 0 for segmentation alone). One output of one shape, so that the same training
loop, checkpoint format and evaluation serve segmentation, keypoints or both; ``split_outputs`` cuts it.

Why a UNet beside DeepLabv3: DeepLabv3-ResNet50 (output stride 8, ~40 M parameters) is the standard
downstream network of DatasetGAN's evaluation but costs seconds per batch on a 2-core CPU; a four-level UNet
with 16..128 channels keeps full resolution for thin parts (mirrors, plates, lamps at 64 px) and trains in
minutes. Both are built from constructor arguments only (``ModelSpec``), so checkpoints hold state dicts and
JSON, never pickled classes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from ganfactory.errors import GanfactoryError

__all__ = ["ARCHITECTURES", "DeepLabV3", "ModelSpec", "UNet", "create_model", "split_outputs"]


class ConvBlock(nn.Sequential):
    """(3x3 conv, BatchNorm, ReLU) twice; keeps the spatial size."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """A UNet: ``len(widths)`` levels, max-pool down, transposed-conv up, skip concatenation.

    ======  =====================  ===============
    level   encoder (64 px input)  channels
    ======  =====================  ===============
    0       64 x 64                widths[0] = 16
    1       32 x 32                widths[1] = 32
    2       16 x 16                widths[2] = 64
    3       8 x 8 (bottleneck)     widths[3] = 128
    ======  =====================  ===============

    The input side must be divisible by ``2 ** (len(widths) - 1)``.
    """

    def __init__(self, out_channels: int, widths: tuple[int, ...] = (16, 32, 64, 128), in_channels: int = 3):
        super().__init__()
        self.widths = tuple(widths)
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down.append(ConvBlock(cin, w))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w_low, w_high in zip(widths[:0:-1], widths[-2::-1], strict=True):
            self.up.append(nn.ConvTranspose2d(w_low, w_high, 2, stride=2))
            self.merge.append(ConvBlock(2 * w_high, w_high))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        factor = 2 ** (len(self.widths) - 1)
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise GanfactoryError(f"the UNet needs image sides divisible by {factor}, got {list(x.shape[-2:])}")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, skips[-2::-1], strict=True):
            x = merge(torch.cat([up(x), skip], 1))
        return self.head(x)


class DeepLabV3(nn.Module):
    """torchvision's DeepLabv3 with a ResNet-50 backbone, randomly initialised (no weights can be downloaded
    here), returning the main head's logits as one tensor (no auxiliary head)."""

    def __init__(self, out_channels: int):
        super().__init__()
        from torchvision.models.segmentation import deeplabv3_resnet50

        self.net = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=out_channels, aux_loss=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)["out"]


ARCHITECTURES = {"unet": UNet, "deeplabv3": DeepLabV3}
"""Name -> network class; ``create_model`` builds one from a ModelSpec."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything that rebuilds a downstream network (stored as JSON in its checkpoint)."""

    architecture: str = "unet"
    """A key of ARCHITECTURES."""
    num_classes: int = 2
    """Segmentation classes C (ids 0..C-1, 0 = background)."""
    num_keypoints: int = 0
    """Keypoint heatmaps K after the class logits (0 = none)."""
    widths: tuple[int, ...] = (16, 32, 64, 128)
    """UNet channel widths per level (ignored by deeplabv3)."""

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise GanfactoryError(f"unknown architecture {self.architecture!r}; choose one of "
                                  f"{', '.join(ARCHITECTURES)}")
        if self.num_classes < 1 or self.num_keypoints < 0 or self.num_classes + self.num_keypoints < 1:
            raise GanfactoryError(f"a network needs at least one class, got {self.num_classes} classes and "
                                  f"{self.num_keypoints} keypoints")

    def to_json(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_json(cls, d: dict) -> ModelSpec:
        d = dict(d)
        d["widths"] = tuple(d.get("widths", cls.widths))
        return cls(**d)


def create_model(spec: ModelSpec) -> nn.Module:
    """A freshly initialised network for ``spec`` (initialised by torch's global generator: seed it first)."""
    out = spec.num_classes + spec.num_keypoints
    if spec.architecture == "unet":
        return UNet(out, spec.widths)
    return ARCHITECTURES[spec.architecture](out)


def split_outputs(out: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """[N, C + K, H, W] -> (class logits [N, C, H, W], keypoint heatmap logits [N, K, H, W])."""
    return out[:, :num_classes], out[:, num_classes:]
