"""The end-to-end cars benchmark (../shared/BENCHMARK.md): four arms, one network, one budget, real test images.

Arms: ``few`` (the network on the 16 ``few`` images), ``inversion`` (DatasetGAN with the ``few`` images inverted
into the generator as annotations), ``annotator`` (DatasetGAN with 16 random generated images labelled by a
simulated annotator: the ``full`` arm's network), ``full`` (the network on ``full``). The DatasetGAN arms
synthesize ``synthetic_samples`` candidates once, without filtering, and train on subsets of them: the main result
drops the ``filter_fraction`` most uncertain; the sweep trains on the first N candidates for every N of
``sweep_sizes``, with and without that filtering. Everything is scored in ``cars-8`` on ``test``.

A run directory is a ``ganfactory.runs.Run``: every stage writes its result last, atomically (its done mark), and
is skipped when that exists, so the same command resumes a killed run; a rerun with other settings is refused.
The generator checkpoint is read once per process, and only when a stage that needs it runs. Layout::

    OUT/bench.json                          the resolved settings (written first)
    OUT/data/{few,full,test}/               the splits, when built here (no --data)
    OUT/arms/{few,full}/net/                training run (ganfactory.downstream)
    OUT/arms/<arm>/scores.json              scores on test + predictions of the sample images (samples.npz)
    OUT/arms/<route>/annotations/           AnnotationSet (inversion or simulated annotator); its done mark is
                                            OUT/arms/<route>/annotations.done
    OUT/arms/<route>/interpreter/           the style interpreter
    OUT/arms/<route>/synthetic/             LabeledDataset of every candidate, with its uncertainty
    OUT/arms/<route>/runs/n<N>-<filtered|all>/{net/,scores.json}
    OUT/timings.json                        wall time of every stage, written as each one ends
    OUT/results.json                        every number, the settings, seeds and timings
    OUT/report/index.html                   ganfactory.report (self-contained)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganfactory.datasets.labeled import LabeledDataset
from ganfactory.downstream import TrainConfig, evaluate, load_data, load_segmenter, train_network
from ganfactory.downstream.data import SegmentationData, relabelled, table_between
from ganfactory.errors import GanfactoryError
from ganfactory.runs import Run
from ganfactory.schema import Schema

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
    device: str = "cpu"
    """Where every stage computes ('cpu', 'cuda', 'cuda:N'). Not part of the recorded settings: a run resumed on
    another device goes on (CUDA results agree with the CPU's to float rounding, not bit for bit)."""

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
        del d["device"]
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


# ------------------------------------------------------------------------------------------ models

class _Generator:
    """The benchmark's generator checkpoint, read once per process and only when a stage needs it (a resumed run
    past those stages never reads it)."""

    def __init__(self, config: BenchConfig):
        self.config = config

    @functools.cached_property
    def checkpoint(self):
        from ganfactory.gan.io import read_any

        return read_any(self.config.generator, device=self.config.device)

    @property
    def G(self):
        return self.checkpoint.generator

    @property
    def D(self):
        """The discriminator, None when the checkpoint has none (the inversion then uses pixel losses only)."""
        return self.checkpoint.discriminator


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


def _split_paths(config: BenchConfig, run: Run, data_dir: str | None) -> dict[str, Path]:
    return {split: Path(data_dir) / split if data_dir is not None else run.root / "data" / split
            for split in _needed_splits(config)}


def _build_splits(config: BenchConfig, run: Run, paths: dict[str, Path]) -> None:
    """Build the splits that are not there yet with the cars builder (only when no ``data_dir`` was given)."""
    from ganfactory.datasets.build import BuildSettings, build_split

    for split, path in paths.items():
        if not (path / "dataset.json").is_file():
            run.log(f"building split {split} ({config.split_sizes.get(split) or 'all'} images)")
            build_split(path, BuildSettings(split, config.resolution, n=config.split_sizes.get(split)),
                        workers=2, progress=run.progress)


def _load(path: Path, config: BenchConfig, indices=None, schema: Schema | None = None) -> SegmentationData:
    """A LabeledDataset in the scored classes (or ``schema``'s) at the benchmark's resolution (keypoints kept)."""
    dataset = LabeledDataset(path)
    if schema is None:
        target, table = relabelled(dataset.schema, config.classes)
    else:
        target = Schema(schema.classes, dataset.schema.keypoints)
        table = table_between(dataset.schema, target)
    return load_data(dataset, config.resolution, indices, table, target)


def _train_and_score(run: Run, name: str, data_fn: Callable[[], SegmentationData], arm_dir: Path,
                     test: SegmentationData, config: BenchConfig, extra: dict | None = None) -> None:
    """Train the arm's network and score it on test: scores.json (the stage's done mark) and samples.npz."""
    data = data_fn()
    run.log(f"{name}: training on {len(data)} samples ({config.train.iterations} iterations x "
            f"{config.train.batch_size})")
    train_network(data, arm_dir / "net", config.train, provenance={"bench_arm": name}, progress=run.progress,
                  device=config.device)
    scores = evaluate(load_segmenter(arm_dir / "net", device=config.device), test, keep=config.sample_images)
    predictions = scores.pop("predictions")
    np.savez_compressed(arm_dir / "samples.npz", labels=predictions["labels"],
                        **({} if predictions["keypoints"] is None else {"keypoints": predictions["keypoints"]}))
    record = json.loads((arm_dir / "net" / "model.json").read_text())
    scores.update(extra or {}, train_samples=record["train_samples"], train_seconds=record["seconds"])
    run.write_json(arm_dir.relative_to(run.root) / "scores.json", scores)
    run.log(f"{name}: mIoU {scores['miou']:.4f}" + (f", PCK {scores['pck']['pck']:.4f}" if "pck" in scores else ""))


def _arm(run: Run, key: str, name: str, data_fn: Callable[[], SegmentationData], arm_dir: Path,
         test: SegmentationData, config: BenchConfig, extra: dict | None = None) -> dict:
    """A train-and-score stage; its scores (fresh or from the run that did it)."""
    scores_path = arm_dir / "scores.json"
    run.stage(key, lambda: _train_and_score(run, name, data_fn, arm_dir, test, config, extra), done=scores_path,
              what=name)
    return json.loads(scores_path.read_text())


def _simulated_annotations(run: Run, config: BenchConfig, models: _Generator, annotator_run: Path,
                           root: Path) -> None:
    """16 random generated images labelled by the full arm's network: an AnnotationSet (status annotated, latent
    kind seed), built under a temporary name and renamed into place. A keypoint is marked visible when the network
    puts it on the car (its own label > 0)."""
    from ganfactory.annotate.synthetic import make_network_annotations

    run.log(f"annotator: labelling {config.annotated_images} generated images with the full arm's network")
    tmp = root.with_name(f".tmp-{root.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    if root.exists():                # an earlier run's store without its done mark: made again
        shutil.rmtree(root)
    seeds = range(ANNOTATOR_FIRST_SEED, ANNOTATOR_FIRST_SEED + config.annotated_images)
    make_network_annotations(models.G, tmp, seeds, load_segmenter(annotator_run, device=config.device),
                             config.truncation_psi, config.generator, meta={"annotator": str(annotator_run)})
    os.replace(tmp, root)
    _done(root)


def _inversion_annotations(run: Run, config: BenchConfig, models: _Generator, few: Path, root: Path) -> None:
    """The few images inverted into the generator, their real labels as annotations
    (``ganfactory.annotate.inversion``; it resumes by itself). The images are first brought to the generator's
    resolution when the benchmark's differs (labels by nearest neighbour)."""
    from ganfactory.annotate.inversion import invert_labeled_dataset
    from ganfactory.gan.invert import InversionConfig

    inv_config = None
    if config.inversion_steps is not None:
        inv_config = InversionConfig(w_steps=config.inversion_steps[0], wplus_steps=config.inversion_steps[1],
                                     w_avg_samples=1000)
    G = models.G
    source = _at_resolution(few, G.img_resolution, root.parent / f"few-{G.img_resolution}px")
    run.log(f"inversion: inverting {len(LabeledDataset(source))} few images into the generator"
            + ("" if models.D is not None else " (no discriminator: pixel losses only)"))
    invert_labeled_dataset(G, source, root, config=inv_config, D=models.D, generator=config.generator,
                           progress=run.progress)
    _done(root)


def _done_mark(annotations: Path) -> Path:
    """The annotations stage's done mark: beside the store (an AnnotationSet holds only its own files)."""
    return annotations.with_name(f"{annotations.name}.done")


def _done(annotations: Path) -> None:
    _done_mark(annotations).write_text("done\n")


def _at_resolution(path: Path, resolution: int, out: Path) -> Path:
    """``path`` itself when its samples are ``resolution`` px, else a resized copy at ``out`` (made once)."""
    from ganfactory.datasets.labeled import LabeledSample, write_labeled_dataset
    from ganfactory.downstream.data import resize_sample
    from ganfactory.keypoints import keypoints_from_rows, keypoints_to_rows

    dataset = LabeledDataset(path)
    if dataset.label(0).shape[0] == resolution:
        return path

    def sample(i: int) -> LabeledSample:
        image, label, meta = dataset[i]
        image, label, kps = resize_sample(image, label, keypoints_from_rows(meta["keypoints"]), resolution)
        return LabeledSample(meta["id"], image, label, keypoints_to_rows(kps), meta={"resized_from": str(path)})

    write_labeled_dataset(out, dataset.schema, len(dataset), sample, provenance={
        "producer": "ganfactory bench (resized copy)", "source": str(path), "resolution": resolution},
        coco_object=None)
    return out


def _interpreter(run: Run, config: BenchConfig, models: _Generator, annotations: Path, out: Path) -> None:
    from ganfactory.annotate.store import AnnotationSet
    from ganfactory.annotate.training import training_images
    from ganfactory.label import InterpreterConfig, train_interpreter

    store = AnnotationSet(annotations)
    G = models.G
    icfg = InterpreterConfig(num_models=config.interpreter_models, max_epochs=config.interpreter_epochs,
                             pixels_per_image=config.interpreter_pixels, seed=config.seed)
    run.log(f"{annotations.parent.name}: training the interpreter ({icfg.num_models} models) on "
            f"{len(store.annotated_ids())} annotated images")
    interp, report = train_interpreter(G, training_images(store, G), store.schema, icfg, progress=run.progress)
    interp.save(out, provenance={"generator": config.generator, "annotations": str(annotations),
                                 "report": dataclasses.asdict(report)})


def _synthetic(run: Run, config: BenchConfig, models: _Generator, interpreter: Path, out: Path) -> None:
    from ganfactory.synth.factory import SynthConfig, synthesize

    run.log(f"{out.parent.name}: synthesizing {config.synthetic_samples} labelled candidates")
    in_process = config.synth_workers == 1
    synthesize(SynthConfig(config.generator, str(interpreter), tuple(range(config.synthetic_samples)),
                           truncation_psi=config.truncation_psi, candidates_per_shard=min(
                               1000, config.synthetic_samples), filter_fraction=0.0, coco_object=None,
                           device=config.device),
               out, workers=config.synth_workers, progress=run.progress, G=models.G if in_process else None)


def _filtered(uncertainty: np.ndarray, n: int, fraction: float) -> list[int]:
    """Indices of the first ``n`` candidates that survive dropping the ``fraction`` most uncertain of them."""
    from ganfactory.label.uncertainty import filter_most_uncertain

    return filter_most_uncertain(torch.from_numpy(uncertainty[:n]), fraction).tolist()


def _route(run: Run, route: str, config: BenchConfig, models: _Generator, splits: dict[str, Path],
           test: SegmentationData) -> tuple[dict, list[dict], dict]:
    """One DatasetGAN arm: (main scores, sweep rows, uncertainty summary)."""
    arm = run.root / "arms" / route
    annotations = arm / "annotations"
    if route == "annotator" and (annotations / "schema.json").is_file() and not _done_mark(annotations).is_file():
        _done(annotations)       # a run of an earlier version: the store renamed into place was its done mark
    if route == "annotator":
        run.stage(f"{route}.annotate", lambda: _simulated_annotations(
            run, config, models, run.root / "arms" / "full" / "net", annotations), done=_done_mark(annotations))
    else:
        run.stage(f"{route}.annotate", lambda: _inversion_annotations(
            run, config, models, splits["few"], annotations), done=_done_mark(annotations))
    interp = arm / "interpreter"
    run.stage(f"{route}.interpreter", lambda: _interpreter(run, config, models, annotations, interp),
              done=interp / "interpreter.json")
    run.stage(f"{route}.synthesize", lambda: _synthetic(run, config, models, interp, arm / "synthetic"),
              done=arm / "synthetic" / "dataset.json")
    synth = LabeledDataset(arm / "synthetic")
    uncertainty = np.array([synth.meta(i)["uncertainty"] for i in range(len(synth))], np.float64)
    ids = synth.ids
    rows = []
    plan = [(config.synthetic_samples, True)] + [(n, f) for n in config.sweep_sizes for f in (True, False)
                                                 if (n, f) != (config.synthetic_samples, True)]
    main = None
    for n, filtered in plan:
        keep = _filtered(uncertainty, n, config.filter_fraction) if filtered else list(range(n))
        tag = f"n{n}-{'filtered' if filtered else 'all'}"
        scores = _arm(run, f"{route}.{tag}", f"{route} {tag}",
                      lambda keep=keep: _load(arm / "synthetic", config, keep), arm / "runs" / tag, test, config,
                      {"candidates": n, "filtered": filtered})
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
    Computes on ``config.device`` with ``config.threads`` intra-op threads and restores the caller's setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run_bench(config, Path(out), data_dir, progress)
    finally:
        torch.set_num_threads(threads)


def _run_bench(config: BenchConfig, out: Path, data_dir: str | None, progress: bool) -> dict:
    header = {"benchmark": "cars", "config": config.to_json(), "data": None if data_dir is None else str(data_dir)}
    _check_data(config, data_dir)
    run = Run.open(out, header, "bench.json", "bench", progress, allowed=("report",))
    t0 = time.perf_counter()
    models = _Generator(config)
    paths = _split_paths(config, run, data_dir)
    run.stage("data", lambda: _build_splits(config, run, paths),
              done=None if data_dir is None else paths["test"] / "dataset.json")
    for path in paths.values():
        _check_size(path, config.resolution)
    test = _load(paths["test"], config)
    arms: dict[str, dict] = {}
    sweep: list[dict] = []
    uncertainty: dict[str, dict] = {}
    for arm in ("few", "full"):
        if arm in config.arms:
            arms[arm] = _arm(run, arm, arm, lambda arm=arm: _load(paths[arm], config), out / "arms" / arm, test,
                             config)
    for route in ROUTES:
        if route not in config.arms:
            continue
        arms[route], rows, uncertainty[route] = _route(run, route, config, models, paths, test)
        sweep += rows
    seeds = {split: LabeledDataset(path).provenance.get("seeds") for split, path in paths.items()}
    if set(ROUTES) & set(config.arms):
        seeds.update(synthetic=[0, config.synthetic_samples], interpreter=config.seed)
    if "annotator" in config.arms:
        seeds["annotator"] = [ANNOTATOR_FIRST_SEED, ANNOTATOR_FIRST_SEED + config.annotated_images]
    seeds["training"] = config.train.seed
    results = {"benchmark": "cars", "quick": config.quick, "generator": config.generator,
               "classes": [c.name for c in test.schema.classes], "keypoints": list(test.schema.keypoints),
               "test_images": len(test), "arms": {a: arms[a] for a in ARMS if a in arms},
               "sweep": sweep, "uncertainty": uncertainty, "config": config.to_json(), "seeds": seeds,
               "data": {k: str(v) for k, v in paths.items()}, "timings": dict(run.timings),
               "seconds_this_run": round(time.perf_counter() - t0, 1)}
    run.write_json("results.json", results)
    from ganfactory.report import write_bench_report

    report = write_bench_report(out)
    run.log(f"results: {out / 'results.json'}; report: {report}")
    return results
