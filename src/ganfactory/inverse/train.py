"""Training the inverse-graphics network through the DIB-R renderer: resumable, one thread by default.

Each iteration predicts a mesh, texture (and light) from one view of each object and renders it into that
view and, with ``views=2``, into another view of the same object (the data's camera), scoring the renders
with GANverse3D's losses; the camera head learns the data's camera. On GAN multi-view data the annotated
camera of every view code is refined jointly (``inverse.refine``; ``refine_cameras``).

Data parallel (``torchrun --nproc_per_node=N -m ganfactory.cli inverse train ...``): every process draws the
whole batch (indices, partners) from the same generator and computes on its slice; gradients are averaged
with all_reduce (``gan.train``'s helper, gloo on a CPU). ``accumulate`` splits a process's slice further into
micro-batches. N processes with accumulate 1 compute what one process with accumulate N computes (the same
slices, BatchNorm statistics per slice; up to float summation order): ``tests/inverse/test_train_ddp.py``.
Rank 0 validates, logs and writes checkpoints; every rank resumes from the newest one.

Run directory::

    RUN/train.json                 the resolved settings (written first; a resume with others is refused)
    RUN/checkpoints/it<N>.safetensors   model + Adam state + RNG, the state JSON in the file's metadata
                                   (one file, written atomically; the newest two are kept)
    RUN/model/{config.json, model.safetensors}   the weights-only model (``load_model``), at every checkpoint
    RUN/log.jsonl                  loss terms every ``log_every`` iterations
    RUN/val.jsonl                  held-out silhouette IoU and azimuth error at every checkpoint
    RUN/cameras.json               the refined per-view-code camera offsets (multi-view data with refinement)
    RUN/done.json                  written last: iterations, wall time, peak memory
"""

from __future__ import annotations

import dataclasses
import json
import math
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm import tqdm

from ganfactory.atomic import atomic_path, write_json
from ganfactory.errors import GanfactoryError
from ganfactory.inverse.camera import OrbitCamera, wrap_degrees
from ganfactory.inverse.data import ViewData, load_views
from ganfactory.inverse.losses import (
    DiscriminatorFeatures,
    LossWeights,
    camera_loss,
    mesh_terms,
    perceptual_loss,
    reconstruction_terms,
    weighted_total,
)
from ganfactory.inverse.model import save_model
from ganfactory.inverse.network import InverseGraphicsNet, NetworkConfig
from ganfactory.inverse.refine import ViewCodeCameras
from ganfactory.render import RasterSettings, Renderer, edge_face_pairs

__all__ = ["TrainConfig", "quick_config", "train"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (recorded in RUN/train.json)."""

    data: str
    """A LabeledDataset whose samples carry cameras (cars renders or multi-view data)."""
    iterations: int = 20_000
    batch: int = 16
    lr: float = 3e-4
    """Adam's learning rate (the paper's 1e-4 over 200k iterations; our budgets are 100x shorter)."""
    views: int = 2
    """2: render each prediction into its own view and another view of the object; 1: single view."""
    seed: int = 0
    holdout: int = 32
    """The last samples of the data are held out for the validation scores."""
    max_samples: int | None = None
    """Use only the first samples of the data (quick runs)."""
    checkpoint_every: int = 200
    log_every: int = 25
    perceptual_features: str | None = "cars64"
    """The built-in generator (or checkpoint) whose discriminator gives the perceptual features; None: off."""
    network: NetworkConfig = field(default_factory=NetworkConfig)
    losses: LossWeights = field(default_factory=LossWeights)
    refine_cameras: bool = True
    """Learn a camera offset per view code (GAN multi-view data; no effect on data without view codes)."""
    refine_lr: float = 1e-3
    """Adam's learning rate of the camera offsets (radians and metres per step, at most)."""
    refine_start: int = 200
    """The offsets learn from this iteration on (the shape must first be roughly a car for the images to say
    which camera fits)."""
    accumulate: int = 1
    """Micro-batches per process per iteration (gradients summed; less memory, the same step)."""
    device: str = "cpu"
    threads: int = 1

    def __post_init__(self) -> None:
        if self.views not in (1, 2):
            raise GanfactoryError(f"views must be 1 or 2, got {self.views}")
        for name in ("iterations", "batch", "checkpoint_every", "log_every", "accumulate"):
            if getattr(self, name) < 1:
                raise GanfactoryError(f"{name} must be at least 1, got {getattr(self, name)}")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def quick_config(data: str, **changes) -> TrainConfig:
    """A few iterations on a few samples: proves the wiring (CI), not the science."""
    base = dict(data=data, iterations=20, batch=4, max_samples=48, holdout=8, checkpoint_every=10, log_every=5,
                perceptual_features=None, network=NetworkConfig(texture_size=32))
    base.update(changes)
    return TrainConfig(**base)


def _split(data: ViewData, holdout: int) -> tuple[list[int], list[int]]:
    """(train, held-out) indices: the last ``holdout`` samples; for multi-view data whole content codes (the
    last ones, at least ``holdout`` samples), so that every view code is trained and the held-out cars are new."""
    n = len(data)
    holdout = min(holdout, max(n // 4, 1))
    if data.view_code is None or int(data.group.max()) < 1:
        return list(range(n - holdout)), list(range(n - holdout, n))
    order = sorted(range(len(data.groups)), key=lambda g: (len(data.groups[g]), data.groups[g]))
    held: set[int] = set()
    counts = torch.bincount(data.group[data.group >= 0], minlength=len(data.groups))
    while sum(int(counts[g]) for g in held) < holdout and len(held) < len(order) - 1:
        held.add(order[len(order) - 1 - len(held)])
    group = data.group.tolist()
    return [i for i in range(n) if group[i] not in held], [i for i in range(n) if group[i] in held]


def _save_checkpoint(path: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
                     state: dict, refiner: torch.nn.Module | None = None) -> None:
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in net.state_dict().items()}
    if refiner is not None:
        tensors.update({f"refine.{k}": v.detach().contiguous() for k, v in refiner.state_dict().items()})
    osd = opt.state_dict()
    for idx, st in osd["state"].items():
        for k, v in st.items():
            tensors[f"optim.{idx}.{k}"] = v.detach().reshape(-1) if v.ndim == 0 else v.detach().contiguous()
    tensors["rng"] = gen.get_state()
    meta = {"state": json.dumps(state), "param_groups": json.dumps(osd["param_groups"])}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def _load_checkpoint(path: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
                     refiner: torch.nn.Module | None = None) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if refiner is not None:
        refiner.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("refine.")})
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v.reshape(()) if name == "step" else v
    opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    gen.set_state(tensors["rng"])
    return json.loads(meta["state"])


def _latest(ckpt_dir: Path) -> Path | None:
    found = sorted(ckpt_dir.glob("it*.safetensors"))
    return found[-1] if found else None


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@torch.no_grad()
def validate(net: InverseGraphicsNet, data: ViewData, index: list[int], device: str, batch: int = 32) -> dict:
    """Hard-silhouette IoU in the input view with the data's camera and with the predicted one; azimuth error."""
    was = net.training
    net.eval()
    size = net.config.image_size
    renderer = Renderer(RasterSettings((size, size)))
    iou_given, iou_pred, az_err = [], [], []
    for start in range(0, len(index), batch):
        b = data.batch(torch.tensor(index[start:start + batch]), device)
        pred = net(b["images"])
        mesh = net.mesh(pred)
        gt = b["masks"] > 0.5
        for cam in (OrbitCamera(b["azimuth"], b["elevation"], b["t"], data.fov_y), pred.camera):
            m = renderer(mesh, cam.to_camera((size, size))).face_idx >= 0
            iou = ((m & gt).flatten(1).sum(1) / (m | gt).flatten(1).sum(1).clamp(min=1)).tolist()
            (iou_given if cam is not pred.camera else iou_pred).extend(iou)
        az_err.extend(wrap_degrees(torch.rad2deg(pred.camera.azimuth - b["azimuth"])).abs().tolist())
    net.train(was)
    az = torch.tensor(az_err)
    return {"iou_given_camera": float(torch.tensor(iou_given).mean()),
            "iou_predicted_camera": float(torch.tensor(iou_pred).mean()),
            "azimuth_error_median_deg": float(az.median()), "azimuth_within_30": float((az <= 30).float().mean())}


def _resolve_network(config: TrainConfig, data: ViewData, train_index: list[int]) -> NetworkConfig:
    """Fill the data-dependent camera fields: the mean view offset and the field of view."""
    t = data.t[train_index]
    return dataclasses.replace(config.network, t_init=tuple(round(float(v), 4) for v in t.mean(0)),
                               fov_deg=round(math.degrees(data.fov_y), 6))


def _step_loss(net: InverseGraphicsNet, data: ViewData, views: list[dict], renderer: Renderer, pairs: Tensor,
               features: DiscriminatorFeatures | None, refiner: ViewCodeCameras | None, config: TrainConfig,
               it: int) -> tuple[Tensor, dict]:
    """The weighted loss of one micro-batch: predict from ``views[0]``, render into every view."""
    w = config.losses
    size = net.config.image_size
    pred = net(views[0]["images"])
    mesh = net.mesh(pred)
    terms = mesh_terms(pred, net.faces, pairs)
    color = iou = 0.0
    cams = []
    for k, view in enumerate(views):
        cam = OrbitCamera(view["azimuth"], view["elevation"], view["t"], data.fov_y)
        if refiner is not None and it >= config.refine_start:
            cam = refiner(cam, data.view_code.to(view["index"].device)[view["index"]])
        cams.append(cam)
        light = pred.light
        if light is not None and k > 0:   # another view has its own lighting: predict it from that view
            light = net(view["images"]).light
        rendered = renderer(mesh, cam.to_camera((size, size)), light)
        rec = reconstruction_terms(rendered.image, rendered.soft_mask, view["images"], view["masks"])
        color = color + rec["color"] / len(views)
        iou = iou + rec["iou"] / len(views)
        if k == 0 and features is not None and it >= w.perceptual_start:
            target = view["images"] * view["masks"][:, None]
            terms["perceptual"] = perceptual_loss(features, rendered.image, target)
    terms["color"], terms["iou"] = color, iou
    target = cams[0].detach()
    terms["camera"] = camera_loss(pred, target.azimuth, target.elevation, target.t, net.t_scale)
    return weighted_total(terms, w), terms


def train(config: TrainConfig, out: str | Path, progress: bool = True) -> Path:
    """Train (or resume) into ``out``; returns the weights-only model directory ``out/model``.

    Under torchrun (``WORLD_SIZE`` > 1) the processes split every batch; see the module's docstring."""
    from ganfactory.gan.train import ProcessGroup

    out = Path(out)
    device = config.device
    ddp = ProcessGroup(torch.device(device))
    main = ddp.rank == 0
    slices = ddp.world * config.accumulate
    if config.batch % slices:
        raise GanfactoryError(f"batch {config.batch} does not split into {ddp.world} processes x "
                              f"{config.accumulate} micro-batches")
    out.mkdir(parents=True, exist_ok=True)
    settings_path = out / "train.json"
    if settings_path.is_file():
        old = json.loads(settings_path.read_text())
        mine = json.loads(json.dumps(config.to_json()))
        if {k: v for k, v in old.items() if k != "iterations"} != {k: v for k, v in mine.items() if k != "iterations"}:
            raise GanfactoryError(f"{out} holds a run with other settings (train.json); use a new --out")
    if ddp.world > 1:
        dist.barrier()   # every rank has compared before rank 0 writes
    if main:
        write_json(settings_path, config.to_json())
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)

    n = None
    if config.max_samples is not None:
        from ganfactory.datasets.labeled import LabeledDataset

        n = min(len(LabeledDataset(config.data)), config.max_samples)
    data = load_views(config.data, None if n is None else range(n), progress=progress and main)
    train_index, val_index = _split(data, config.holdout)
    net_config = _resolve_network(config, data, train_index)
    net = InverseGraphicsNet(net_config).to(device)
    refiner = None
    groups = [{"params": list(net.parameters()), "lr": config.lr}]
    if config.refine_cameras and data.view_code is not None:
        refiner = ViewCodeCameras(int(data.view_code.max()) + 1).to(device)
        groups.append({"params": list(refiner.parameters()), "lr": config.refine_lr})
    opt = torch.optim.Adam(groups, lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    features = None
    if config.perceptual_features and config.losses.perceptual > 0:
        from ganfactory.gan.io import read_any

        disc = read_any(config.perceptual_features).discriminator
        if disc is None:
            raise GanfactoryError(f"{config.perceptual_features} has no discriminator for the perceptual term")
        features = DiscriminatorFeatures(disc).to(device)

    ckpt_dir = out / "checkpoints"
    ckpt_dir.mkdir(exist_ok=True)
    state = {"iteration": 0, "seconds": 0.0, "peak_rss_mb": 0.0}
    latest = _latest(ckpt_dir)
    if latest is not None:
        state = _load_checkpoint(latest, net, opt, gen, refiner)
    if state["iteration"] >= config.iterations:
        return out / "model"

    size = net_config.image_size
    renderer = Renderer(RasterSettings((size, size)))
    pairs = edge_face_pairs(net.faces)
    train_t = torch.tensor(train_index)
    per = config.batch // slices
    mine = [ddp.rank * config.accumulate + k for k in range(config.accumulate)]
    net.train()
    bar = tqdm(total=config.iterations, initial=state["iteration"], desc="inverse train", unit="it",
               disable=not (progress and main))
    t_start = time.time() - state["seconds"]
    log = open(out / "log.jsonl", "a") if main else None
    try:
        while state["iteration"] < config.iterations:
            it = state["iteration"]
            idx = train_t[torch.randint(len(train_t), (config.batch,), generator=gen)]
            partner = data.partners(idx, gen) if config.views == 2 else None
            opt.zero_grad(set_to_none=True)
            total, terms = torch.zeros(()), {}
            for k in mine:
                part = slice(k * per, (k + 1) * per)
                views = [data.batch(idx[part], device)]
                if partner is not None:
                    views.append(data.batch(partner[part], device))
                loss, t = _step_loss(net, data, views, renderer, pairs, features, refiner, config, it)
                (loss / config.accumulate).backward()
                total = total + loss.detach() / config.accumulate
                for name, v in t.items():
                    terms[name] = terms.get(name, 0.0) + float(torch.as_tensor(v).detach()) / config.accumulate
            ddp.average_grads(net)
            if refiner is not None and it >= config.refine_start:   # before, the offsets have no gradient
                ddp.average_grads(refiner)
            opt.step()
            state["iteration"] = it + 1
            bar.update(1)
            if state["iteration"] % config.log_every == 0 or state["iteration"] == config.iterations:
                total = ddp.mean(total)
                if main:
                    row = {"iteration": state["iteration"], "total": float(total), **terms,
                           "seconds": round(time.time() - t_start, 1)}
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    bar.set_postfix(loss=f"{float(total):.3f}", iou=f"{terms['iou']:.3f}",
                                    col=f"{terms['color']:.3f}")
            if state["iteration"] % config.checkpoint_every == 0 or state["iteration"] == config.iterations:
                state["seconds"] = time.time() - t_start
                state["peak_rss_mb"] = max(state["peak_rss_mb"], _peak_rss_mb())
                if main:
                    _checkpoint(out, net, opt, gen, state, refiner, data, val_index, config)
                if ddp.world > 1:
                    dist.barrier()
    finally:
        if log is not None:
            log.close()
        bar.close()
    if main:
        write_json(out / "done.json", {"iterations": state["iteration"], "seconds": round(state["seconds"], 1),
                                       "peak_rss_mb": round(state["peak_rss_mb"], 1), "processes": ddp.world})
    return out / "model"


def _checkpoint(out: Path, net: InverseGraphicsNet, opt: torch.optim.Optimizer, gen: torch.Generator, state: dict,
                refiner: ViewCodeCameras | None, data: ViewData, val_index: list[int], config: TrainConfig) -> None:
    """Rank 0's work at a checkpoint: validate, write the checkpoint, the model and the refined cameras."""
    scores = validate(net, data, val_index, config.device)
    with open(out / "val.jsonl", "a") as f:
        f.write(json.dumps({"iteration": state["iteration"], **scores}) + "\n")
    ckpt_dir = out / "checkpoints"
    _save_checkpoint(ckpt_dir / f"it{state['iteration']:07d}.safetensors", net, opt, gen, state, refiner)
    for old in sorted(ckpt_dir.glob("it*.safetensors"))[:-2]:
        old.unlink()
    save_model(net, out / "model", {"iterations": state["iteration"], "data": config.data,
                                    "train_seconds": round(state["seconds"], 1),
                                    "peak_rss_mb": round(state["peak_rss_mb"], 1), "val": scores})
    if refiner is not None:
        write_json(out / "cameras.json", {"iteration": state["iteration"], "view_codes": refiner.to_json()})
