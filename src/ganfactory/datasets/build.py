"""Build a split of the cars benchmark as a LabeledDataset (``ganfactory cars build``).

Why processes with one thread each: a 64 px render is a few small tensor ops, which one thread runs
faster than two fighting over the cores; a pool of single-threaded workers, each holding its assembled
cars, keeps both cores busy. The main process only validates, encodes and writes, in dataset order, so
the bytes written do not depend on the number of workers (every sample depends on its seed alone).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import itertools
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ganfactory import __version__
from ganfactory.atomic import atomic_path
from ganfactory.datasets.car_assembly import CAR_IDS, KEYPOINT_NAMES, NAMED_CAR_IDS, Car, assemble_car, save_car_mesh
from ganfactory.datasets.cars import RenderSettings, render_car_sample
from ganfactory.datasets.labeled import (
    DEFAULT_SHARD_SIZE,
    LabeledDatasetError,
    LabeledSample,
    finish_dataset,
    missing_shards,
    plan_dataset,
    write_shard,
)
from ganfactory.datasets.parts import CLASS_COLORS, class_names
from ganfactory.datasets.torcs import find_torcs_root
from ganfactory.datasets.variation import SPLITS, VariationSettings, sample_variation, split_seeds
from ganfactory.keypoints import keypoints_to_rows
from ganfactory.schema import Schema

__all__ = ["HELD_OUT_CAR_IDS", "HELD_OUT_REASON", "BuildSettings", "build_split", "car_sample_record", "cars_schema",
           "split_car_ids"]

HELD_OUT_CAR_IDS: tuple[str, ...] = ("car2-trb1", "car5-trb1", "car7-trb1")
"""The named cars the unseen-cars protocol holds out (test-u shows only these; few-u and full-u the other 8)."""
HELD_OUT_REASON = (
    "three named cars of three different bodies (car2, car5, car7), none with a near copy: the only known near "
    "pair, car1-trb1 and car1-trb3 (median vertex offset 1.7 cm), and the rest of the car1 family (stock1, stock2) "
    "all stay on the labeled side, so no car is seen in a near copy. Together the three show every cars-8 class "
    "(car5-trb1 carries a licence plate, all three mirrors, head- and taillights), and the labeled side keeps "
    "plates too (car1-trb1, car1-trb3, car4-trb1, car8-trb1), so every class is both learnable and scored.")
"""Why these three (written into the unseen-cars splits' dataset.json)."""

MESH_SPLITS = ("test3d",)
"""Splits that also write every car's ground-truth mesh to ``meshes/<car>.glb``."""


@dataclass(frozen=True)
class BuildSettings:
    """What a split build writes; everything here is recorded in dataset.json's provenance."""

    split: str
    """A key of ``SPLITS``: gan-train, few, full, test, test3d, few-u, full-u, test-u."""
    resolution: int = 64
    n: int | None = None
    """Only the split's first ``n`` seeds (quick runs); None = the whole split."""
    class_set: str = "cars-13"
    """``cars-13`` (fine classes) or ``cars-8``."""
    supersample: int = 2
    shard_size: int = DEFAULT_SHARD_SIZE
    torcs_root: str | None = None
    """None = the Debian location."""

    def render_settings(self) -> RenderSettings:
        return RenderSettings(resolution=self.resolution, supersample=self.supersample, class_set=self.class_set,
                              variation=VariationSettings())


def split_car_ids(split: str) -> tuple[str, ...]:
    """The cars a split draws from: all 17, the 11 with part labels, or (unseen-cars protocol) those 11 minus the
    held-out 3 or only the held-out 3 (BENCHMARK.md)."""
    if split not in SPLITS:
        raise LabeledDatasetError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    kind = SPLITS[split].cars
    if kind == "all":
        return CAR_IDS
    if kind == "named-seen":
        return tuple(c for c in NAMED_CAR_IDS if c not in HELD_OUT_CAR_IDS)
    if kind == "held-out":
        return HELD_OUT_CAR_IDS
    return NAMED_CAR_IDS


def cars_schema(class_set: str) -> Schema:
    """Classes of ``cars-13`` or ``cars-8`` (id = position, colours of CLASS_COLORS) and the 8 keypoints."""
    return Schema.from_names(class_names(class_set), CLASS_COLORS, KEYPOINT_NAMES)


def car_sample_record(car: Car, seed: int, settings: RenderSettings, car_ids: tuple[str, ...]) -> LabeledSample:
    """Render seed ``seed`` (its car is ``car_ids[seed % len(car_ids)]``) as a LabeledSample with the metadata
    of BENCHMARK.md: car, seed, OpenCV camera (TORCS frame, metres), view, light, livery, background."""
    variation = sample_variation(seed, car_ids, settings.variation)
    sample = render_car_sample(car, variation, settings)
    image = (sample.image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    keypoints = keypoints_to_rows(np.column_stack([sample.keypoints_px.double().numpy(),
                                                   sample.keypoints_visible.double().numpy()]))
    meta = {
        "car_id": car.car_id, "seed": int(seed), "labels_trusted": car.labels_trusted,
        "camera": {"K": sample.K.tolist(), "R": sample.R.tolist(), "t": sample.t.tolist()},
        "azimuth_deg": variation.azimuth_deg, "elevation_deg": variation.elevation_deg,
        "distance_scale": variation.distance_scale, "target_offset": list(variation.target_offset),
        "fov_deg": variation.fov_deg,
        "light": {"direction": list(variation.light_direction), "azimuth_deg": variation.light_azimuth_deg,
                  "elevation_deg": variation.light_elevation_deg, "intensity": variation.light_intensity,
                  "ambient": variation.ambient},
        "livery": {"hue_shift": variation.hue_shift, "brightness": variation.brightness},
        "background_kind": variation.background_kind,
    }
    return LabeledSample(id=f"{seed:08d}", image=np.ascontiguousarray(image),
                         label=sample.labels.to(torch.uint8).numpy(), keypoints=keypoints, meta=meta)


@dataclass(frozen=True)
class _SeedRenderer:
    """Renders seeds of one split; one per worker process. Cars are assembled on first use and kept, so a
    worker assembles each car once (and a quick build only the cars it needs)."""

    car_ids: tuple[str, ...]
    torcs_root: str
    settings: RenderSettings
    cars: dict[str, Car] = dataclasses.field(default_factory=dict)

    def __call__(self, seed: int) -> LabeledSample:
        car_id = self.car_ids[seed % len(self.car_ids)]
        if car_id not in self.cars:
            self.cars[car_id] = assemble_car(car_id, self.torcs_root)
        return car_sample_record(self.cars[car_id], seed, self.settings, self.car_ids)


_WORKER: list[_SeedRenderer] = []      # the worker process's renderer (set by _init_worker)


def _init_worker(car_ids: tuple[str, ...], torcs_root: str, settings: RenderSettings) -> None:
    torch.set_num_threads(1)
    _WORKER[:] = [_SeedRenderer(car_ids, torcs_root, settings)]


def _render_in_worker(seed: int) -> LabeledSample:
    return _WORKER[0](seed)


def _provenance(settings: BuildSettings, car_ids: tuple[str, ...], torcs_root: Path) -> dict:
    seeds = split_seeds(settings.split, settings.n)
    render = settings.render_settings()
    versions = {}
    for package in ("torch", "numpy", "pillow"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    protocol = {}
    if SPLITS[settings.split].cars in ("named-seen", "held-out"):
        protocol = {"protocol": "unseen cars", "held_out_car_ids": list(HELD_OUT_CAR_IDS),
                    "held_out_reason": HELD_OUT_REASON}
    return {
        "producer": "ganfactory cars build", "ganfactory_version": __version__, **protocol,
        "benchmark": "cars", "split": settings.split, "seeds": [seeds.start, seeds.stop],
        "seed_to_car": "car_ids[seed % len(car_ids)]", "car_ids": list(car_ids),
        "labels_trusted_car_ids": [c for c in car_ids if c in NAMED_CAR_IDS],
        "render": {k: v for k, v in dataclasses.asdict(render).items() if k != "variation"},
        "variation": dataclasses.asdict(render.variation), "torcs_root": str(torcs_root),
        "frames": "camera: OpenCV x_cv = R X + t, X in the TORCS car frame (x forward, y left, z up, metres); "
                  "keypoints: pixels, pixel centres at integers",
        "versions": versions,
    }


def build_split(out: str | Path, settings: BuildSettings, workers: int = 2, progress: bool = True) -> Path:
    """Render ``settings.split`` into the LabeledDataset ``out``; resumes a killed build. Returns dataset.json.

    The output is the same bytes for any ``workers`` (>= 1: 1 renders in this process on one thread).
    test3d also writes ``meshes/<car>.glb`` (parts, metres, TORCS frame) for each car its samples show.
    """
    if settings.split not in SPLITS:
        raise LabeledDatasetError(f"unknown split {settings.split!r}; choose one of {', '.join(SPLITS)}")
    if settings.resolution < 8:
        raise LabeledDatasetError(f"--res must be at least 8, got {settings.resolution}")
    if settings.n is not None and settings.n < 1:
        raise LabeledDatasetError(f"--n must be at least 1, got {settings.n}")
    if workers < 1:
        raise LabeledDatasetError(f"--workers must be at least 1, got {workers}")
    try:
        class_names(settings.class_set)
    except ValueError as e:
        raise LabeledDatasetError(str(e)) from None
    torcs_root = find_torcs_root(settings.torcs_root)
    car_ids = split_car_ids(settings.split)
    seeds = split_seeds(settings.split, settings.n)
    render = settings.render_settings()
    plan = plan_dataset(out, cars_schema(settings.class_set), len(seeds), settings.shard_size,
                        _provenance(settings, car_ids, torcs_root))
    if settings.split in MESH_SPLITS:
        used = tuple(c for c in car_ids if c in {car_ids[seed % len(car_ids)] for seed in seeds})
        _write_meshes(plan.root / "meshes", used, str(torcs_root))
    todo = missing_shards(plan)
    total = sum(len(plan.shard_range(i)) for i in todo)
    if todo:
        todo_seeds = [seeds[i] for shard in todo for i in plan.shard_range(shard)]
        bar = tqdm(total=total, desc=f"cars {settings.split}", unit="img", disable=not progress, smoothing=0.05)
        with bar:
            if workers == 1:
                threads = torch.get_num_threads()
                torch.set_num_threads(1)
                try:
                    renderer = _SeedRenderer(car_ids, str(torcs_root), render)
                    _write_shards(plan, todo, map(renderer, todo_seeds), bar)
                finally:
                    torch.set_num_threads(threads)
            else:
                context = multiprocessing.get_context("spawn")
                with context.Pool(min(workers, os.cpu_count() or workers), initializer=_init_worker,
                                  initargs=(car_ids, str(torcs_root), render)) as pool:
                    _write_shards(plan, todo, pool.imap(_render_in_worker, todo_seeds, chunksize=4), bar)
    return finish_dataset(plan, coco_object="car")


def _write_shards(plan, shards: list[int], samples: Iterator[LabeledSample], bar: tqdm) -> None:
    """Consume ``samples`` (in dataset order over ``shards``) shard by shard."""
    samples = iter(samples)
    for shard in shards:
        chunk = itertools.islice(samples, len(plan.shard_range(shard)))
        write_shard(plan, shard, _counted(chunk, bar))


def _counted(samples: Iterator[LabeledSample], bar: tqdm) -> Iterator[LabeledSample]:
    for sample in samples:
        yield sample
        bar.update(1)


def _write_meshes(directory: Path, car_ids: tuple[str, ...], torcs_root: str) -> None:
    """Each car's ground-truth mesh once (skipped when present), written to a temporary name then renamed."""
    directory.mkdir(parents=True, exist_ok=True)
    for car_id in car_ids:
        path = directory / f"{car_id}.glb"
        if path.is_file():
            continue
        with atomic_path(path) as tmp:
            save_car_mesh(assemble_car(car_id, torcs_root), tmp)
