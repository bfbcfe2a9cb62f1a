"""Active learning for the annotator: an interpreter retrained in the background on the annotations so far, used
to pre-fill new samples and to rank candidate seeds by how unsure its ensemble is.

Why: DatasetGAN's annotators painted every sample from scratch and chose samples blindly. Correcting a
prediction is faster than painting, and the samples the ensemble disagrees on (Jensen-Shannon divergence, the
same score the factory filters with) are the ones that teach it most. Everything here is small on purpose
(three models, a few thousand pixels per image, few epochs) so that a retrain takes seconds on a laptop CPU
while a person paints; it retrains only when the number of annotated items changes.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ganfactory.annotate.store import AnnotationSet
from ganfactory.gan.latent import Latent

__all__ = ["ActiveConfig", "ActiveLearner", "Suggestion"]


@dataclass(frozen=True)
class ActiveConfig:
    """How the annotator's background interpreter is trained and how candidates are chosen."""

    num_models: int = 3
    """Ensemble size (uncertainty needs at least 2)."""
    pixels_per_image: int = 2048
    holdout_pixels_per_image: int = 256
    max_epochs: int = 20
    patience: int = 2
    min_annotated: int = 1
    """Annotated items (with a latent) needed before the first training."""
    pool: int = 32
    """Unused seeds scored after each training."""
    suggestions: int = 8
    """How many of the most uncertain seeds are offered."""
    truncation_psi: float = 1.0
    noise_mode: str = "const"
    seed: int = 0

    def interpreter_config(self):
        """The InterpreterConfig of the background training (every conv layer, labels at image resolution)."""
        from ganfactory.label import InterpreterConfig

        return InterpreterConfig(num_models=self.num_models, pixels_per_image=self.pixels_per_image,
                                 holdout_pixels_per_image=self.holdout_pixels_per_image, max_epochs=self.max_epochs,
                                 patience=self.patience, seed=self.seed)


@dataclass(frozen=True)
class Suggestion:
    seed: int
    uncertainty: float
    """The ensemble's per-image score (mean of the top 10% pixel JS divergences)."""


class ActiveLearner:
    """A background thread that keeps an interpreter trained on ``store``'s annotated items.

    ``notify()`` after every save; the thread retrains when the annotated count differs from the last training's,
    then scores ``config.pool`` seeds from ``next_seed()`` on that the store does not hold yet. ``predict`` and
    ``status`` are safe to call from request threads at any time.
    """

    def __init__(self, G, store: AnnotationSet, config: ActiveConfig, next_seed: Callable[[], int],
                 used_seeds: Callable[[], set[int]]):
        self.G = G
        self.store = store
        self.config = config
        self._next_seed = next_seed
        self._used_seeds = used_seeds
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._interpreter = None
        self._trained_on = 0
        self._state = "waiting"
        self._error: str | None = None
        self._suggestions: list[Suggestion] = []
        self._seconds: float | None = None
        self._thread = threading.Thread(target=self._run, name="ganfactory-active", daemon=True)

    def start(self) -> ActiveLearner:
        self._thread.start()
        self._wake.set()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def notify(self) -> None:
        """Annotations changed: check (in the background) whether to retrain."""
        self._wake.set()

    def status(self) -> dict:
        used = self._used_seeds()
        with self._lock:
            return {"state": self._state, "trained_on": self._trained_on, "error": self._error,
                    "seconds": self._seconds, "min_annotated": self.config.min_annotated,
                    "suggestions": [s.__dict__ for s in self._suggestions if s.seed not in used]}

    def predict(self, latent: Latent) -> tuple[np.ndarray, list | None] | None:
        """(label [H, W] uint8, keypoints [[x, y, visible]] or None) for one latent, or None before any training."""
        with self._lock:
            interp = self._interpreter
        if interp is None:
            return None
        _, pred = interp.predict(self.G, [latent])
        keypoints = None
        if pred.keypoints is not None:
            keypoints = [[round(float(x), 2), round(float(y), 2), int(v)] for x, y, v in pred.keypoints[0]]
        return pred.labels[0], keypoints

    # ---------------------------------------------------------------------------- the thread

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            count = len(self.store.annotated_ids())
            with self._lock:
                if count == self._trained_on and self._interpreter is not None:
                    continue
                if count < self.config.min_annotated:
                    self._state = "waiting"
                    continue
                self._state = "training"
            try:
                self._train_and_rank(count)
            except Exception as e:  # noqa: BLE001 -- shown in the page; the server keeps serving
                traceback.print_exc()
                with self._lock:
                    self._state, self._error = "failed", f"{type(e).__name__}: {e}"

    def _train_and_rank(self, count: int) -> None:
        from ganfactory.annotate.training import training_images
        from ganfactory.label import train_interpreter

        c = self.config
        t0 = time.perf_counter()
        images = training_images(self.store, self.G)
        interp, _ = train_interpreter(self.G, images, self.store.schema, c.interpreter_config(), progress=False)
        used = self._used_seeds()
        seeds, s = [], self._next_seed()
        while len(seeds) < c.pool:
            if s not in used:
                seeds.append(s)
            s += 1
        scored = []
        for start in range(0, len(seeds), 8):
            batch = seeds[start:start + 8]
            latents = [Latent.from_seed(self.G, x, c.truncation_psi, c.noise_mode) for x in batch]
            _, pred = interp.predict(self.G, latents)
            scored += [Suggestion(x, float(u)) for x, u in zip(batch, pred.score.tolist(), strict=True)]
            if self._stop.is_set():
                return
        scored.sort(key=lambda x: (-x.uncertainty, x.seed))
        with self._lock:
            self._interpreter = interp
            self._trained_on = count
            self._suggestions = scored[:c.suggestions]
            self._state, self._error = "ready", None
            self._seconds = round(time.perf_counter() - t0, 2)
        if len(self.store.annotated_ids()) != count:
            self._wake.set()
