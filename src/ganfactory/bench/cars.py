"""The end-to-end cars benchmark (../shared/BENCHMARK.md): five arms, one network, one budget, real test images,
two protocols.

Arms: ``few`` (the network on the 16 ``few`` images), ``inversion`` (DatasetGAN with the ``few`` images inverted
into the generator as annotations), ``annotator`` (DatasetGAN with 16 random generated images labelled by a
simulated annotator: the ``full`` arm's network), ``mixed`` (arm 4: the inversion route's synthetic set and the same
16 real images in mixed batches, the same budget), ``full`` (the network on ``full``). The DatasetGAN arms
synthesize ``synthetic_samples`` candidates once, without filtering, and train on subsets of them: the main result
drops the ``filter_fraction`` most uncertain; the sweep trains on the first N candidates for every N of
``sweep_sizes``, with and without that filtering. Everything is scored in ``cars-8``.

Protocols: *seen cars* (splits few, full, test: the 16 labels show nearly every test car) and *unseen cars*
(few-u, full-u, test-u: three named cars held out of every label and shown only by the test; the headline). The
generator is the same in both. ``sweep_generators`` runs the annotator route again with other generator
checkpoints on the headline protocol and puts its mIoU beside each generator's KID.

Sampling follows DatasetGAN unless an ablation switch says otherwise: truncation psi 0.7 on the coarse half of the
style layers (``gan.latent.coarse_cutoff``), per-image noise drawn from each sample's seed (stored as the seed),
and the same noise mode ('random') for the interpreter's training images and for the images it labels: the
inversion route's codes carry their optimised noise maps (mode 'random' too), the annotator route's and the
synthetic samples' their seed's noise. The old sampling is ``truncation_psi=1, noise_mode='const'``.

A run directory is a ``ganfactory.runs.Run``: every stage writes its result last, atomically (its done mark), and
is skipped when that exists, so the same command resumes a killed run; a rerun with other settings is refused.
The generator checkpoint is read once per process, and only when a stage that needs it runs. Layout::

    OUT/bench.json                          the resolved settings (written first)
    OUT/data/<split>/                       the splits, when built here (no --data): few, full, test, few-u, ...
    OUT/unseen/arms/...                     the unseen-cars protocol's arms, laid out as OUT/arms/ (seen cars)
    OUT/<protocol root>/gens/<k>/           the generator sweep's annotator route with generator k (as arms/<route>)
    OUT/kid/<k>.json                        generator k's KID (cached: computed once per run)
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

__all__ = ["ARMS", "PROTOCOLS", "ROUTES", "BenchConfig", "bench_config", "keypoint_classes", "mixed_data", "run_bench"]

ARMS = ("few", "inversion", "annotator", "mixed", "full")
"""BENCHMARK.md's arms, in its order."""
ROUTES = ("inversion", "annotator")
"""The DatasetGAN arms (annotations -> interpreter -> synthetic data)."""
SPLITS_USED = ("few", "full", "test")
"""The roles of a protocol's splits (the seen-cars split names)."""
PROTOCOLS = {"seen": {"few": "few", "full": "full", "test": "test"},
             "unseen": {"few": "few-u", "full": "full-u", "test": "test-u"}}
"""Per protocol, the split that plays each role (BENCHMARK.md)."""
KEYPOINT_CLASSES = {"hub": ("tyre", "rim", "wheel"), "headlight": ("headlight", "light"),
                    "taillight": ("taillight", "light")}
"""The classes a visible keypoint lies on, by its name's first word (the renderer's rule, datasets/cars.py), in
cars-13 and cars-8 names."""
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
    protocols: tuple[str, ...] = ("seen", "unseen")
    """Which protocols run (PROTOCOLS); results.json's top-level arms are the first one's."""
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
    truncation_psi: float = 0.7
    """DatasetGAN's 0.7 (1 = no truncation, the old setting)."""
    truncation_layers: str = "coarse"
    """'coarse': truncate only the first half of the style layers (DatasetGAN; ``gan.latent.coarse_cutoff``);
    'all': every layer."""
    noise_mode: str = "random"
    """'random': each generated image's noise drawn from its seed (DatasetGAN's fresh noise, stored as the seed),
    and the inversion's optimised noise with its codes; 'const': one stored noise map for every image (old)."""
    keypoint_fix: bool = True
    """Keypoints honestly visible: the simulated annotator marks a point visible only where its own labels put the
    point's part (hub on wheel, lamp on light), the interpreter's heads learn visible points only and call a point
    visible when the head peaks (0.5) on its part. False: the old rules (every point on the car visible, heads on
    every point, peak above 0.3)."""
    class_weighting: str = "sqrt"
    """The interpreter's class weights ('sqrt', 'inverse', 'none'; ``label.InterpreterConfig.class_weighting``)."""
    final_fit: bool = True
    """The interpreter's final fit on every annotated pixel (``label.InterpreterConfig.final_fit``)."""
    mixed_real_share: float = 0.5
    """Arm 4 (mixed): the expected share of real images in each batch (the 16 are repeated to make it)."""
    sweep_generators: tuple[str, ...] = ()
    """Generator checkpoints (paths or built-in names) for the generator sweep (annotator route on the headline
    protocol, against each one's KID); empty = no sweep."""
    kid_samples: int = 1000
    """Generated and real images per KID of the generator sweep (the real ones from the protocol's full split)."""
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
        if "mixed" in self.arms and "inversion" not in self.arms:
            raise GanfactoryError("the mixed arm trains on the inversion route's synthetic set; add 'inversion'")
        if self.sweep_generators and "full" not in self.arms:
            raise GanfactoryError("the generator sweep runs the annotator route, whose annotator is the full arm's "
                                  "network; add 'full'")
        bad = [p for p in self.protocols if p not in PROTOCOLS]
        if bad or not self.protocols:
            raise GanfactoryError(f"unknown protocols {bad}; choose from {', '.join(PROTOCOLS)}")
        if self.truncation_layers not in ("coarse", "all"):
            raise GanfactoryError(f"truncation layers must be 'coarse' or 'all', got {self.truncation_layers!r}")
        if self.noise_mode not in ("random", "const"):
            raise GanfactoryError(f"the noise mode must be 'random' or 'const', got {self.noise_mode!r}")
        if self.class_weighting not in ("sqrt", "inverse", "none"):
            raise GanfactoryError(f"class weighting must be sqrt, inverse or none, got {self.class_weighting!r}")
        if not 0 < self.mixed_real_share < 1:
            raise GanfactoryError(f"the mixed arm's real share must be in (0, 1), got {self.mixed_real_share}")
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
        d["protocols"], d["sweep_generators"] = list(self.protocols), list(self.sweep_generators)
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
            interpreter_epochs=2, interpreter_pixels=512, inversion_steps=(10, 10), sample_images=4, kid_samples=16)
    else:
        base = BenchConfig(generator)
    return dataclasses.replace(base, **overrides)


# ------------------------------------------------------------------------------------------ models

class _Generator:
    """A generator checkpoint (the benchmark's, or one of the sweep's), read once per process and only when a stage
    needs it (a resumed run past those stages never reads it)."""

    def __init__(self, config: BenchConfig, name: str | None = None):
        self.config = config
        self.name = config.generator if name is None else name

    @functools.cached_property
    def checkpoint(self):
        from ganfactory.gan.io import read_any

        return read_any(self.name, device=self.config.device)

    @property
    def G(self):
        return self.checkpoint.generator

    @property
    def D(self):
        """The discriminator, None when the checkpoint has none (the inversion then uses pixel losses only)."""
        return self.checkpoint.discriminator


# ------------------------------------------------------------------------------------------ stages

def _needed_splits(config: BenchConfig) -> tuple[str, ...]:
    """Split names every protocol's arms need."""
    roles = tuple(r for r in SPLITS_USED if r != "full" or {"full", "annotator"} & set(config.arms))
    return tuple(PROTOCOLS[p][r] for p in config.protocols for r in roles)


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
            size = config.split_sizes.get(split.removesuffix("-u"))
            run.log(f"building split {split} ({size or 'all'} images)")
            build_split(path, BuildSettings(split, config.resolution, n=size), workers=2, progress=run.progress)


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


def _cutoff(config: BenchConfig, G) -> int | None:
    """The truncation cutoff of every generated latent (None = every layer)."""
    from ganfactory.gan.latent import coarse_cutoff

    return coarse_cutoff(G) if config.truncation_layers == "coarse" else None


def keypoint_classes(schema: Schema) -> tuple[tuple[int, ...], ...] | None:
    """Per keypoint of ``schema``, the ids of its classes a visible point lies on (KEYPOINT_CLASSES); None when a
    keypoint has none in the schema (then visibility is the heatmap's alone)."""
    ids = {c.name: c.id for c in schema.classes}
    out = []
    for name in schema.keypoints:
        wanted = tuple(ids[c] for c in KEYPOINT_CLASSES.get(name.split("_")[0], ()) if c in ids)
        if not wanted:
            return None
        out.append(wanted)
    return tuple(out) if out else None


def _simulated_annotations(run: Run, config: BenchConfig, models: _Generator, annotator_run: Path,
                           root: Path) -> None:
    """16 random generated images labelled by the full arm's network: an AnnotationSet (status annotated, latent
    kind seed), built under a temporary name and renamed into place. With ``keypoint_fix`` a keypoint is marked
    visible where the network's labels put its part (a hub on a wheel, a lamp on a light), else anywhere on the
    car."""
    from ganfactory.annotate.synthetic import make_network_annotations

    run.log(f"annotator: labelling {config.annotated_images} generated images with the full arm's network")
    tmp = root.with_name(f".tmp-{root.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    if root.exists():                # an earlier run's store without its done mark: made again
        shutil.rmtree(root)
    seeds = range(ANNOTATOR_FIRST_SEED, ANNOTATOR_FIRST_SEED + config.annotated_images)
    segmenter = load_segmenter(annotator_run, device=config.device)
    classes = keypoint_classes(segmenter.schema) if config.keypoint_fix else None
    make_network_annotations(models.G, tmp, seeds, segmenter, config.truncation_psi, models.name,
                             meta={"annotator": str(annotator_run)}, noise_mode=config.noise_mode,
                             truncation_cutoff=_cutoff(config, models.G), keypoint_classes=classes)
    os.replace(tmp, root)
    _done(root)


def _inversion_annotations(run: Run, config: BenchConfig, models: _Generator, few: Path, root: Path) -> None:
    """The few images inverted into the generator, their real labels as annotations
    (``ganfactory.annotate.inversion``; it resumes by itself). The images are first brought to the generator's
    resolution when the benchmark's differs (labels by nearest neighbour). The codes are W+ with optimised noise
    maps (noise mode 'random'), the mode the synthetic samples are drawn in by default."""
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
    invert_labeled_dataset(G, source, root, config=inv_config, D=models.D, generator=models.name,
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
                             pixels_per_image=config.interpreter_pixels, seed=config.seed,
                             class_weighting=config.class_weighting, final_fit=config.final_fit,
                             keypoint_visible_only=config.keypoint_fix,
                             keypoint_threshold=0.5 if config.keypoint_fix else 0.3,
                             keypoint_classes=keypoint_classes(store.schema) if config.keypoint_fix else None)
    run.log(f"{annotations.parent.name}: training the interpreter ({icfg.num_models} models) on "
            f"{len(store.annotated_ids())} annotated images")
    interp, report = train_interpreter(G, training_images(store, G), store.schema, icfg, progress=run.progress)
    interp.save(out, provenance={"generator": models.name, "annotations": str(annotations),
                                 "report": dataclasses.asdict(report)})


def _synthetic(run: Run, config: BenchConfig, models: _Generator, interpreter: Path, out: Path) -> None:
    from ganfactory.synth.factory import SynthConfig, synthesize

    run.log(f"{out.parent.name}: synthesizing {config.synthetic_samples} labelled candidates")
    in_process = config.synth_workers == 1
    synthesize(SynthConfig(models.name, str(interpreter), tuple(range(config.synthetic_samples)),
                           truncation_psi=config.truncation_psi, truncation_cutoff=_cutoff(config, models.G),
                           noise_mode=config.noise_mode, candidates_per_shard=min(1000, config.synthetic_samples),
                           filter_fraction=0.0, coco_object=None, device=config.device),
               out, workers=config.synth_workers, progress=run.progress, G=models.G if in_process else None)


def _filtered(uncertainty: np.ndarray, n: int, fraction: float) -> list[int]:
    """Indices of the first ``n`` candidates that survive dropping the ``fraction`` most uncertain of them."""
    from ganfactory.label.uncertainty import filter_most_uncertain

    return filter_most_uncertain(torch.from_numpy(uncertainty[:n]), fraction).tolist()


@dataclass(frozen=True)
class _Protocol:
    """Where one protocol's arms live: its splits by role, its arms' directory and its stages' key prefix."""

    name: str
    splits: dict[str, Path]
    root: Path
    """Directory holding ``arms/`` (the run's root for seen cars, ``unseen/`` for unseen cars)."""
    prefix: str
    """Stage keys: '' (seen cars, the keys of runs made before the unseen protocol existed) or 'unseen.'."""


def _uncertainty(arm: Path) -> np.ndarray:
    synth = LabeledDataset(arm / "synthetic")
    return np.array([synth.meta(i)["uncertainty"] for i in range(len(synth))], np.float64)


def _route(run: Run, route: str, config: BenchConfig, models: _Generator, proto: _Protocol,
           test: SegmentationData, arm: Path, prefix: str, sweep: bool = True) -> tuple[dict, list[dict], dict]:
    """One DatasetGAN arm in directory ``arm``: (main scores, sweep rows, uncertainty summary). ``sweep`` False
    trains only the main result (the generator sweep)."""
    annotations = arm / "annotations"
    if route == "annotator" and (annotations / "schema.json").is_file() and not _done_mark(annotations).is_file():
        _done(annotations)       # a run of an earlier version: the store renamed into place was its done mark
    if route == "annotator":
        run.stage(f"{prefix}.annotate", lambda: _simulated_annotations(
            run, config, models, proto.root / "arms" / "full" / "net", annotations), done=_done_mark(annotations))
    else:
        run.stage(f"{prefix}.annotate", lambda: _inversion_annotations(
            run, config, models, proto.splits["few"], annotations), done=_done_mark(annotations))
    interp = arm / "interpreter"
    run.stage(f"{prefix}.interpreter", lambda: _interpreter(run, config, models, annotations, interp),
              done=interp / "interpreter.json")
    run.stage(f"{prefix}.synthesize", lambda: _synthetic(run, config, models, interp, arm / "synthetic"),
              done=arm / "synthetic" / "dataset.json")
    uncertainty = _uncertainty(arm)
    ids = LabeledDataset(arm / "synthetic").ids
    rows = []
    plan = [(config.synthetic_samples, True)]
    if sweep:
        plan += [(n, f) for n in config.sweep_sizes for f in (True, False)
                 if (n, f) != (config.synthetic_samples, True)]
    main = None
    for n, filtered in plan:
        keep = _filtered(uncertainty, n, config.filter_fraction) if filtered else list(range(n))
        tag = f"n{n}-{'filtered' if filtered else 'all'}"
        scores = _arm(run, f"{prefix}.{tag}", f"{prefix} {tag}",
                      lambda keep=keep: _load(arm / "synthetic", config, keep), arm / "runs" / tag, test, config,
                      {"candidates": n, "filtered": filtered})
        row = {"route": route, "candidates": n, "filtered": filtered, "train_samples": len(keep),
               "miou": scores["miou"], "pck": scores.get("pck", {}).get("pck")}
        if (n, filtered) == (config.synthetic_samples, True):
            main = scores
            shutil.copyfile(arm / "runs" / tag / "scores.json", arm / "scores.json")
            shutil.copyfile(arm / "runs" / tag / "samples.npz", arm / "samples.npz")
        if sweep and n in config.sweep_sizes:
            rows.append(row)
    keep = set(_filtered(uncertainty, config.synthetic_samples, config.filter_fraction))
    removed = [i for i in range(len(uncertainty)) if i not in keep]
    threshold = round(float(uncertainty[removed].min()), 6) if removed else None     # rounded as the scores are
    summary = {"scores": uncertainty.round(6).tolist(), "removed": [ids[i] for i in removed], "threshold": threshold,
               "fraction": config.filter_fraction, "candidates": len(uncertainty)}
    return main, rows, summary


def mixed_data(synthetic: SegmentationData, real: SegmentationData, real_share: float) -> SegmentationData:
    """Arm 4's training set: the synthetic samples and the real ones repeated so that a batch drawn from the whole
    holds about ``real_share`` real images (mixed batches, one run, the same budget as every arm). Why mixed
    batches rather than fine-tuning on the real images afterwards: one run with one budget and no second schedule
    to tune, and the real labels keep correcting the synthetic ones' systematic errors throughout training."""
    if [c.name for c in synthetic.schema.classes] != [c.name for c in real.schema.classes]:
        raise GanfactoryError("the synthetic and real data of the mixed arm have different classes")
    repeats = max(1, round(real_share / (1 - real_share) * len(synthetic) / len(real)))
    index = torch.arange(len(real)).repeat(repeats)
    return SegmentationData(torch.cat([synthetic.images, real.images[index]]),
                            torch.cat([synthetic.labels, real.labels[index]]),
                            torch.cat([synthetic.keypoints, real.keypoints[index]]), synthetic.schema,
                            synthetic.ids + tuple(f"{real.ids[i]}.r{j}" for j in range(repeats)
                                                  for i in range(len(real))))


def _protocol(run: Run, config: BenchConfig, models: _Generator, proto: _Protocol) -> dict:
    """Every arm of one protocol; its part of results.json."""
    test = _load(proto.splits["test"], config)
    arms: dict[str, dict] = {}
    sweep: list[dict] = []
    uncertainty: dict[str, dict] = {}
    p = proto.prefix
    for arm in ("few", "full"):
        if arm in config.arms:
            arms[arm] = _arm(run, p + arm, p + arm, lambda arm=arm: _load(proto.splits[arm], config),
                             proto.root / "arms" / arm, test, config)
    for route in ROUTES:
        if route in config.arms:
            arms[route], rows, uncertainty[route] = _route(run, route, config, models, proto, test,
                                                           proto.root / "arms" / route, p + route)
            sweep += rows
    if "mixed" in config.arms:
        inv = proto.root / "arms" / "inversion"

        def data() -> SegmentationData:
            keep = _filtered(_uncertainty(inv), config.synthetic_samples, config.filter_fraction)
            return mixed_data(_load(inv / "synthetic", config, keep), _load(proto.splits["few"], config),
                              config.mixed_real_share)

        arms["mixed"] = _arm(run, p + "mixed", p + "mixed", data, proto.root / "arms" / "mixed", test, config,
                             {"real_share": config.mixed_real_share, "mode": "mixed batches"})
    seeds = {role: LabeledDataset(path).provenance.get("seeds") for role, path in proto.splits.items()}
    held_out = LabeledDataset(proto.splits["test"]).provenance.get("held_out_car_ids")
    return {"arms": {a: arms[a] for a in ARMS if a in arms}, "sweep": sweep, "uncertainty": uncertainty,
            "test_images": len(test), "seeds": seeds, "held_out_car_ids": held_out,
            "root": str(proto.root.relative_to(run.root)) or ".",
            "data": {k: str(v) for k, v in proto.splits.items()}}


_REAL_FEATURES: dict[str, torch.Tensor] = {}


def _kid(run: Run, config: BenchConfig, k: int, name: str, real: Path) -> float:
    """Generator ``name``'s KID against the first ``kid_samples`` images of ``real``, cached in OUT/kid/<k>.json."""
    path = run.root / "kid" / f"{k}.json"

    def compute() -> None:
        from ganfactory.gan.metrics import FeatureNet, compute_kid

        net = FeatureNet()
        key = str(real)
        if key not in _REAL_FEATURES:
            ds = LabeledDataset(real)
            n = min(config.kid_samples, len(ds))
            images = torch.from_numpy(np.stack([ds.image(i) for i in range(n)])).permute(0, 3, 1, 2)
            _REAL_FEATURES[key] = net.features(images)
        G = _Generator(config, name).G
        value = compute_kid(G, _REAL_FEATURES[key], num_generated=config.kid_samples, net=net, device=config.device)
        run.write_json(path.relative_to(run.root), {"generator": name, "kid": value, "real": key,
                                                    "samples": config.kid_samples})

    run.stage(f"kid.{k}", compute, done=path, what=f"KID of {name}")
    return json.loads(path.read_text())["kid"]


def _generator_sweep(run: Run, config: BenchConfig, models: _Generator, proto: _Protocol,
                     main: dict) -> list[dict]:
    """The annotator route with each of ``sweep_generators`` on ``proto``: rows of generator, KID, mIoU, PCK."""
    if not config.sweep_generators:
        return []
    test = _load(proto.splits["test"], config)
    rows = []
    for k, name in enumerate(config.sweep_generators):
        kid = _kid(run, config, k, name, proto.splits["full"])
        if name == config.generator and "annotator" in main["arms"]:
            scores = main["arms"]["annotator"]
        else:
            gen = models if name == config.generator else _Generator(config, name)
            scores, _, _ = _route(run, "annotator", config, gen, proto, test, proto.root / "gens" / str(k),
                                  f"{proto.prefix}gen{k}", sweep=False)
        rows.append({"generator": name, "kid": kid, "miou": scores["miou"],
                     "pck": scores.get("pck", {}).get("pck"), "protocol": proto.name})
    return rows


def run_bench(config: BenchConfig, out: str | Path, data_dir: str | None = None, progress: bool = True,
              reuse: dict[str, str | Path] | None = None) -> dict:
    """Run (or resume) the benchmark into ``out``; returns results.json's contents and writes the report.
    Computes on ``config.device`` with ``config.threads`` intra-op threads and restores the caller's setting.

    ``reuse``: paths relative to a run directory (``unseen/arms/full``, say) -> the run directory to copy each from
    when missing here, so that stages another run did with the same settings are skipped (the ablation shares its
    fully supervised network and inversion annotations; the caller vouches that they are the same)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run_bench(config, Path(out), data_dir, progress, reuse or {})
    finally:
        torch.set_num_threads(threads)


def _reuse(out: Path, paths: dict[str, str | Path]) -> None:
    for rel, source in paths.items():
        src, dst = Path(source) / rel, out / rel
        if dst.exists() or not src.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".tmp-{dst.name}")
        if tmp.exists():
            shutil.rmtree(tmp)
        if src.is_dir():
            shutil.copytree(src, tmp)
        else:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)


def _run_bench(config: BenchConfig, out: Path, data_dir: str | None, progress: bool,
               reuse: dict[str, str | Path]) -> dict:
    header = {"benchmark": "cars", "config": config.to_json(), "data": None if data_dir is None else str(data_dir)}
    _check_data(config, data_dir)
    from ganfactory.gan.io import BUILTIN_GENERATORS

    missing = [g for g in config.sweep_generators if g not in BUILTIN_GENERATORS and not Path(g).expanduser().exists()]
    if missing:
        raise GanfactoryError(f"--sweep-generators: no such checkpoint {', '.join(missing)} (a path or one of "
                              f"{', '.join(BUILTIN_GENERATORS)})")
    run = Run.open(out, header, "bench.json", "bench", progress, allowed=("report",))
    _reuse(out, reuse)
    t0 = time.perf_counter()
    models = _Generator(config)
    paths = _split_paths(config, run, data_dir)
    last = paths[PROTOCOLS[config.protocols[-1]]["test"]]
    run.stage("data", lambda: _build_splits(config, run, paths),
              done=None if data_dir is None else last / "dataset.json")
    for path in paths.values():
        _check_size(path, config.resolution)
    protocols = {}
    for name in config.protocols:
        splits = {role: paths[split] for role, split in PROTOCOLS[name].items() if split in paths}
        proto = _Protocol(name, splits, out if name == "seen" else out / name, "" if name == "seen" else f"{name}.")
        protocols[name] = _protocol(run, config, models, proto)
    headline = "unseen" if "unseen" in protocols else config.protocols[0]
    hp = _Protocol(headline, {role: paths[split] for role, split in PROTOCOLS[headline].items() if split in paths},
                   out if headline == "seen" else out / headline, "" if headline == "seen" else f"{headline}.")
    generator_sweep = _generator_sweep(run, config, models, hp, protocols[headline])
    first = protocols[config.protocols[0]]
    target, _ = relabelled(LabeledDataset(first["data"]["test"]).schema, config.classes)
    seeds = dict(first["seeds"])
    if set(ROUTES) & set(config.arms):
        seeds.update(synthetic=[0, config.synthetic_samples], interpreter=config.seed)
    if "annotator" in config.arms:
        seeds["annotator"] = [ANNOTATOR_FIRST_SEED, ANNOTATOR_FIRST_SEED + config.annotated_images]
    seeds["training"] = config.train.seed
    for p in protocols.values():
        p["seeds"] = {**seeds, **p["seeds"]}
    results = {"benchmark": "cars", "quick": config.quick, "generator": config.generator,
               "classes": [c.name for c in target.classes], "keypoints": list(target.keypoints),
               "test_images": first["test_images"], "arms": first["arms"], "sweep": first["sweep"],
               "uncertainty": first["uncertainty"], "protocols": protocols, "headline": headline,
               "generator_sweep": generator_sweep, "config": config.to_json(), "seeds": first["seeds"],
               "data": first["data"], "timings": dict(run.timings),
               "seconds_this_run": round(time.perf_counter() - t0, 1)}
    run.write_json("results.json", results)
    from ganfactory.report import write_bench_report

    report = write_bench_report(out)
    run.log(f"results: {out / 'results.json'}; report: {report}")
    return results
