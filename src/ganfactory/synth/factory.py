"""The labeled-data factory: a generator and an interpreter in, a LabeledDataset out.

Plan: the seed list is cut into blocks of ``candidates_per_shard`` seeds; block i becomes shard i of the
dataset. Every candidate is synthesized and labelled; with ``filter_fraction`` q the
``floor(len(block) * q)`` most uncertain candidates of the block are dropped (DatasetGAN drops the most
uncertain 10% of all samples; doing it per block keeps every shard independent, so shards can be written
by any worker, in any order, and a resumed run never needs the others' scores).

Determinism: a shard's bytes depend only on the models, the settings and its seeds: latents come from
seeds (NVlabs' z; 'random' noise from ``torch.Generator().manual_seed(seed)``), batches are cut the same
way everywhere, and every worker computes with ``threads_per_worker`` intra-op threads (float reductions
depend on the thread count). So the local and Ray backends write identical datasets, and a killed run
resumed gives the dataset an uninterrupted run gives (shards are atomic: see
``ganfactory.datasets.labeled``).

WebDataset (optional): ``wds/<shard>.tar`` per shard with ``<id>.png`` (image), ``<id>.label.png`` and
``<id>.json`` (the sample's meta line), written atomically before the shard's commit mark.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganfactory.atomic import atomic_path
from ganfactory.datasets.labeled import (
    DatasetPlan,
    LabeledSample,
    finish_dataset,
    missing_shards,
    plan_dataset,
    shard_name,
    write_shard,
)
from ganfactory.errors import GanfactoryError
from ganfactory.gan.latent import Latent, seed_item_id, synthesize_latents
from ganfactory.gan.networks import NOISE_MODES
from ganfactory.gan.sampling import to_uint8
from ganfactory.keypoints import keypoints_to_rows
from ganfactory.label.uncertainty import filter_most_uncertain
from ganfactory.workers import die_with_parent

__all__ = ["BACKENDS", "ShardStats", "SynthConfig", "SynthReport", "compact_seeds", "kept_per_block", "plan_synthesis",
           "synthesize", "todo_shards", "write_synth_shard"]

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class SynthConfig:
    """What to synthesize. Models are named by path (or built-in name) so that every worker loads them itself."""

    generator: str
    """Checkpoint path or built-in generator name."""
    interpreter: str
    """Interpreter directory (``ganfactory interpreter train --out``)."""
    seeds: tuple[int, ...]
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    """Truncate only the first this many style layers (DatasetGAN: the coarse half, ``gan.latent.coarse_cutoff``);
    None = all."""
    noise_mode: str = "const"
    """'random' draws each sample's noise from its seed (DatasetGAN's fresh noise per image, reproducible)."""
    candidates_per_shard: int = 1000
    """Seeds per shard before uncertainty filtering."""
    filter_fraction: float = 0.0
    """Drop this fraction of each shard's most uncertain candidates (DatasetGAN: 0.1)."""
    batch_size: int = 8
    webdataset: bool = False
    coco_object: str | None = "object"
    """COCO category name of the whole object; None = no coco.json."""
    threads_per_worker: int = 1
    """Intra-op threads of every worker (and of an in-process run): part of what makes bytes reproducible."""
    compile: bool = False
    """Fuse the labeller's resize-and-sum with ``torch.compile`` (much faster at 256 px and up; compiles once per
    worker, about half a minute; labels may differ from the eager path's in float rounding, so it is part of the
    recorded settings)."""
    device: str = "cpu"
    """Where every worker computes ('cpu', 'cuda', 'cuda:N'). Not in the recorded settings (like the number of
    workers): a resume on another device goes on."""

    def __post_init__(self) -> None:
        if not self.seeds:
            raise GanfactoryError("no seeds given")
        if len(set(self.seeds)) != len(self.seeds):
            raise GanfactoryError("seeds repeat; every sample needs its own seed")
        if self.noise_mode not in NOISE_MODES:
            raise GanfactoryError(f"noise mode must be one of {NOISE_MODES}, got {self.noise_mode!r}")
        if not 0 <= self.filter_fraction < 1:
            raise GanfactoryError(f"the filtered fraction must be in [0, 1), got {self.filter_fraction}")
        if self.candidates_per_shard < 1 or self.batch_size < 1 or self.threads_per_worker < 1:
            raise GanfactoryError("shard size, batch size and threads must be positive")


def kept_per_block(block: int, fraction: float) -> int:
    """Samples a block of ``block`` candidates keeps after dropping the ``fraction`` most uncertain."""
    return block - math.floor(block * fraction + 1e-9)


def compact_seeds(seeds: tuple[int, ...]) -> str:
    """(0, 1, 2, 5) -> '0-2,5': the seed list as ``parse_seeds`` reads it (provenance stays small)."""
    parts, start = [], 0
    for i in range(1, len(seeds) + 1):
        if i == len(seeds) or seeds[i] != seeds[i - 1] + 1:
            a, b = seeds[start], seeds[i - 1]
            parts.append(str(a) if a == b else f"{a}-{b}")
            start = i
    return ",".join(parts)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plan_synthesis(config: SynthConfig, out: str | Path, schema, label_resolution: int) -> DatasetPlan:
    """Start or resume the dataset at ``out`` (a resume with other settings is refused by the writer)."""
    blocks = [config.seeds[i:i + config.candidates_per_shard]
              for i in range(0, len(config.seeds), config.candidates_per_shard)]
    count = sum(kept_per_block(len(b), config.filter_fraction) for b in blocks)
    weights = Path(config.interpreter) / "weights.safetensors"
    provenance = {"producer": "ganfactory synthesize", "generator": config.generator,
                  "interpreter": config.interpreter, "interpreter_sha256": _sha256(weights),
                  "seeds": compact_seeds(config.seeds), "truncation_psi": config.truncation_psi,
                  **({} if config.truncation_cutoff is None else {"truncation_cutoff": config.truncation_cutoff}),
                  "noise_mode": config.noise_mode, "candidates_per_shard": config.candidates_per_shard,
                  "filter_fraction": config.filter_fraction, "batch_size": config.batch_size,
                  "threads_per_worker": config.threads_per_worker, "label_resolution": label_resolution,
                  "webdataset": config.webdataset, "compile": config.compile}
    return plan_dataset(out, schema, count, kept_per_block(config.candidates_per_shard, config.filter_fraction),
                        provenance)


def todo_shards(plan: DatasetPlan, config: SynthConfig) -> list[int]:
    """Shards still to write: no commit mark, or (with WebDataset) no tar."""
    missing = set(missing_shards(plan))
    if config.webdataset:
        missing |= {i for i in range(plan.num_shards) if not (plan.root / "wds" / f"{shard_name(i)}.tar").is_file()}
    return sorted(missing)


@dataclass(frozen=True)
class ShardStats:
    """Where one shard's time went."""

    index: int
    candidates: int
    samples: int
    generator_seconds: float
    label_seconds: float
    write_seconds: float


@torch.no_grad()
def write_synth_shard(plan: DatasetPlan, config: SynthConfig, index: int, G, interpreter) -> ShardStats:
    """Synthesize, label, filter and write shard ``index`` (atomically; WebDataset tar first, commit mark last)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads_per_worker)
    try:
        return _write_shard(plan, config, index, G, interpreter)
    finally:
        torch.set_num_threads(threads)


def _write_shard(plan: DatasetPlan, config: SynthConfig, index: int, G, interpreter) -> ShardStats:
    seeds = config.seeds[index * config.candidates_per_shard:(index + 1) * config.candidates_per_shard]
    layers = interpreter.taps.layers
    t_gen = t_lab = 0.0
    images, labels, scores, keypoints = [], [], [], []
    for start in range(0, len(seeds), config.batch_size):
        batch = seeds[start:start + config.batch_size]
        t0 = time.perf_counter()
        latents = [Latent.from_seed(G, s, config.truncation_psi, config.noise_mode, config.truncation_cutoff)
                   for s in batch]
        img, feats = synthesize_latents(G, latents, return_features=True)
        t1 = time.perf_counter()
        pred = interpreter.predict_features({k: feats[k] for k in layers})
        t2 = time.perf_counter()
        t_gen += t1 - t0
        t_lab += t2 - t1
        images.append(to_uint8(img))
        labels.append(pred.labels)
        scores.append(pred.score)
        keypoints.append(pred.keypoints)
    t0 = time.perf_counter()
    images, labels, scores = np.concatenate(images), np.concatenate(labels), torch.cat(scores)
    if images.shape[1:3] != labels.shape[1:3]:
        raise GanfactoryError(f"the interpreter labels at {labels.shape[1]} px, the generator makes {images.shape[1]} "
                              "px images; train the interpreter with the image's resolution to synthesize")
    keep = filter_most_uncertain(scores, config.filter_fraction).tolist()
    samples = []
    for i in keep:
        kps = [] if keypoints[0] is None else keypoints_to_rows(np.concatenate(keypoints)[i], decimals=4)
        samples.append(LabeledSample(id=seed_item_id(seeds[i]), image=images[i], label=labels[i], keypoints=kps,
                                     uncertainty=round(float(scores[i]), 7),
                                     latent=_latent_meta(seeds[i], config)))
    if config.webdataset:
        _write_tar(plan.root / "wds" / f"{shard_name(index)}.tar", samples)
    write_shard(plan, index, samples)
    return ShardStats(index, len(seeds), len(samples), t_gen, t_lab, time.perf_counter() - t0)


def _latent_meta(seed: int, config: SynthConfig) -> dict:
    """A sample's latent as its meta line records it (enough to regenerate it with ``Latent.from_seed``)."""
    spec = {"seed": int(seed), "truncation_psi": config.truncation_psi, "noise_mode": config.noise_mode}
    if config.truncation_cutoff is not None:
        spec["truncation_cutoff"] = config.truncation_cutoff
    return spec


def _png(array: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array), mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_tar(path: Path, samples: list[LabeledSample]) -> None:
    """A WebDataset shard with fixed metadata (mtime 0, root owner) so that its bytes are reproducible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        for s in samples:
            meta = {"id": s.id, "keypoints": [list(p) for p in s.keypoints], "uncertainty": s.uncertainty,
                    "latent": s.latent}
            for name, data in ((f"{s.id}.png", _png(s.image, "RGB")), (f"{s.id}.label.png", _png(s.label, "L")),
                               (f"{s.id}.json", json.dumps(meta, separators=(",", ":")).encode())):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))


# ------------------------------------------------------------------------------------------ runners

@dataclass(frozen=True)
class SynthReport:
    """A finished run: where the dataset is and where the time went (summed over the shards written now)."""

    dataset: Path
    samples: int
    shards_written: int
    candidates: int
    seconds: float
    generator_seconds: float
    label_seconds: float
    write_seconds: float

    def to_json(self) -> dict:
        d = asdict(self)
        d["dataset"] = str(self.dataset)
        return d


def _load_models(config: SynthConfig):
    from ganfactory.gan import load_generator
    from ganfactory.label.interpreter import load_interpreter

    return (load_generator(config.generator, device=config.device),
            load_interpreter(config.interpreter, compile=config.compile, device=config.device))


_WORKER: dict = {}


def _pool_init(config: SynthConfig, root: str, plan_args: tuple) -> None:
    die_with_parent()
    torch.set_num_threads(config.threads_per_worker)
    G, interp = _load_models(config)
    _WORKER.update(G=G, interp=interp, config=config, plan=DatasetPlan(Path(root), *plan_args))


def _pool_run(index: int) -> ShardStats:
    return write_synth_shard(_WORKER["plan"], _WORKER["config"], index, _WORKER["G"], _WORKER["interp"])


def synthesize(config: SynthConfig, out: str | Path, backend: str = "local", workers: int = 1,
               address: str | None = None, progress: bool = True, G=None) -> SynthReport:
    """Write (or resume) the dataset at ``out``; returns the run's timing.

    backend 'local': ``workers`` = 1 runs in this process, more start that many processes. backend 'ray':
    ``workers`` actors on a Ray cluster (``address`` of a running one, or a local one started here); each
    loads the models once and writes whole shards to ``out``, which all workers must see (a shared disk).
    ``G``: the generator ``config.generator`` names, already loaded on ``config.device`` by the caller (an
    in-process run then does not read the checkpoint again); workers always load their own.
    """
    from tqdm import tqdm

    if backend not in BACKENDS:
        raise GanfactoryError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if workers < 1:
        raise GanfactoryError(f"workers must be at least 1, got {workers}")
    if address is not None and backend != "ray":
        raise GanfactoryError("--address names a Ray cluster; use it with --backend ray")
    t0 = time.perf_counter()
    in_process = backend == "local" and workers == 1
    if in_process and G is not None:
        from ganfactory.label.interpreter import load_interpreter

        interp = load_interpreter(config.interpreter, compile=config.compile, device=config.device)
    elif in_process:
        G, interp = _load_models(config)
    else:                            # the workers load the models; here only the schema and label size are needed
        from ganfactory.label.interpreter import load_interpreter

        G, interp = None, load_interpreter(config.interpreter)
    if G is None:                    # only to check, before anything is written, that the two models belong together
        from ganfactory.gan import load_generator

        interp.check_generator(load_generator(config.generator))
    else:
        interp.check_generator(G)
    plan = plan_synthesis(config, out, interp.schema, interp.taps.label_resolution)
    todo = todo_shards(plan, config)
    stats: list[ShardStats] = []
    bar = tqdm(total=len(todo), desc="shards", unit="shard", disable=not progress)
    if todo and in_process:
        for index in todo:
            stats.append(write_synth_shard(plan, config, index, G, interp))
            bar.update()
    elif todo and backend == "local":
        import multiprocessing as mp

        plan_args = (plan.schema, plan.count, plan.shard_size, plan.provenance)
        with mp.get_context("spawn").Pool(workers, _pool_init, (config, str(plan.root), plan_args)) as pool:
            for s in pool.imap_unordered(_pool_run, todo):
                stats.append(s)
                bar.update()
    elif todo:
        stats = _run_ray(plan, config, todo, workers, address, bar)
    bar.close()
    finish_dataset(plan, config.coco_object)
    return SynthReport(plan.root, plan.count, len(stats), sum(s.candidates for s in stats), time.perf_counter() - t0,
                       sum(s.generator_seconds for s in stats), sum(s.label_seconds for s in stats),
                       sum(s.write_seconds for s in stats))


def _run_ray(plan: DatasetPlan, config: SynthConfig, todo: list[int], workers: int, address: str | None,
             bar) -> list[ShardStats]:
    try:
        import ray
    except ImportError:
        raise GanfactoryError("the ray backend needs Ray: pip install 'ganfactory[ray]'") from None
    started = False
    if not ray.is_initialized():
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        @ray.remote(num_cpus=1)
        class ShardWriter:
            """One worker: loads the models once, then writes whole shards."""

            def __init__(self, config: SynthConfig, root: str, plan_args: tuple):
                torch.set_num_threads(config.threads_per_worker)
                self.G, self.interp = _load_models(config)
                self.config, self.plan = config, DatasetPlan(Path(root), *plan_args)

            def write(self, index: int) -> ShardStats:
                return write_synth_shard(self.plan, self.config, index, self.G, self.interp)

        plan_args = (plan.schema, plan.count, plan.shard_size, plan.provenance)
        actors = [ShardWriter.remote(config, str(plan.root), plan_args) for _ in range(min(workers, len(todo)))]
        pool = ray.util.ActorPool(actors)
        stats = []
        for s in pool.map_unordered(lambda a, i: a.write.remote(i), todo):
            stats.append(s)
            bar.update()
        return stats
    finally:
        if started:
            ray.shutdown()
