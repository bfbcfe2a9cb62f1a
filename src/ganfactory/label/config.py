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
    final_fit: bool = True
    """Once early stopping has chosen the epoch count, train each model again from its initialisation on every
    annotated pixel (the held-out ones included) for that many epochs, and keep that model: with 16 images the
    held-out fifth is too much label to leave unused. False = keep the early-stopped model."""
    pixels_per_image: int | None = 8192
    """Training pixels sampled per annotated image; None = every pixel (DatasetGAN; memory grows with it)."""
    holdout_pixels_per_image: int = 1024
    """Pixels per image held out for early stopping (disjoint from the training pixels); at most a fifth of the
    image's pixels, so that small label maps keep most pixels for training."""
    class_balanced: bool = False
    """Sample about equally many pixels of every class present in an image (helps small parts; no effect when
    ``pixels_per_image`` covers the whole image, as at 64 px)."""
    class_weighting: str = "sqrt"
    """Loss weights per class from the training pixels' frequencies: 'sqrt' (the square root of inverse frequency,
    default: small parts such as mirrors and plates are learnt without drowning the background), 'inverse', or
    'none' (DatasetGAN's plain cross-entropy). With weights, early stopping scores mean per-class accuracy."""
    keypoint_sigma: float = 2.0
    """Gaussian heatmap radius, in label pixels, of the keypoint heads' targets."""
    keypoint_visible_only: bool = True
    """Keypoint heads learn a heatmap only for visible points; a hidden point's targets are 0 everywhere, so the
    head's peak says whether the point is seen. False = every annotated point, hidden or not (the old behaviour)."""
    keypoint_threshold: float = 0.5
    """A predicted keypoint is visible when its heatmap peak (sigmoid) reaches this. 0.5 because the targets are 1
    at a visible point's centre and 0 for a hidden point (``keypoint_visible_only``): the boundary between them."""
    keypoint_classes: tuple[tuple[int, ...], ...] | None = None
    """Per keypoint, the class ids a visible point must lie on (within one label pixel) in the interpreter's own
    labels (the renderer's rule for the cars: a hub on a wheel, a lamp on a light); None = the peak alone."""
    seed: int = 0

    def to_json(self) -> dict:
        d = asdict(self)
        d["taps"] = {"layers": None if self.taps.layers is None else list(self.taps.layers),
                     "label_resolution": self.taps.label_resolution}
        d["hidden"] = None if self.hidden is None else list(self.hidden)
        d["keypoint_classes"] = None if self.keypoint_classes is None else [list(c) for c in self.keypoint_classes]
        return d

    @classmethod
    def from_json(cls, d: dict) -> InterpreterConfig:
        d = dict(d)
        taps = d.pop("taps", {}) or {}
        d["taps"] = FeatureTaps(None if taps.get("layers") is None else tuple(taps["layers"]),
                                taps.get("label_resolution"))
        d["hidden"] = None if d.get("hidden") is None else tuple(d["hidden"])
        if d.get("keypoint_classes") is not None:
            d["keypoint_classes"] = tuple(tuple(c) for c in d["keypoint_classes"])
        old = {"final_fit": False, "class_weighting": "none", "keypoint_visible_only": False}
        return cls(**{**{k: v for k, v in old.items() if k not in d}, **d})


def hidden_widths(config: InterpreterConfig, num_classes: int) -> tuple[int, int]:
    return config.hidden or ((128, 32) if num_classes < 32 else (256, 128))
