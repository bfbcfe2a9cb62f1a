"""Part labels on reconstructions: a per-face part head on the frozen inverse-graphics network (``cars-8``).

Design (why this and not a jointly trained head):

- **Frozen geometry.** The shipped ``cars64-3d`` network already predicts the mesh and the camera. The part head
  reads the network's 256-d image code and predicts ``cars-8`` logits for each of the template's 1,280 faces;
  the encoder, shape, texture and camera heads stay fixed. So the mesh a user gets with ``--parts`` is the same
  mesh as without, and training is a small classification problem that runs in minutes on one CPU thread.
- **Per-face logits, not a part UV texture.** Every reconstruction shares the sphere template's faces, so a
  face's label is what the movable-part split needs (which faces are wheel), with no texture sampling in
  between. The head is ``base [F, K] + MLP(code)`` (the base holds the typical car's layout: wheels low at the
  corners, windows high; the MLP moves it per car), mirrored across the car's y = 0 plane like the shape.
- **Supervision through the renderer.** The per-face probabilities are rendered like face colours: the DIB-R
  rasterizer (``render.rasterizer.rasterize_mesh``, the colour path's) gives each (supersampled) pixel its
  front face, the pixel takes that face's probabilities (background where no face covers it) and the
  supersamples are averaged, so edge pixels hold a soft mixture. Cross-entropy against a 2-D part map, in the
  input view and in another view of the same object (another render of the car, or another view code of the
  GAN multi-view data), as the colour loss of ``inverse.train``.
- Because the geometry is frozen, each training sample's code and front-face maps are computed once
  (``cache_views``) and the training loop only runs the head: thousands of iterations per minute.

A part head is a directory with ``config.json`` (format header, ``PartHeadConfig``, training facts) and
``model.safetensors`` (float16 when shipped). The built-in ``cars64-3d-parts`` is beside ``cars64-3d`` in
``ganfactory/assets/inverse`` and loads by name.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as nnf
from torch import Tensor, nn

from ganfactory.atomic import atomic_path, write_json
from ganfactory.datasets.labeled import LabeledDataset
from ganfactory.errors import GanfactoryError
from ganfactory.inverse.camera import OrbitCamera
from ganfactory.inverse.data import GROUP_KEYS, camera_from_meta
from ganfactory.inverse.network import InverseGraphicsNet
from ganfactory.render import Mesh
from ganfactory.render.rasterizer import rasterize_mesh
from ganfactory.schema import Schema
from ganfactory.weights import find_model_dir, load_weights, read_model_dir, save_model_dir

__all__ = [
    "BUILTIN_PART_HEADS", "FORMAT", "PartCache", "PartHead", "PartHeadConfig", "PartTrainConfig",
    "cache_views", "class_weights", "default_part_head", "face_mirror", "front_faces", "gather_part_probs",
    "label_table", "load_part_head", "part_cross_entropy", "part_head_path", "render_part_probs", "rendered_part_nll",
    "save_part_head", "train_part_head",
]

FORMAT = "ganfactory.inverse.parts"
FORMAT_VERSION = 1
BUILTIN_PART_HEADS = {
    "cars64-3d-parts": "cars-8 per-face part head on the frozen cars64-3d network, trained on the gan-train "
                       "renders' true part maps (docs/parts).",
}
"""Name -> description of the part heads in ganfactory/assets/inverse."""


class PartHeadError(GanfactoryError, ValueError):
    """A part head or a part-labelled dataset that cannot be used."""


@dataclass(frozen=True)
class PartHeadConfig:
    """The part head's architecture; stored with its weights."""

    classes: tuple[str, ...]
    """Class names, id = index; class 0 is the background (never predicted for a face)."""
    faces: int = 1280
    """Faces of the network's template."""
    latent: int = 256
    """Width of the network's image code."""
    hidden: int = 64
    """Width of the MLP's bottleneck."""
    symmetric: bool = True
    """Average each face's logits with its mirror face's (the car's y = 0 plane)."""
    base_model: str = "cars64-3d"
    """The inverse-graphics model the head was trained on (its code and template)."""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> PartHeadConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields})


def face_mirror(faces: Tensor, vert_mirror: Tensor) -> Tensor:
    """[F] index of each face's mirror face, from the template's vertex mirror map [V]."""
    key = {tuple(sorted(f)): i for i, f in enumerate(faces.tolist())}
    mirrored = vert_mirror[faces].tolist()
    try:
        return torch.tensor([key[tuple(sorted(f))] for f in mirrored], dtype=torch.long)
    except KeyError:
        raise AssertionError("the template's faces are not mirror-symmetric") from None


class PartHead(nn.Module):
    """``head(code [B, latent]) -> logits [B, F, K]``: a learned base layout plus a per-image correction."""

    def __init__(self, config: PartHeadConfig, mirror: Tensor | None = None) -> None:
        super().__init__()
        self.config = c = config
        K = len(c.classes)
        self.base = nn.Parameter(torch.zeros(c.faces, K))
        self.mlp = nn.Sequential(nn.Linear(c.latent, c.hidden), nn.ReLU(True), nn.Linear(c.hidden, c.faces * K))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)
        if c.symmetric and mirror is None:
            raise ValueError("a symmetric part head needs the template's face mirror map")
        self.register_buffer("mirror", mirror if mirror is not None else torch.arange(c.faces), persistent=False)

    @classmethod
    def for_network(cls, net: InverseGraphicsNet, config: PartHeadConfig) -> PartHead:
        t = net.template
        return cls(config, face_mirror(t.faces.cpu(), t.mirror.cpu()).to(t.faces.device))

    def forward(self, code: Tensor) -> Tensor:
        c = self.config
        logits = self.base + self.mlp(code).view(code.shape[0], c.faces, len(c.classes))
        if c.symmetric:
            logits = 0.5 * (logits + logits[:, self.mirror])
        # A face is never background: the background is where no face is.
        return logits.index_fill(-1, torch.tensor([0], device=logits.device), -1e4)

    def face_labels(self, code: Tensor) -> Tensor:
        """[B, F] int64 most likely class per face."""
        return self(code).argmax(-1)


def render_part_probs(verts: Tensor, faces: Tensor, face_probs: Tensor, camera: OrbitCamera, size: int,
                      supersample: int = 2) -> Tensor:
    """[B, K, size, size] soft part map of meshes ``verts`` [B, V, 3] with per-face probabilities [B, F, K]."""
    return gather_part_probs(face_probs, front_faces(verts, faces, camera, size, supersample), supersample)


def gather_part_probs(face_probs: Tensor, face_idx: Tensor, supersample: int) -> Tensor:
    """[B, K, H, W] from front faces [B, H*s, W*s] (-1 on background) and per-face probabilities [B, F, K].

    Each of the ``supersample``^2 samples of a pixel takes its front face's probabilities (class 0 where no
    face covers it, as a colour render takes the background colour); the pixel is their mean.
    """
    B, F, K = face_probs.shape
    covered = face_idx >= 0
    rows = face_idx.clamp(min=0).long() + torch.arange(B, device=face_idx.device)[:, None, None] * F
    p = face_probs.reshape(B * F, K)[rows]  # [B, Hs, Ws, K]
    background = nnf.one_hot(torch.zeros_like(rows), K).to(p.dtype)
    p = torch.where(covered[..., None], p, background).permute(0, 3, 1, 2).contiguous()
    return nnf.avg_pool2d(p, supersample) if supersample > 1 else p


@torch.no_grad()
def front_faces(verts: Tensor, faces: Tensor, camera: OrbitCamera, size: int, supersample: int = 2) -> Tensor:
    """[B, size*s, size*s] front face per sample (-1 on background), from the DIB-R rasterizer."""
    s = size * supersample
    return rasterize_mesh(Mesh(verts, faces), camera.to_camera((size, size)), (s, s)).face_idx


def part_cross_entropy(probs: Tensor, labels: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean cross-entropy of soft part maps [B, K, H, W] against label maps [B, H, W] (int64)."""
    return nnf.nll_loss(torch.log(probs.clamp(min=1e-6)), labels, weight=weight)


def rendered_part_nll(face_probs: Tensor, face_idx: Tensor, labels: Tensor, supersample: int,
                      weight: Tensor | None = None) -> Tensor:
    """The cross-entropy of the rendered soft part map over the pixels the mesh covers at least partly:
    ``part_cross_entropy(gather_part_probs(face_probs, face_idx, s), labels', weight)`` with ``labels'`` = -100
    (ignored) where no supersample is covered. Those pixels carry no gradient (their probabilities do not
    depend on the head), so leaving them out only keeps the reported loss meaningful.

    Computed cheaply: the cross-entropy needs only each pixel's probability of its true class, so each
    supersample gathers one number instead of K: ``p(y) = mean_s p_{face_s}(y)`` (1 or 0 on background
    samples as y is or is not 0).
    """
    B, F, K = face_probs.shape
    s = supersample
    y = labels.repeat_interleave(s, 1).repeat_interleave(s, 2) if s > 1 else labels
    covered = face_idx >= 0
    rows = (face_idx.clamp(min=0).long() + torch.arange(B, device=face_idx.device)[:, None, None] * F) * K + y
    p = torch.where(covered, face_probs.reshape(-1)[rows], (y == 0).to(face_probs.dtype))
    p = nnf.avg_pool2d(p[:, None], s)[:, 0] if s > 1 else p
    any_covered = (nnf.max_pool2d(covered[:, None].float(), s)[:, 0] > 0) if s > 1 else covered
    nll = -torch.log(p.clamp(min=1e-6))
    w = (weight[labels] if weight is not None else torch.ones_like(nll)) * any_covered
    return (w * nll).sum() / w.sum().clamp(min=1e-12)


def label_table(schema: Schema, classes: str = "cars-8") -> Tensor:
    """[256] int64 lookup: the dataset's class ids -> ids of the class set ``classes`` (a name of
    ``datasets.parts.CLASS_MERGES``; a dataset already in those classes maps to itself)."""
    from ganfactory.datasets.parts import CLASS_MERGES
    from ganfactory.schema import SchemaError, remap_table

    if classes not in CLASS_MERGES:
        raise PartHeadError(f"unknown class set {classes!r}; choose one of {sorted(CLASS_MERGES)}")
    merge = CLASS_MERGES[classes]
    try:
        return torch.from_numpy(remap_table(schema, merge.schema(), merge.mapping).astype(np.int64))
    except SchemaError as e:
        raise PartHeadError(f"the dataset's classes do not map onto {classes}: {e}") from None


# --- training -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartCache:
    """What training needs per sample, computed once with the frozen network."""

    codes: Tensor
    """[N, latent] the network's image codes."""
    labels: Tensor
    """[N, H, W] uint8 part labels in the head's classes."""
    own: Tensor
    """[N, Hs, Ws] int16 front faces of sample i's mesh in its own (data) camera."""
    other: Tensor
    """[N, Hs, Ws] int16 front faces of sample i's mesh in the camera of ``partner[i]``."""
    partner: Tensor
    """[N] int64 another sample of the same object (itself when there is none)."""
    ids: tuple[str, ...]


def _trusted(meta: dict) -> bool:
    return bool(meta.get("labels_trusted", True))


@torch.no_grad()
def cache_views(net: InverseGraphicsNet, root: str | Path, classes: str = "cars-8", limit: int | None = None,
                supersample: int = 2, seed: int = 0, batch: int = 32, progress: bool = True) -> PartCache:
    """Codes, merged labels and front-face maps of the part-trusted samples of the LabeledDataset ``root``."""
    from tqdm import tqdm

    root = Path(root)
    if not (root / "dataset.json").is_file():
        raise PartHeadError(f"{root}: no dataset.json (not a finished LabeledDataset)")
    ds = LabeledDataset(root)
    table = label_table(ds.schema, classes)
    keep = [i for i in range(len(ds)) if _trusted(ds.meta(i))]
    if limit is not None:
        keep = keep[:limit]
    if not keep:
        raise PartHeadError(f"{root}: no sample with trusted part labels")
    metas = [ds.meta(i) for i in keep]
    groups = [next((str(m[k]) for k in GROUP_KEYS if k in m), None) for m in metas]
    gen = torch.Generator().manual_seed(seed)
    members: dict[str, list[int]] = {}
    for k, g in enumerate(groups):
        if g is not None:
            members.setdefault(g, []).append(k)
    partner = []
    for k, g in enumerate(groups):
        others = [j for j in members.get(g, []) if j != k] if g is not None else []
        partner.append(others[int(torch.randint(len(others), (1,), generator=gen))] if others else k)
    cams = [camera_from_meta(m) for m in metas]
    size = net.config.image_size
    codes, labels, own, other = [], [], [], []
    bar = tqdm(range(0, len(keep), batch), desc="cache views", unit="batch", disable=not progress)
    for start in bar:
        idx = list(range(start, min(start + batch, len(keep))))
        images = torch.stack([torch.from_numpy(np.array(ds.image(keep[k]))).permute(2, 0, 1)
                              for k in idx]).float() / 255.0
        for k in idx:
            labels.append(table[torch.from_numpy(ds.label(keep[k]).astype(np.int64))].to(torch.uint8))
        code = net.encode(images)
        pred = net(images)
        codes.append(code)

        def camera(rows: list[int]) -> OrbitCamera:
            return OrbitCamera(torch.tensor([cams[r][0] for r in rows]), torch.tensor([cams[r][1] for r in rows]),
                               torch.tensor([cams[r][2] for r in rows]), cams[rows[0]][3])

        own.append(front_faces(pred.verts, net.faces, camera(idx), size, supersample).to(torch.int16))
        other.append(front_faces(pred.verts, net.faces, camera([partner[k] for k in idx]), size,
                                 supersample).to(torch.int16))
    return PartCache(codes=torch.cat(codes), labels=torch.stack(labels), own=torch.cat(own),
                     other=torch.cat(other), partner=torch.tensor(partner), ids=tuple(str(m.get("id")) for m in metas))


@dataclass(frozen=True)
class PartTrainConfig:
    """How the part head is trained (on a ``PartCache``)."""

    iterations: int = 2000
    batch: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    other_view_weight: float = 1.0
    """Weight of the cross-entropy in the partner's view (the input view's is 1)."""
    class_balance: float = 0.5
    """Class weights (1 / frequency) ** this, normalised to mean 1 (0 = plain cross-entropy); small parts
    (mirrors, plates, lights) cover a few pixels each."""
    supersample: int = 2
    seed: int = 0


def class_weights(labels: Tensor, K: int, power: float) -> Tensor:
    """[K] (1 / frequency) ** power, normalised to mean 1 over the classes present."""
    counts = torch.bincount(labels.flatten().long(), minlength=K).double()
    w = torch.where(counts > 0, (counts.sum() / counts.clamp(min=1)) ** power, torch.zeros_like(counts))
    return (w / w[counts > 0].mean()).float()


def train_part_head(net: InverseGraphicsNet, cache: PartCache, config: PartTrainConfig,
                    head_config: PartHeadConfig, log=None) -> tuple[PartHead, list[dict]]:
    """Fit a part head on ``cache`` (the network stays frozen); returns the head and a loss log."""
    torch.manual_seed(config.seed)
    head = PartHead.for_network(net, head_config)
    K = len(head_config.classes)
    weight = class_weights(cache.labels, K, config.class_balance) if config.class_balance else None
    opt = torch.optim.Adam(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.iterations)
    gen = torch.Generator().manual_seed(config.seed)
    N, history, t0 = cache.codes.shape[0], [], time.perf_counter()
    for it in range(1, config.iterations + 1):
        idx = torch.randint(N, (config.batch,), generator=gen)
        probs = torch.softmax(head(cache.codes[idx]), -1)
        s = config.supersample
        loss = rendered_part_nll(probs, cache.own[idx], cache.labels[idx].long(), s, weight)
        if config.other_view_weight:
            loss = loss + config.other_view_weight * rendered_part_nll(
                probs, cache.other[idx], cache.labels[cache.partner[idx]].long(), s, weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if it % 50 == 0 or it == config.iterations:
            row = {"iteration": it, "loss": round(float(loss.detach()), 4),
                   "seconds": round(time.perf_counter() - t0, 1)}
            history.append(row)
            if log is not None:
                log(row)
    return head.eval(), history


# --- the weights-only format ----------------------------------------------------------------------------------


def save_part_head(head: PartHead, path: str | Path, facts: dict | None = None, half: bool = False) -> Path:
    """Write ``head``'s weights and config to the directory ``path`` (weights first, config.json last)."""
    return save_model_dir(head, path, {"format": FORMAT, "format_version": FORMAT_VERSION,
                                       "part_head": head.config.to_json(), "facts": facts or {}}, half)


def part_head_path(name_or_path: str | Path) -> Path:
    """A built-in part head's directory, a training run's ``model/``, or a part-head directory."""
    return find_model_dir(name_or_path, BUILTIN_PART_HEADS, "inverse", PartHeadError,
                          "a part-head directory or a built-in part head")


def load_part_head(name_or_path: str | Path, net: InverseGraphicsNet) -> tuple[PartHead, dict]:
    """(part head in eval mode for ``net``, its config.json)."""
    path = part_head_path(name_or_path)
    config, state = read_model_dir(path, FORMAT, FORMAT_VERSION, PartHeadError)
    head_config = PartHeadConfig.from_json(config["part_head"])
    if head_config.faces != net.faces.shape[0] or head_config.latent != net.config.latent:
        raise PartHeadError(f"{path}: the part head is for a network with {head_config.faces} faces and a "
                            f"{head_config.latent}-d code, not {net.faces.shape[0]} and {net.config.latent}")
    head = PartHead.for_network(net, head_config)
    load_weights(head, state, path, PartHeadError)
    return head.to(net.faces.device).eval(), config


def default_part_head(model: str) -> str:
    """The built-in part head trained on ``model`` (a built-in model name)."""
    for name in BUILTIN_PART_HEADS:
        if name == f"{model}-parts":
            return name
    raise PartHeadError(f"no built-in part head for the model {model!r}: give --part-head DIR")



# --- reconstruction with parts ------------------------------------------------------------------------------


def part_palette(classes: tuple[str, ...]) -> np.ndarray:
    """[K, 3] uint8 colour per class (``datasets.parts.CLASS_COLORS``)."""
    from ganfactory.datasets.parts import CLASS_COLORS

    return np.array([CLASS_COLORS.get(c, (200, 200, 200)) for c in classes], dtype=np.uint8)


@torch.no_grad()
def reconstruct_parts(net: InverseGraphicsNet, head: PartHead, paths: list[Path], out: str | Path,
                      device: str = "cpu", axis_mode: str = "level") -> list[dict]:
    """Per image ``OUT/<stem>.parts.glb`` (animated: body parts + 4 wheels, ``inverse.animate``),
    ``<stem>.parts.png`` (input | colour render | part labels, predicted camera), ``<stem>.parts.json``
    (face label counts, wheel hubs and axes in the car frame) and ``<stem>.parts.camera.json`` (the predicted
    camera in the GLB's frame, as ``reconstruct.camera_json`` writes it)."""
    from PIL import Image

    from ganfactory.inverse.animate import write_animated_glb
    from ganfactory.inverse.reconstruct import camera_json, load_image
    from ganfactory.render import RasterSettings, Renderer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size, classes = net.config.image_size, head.config.classes
    palette = torch.from_numpy(part_palette(classes)).float() / 255
    records = []
    net.eval()
    for path in paths:
        image = load_image(path, size)[None].to(device)
        pred = net(image)
        probs = torch.softmax(head(net.encode(image)), -1)
        labels = probs.argmax(-1)[0]
        mesh = net.mesh(pred)
        texture = (pred.texture[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        glb = out / f"{path.stem}.parts.glb"
        wheels = write_animated_glb(glb, pred.verts[0].cpu().numpy(), net.faces.cpu().numpy(),
                                    net.template.face_uvs.cpu().numpy(), texture, labels.cpu().numpy(), classes,
                                    axis_mode=axis_mode)
        camera = pred.camera.to_camera((size, size))
        colour = Renderer(RasterSettings((size, size), supersample=2))(mesh, camera, background=torch.ones(3))
        soft = render_part_probs(pred.verts, net.faces, probs, pred.camera, size)
        part_image = (soft.permute(0, 2, 3, 1) @ palette.to(soft))[0].permute(2, 0, 1)
        strip = torch.cat([image[0], colour.image[0].clamp(0, 1), part_image.clamp(0, 1)], dim=2)
        with atomic_path(out / f"{path.stem}.parts.png") as tmp:
            Image.fromarray((strip.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)).save(tmp, "PNG")
        counts = torch.bincount(labels.cpu(), minlength=len(classes)).tolist()
        record = {"image": str(path), "glb": str(glb), "png": str(out / f"{path.stem}.parts.png"),
                  "face_counts": dict(zip(classes, counts, strict=True)),
                  "axis_mode": axis_mode,
                  "wheels": [{"name": w.name, "faces": int(len(w.faces)), "hub_car": w.hub.round(4).tolist(),
                              "axis_car": w.axis.round(4).tolist()} for w in wheels]}
        write_json(out / f"{path.stem}.parts.json", record)
        # The same camera as <stem>.camera.json, named after the GLB so that `ganfactory view` finds its input view.
        write_json(out / f"{path.stem}.parts.camera.json", camera_json(pred.camera, 0, (size, size)))
        records.append(record)
    return records
