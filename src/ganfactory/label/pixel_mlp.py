"""DatasetGAN's pixel classifier (Linear(D,128)-ReLU-BN-Linear(128,32)-ReLU-BN-Linear(32,C), init N(0, 0.02)), its
training loop with early stopping on held-out pixels, and the BatchNorm folding prediction uses."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ganfactory.label.config import InterpreterConfig

__all__ = ["PixelMLP", "class_weights", "fit_pixel_model", "fold_batchnorm"]


class PixelMLP(nn.Module):
    """DatasetGAN's pixel classifier: x [P, D] -> logits [P, C]. ``head`` is everything after the first layer,
    so that the first layer can run factorised over feature maps (``Interpreter.predict_features``)."""

    def __init__(self, in_features: int, out_features: int, hidden: tuple[int, int]):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden[0])
        self.bn1 = nn.BatchNorm1d(hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.bn2 = nn.BatchNorm1d(hidden[1])
        self.fc3 = nn.Linear(hidden[1], out_features)

    def reset(self, generator: torch.Generator) -> None:
        """DatasetGAN's init: Linear weights N(0, 0.02), biases 0; BatchNorm at identity."""
        for fc in (self.fc1, self.fc2, self.fc3):
            nn.init.normal_(fc.weight, 0.0, 0.02, generator=generator)
            nn.init.zeros_(fc.bias)
        for bn in (self.bn1, self.bn2):
            bn.reset_parameters()
            bn.reset_running_stats()

    def head(self, h: Tensor) -> Tensor:
        """[P, hidden0] first-layer outputs (before the ReLU) -> [P, C] logits."""
        h = self.bn1(torch.relu(h))
        return self.fc3(self.bn2(torch.relu(self.fc2(h))))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.fc1(x))


def class_weights(y: Tensor, num_classes: int, mode: str) -> Tensor | None:
    """Per-class loss weights [C] from the training targets ``y`` [P]: None for mode 'none'; 'inverse' weighs a
    class by P / (C' n_c), 'sqrt' by its square root (C' = classes present; absent classes weigh 0). Normalised
    so that the mean weight over the training pixels is 1, so the learning rate means what it meant unweighted.

    Why: at 64 px a mirror or a plate is a few pixels in an image of thousands, so an unweighted loss gains almost
    nothing by ever predicting them (they score 0 in every arm without this)."""
    if mode == "none":
        return None
    if mode not in ("sqrt", "inverse"):
        raise ValueError(f"class weighting must be none, sqrt or inverse, got {mode!r}")
    counts = torch.bincount(y.reshape(-1).cpu(), minlength=num_classes).double()
    present = counts > 0
    w = torch.zeros(num_classes, dtype=torch.float64)
    w[present] = counts.sum() / (present.sum() * counts[present])
    if mode == "sqrt":
        w = w.sqrt()
    w = w / ((w * counts).sum() / counts.sum())
    return w.float()


def fit_pixel_model(model: PixelMLP, x: Tensor, y: Tensor, x_val: Tensor | None, y_val: Tensor | None,
                    config: InterpreterConfig, generator: torch.Generator, loss: str = "ce",
                    on_epoch: Callable[[int, float], None] | None = None, weight: Tensor | None = None,
                    epochs: int | None = None) -> tuple[float, int, int]:
    """Train ``model`` on pixel rows x [P, D] with targets y ([P] class indices for loss 'ce', [P, K] heatmap
    values for 'bce'); early stopping on (x_val, y_val). Returns (best held-out score, epochs run, best epoch); the
    model ends in eval mode with its best weights. Score: accuracy for 'ce' (with class ``weight``s: the mean
    accuracy per class present, so that the stop does not favour the background), minus the loss for 'bce'.

    ``epochs`` given (and no held-out pixels): exactly that many epochs, no early stop (the final fit on every
    annotated pixel once early stopping has chosen the count); the score returned is NaN.
    """
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    if weight is not None:
        weight = weight.to(x.device)
    crit = nn.CrossEntropyLoss(weight=weight) if loss == "ce" else nn.BCEWithLogitsLoss()
    best, best_state, stale, epoch, best_epoch = -math.inf, None, 0, 0, 0
    bs = config.batch_size
    for epoch in range(1, (epochs or config.max_epochs) + 1):
        model.train()
        order = torch.randperm(x.shape[0], generator=generator)
        for start in range(0, x.shape[0] - (1 if x.shape[0] % bs == 1 else 0), bs):
            idx = order[start:start + bs]
            opt.zero_grad(set_to_none=True)
            crit(model(x[idx]), y[idx]).backward()
            opt.step()
        if epochs is not None:
            continue
        model.eval()
        with torch.no_grad():
            out = torch.cat([model(x_val[i:i + 65536]) for i in range(0, x_val.shape[0], 65536)])
            score = (_held_out_accuracy(out.argmax(1), y_val, weight is not None) if loss == "ce"
                     else -crit(out, y_val).item())
        if on_epoch is not None:
            on_epoch(epoch, score)
        if score > best + 1e-6:
            best, stale, best_epoch = score, 0, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                break
    if epochs is not None:
        model.eval()
        return math.nan, epoch, epoch
    model.load_state_dict(best_state)
    model.eval()
    return best, epoch, best_epoch


def _held_out_accuracy(pred: Tensor, truth: Tensor, balanced: bool) -> float:
    if not balanced:
        return (pred == truth).float().mean().item()
    recalls = [(pred[truth == c] == c).float().mean() for c in truth.unique().tolist()]
    return torch.stack(recalls).mean().item()


def fold_batchnorm(model: PixelMLP) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(W2, b2, W3, b3) of an eval-mode PixelMLP with each BatchNorm folded into the Linear layer after it:
    fc(bn(a)) = (W * s) a + (W t + b), s = gamma / sqrt(var + eps), t = beta - mean * s."""
    def fold(bn: nn.BatchNorm1d, fc: nn.Linear) -> tuple[Tensor, Tensor]:
        s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        t = bn.bias - bn.running_mean * s
        return fc.weight * s, fc.bias + fc.weight @ t

    w2, b2 = fold(model.bn1, model.fc2)
    w3, b3 = fold(model.bn2, model.fc3)
    return w2, b2, w3, b3
