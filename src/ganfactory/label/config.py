"""How an interpreter is trained: the settings (DatasetGAN's recipe on sampled pixels) and the ensemble's widths."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ganfactory.label.features import FeatureTaps

__all__ = ["InterpreterConfig", "hidden_widths"]


@dataclass(frozen=True)
class InterpreterConfig:
    """How to train an interpreter (defaults: DatasetGAN's recipe on sampled pixels)."""

    taps: FeatureTaps = FeatureTaps()
    num_models: int = 10
    """Ensemble size (DatasetGAN: 10)."""
    hidden: tuple[int, int] | None = None
    """Hidden widths; None = (128, 32) below 32 classes, (256, 128) from 32 (DatasetGAN)."""
    batch_size: int = 64
    """Pixels per optimiser step (DatasetGAN: 64)."""
    learning_rate: float = 1e-3
    max_epochs: int = 100
    """Passes over the sampled training pixels."""
    patience: int = 3
    """Stop after this many epochs without a better held-out pixel accuracy (the best epoch is kept)."""
    pixels_per_image: int | None = 8192
    """Training pixels sampled per annotated image; None = every pixel (DatasetGAN; memory grows with it)."""
    holdout_pixels_per_image: int = 1024
    """Pixels per image held out for early stopping (disjoint from the training pixels); at most a fifth of the
    image's pixels, so that small label maps keep most pixels for training."""
    class_balanced: bool = False
    """Sample about equally many pixels of every class present in an image (helps small parts)."""
    keypoint_sigma: float = 2.0
    """Gaussian heatmap radius, in label pixels, of the keypoint heads' targets."""
    keypoint_threshold: float = 0.3
    """A predicted keypoint is visible when its heatmap peak (sigmoid) reaches this."""
    seed: int = 0

    def to_json(self) -> dict:
        d = asdict(self)
        d["taps"] = {"layers": None if self.taps.layers is None else list(self.taps.layers),
                     "label_resolution": self.taps.label_resolution}
        d["hidden"] = None if self.hidden is None else list(self.hidden)
        return d

    @classmethod
    def from_json(cls, d: dict) -> InterpreterConfig:
        d = dict(d)
        taps = d.pop("taps", {}) or {}
        d["taps"] = FeatureTaps(None if taps.get("layers") is None else tuple(taps["layers"]),
                                taps.get("label_resolution"))
        d["hidden"] = None if d.get("hidden") is None else tuple(d["hidden"])
        return cls(**d)


def hidden_widths(config: InterpreterConfig, num_classes: int) -> tuple[int, int]:
    return config.hidden or ((128, 32) if num_classes < 32 else (256, 128))
