"""Per-sample variation of the cars benchmark, drawn from the sample's seed alone (BENCHMARK.md).

Why a seed per sample, not a stream per split: any sample can be rendered again on its own (resume,
parallel workers, a bug report) and comes out the same bytes; splits are fixed seed ranges, so they
never overlap.

Angles are in degrees, with the meaning of ``ganfactory.render.conventions`` (the car placed in the world front
along +z, left side along +x): azimuth 0 looks at the front of the car, 90 at its left side, 180 at its back;
elevation is the camera's angle above the ground plane. Directions (``view_direction``, ``light_direction``) are
given in the car's TORCS frame (x forward, y left, z up), the frame the cars data stores: in it the camera
position is ``target + distance * (cos(el) cos(az), cos(el) sin(az), sin(el))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BACKGROUND_KINDS",
    "SPLITS",
    "SampleVariation",
    "SplitSpec",
    "VariationSettings",
    "sample_variation",
    "split_seeds",
]

BACKGROUND_KINDS: tuple[str, ...] = ("plain", "gradient", "noise")
"""Procedural backgrounds (no external images)."""


@dataclass(frozen=True)
class VariationSettings:
    """The ranges of BENCHMARK.md; one field per knob."""

    elevation_max_deg: float = 30.0
    """Elevation ~ U[0, elevation_max_deg]."""
    fov_deg: float = 30.0
    """Fixed vertical field of view of the camera."""
    distance_jitter: float = 0.10
    """Distance = base distance x U[1 - j, 1 + j]."""
    target_jitter: float = 0.10
    """Look-at target offset per axis ~ U[-j, j] x the car's half extent on that axis."""
    light_azimuth_jitter_deg: float = 60.0
    """Light azimuth = camera azimuth + U[-j, j] (the light comes from the camera's side)."""
    light_elevation_deg: tuple[float, float] = (30.0, 75.0)
    light_intensity: tuple[float, float] = (0.8, 1.2)
    ambient: tuple[float, float] = (0.3, 0.5)
    hue_jitter: float = 0.04
    """Livery hue shift ~ U[-j, j] turns of the colour wheel (mild)."""
    brightness_jitter: float = 0.15
    """Livery brightness factor ~ U[1 - j, 1 + j]."""


@dataclass(frozen=True)
class SampleVariation:
    """Everything that varies between two samples, drawn by :func:`sample_variation`."""

    seed: int
    car_id: str
    azimuth_deg: float
    elevation_deg: float
    distance_scale: float
    """Multiplies the base camera distance (the distance at which the car fills the view)."""
    target_offset: tuple[float, float, float]
    """Look-at offset as fractions of the car's half extents (x, y, z), TORCS frame."""
    fov_deg: float
    light_azimuth_deg: float
    light_elevation_deg: float
    light_intensity: float
    ambient: float
    hue_shift: float
    """Turns of the colour wheel added to the livery texture's hue."""
    brightness: float
    """Factor on the livery texture's brightness."""
    background_kind: str
    """One of BACKGROUND_KINDS."""
    background_colors: tuple[tuple[float, float, float], tuple[float, float, float]]
    """Two RGB colours in [0, 1]: the plain colour (first), the gradient's ends, the noise's range."""
    background_seed: int
    """Seed of the noise texture (and of the gradient's direction)."""

    @property
    def light_direction(self) -> tuple[float, float, float]:
        """Unit vector towards the light, TORCS frame."""
        return _direction(self.light_azimuth_deg, self.light_elevation_deg)

    @property
    def view_direction(self) -> tuple[float, float, float]:
        """Unit vector from the target towards the camera, TORCS frame."""
        return _direction(self.azimuth_deg, self.elevation_deg)


def _direction(azimuth_deg: float, elevation_deg: float) -> tuple[float, float, float]:
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return (float(np.cos(el) * np.cos(az)), float(np.cos(el) * np.sin(az)), float(np.sin(el)))


def sample_variation(seed: int, car_ids: tuple[str, ...] | list[str],
                     settings: VariationSettings = VariationSettings()) -> SampleVariation:
    """The variation of sample ``seed``; the car is ``car_ids[seed % len(car_ids)]`` (balanced splits).

    The draws come in a fixed order from ``numpy.random.default_rng([seed, 2024])``: reordering them
    changes every dataset, so append new draws at the end.
    """
    if seed < 0:
        raise ValueError(f"seeds are non-negative integers, got {seed}")
    if not car_ids:
        raise ValueError("car_ids is empty; pass the cars of the split (for example CAR_IDS)")
    s = settings
    rng = np.random.default_rng([int(seed), 2024])
    azimuth = rng.uniform(0.0, 360.0)
    elevation = rng.uniform(0.0, s.elevation_max_deg)
    distance_scale = rng.uniform(1 - s.distance_jitter, 1 + s.distance_jitter)
    target = rng.uniform(-s.target_jitter, s.target_jitter, size=3)
    light_azimuth = (azimuth + rng.uniform(-s.light_azimuth_jitter_deg, s.light_azimuth_jitter_deg)) % 360.0
    light_elevation = rng.uniform(*s.light_elevation_deg)
    light_intensity = rng.uniform(*s.light_intensity)
    ambient = rng.uniform(*s.ambient)
    hue_shift = rng.uniform(-s.hue_jitter, s.hue_jitter)
    brightness = rng.uniform(1 - s.brightness_jitter, 1 + s.brightness_jitter)
    background_kind = BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))]
    colors = rng.uniform(0.0, 1.0, size=(2, 3))
    background_seed = int(rng.integers(2**31))
    return SampleVariation(
        seed=int(seed), car_id=car_ids[int(seed) % len(car_ids)], azimuth_deg=float(azimuth),
        elevation_deg=float(elevation), distance_scale=float(distance_scale),
        target_offset=tuple(float(t) for t in target),  # type: ignore[arg-type]
        fov_deg=s.fov_deg, light_azimuth_deg=float(light_azimuth), light_elevation_deg=float(light_elevation),
        light_intensity=float(light_intensity), ambient=float(ambient), hue_shift=float(hue_shift),
        brightness=float(brightness), background_kind=background_kind,
        background_colors=(tuple(float(c) for c in colors[0]), tuple(float(c) for c in colors[1])),  # type: ignore[arg-type]
        background_seed=background_seed)


@dataclass(frozen=True)
class SplitSpec:
    """A split of the cars benchmark: a fixed seed range and the cars it draws from."""

    name: str
    first_seed: int
    size: int
    cars: str
    """``"all"`` (the 17 cars), ``"named"`` (the 11 with part labels), ``"named-seen"`` (the named cars minus the
    unseen-cars protocol's held-out ones) or ``"held-out"`` (only those; ``ganfactory.datasets.build``)."""


SPLITS: dict[str, SplitSpec] = {
    "gan-train": SplitSpec("gan-train", 0, 20_000, "all"),
    "few": SplitSpec("few", 1_000_000, 16, "named"),
    "full": SplitSpec("full", 2_000_000, 5_000, "named"),
    "test": SplitSpec("test", 3_000_000, 1_000, "named"),
    "test3d": SplitSpec("test3d", 4_000_000, 300, "all"),
    "few-u": SplitSpec("few-u", 5_000_000, 16, "named-seen"),
    "full-u": SplitSpec("full-u", 6_000_000, 5_000, "named-seen"),
    "test-u": SplitSpec("test-u", 7_000_000, 1_000, "held-out"),
}
"""The splits of BENCHMARK.md; seed ranges are disjoint so no image is in two splits."""


def split_seeds(split: str, n: int | None = None) -> range:
    """The seeds of ``split`` (its first ``n`` when given, for quick runs)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    spec = SPLITS[split]
    size = spec.size if n is None else min(int(n), spec.size)
    return range(spec.first_seed, spec.first_seed + size)
