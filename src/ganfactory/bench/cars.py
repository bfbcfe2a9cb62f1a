"""The end-to-end cars benchmark (../shared/BENCHMARK.md): four arms, one network, one budget, real test images.

Arms: ``few`` (the network on the 16 ``few`` images), ``inversion`` (DatasetGAN with the ``few`` images inverted
into the generator as annotations), ``annotator`` (DatasetGAN with 16 random generated images labelled by a
simulated annotator: the ``full`` arm's network), ``full`` (the network on ``full``). The DatasetGAN arms
synthesize ``synthetic_samples`` candidates once, without filtering, and train on subsets of them: the main result
drops the ``filter_fraction`` most uncertain; the sweep trains on the first N candidates for every N of
``sweep_sizes``, with and without that filtering. Everything is scored in ``cars-8`` on ``test``.

Layout of a run directory (every stage writes its result last, atomically, and is skipped when that exists, so
the same command resumes a killed run; a rerun with other settings is refused)::

    OUT/bench.json                          the resolved settings (written first)
    OUT/data/{few,full,test}/               the splits, when built here (no --data)
    OUT/arms/{few,full}/net/                training run (ganfactory.downstream)
    OUT/arms/<arm>/scores.json              scores on test + predictions of the sample images (samples.npz)
    OUT/arms/<route>/annotations/           AnnotationSet (inversion or simulated annotator)
    OUT/arms/<route>/interpreter/           the style interpreter
    OUT/arms/<route>/synthetic/             LabeledDataset of every candidate, with its uncertainty
    OUT/arms/<route>/runs/n<N>-<filtered|all>/{net/,scores.json}
    OUT/timings.json                        wall time of every stage, written as each one ends
    OUT/results.json                        every number, the settings, seeds and timings
    OUT/report/index.html                   ganfactory.report (self-contained)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganfactory.atomic import write_json
from ganfactory.datasets.labeled import LabeledDataset, Schema
from ganfactory.downstream import TrainConfig, evaluate, load_data, load_segmenter, train_network
from ganfactory.downstream.data import SegmentationData, relabelled, table_between
from ganfactory.errors import GanfactoryError

__all__ = ["ARMS", "ROUTES", "BenchConfig", "bench_config", "run_bench"]

ARMS = ("few", "inversion", "annotator", "full")
"""BENCHMARK.md's arms, in its order."""
ROUTES = ("inversion", "annotator")
"""The DatasetGAN arms (annotations -> interpreter -> synthetic data)."""
SPLITS_USED = ("few", "full", "test")
ANNOTATOR_FIRST_SEED = 100_000_000
"""Seeds of the simulated annotator's generated images: far from the synthetic samples' seeds (0, 1, ...)."""


@dataclass(frozen=True)
class BenchConfig:
    """Everything a benchmark run depends on (recorded in bench.json and results.json)."""

    generator: str
    """Checkpoint path or built-in generator name."""
    quick: bool = False
    """Tiny splits and budgets: proves the wiring, not the science (reports say "quick")."""
    arms: tuple[str, ...] = ARMS
    resolution: int = 64
    classes: str = "cars-8"
    """The scored class set (labels of other sets are merged into it)."""
    split_sizes: dict[str, int | None] = field(default_factory=lambda: {"few": None, "full": None, "test": None})
    """Samples per split (None = the whole split); used when the splits are built here."""
    train: TrainConfig = TrainConfig()
    """The one network and budget of every arm."""
    synthetic_samples: int = 10_000
    """Candidates the DatasetGAN arms synthesize (the main result trains on them, filtered)."""
    filter_fraction: float = 0.1
    sweep_sizes: tuple[int, ...] = (500, 2000, 10_000)
    """Numbers of candidates of the sweep, each trained with and without filtering."""
    annotated_images: int = 16
    interpreter_models: int = 10
    interpreter_epochs: int = 100
    interpreter_pixels: int = 8192
    inversion_steps: tuple[int, int] | None = None
    """(W steps, W+ steps) of the inversion; None = the inversion's defaults."""
    truncation_psi: float = 1.0
    synth_workers: int = 1
    sample_images: int = 8
    """Test images shown per arm in the report."""
    threads: int = 1
    """Intra-op threads of every stage (see TrainConfig.threads: one is much faster on a busy CPU)."""
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown or not self.arms:
            raise GanfactoryError(f"unknown arms {unknown}; choose from {', '.join(ARMS)}")
        if "annotator" in self.arms and "full" not in self.arms:
            raise GanfactoryError("the annotator arm's simulated annotator is the full arm's network; add 'full'")
        if self.synthetic_samples < 1 or any(n < 1 or n > self.synthetic_samples for n in self.sweep_sizes):
            raise GanfactoryError(f"sweep sizes must be in 1..{self.synthetic_samples} (the synthetic samples), got "
                                  f"{list(self.sweep_sizes)}")
        if not 0 <= self.filter_fraction < 1:
            raise GanfactoryError(f"the filtered fraction must be in [0, 1), got {self.filter_fraction}")

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["train"] = self.train.to_json()
        d["arms"], d["sweep_sizes"] = list(self.arms), list(self.sweep_sizes)
        d["inversion_steps"] = None if self.inversion_steps is None else list(self.inversion_steps)
        return d


def bench_config(generator: str, quick: bool = False, **overrides) -> BenchConfig:
    """The default or ``quick`` settings, with ``overrides`` (BenchConfig fields) applied."""
    if quick:
        base = BenchConfig(
            generator, quick=True, split_sizes={"few": 16, "full": 48, "test": 32},
            train=TrainConfig(widths=(8, 16, 32, 64), iterations=40, batch_size=8, learning_rate=5e-3, log_every=10,
                              checkpoint_every=20),
            synthetic_samples=24, sweep_sizes=(12, 24), annotated_images=4, interpreter_models=2,
            interpreter_epochs=2, interpreter_pixels=512, inversion_steps=(10, 10), sample_images=4)
    else:
        base = BenchConfig(generator)
    return dataclasses.replace(base, **overrides)


# ------------------------------------------------------------------------------------------ plumbing

def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data)


class _Log:
    """One line per stage on stdout (the stages' own progress bars go to stderr)."""

    def __init__(self, progress: bool):
        self.progress = progress
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"bench [{time.perf_counter() - self.t0:7.1f} s] {message}", flush=True)


class _Timings(dict):
    """Wall time per stage, saved to ``path`` as each stage ends: a resumed run keeps the times of the stages an
    earlier (killed) process did, which results.json, written only at the end, would lose."""

    def __init__(self, path: Path):
        super().__init__(json.loads(path.read_text()) if path.is_file() else {})
        self.path = path


def _timed(timings: _Timings, key: str, fn: Callable):
    """Run a stage and record its wall time. A stage a resumed run skips takes milliseconds; it keeps the time of
    the run that did the work."""
    t0 = time.perf_counter()
    out = fn()
    seconds = round(time.perf_counter() - t0, 2)
    if key not in timings or seconds >= 1.0:
        timings[key] = seconds
        write_json(timings.path, dict(timings))
    return out


# ------------------------------------------------------------------------------------------ stages

def _needed_splits(config: BenchConfig) -> tuple[str, ...]:
    return tuple(s for s in SPLITS_USED if s != "full" or {"full", "annotator"} & set(config.arms))


def _check_data(config: BenchConfig, data_dir: str | None) -> None:
    """Before any work: every split the arms need is in ``data_dir`` (when given)."""
    for split in _needed_splits(config) if data_dir is not None else ():
        path = Path(data_dir) / split
        if not (path / "dataset.json").is_file():
            raise GanfactoryError(f"{path}: no finished {split} split; build it with 'ganfactory cars build "
                                  f"--split {split} --out {path}' or omit --data")
        _check_size(path, config.resolution)


def _check_size(path: Path, resolution: int) -> None:
    size = LabeledDataset(path).label(0).shape[0]
    if size != resolution:
        raise GanfactoryError(f"{path} holds {size} px images; the benchmark runs at {resolution} px")


def _splits(config: BenchConfig, out: Path, data_dir: str | None, log: _Log, progress: bool) -> dict[str, Path]:
    """The few/full/test directories: given (``data_dir``) or built here by the cars builder."""
    paths = {}
    for split in _needed_splits(config):
        if data_dir is not None:
            path = Path(data_dir) / split
        else:
            from ganfactory.datasets.build import BuildSettings, build_split

            path = out / "data" / split
            if not (path / "dataset.json").is_file():
                log(f"building split {split} ({config.split_sizes.get(split) or 'all'} images)")
                build_split(path, BuildSettings(split, config.resolution, n=config.split_sizes.get(split)),
                            workers=2, progress=progress)
        _check_size(path, config.resolution)
        paths[split] = path
    return paths


def _load(path: Path, config: BenchConfig, indices=None, schema: Schema | None = None) -> SegmentationData:
    """A LabeledDataset in the scored classes at the benchmark's resolution (keypoints kept)."""
    dataset = LabeledDataset(path)
    target, _ = relabelled(dataset.schema, config.classes) if schema is None else (schema, None)
    target = Schema(target.classes, dataset.schema.keypoints)
    return load_data(dataset, config.resolution, indices, table_between(dataset.schema, target), target)


def _score(run: Path, test: SegmentationData, config: BenchConfig, scores_path: Path, extra: dict) -> dict:
    """Score a finished network on test; write scores.json (the stage's done mark) and samples.npz."""
    scores = evaluate(load_segmenter(run), test, keep=config.sample_images)
    predictions = scores.pop("predictions")
    np.savez_compressed(scores_path.with_name("samples.npz"), labels=predictions["labels"],
                        **({} if predictions["keypoints"] is None else {"keypoints": predictions["keypoints"]}))
    record = json.loads((run / "model.json").read_text())
    scores.update(extra, train_samples=record["train_samples"], train_seconds=record["seconds"])
    _write_json(scores_path, scores)
    return scores


def _train_and_score(name: str, data_fn: Callable[[], SegmentationData], arm_dir: Path, test: SegmentationData,
                     config: BenchConfig, log: _Log, progress: bool, extra: dict | None = None) -> dict:
    scores_path = arm_dir / "scores.json"
    if scores_path.is_file():
        log(f"{name}: done before, skipped")
        return json.loads(scores_path.read_text())
    data = data_fn()
    log(f"{name}: training on {len(data)} samples ({config.train.iterations} iterations x {config.train.batch_size})")
    train_network(data, arm_dir / "net", config.train, provenance={"bench_arm": name}, progress=progress)
    scores = _score(arm_dir / "net", test, config, scores_path, extra or {})
    log(f"{name}: mIoU {scores['miou']:.4f}" + (f", PCK {scores['pck']['pck']:.4f}" if "pck" in scores else ""))
    return scores


def _simulated_annotations(config: BenchConfig, generator: Callable, annotator_run: Path, root: Path,
                           log: _Log) -> Path:
    """16 random generated images labelled by the full arm's network: an AnnotationSet (status annotated, latent
    kind seed). A keypoint is marked visible when the network puts it on the car (its own label > 0)."""
    from ganfactory.annotate.synthetic import make_network_annotations

    if (root / "schema.json").is_file():
        return root
    log(f"annotator: labelling {config.annotated_images} generated images with the full arm's network")
    tmp = root.with_name(f".tmp-{root.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    seeds = range(ANNOTATOR_FIRST_SEED, ANNOTATOR_FIRST_SEED + config.annotated_images)
    make_network_annotations(generator(), tmp, seeds, load_segmenter(annotator_run), config.truncation_psi,
                             config.generator, meta={"annotator": str(annotator_run)})
    os.replace(tmp, root)
    return root


def _inversion_annotations(config: BenchConfig, generator: Callable, few: Path, root: Path, log: _Log,
                           progress: bool) -> Path:
    """The few images inverted into the generator, their real labels as annotations
    (``ganfactory.annotate.inversion``; it resumes by itself). The images are first brought to the generator's
    resolution when the benchmark's differs (labels by nearest neighbour)."""
    done = root.parent / "annotations.done"
    if done.is_file():
        return root
    from ganfactory.annotate.inversion import invert_labeled_dataset
    from ganfactory.gan.invert import InversionConfig

    inv_config = None
    if config.inversion_steps is not None:
        names = {f.name for f in dataclasses.fields(InversionConfig)}
        wanted = {"w_steps": config.inversion_steps[0], "wplus_steps": config.inversion_steps[1],
                  "w_avg_samples": 1000}
        inv_config = InversionConfig(**{k: v for k, v in wanted.items() if k in names})
    G = generator()
    source = _at_resolution(few, G.img_resolution, root.parent / f"few-{G.img_resolution}px")
    from ganfactory.gan.io import read_any

    D = read_any(config.generator).discriminator
    log(f"inversion: inverting {len(LabeledDataset(source))} few images into the generator"
        + ("" if D is not None else " (no discriminator: pixel losses only)"))
    invert_labeled_dataset(G, source, root, config=inv_config, D=D, generator=config.generator, progress=progress)
    done.write_text("done\n")
    return root


def _at_resolution(path: Path, resolution: int, out: Path) -> Path:
    """``path`` itself when its samples are ``resolution`` px, else a resized copy at ``out`` (made once)."""
    from ganfactory.datasets.labeled import LabeledSample, write_labeled_dataset
    from ganfactory.downstream.data import resize_sample

    dataset = LabeledDataset(path)
    if dataset.label(0).shape[0] == resolution:
        return path

    def sample(i: int) -> LabeledSample:
        image, label, meta = dataset[i]
        kps = np.array([[np.nan if x is None else x, np.nan if y is None else y, v] for x, y, v in meta["keypoints"]],
                       np.float64).reshape(-1, 3)
        image, label, kps = resize_sample(image, label, kps, resolution)
        rows = [[None, None, 0] if np.isnan(x) else [float(x), float(y), int(v)] for x, y, v in kps]
        return LabeledSample(meta["id"], image, label, rows, meta={"resized_from": str(path)})

    write_labeled_dataset(out, dataset.schema, len(dataset), sample, provenance={
        "producer": "ganfactory bench (resized copy)", "source": str(path), "resolution": resolution},
        coco_object=None)
    return out


def _interpreter(config: BenchConfig, generator: Callable, annotations: Path, out: Path, log: _Log,
                 progress: bool) -> Path:
    from ganfactory.annotate.store import AnnotationSet
    from ganfactory.label import InterpreterConfig, train_interpreter, training_images

    if (out / "interpreter.json").is_file():
        return out
    store = AnnotationSet(annotations)
    G = generator()
    icfg = InterpreterConfig(num_models=config.interpreter_models, max_epochs=config.interpreter_epochs,
                             pixels_per_image=config.interpreter_pixels, seed=config.seed)
    log(f"{annotations.parent.name}: training the interpreter ({icfg.num_models} models) on "
        f"{len(store.annotated_ids())} annotated images")
    interp, report = train_interpreter(G, training_images(store, G), store.schema, icfg, progress=progress)
    interp.save(out, provenance={"generator": config.generator, "annotations": str(annotations),
                                 "report": dataclasses.asdict(report)})
    return out


def _synthetic(config: BenchConfig, interpreter: Path, out: Path, log: _Log, progress: bool) -> LabeledDataset:
    from ganfactory.synth.factory import SynthConfig, synthesize

    if not (out / "dataset.json").is_file():
        log(f"{out.parent.name}: synthesizing {config.synthetic_samples} labelled candidates")
        synthesize(SynthConfig(config.generator, str(interpreter), tuple(range(config.synthetic_samples)),
                               truncation_psi=config.truncation_psi, candidates_per_shard=min(
                                   1000, config.synthetic_samples), filter_fraction=0.0, coco_object=None),
                   out, workers=config.synth_workers, progress=progress)
    return LabeledDataset(out)


def _filtered(uncertainty: np.ndarray, n: int, fraction: float) -> list[int]:
    """Indices of the first ``n`` candidates that survive dropping the ``fraction`` most uncertain of them."""
    from ganfactory.label.uncertainty import filter_most_uncertain

    return filter_most_uncertain(torch.from_numpy(uncertainty[:n]), fraction).tolist()


def _route(route: str, config: BenchConfig, out: Path, splits: dict[str, Path], test: SegmentationData, log: _Log,
           progress: bool, timings: _Timings) -> tuple[dict, list[dict], dict]:
    """One DatasetGAN arm: (main scores, sweep rows, uncertainty summary)."""
    from ganfactory.gan import load_generator

    arm = out / "arms" / route
    loaded = []

    def generator():
        """The generator, loaded on first need (a resumed run past these stages never loads it)."""
        if not loaded:
            loaded.append(load_generator(config.generator))
        return loaded[0]

    annotations = arm / "annotations"
    if route == "annotator":
        _timed(timings, f"{route}.annotate", lambda: _simulated_annotations(
            config, generator, out / "arms" / "full" / "net", annotations, log))
    else:
        _timed(timings, f"{route}.annotate", lambda: _inversion_annotations(
            config, generator, splits["few"], annotations, log, progress))
    interp = _timed(timings, f"{route}.interpreter", lambda: _interpreter(
        config, generator, annotations, arm / "interpreter", log, progress))
    synth = _timed(timings, f"{route}.synthesize", lambda: _synthetic(
        config, interp, arm / "synthetic", log, progress))
    uncertainty = np.array([synth.meta(i)["uncertainty"] for i in range(len(synth))], np.float64)
    ids = synth.ids
    rows = []
    plan = [(config.synthetic_samples, True)] + [(n, f) for n in config.sweep_sizes for f in (True, False)
                                                 if (n, f) != (config.synthetic_samples, True)]
    main = None
    for n, filtered in plan:
        keep = _filtered(uncertainty, n, config.filter_fraction) if filtered else list(range(n))
        tag = f"n{n}-{'filtered' if filtered else 'all'}"
        scores = _timed(timings, f"{route}.{tag}", lambda keep=keep, tag=tag, n=n, filtered=filtered: _train_and_score(
            f"{route} {tag}", lambda: _load(arm / "synthetic", config, keep), arm / "runs" / tag, test, config, log,
            progress, {"candidates": n, "filtered": filtered}))
        row = {"route": route, "candidates": n, "filtered": filtered, "train_samples": len(keep),
               "miou": scores["miou"], "pck": scores.get("pck", {}).get("pck")}
        if (n, filtered) == (config.synthetic_samples, True):
            main = scores
            shutil.copyfile(arm / "runs" / tag / "scores.json", arm / "scores.json")
            shutil.copyfile(arm / "runs" / tag / "samples.npz", arm / "samples.npz")
        if n in config.sweep_sizes:
            rows.append(row)
    keep = set(_filtered(uncertainty, config.synthetic_samples, config.filter_fraction))
    removed = [i for i in range(len(uncertainty)) if i not in keep]
    threshold = round(float(uncertainty[removed].min()), 6) if removed else None     # rounded as the scores are
    summary = {"scores": uncertainty.round(6).tolist(), "removed": [ids[i] for i in removed], "threshold": threshold,
               "fraction": config.filter_fraction, "candidates": len(uncertainty)}
    return main, rows, summary


def run_bench(config: BenchConfig, out: str | Path, data_dir: str | None = None, progress: bool = True) -> dict:
    """Run (or resume) the benchmark into ``out``; returns results.json's contents and writes the report.
    Computes with ``config.threads`` intra-op threads and restores the caller's setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run_bench(config, Path(out), data_dir, progress)
    finally:
        torch.set_num_threads(threads)


def _run_bench(config: BenchConfig, out: Path, data_dir: str | None, progress: bool) -> dict:
    log = _Log(progress)
    header = {"benchmark": "cars", "config": config.to_json(), "data": None if data_dir is None else str(data_dir)}
    _check_data(config, data_dir)
    if (out / "bench.json").is_file():
        old = json.loads((out / "bench.json").read_text())
        if old != header:
            differ = sorted(k for k in header["config"] if old.get("config", {}).get(k) != header["config"][k])
            raise GanfactoryError(f"{out} holds a benchmark run with other settings (differing: "
                                  f"{', '.join(differ) or 'data'}); pass another --out or delete it")
    else:
        out.mkdir(parents=True, exist_ok=True)
        if any(p.name != "report" for p in out.iterdir()):
            raise GanfactoryError(f"{out} is not empty and holds no benchmark run; pass a new directory")
        _write_json(out / "bench.json", header)
    t0 = time.perf_counter()
    timings = _Timings(out / "timings.json")
    torch.manual_seed(config.seed)
    splits = _timed(timings, "data", lambda: _splits(config, out, data_dir, log, progress))
    test = _load(splits["test"], config)
    arms: dict[str, dict] = {}
    sweep: list[dict] = []
    uncertainty: dict[str, dict] = {}
    for arm in ("few", "full"):
        if arm in config.arms:
            arms[arm] = _timed(timings, arm, lambda arm=arm: _train_and_score(
                arm, lambda: _load(splits[arm], config), out / "arms" / arm, test, config, log, progress))
    for route in ROUTES:
        if route not in config.arms:
            continue
        arms[route], rows, uncertainty[route] = _route(route, config, out, splits, test, log, progress, timings)
        sweep += rows
    seeds = {split: LabeledDataset(path).provenance.get("seeds") for split, path in splits.items()}
    if set(ROUTES) & set(config.arms):
        seeds.update(synthetic=[0, config.synthetic_samples], interpreter=config.seed)
    if "annotator" in config.arms:
        seeds["annotator"] = [ANNOTATOR_FIRST_SEED, ANNOTATOR_FIRST_SEED + config.annotated_images]
    seeds["training"] = config.train.seed
    results = {"benchmark": "cars", "quick": config.quick, "generator": config.generator,
               "classes": [c.name for c in test.schema.classes], "keypoints": list(test.schema.keypoints),
               "test_images": len(test), "arms": {a: arms[a] for a in ARMS if a in arms},
               "sweep": sweep, "uncertainty": uncertainty, "config": config.to_json(), "seeds": seeds,
               "data": {k: str(v) for k, v in splits.items()}, "timings": dict(timings),
               "seconds_this_run": round(time.perf_counter() - t0, 1)}
    _write_json(out / "results.json", results)
    from ganfactory.report import write_bench_report

    report = write_bench_report(out)
    log(f"results: {out / 'results.json'}; report: {report}")
    return results
