"""Training views for inverse graphics: images, masks, cameras and object groups, read from a LabeledDataset.

One loader for both kinds of data the project makes:

- the cars renders (``ganfactory cars build``): meta has ``camera`` (OpenCV K, R, t in the object frame),
  ``azimuth_deg``, ``elevation_deg``, ``fov_deg`` and ``car_id``;
- the GAN multi-view data (``ganfactory multiview build``): meta has ``azimuth_deg``, ``elevation_deg`` and
  ``fov_deg`` under ``camera`` (or beside the other keys), with ``distance`` (the camera looks at the origin)
  or ``distance_scale`` (the renders' framing of a typical car, ``camera.framing_t``), plus ``view_code`` and
  ``content`` (or ``content_id``).

The mask is ``label != 0`` (class 0 is the background). Samples sharing a content id (multi-view data) or a
car (renders) are views of one object: training predicts from one and renders into another. The frame is the
one of ``ganfactory.inverse.camera``; angles are degrees on disk and radians here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ganfactory.datasets.labeled import LabeledDataset
from ganfactory.errors import GanfactoryError
from ganfactory.inverse.camera import framing_t
from ganfactory.inverse.network import NetworkConfig
from ganfactory.render.conventions import CV_FROM_VIEW

__all__ = ["GROUP_KEYS", "ViewData", "camera_from_meta", "load_views"]

GROUP_KEYS = ("content_id", "content", "car_id")
"""Meta keys naming the object a sample shows, in order of preference."""


class InverseDataError(GanfactoryError, ValueError):
    """A dataset that lacks what inverse graphics needs (cameras, masks)."""


def camera_from_meta(meta: dict) -> tuple[float, float, tuple[float, float, float], float]:
    """(azimuth rad, elevation rad, view-space t, fov_y rad) of one sample's metadata."""
    camera = meta.get("camera")
    if isinstance(camera, dict) and "azimuth_deg" in camera and "azimuth_deg" not in meta:
        meta = {**meta, **camera}  # the orbit written under "camera" instead of beside it
    missing = [k for k in ("azimuth_deg", "elevation_deg") if k not in meta]
    if missing:
        raise InverseDataError(f"sample {meta.get('id')!r} has no {', '.join(missing)} in its metadata: inverse "
                               "graphics needs a camera per sample (cars renders or multi-view data)")
    az, el = math.radians(float(meta["azimuth_deg"])), math.radians(float(meta["elevation_deg"]))
    if isinstance(camera, dict) and "t" in camera:
        t_cv = np.asarray(camera["t"], dtype=np.float64)
        t = tuple(float(v) for v in np.asarray(CV_FROM_VIEW) @ t_cv)
        K = np.asarray(camera["K"], dtype=np.float64)
        H = 2.0 * K[1, 2] + 1.0
        fov = 2.0 * math.atan(H / (2.0 * K[1, 1]))
    elif "distance" in meta and "fov_deg" in meta:
        t = (0.0, 0.0, -float(meta["distance"]))
        fov = math.radians(float(meta["fov_deg"]))
    elif "distance_scale" in meta and "fov_deg" in meta:
        fov = math.radians(float(meta["fov_deg"]))
        typical = NetworkConfig()
        t = tuple(float(v) for v in framing_t(torch.tensor([az], dtype=torch.float64),
                                              torch.tensor([el], dtype=torch.float64), fov, typical.half_extents,
                                              typical.centre, float(meta["distance_scale"]))[0])
    else:
        raise InverseDataError(f"sample {meta.get('id')!r} has neither a camera (K, R, t) nor a distance "
                               "(or distance_scale) and fov_deg")
    return az, el, t, fov  # type: ignore[return-value]


@dataclass(frozen=True)
class ViewData:
    """N views held in memory (64 px images are small: 4,000 of them are 50 MB)."""

    images: Tensor
    """[N, 3, H, W] uint8 RGB."""
    masks: Tensor
    """[N, H, W] bool foreground."""
    azimuth: Tensor
    """[N] radians."""
    elevation: Tensor
    """[N] radians."""
    t: Tensor
    """[N, 3] view-space translation."""
    fov_y: float
    """Radians (one for the whole dataset)."""
    group: Tensor
    """[N] int64 object id (views of one object share it), -1 when the data names none."""
    ids: tuple[str, ...]
    groups: tuple[str, ...]
    """Names of the group ids."""
    view_code: Tensor | None = None
    """[N] int64 view code of GAN multi-view samples (-1 for a sample without one); None when no sample has one."""

    def __len__(self) -> int:
        return self.images.shape[0]

    def partners(self, index: Tensor, generator: torch.Generator) -> Tensor:
        """For each sample in ``index``, another sample of the same object (itself when it has none)."""
        out = index.clone()
        for k, i in enumerate(index.tolist()):
            g = int(self.group[i])
            if g < 0:
                continue
            members = self._members[g]
            if len(members) > 1:
                j = members[int(torch.randint(len(members) - 1, (1,), generator=generator))]
                out[k] = j if j != i else members[-1]
        return out

    @property
    def _members(self) -> list[list[int]]:
        cached = self.__dict__.get("_members_cache")
        if cached is None:
            cached = [[] for _ in self.groups]
            for i, g in enumerate(self.group.tolist()):
                if g >= 0:
                    cached[g].append(i)
            object.__setattr__(self, "_members_cache", cached)
        return cached

    def batch(self, index: Tensor, device: torch.device | str) -> dict[str, Tensor]:
        return {"images": self.images[index].to(device).float() / 255.0,
                "masks": self.masks[index].to(device).float(),
                "azimuth": self.azimuth[index].to(device), "elevation": self.elevation[index].to(device),
                "t": self.t[index].to(device), "index": index.to(device)}


def load_views(root: str | Path, indices: range | list[int] | None = None, progress: bool = True) -> ViewData:
    """Read the samples ``indices`` (default all) of the LabeledDataset ``root`` into memory."""
    root = Path(root)
    if not (root / "dataset.json").is_file():
        raise InverseDataError(f"{root}: no dataset.json (not a finished LabeledDataset)")
    ds = LabeledDataset(root)
    indices = range(len(ds)) if indices is None else indices
    if len(indices) == 0:
        raise InverseDataError(f"{root}: no samples selected")
    images, masks, az, el, ts, fovs, group_names, ids, codes = [], [], [], [], [], [], [], [], []
    for i in tqdm(indices, desc="views", unit="img", disable=not progress):
        image, label, meta = ds[i]
        a, e, t, fov = camera_from_meta(meta)
        images.append(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1))
        masks.append(torch.from_numpy(label != 0))
        az.append(a)
        el.append(e)
        ts.append(t)
        fovs.append(fov)
        key = next((k for k in GROUP_KEYS if k in meta), None)
        group_names.append(None if key is None else str(meta[key]))
        ids.append(str(meta.get("id", i)))
        codes.append(int(meta.get("view_code", -1)))
    if max(fovs) - min(fovs) > 1e-4:
        raise InverseDataError(f"{root}: the samples' fields of view differ ({min(fovs):.4f} to {max(fovs):.4f} rad)")
    names = sorted({g for g in group_names if g is not None})
    lookup = {g: k for k, g in enumerate(names)}
    group = torch.tensor([lookup[g] if g is not None else -1 for g in group_names], dtype=torch.long)
    return ViewData(images=torch.stack(images), masks=torch.stack(masks), azimuth=torch.tensor(az),
                    elevation=torch.tensor(el), t=torch.tensor(ts), fov_y=float(fovs[0]), group=group,
                    ids=tuple(ids), groups=tuple(names),
                    view_code=torch.tensor(codes, dtype=torch.long) if max(codes) >= 0 else None)
