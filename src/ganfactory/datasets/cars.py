"""Render one sample of the cars benchmark: image, label map, keypoints with visibility, camera.

Why here and not in the renderer: everything car-specific (where the camera goes, the livery jitter,
the procedural background, which label a keypoint must land on) is benchmark policy; the renderer
only draws meshes.

Frames: those of ``ganfactory.render.conventions``. A car is read in TORCS' frame (x forward, y left, z up,
metres) and placed in the renderer's world by ``vehicle_to_world`` (front along +z, left side along +x), so
the renderer's ``look_at`` at the variation's azimuth and elevation sees it as the variation says (azimuth 0
the front, 90 the left side). The cameras written with a sample (OpenCV K, R, t with ``x_cv = R X + t``) are
expressed in the car's own TORCS frame, so they apply directly to the ground-truth mesh as read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as nnf
from PIL import Image, ImageDraw

from ganfactory.datasets.car_assembly import KEYPOINT_NAMES, Car
from ganfactory.datasets.parts import CARS13, CLASS_COLORS, class_names, coarse_from_fine
from ganfactory.datasets.variation import SampleVariation, VariationSettings, sample_variation
from ganfactory.render import Camera, DirectionalLights, Mesh, RasterSettings, Renderer, look_at
from ganfactory.render.conventions import vehicle_to_world
from ganfactory.render.rasterizer import rasterize_mesh

__all__ = [
    "FRAME_FILL",
    "KEYPOINT_LABELS",
    "CarSample",
    "RenderSettings",
    "background_image",
    "camera_for",
    "contact_sheet",
    "livery_mesh",
    "majority_labels",
    "placed_mesh",
    "render_car_sample",
]

KEYPOINT_LABELS: dict[str, tuple[str, ...]] = {
    "hub": ("tyre", "rim"), "headlight": ("headlight",), "taillight": ("taillight",)}
"""The cars-13 classes a visible keypoint's pixel must carry (by the keypoint name's first word)."""


FRAME_FILL = 0.9
"""At the base distance, the car's bounding box spans this fraction of the image in its larger projected
dimension (the distance jitter then scales it by about 1/0.9 to 1/1.1). Fitting the box per view, rather
than a bounding sphere for all views, keeps end-on cars as large as side-on ones: at 64 px small parts
(lamps, mirrors, plates) need every pixel they can get."""


@dataclass(frozen=True)
class RenderSettings:
    """How samples are rendered (BENCHMARK.md defaults)."""

    resolution: int = 64
    """Square images of this many pixels per side (64 default on CPU; 128 supported)."""
    supersample: int = 2
    """Samples per pixel side: antialiased RGB, labels by majority of the samples."""
    class_set: str = "cars-13"
    """Label ids written: ``cars-13`` or ``cars-8`` (0 is background in both)."""
    variation: VariationSettings = field(default_factory=VariationSettings)
    keypoint_depth_tolerance: float = 0.10
    """Metres a keypoint may lie behind the visible surface and still count as visible."""
    keypoint_pixel_radius: int = 1
    """A visible keypoint's class must be found within this many pixels of its projection (lamps are
    2-3 pixels wide at 64 px, so the exact pixel is often their edge)."""


@dataclass(frozen=True)
class CarSample:
    """One rendered sample; H = W = resolution."""

    variation: SampleVariation
    image: torch.Tensor
    """[3, H, W] float in [0, 1] (RGB, antialiased, over the background)."""
    labels: torch.Tensor
    """[H, W] int64 class ids of the class set, 0 = background."""
    face_idx: torch.Tensor
    """[H, W] int64 front face of the pixel centre sample (-1 = background)."""
    depth: torch.Tensor
    """[H, W] float distance along the optical axis of the front surface (0 = background)."""
    keypoints_px: torch.Tensor
    """[8, 2] float (u, v) OpenCV pixel coordinates (pixel centres are integers), NaN if unavailable."""
    keypoints_visible: torch.Tensor
    """[8] bool."""
    K: torch.Tensor
    """[3, 3] OpenCV intrinsics."""
    R: torch.Tensor
    """[3, 3] OpenCV rotation, TORCS frame to camera: ``x_cv = R X + t``."""
    t: torch.Tensor
    """[3]."""

    @property
    def mask(self) -> torch.Tensor:
        return self.labels > 0


def placed_mesh(mesh: Mesh) -> Mesh:
    """A TORCS-frame car mesh placed in the renderer's world (``vehicle_to_world``; exact)."""
    return mesh.replace(verts=vehicle_to_world(mesh.verts),
                        vert_normals=None if mesh.vert_normals is None else vehicle_to_world(mesh.vert_normals))


def camera_for(car: Car, variation: SampleVariation, resolution: int) -> Camera:
    """The sample's camera in the world frame (the car placed by ``placed_mesh``): looking at the car's box centre
    (+ jitter) from the variation's azimuth and elevation, at the distance where the car's bounding box spans
    ``FRAME_FILL`` of the image (x the distance jitter).

    For a box corner at a = R (p - target) in the look-at frame, the camera at distance d sees it at
    a_x / (d - a_z); it lies within the fraction F of the half-image when d >= a_z + |a_x| / (F tan(fov/2)),
    and likewise for y. The base distance is the smallest d that holds for all eight corners. The camera is
    computed in float64 and rounded once to float32."""
    verts = vehicle_to_world(car.mesh.verts[0].double())
    lo, hi = verts.min(0).values, verts.max(0).values
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    target = centre + half * vehicle_to_world(torch.tensor(variation.target_offset, dtype=torch.float64))
    fov = math.radians(variation.fov_deg)
    azimuth = torch.tensor([math.radians(variation.azimuth_deg)], dtype=torch.float64)
    elevation = torch.tensor([math.radians(variation.elevation_deg)], dtype=torch.float64)
    R, _ = look_at(azimuth, elevation, torch.ones(1, dtype=torch.float64), target[None])
    corners = torch.stack(torch.meshgrid(*[torch.stack([lo[i], hi[i]]) for i in range(3)], indexing="ij"), -1)
    a = (corners.reshape(-1, 3) - target) @ R[0].T
    reach = a[:, :2].abs().max(dim=1).values / (FRAME_FILL * math.tan(fov / 2))
    distance = (a[:, 2] + reach).max() * variation.distance_scale
    R, t = look_at(azimuth, elevation, distance[None], target[None])
    return Camera.from_fov(R.float(), t.float(), fov, (resolution, resolution))


def _rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    r, g, b = rgb.unbind(0)
    maxc, minc = rgb.max(0).values, rgb.min(0).values
    v = maxc
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp(min=1e-12), torch.zeros_like(maxc))
    d = delta.clamp(min=1e-12)
    h = torch.where(maxc == r, ((g - b) / d) % 6, torch.where(maxc == g, (b - r) / d + 2, (r - g) / d + 4))
    h = torch.where(delta > 0, h / 6, torch.zeros_like(h))
    return torch.stack([h, s, v])


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    h, s, v = hsv.unbind(0)
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6])
    return v - v * s * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def livery_mesh(car: Car, variation: SampleVariation) -> Mesh:
    """The car's mesh with the livery (the texture named after the car) shifted in hue and scaled in
    brightness by the variation."""
    textures = []
    for k, texture in enumerate(car.mesh.textures):
        rgb = texture
        if _is_livery(car, k):
            hsv = _rgb_to_hsv(rgb[0])
            hsv = torch.stack([(hsv[0] + variation.hue_shift) % 1.0, hsv[1],
                               (hsv[2] * variation.brightness).clamp(0, 1)])
            rgb = _hsv_to_rgb(hsv)[None]
        textures.append(rgb.contiguous())
    return car.mesh.replace(textures=tuple(textures))


def _is_livery(car: Car, texture_index: int) -> bool:
    return car.texture_paths[texture_index].stem.lower() == car.car_id.lower()


def background_image(variation: SampleVariation, resolution: int) -> torch.Tensor:
    """[1, 3, H, W] procedural background: plain, a linear gradient, or smooth value noise."""
    g = torch.Generator().manual_seed(variation.background_seed)
    c0, c1 = (torch.tensor(c, dtype=torch.float32).view(3, 1, 1) for c in variation.background_colors)
    H = W = resolution
    if variation.background_kind == "plain":
        return c0.expand(3, H, W)[None].clone()
    if variation.background_kind == "gradient":
        angle = float(torch.rand((), generator=g)) * 2 * math.pi
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij")
        s = ((xs * math.cos(angle) + ys * math.sin(angle)) / math.sqrt(2) + 1) / 2
        return (c0 * (1 - s) + c1 * s)[None]
    if variation.background_kind == "noise":
        grid = torch.rand((1, 1, 6, 6), generator=g)
        s = nnf.interpolate(grid, size=(H, W), mode="bicubic", align_corners=True).clamp(0, 1)[0]
        fine = torch.rand((1, 1, H, W), generator=g)[0] * 0.15
        s = (s * 0.85 + fine).clamp(0, 1)
        return (c0 * (1 - s) + c1 * s)[None]
    raise ValueError(f"unknown background kind {variation.background_kind!r}")


def majority_labels(labels: torch.Tensor, supersample: int, num_classes: int) -> torch.Tensor:
    """[H*s, W*s] sample labels -> [H, W] the most frequent label per pixel.

    Ties go to the label of the pixel's centre sample (the renderer's ``labels``), so with
    ``supersample=1`` this is the identity.
    """
    s = supersample
    if s == 1:
        return labels
    one_hot = nnf.one_hot(labels, num_classes).permute(2, 0, 1).float()[None]
    votes = nnf.avg_pool2d(one_hot, s)[0] * s * s
    centre = labels[s // 2::s, s // 2::s]
    votes = votes + 0.5 * nnf.one_hot(centre, num_classes).permute(2, 0, 1).float()
    return votes.argmax(0)


def render_car_sample(car: Car, variation: SampleVariation,
                      settings: RenderSettings = RenderSettings()) -> CarSample:
    """Render ``car`` as the variation says (deterministic: same inputs, same bytes)."""
    if variation.car_id != car.car_id:
        raise ValueError(f"the variation is for {variation.car_id!r}, the car is {car.car_id!r}")
    class_names(settings.class_set)          # validates the name
    res, s = settings.resolution, settings.supersample
    camera = camera_for(car, variation, res)
    mesh = placed_mesh(livery_mesh(car, variation))
    direction = vehicle_to_world(torch.tensor(variation.light_direction, dtype=torch.float32)).view(1, 1, 3)
    lights = DirectionalLights(
        direction=direction, diffuse=torch.full((1, 1, 3), 0.8 * variation.light_intensity),
        ambient=torch.full((1, 3), variation.ambient), specular=torch.full((1, 1, 3), 0.15), shininess=24.0)
    out = Renderer(RasterSettings(image_size=(res, res), supersample=s))(
        mesh, camera, lights, background_image(variation, res))

    # Labels: the front face of every sample (glass included), majority per pixel.
    if s > 1:
        frags = rasterize_mesh(mesh, camera, (res * s, res * s))
        sample_labels = torch.where(frags.face_idx[0] >= 0, mesh.face_parts[frags.face_idx[0].clamp(min=0)], 0)
    else:
        sample_labels = out.labels[0].clamp(min=0)
    fine = majority_labels(sample_labels, s, len(CARS13))
    labels = coarse_from_fine()[fine] if settings.class_set == "cars-8" else fine

    keypoints_px, visible = _project_keypoints(car, camera, fine, out.depth[0], settings)
    K, R, t = camera.to_opencv()
    R_car = R[0][:, [2, 0, 1]]          # R @ WORLD_FROM_VEHICLE: the car's own frame to the camera (exact)
    return CarSample(variation=variation, image=out.image[0].clamp(0, 1), labels=labels,
                     face_idx=out.face_idx[0], depth=out.depth[0], keypoints_px=keypoints_px,
                     keypoints_visible=visible, K=K[0], R=R_car, t=t[0])


def _project_keypoints(car: Car, camera: Camera, fine_labels: torch.Tensor, depth: torch.Tensor,
                       settings: RenderSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel positions (u, v) and visibility.

    Visible: the projection is inside the image, a pixel within ``keypoint_pixel_radius`` carries the
    keypoint's class (KEYPOINT_LABELS), and the keypoint is at most ``keypoint_depth_tolerance``
    behind the surface seen there. For a car without that class (lamps painted into the texture of the
    one-shell cars) only the depth test at the projected pixel decides.
    """
    res = settings.resolution
    points = vehicle_to_world(car.keypoints)[None]
    view = camera.world_to_view(torch.nan_to_num(points))
    ndc = camera.view_to_ndc(view)[0]
    u = ((ndc[:, 0] + 1) * res - 1) / 2
    v = ((1 - ndc[:, 1]) * res - 1) / 2
    uv = torch.stack([u, v], dim=1)
    available = car.keypoints_available
    uv[~available] = float("nan")
    visible = torch.zeros(len(KEYPOINT_NAMES), dtype=torch.bool)
    present = car.mesh.face_parts.unique()
    for k, name in enumerate(KEYPOINT_NAMES):
        if not available[k]:
            continue
        col, row = int(round(float(u[k]))), int(round(float(v[k])))
        if not (0 <= col < res and 0 <= row < res) or float(-view[0, k, 2]) <= 0:
            continue
        wanted = torch.tensor([CARS13.index(c) for c in KEYPOINT_LABELS[name.split("_")[0]]])
        keypoint_depth = float(-view[0, k, 2])
        if torch.isin(wanted, present).any():
            r = settings.keypoint_pixel_radius
            rows, cols = slice(max(row - r, 0), row + r + 1), slice(max(col - r, 0), col + r + 1)
            on_part = torch.isin(fine_labels[rows, cols], wanted)
            if not on_part.any():
                continue
            candidates = depth[rows, cols][on_part]        # the surfaces of that class near the point
            surface = float(candidates[(candidates - keypoint_depth).abs().argmin()])
        else:
            surface = float(depth[row, col])
        visible[k] = surface > 0 and keypoint_depth - surface <= settings.keypoint_depth_tolerance
    return uv, visible


def contact_sheet(cars: list[Car], seeds_per_car: int = 4, settings: RenderSettings = RenderSettings(),
                  first_seed: int = 0, scale: int = 2) -> Image.Image:
    """A preview grid: per car one row of (image, label overlay with keypoints) pairs.

    Visible keypoints are drawn as filled dots, hidden ones as hollow circles.
    """
    res = settings.resolution * scale
    rows = []
    names = class_names(settings.class_set)
    palette = torch.tensor([CLASS_COLORS[n] for n in names], dtype=torch.float32) / 255
    for car in cars:
        tiles = []
        for j in range(seeds_per_car):
            variation = sample_variation(first_seed + j, [car.car_id], settings.variation)
            sample = render_car_sample(car, variation, settings)
            image = _to_pil(sample.image).resize((res, res), Image.NEAREST)
            overlay = 0.45 * sample.image + 0.55 * palette[sample.labels].permute(2, 0, 1)
            overlay = torch.where(sample.mask[None], overlay, sample.image * 0.5)
            over = _to_pil(overlay).resize((res, res), Image.NEAREST)
            draw = ImageDraw.Draw(over)
            for k in range(len(KEYPOINT_NAMES)):
                u, v = sample.keypoints_px[k].tolist()
                if math.isnan(u):
                    continue
                x, y, r = (u + 0.5) * scale, (v + 0.5) * scale, 2.5
                color = (255, 0, 0) if k < 4 else (0, 255, 0)
                if sample.keypoints_visible[k]:
                    draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
                else:
                    draw.ellipse([x - r, y - r, x + r, y + r], outline=color)
            tiles += [image, over]
        row = Image.new("RGB", (res * len(tiles), res + 12), (255, 255, 255))
        ImageDraw.Draw(row).text((2, 0), car.car_id, fill=(0, 0, 0))
        for i, tile in enumerate(tiles):
            row.paste(tile, (i * res, 12))
        rows.append(row)
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), (255, 255, 255))
    y = 0
    for row in rows:
        sheet.paste(row, (0, y))
        y += row.height
    return sheet


def _to_pil(image: torch.Tensor) -> Image.Image:
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(array), "RGB")
