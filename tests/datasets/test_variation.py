"""Per-sample variation: same seed, same sample; the ranges of BENCHMARK.md; disjoint splits."""

import pytest

from ganfactory.datasets.car_assembly import CAR_IDS, NAMED_CAR_IDS
from ganfactory.datasets.variation import (
    BACKGROUND_KINDS,
    SPLITS,
    VariationSettings,
    sample_variation,
    split_seeds,
)


def test_same_seed_same_variation_and_different_seeds_differ():
    assert sample_variation(123, CAR_IDS) == sample_variation(123, CAR_IDS)
    assert sample_variation(123, CAR_IDS) != sample_variation(124, CAR_IDS)
    # The draws are part of the dataset definition: these values of seed 0 must not change.
    golden = sample_variation(0, CAR_IDS)
    assert golden.azimuth_deg == pytest.approx(171.49771920651628, abs=1e-9)
    assert golden.elevation_deg == pytest.approx(23.167877214221313, abs=1e-9)
    assert (golden.background_kind, golden.background_seed) == ("noise", 582688219)
    # The car list picks the car only, not the draws.
    assert sample_variation(0, NAMED_CAR_IDS).azimuth_deg == golden.azimuth_deg


def test_draws_stay_in_the_benchmark_ranges():
    samples = [sample_variation(seed, CAR_IDS) for seed in range(600)]
    assert all(0 <= s.azimuth_deg < 360 for s in samples)
    assert all(0 <= s.elevation_deg <= 30 for s in samples)
    assert all(0.9 <= s.distance_scale <= 1.1 for s in samples)
    assert all(all(-0.1 <= t <= 0.1 for t in s.target_offset) for s in samples)
    assert all(0.96 - 1e-9 <= 1 + s.hue_shift <= 1.04 + 1e-9 for s in samples)
    assert all(0.85 <= s.brightness <= 1.15 for s in samples)
    assert {s.background_kind for s in samples} == set(BACKGROUND_KINDS)
    assert {s.fov_deg for s in samples} == {30.0}
    # Both ends of each range are reached (the draws are not stuck in a corner).
    assert max(s.azimuth_deg for s in samples) > 350 and min(s.azimuth_deg for s in samples) < 10
    assert max(s.elevation_deg for s in samples) > 29 and min(s.elevation_deg for s in samples) < 1
    # Light from the camera's side: within 60 deg of the camera azimuth.
    assert all(abs((s.light_azimuth_deg - s.azimuth_deg + 180) % 360 - 180) <= 60 for s in samples)
    x, y, z = samples[0].view_direction
    assert abs(x * x + y * y + z * z - 1) < 1e-12 and z >= 0


def test_cars_are_drawn_round_robin_from_the_split_list():
    assert [sample_variation(s, NAMED_CAR_IDS).car_id for s in range(11)] == list(NAMED_CAR_IDS)
    assert sample_variation(17, CAR_IDS).car_id == CAR_IDS[0]


def test_settings_change_the_ranges():
    narrow = VariationSettings(elevation_max_deg=5.0, distance_jitter=0.0)
    samples = [sample_variation(seed, CAR_IDS, narrow) for seed in range(100)]
    assert all(s.elevation_deg <= 5 and s.distance_scale == 1.0 for s in samples)


def test_splits_have_the_benchmark_sizes_and_disjoint_seeds():
    sizes = {name: len(split_seeds(name)) for name in SPLITS}
    assert sizes == {"gan-train": 20_000, "few": 16, "full": 5_000, "test": 1_000, "test3d": 300,
                     "few-u": 16, "full-u": 5_000, "test-u": 1_000}
    ranges = sorted((r.start, r.stop) for r in (split_seeds(name) for name in SPLITS))
    assert all(a_stop <= b_start for (_, a_stop), (b_start, _) in zip(ranges, ranges[1:], strict=False))
    assert list(split_seeds("few", n=3)) == [1_000_000, 1_000_001, 1_000_002]
    with pytest.raises(ValueError, match="choose one of"):
        split_seeds("train")
    with pytest.raises(ValueError, match="non-negative"):
        sample_variation(-1, CAR_IDS)
