"""A differentiable mesh renderer (DIB-R) in pure PyTorch, fast on a CPU.

    mesh = Mesh(verts, faces, vert_colors=colors)
    camera = Camera.orbit(azimuth, elevation, distance, fov_y=0.5, image_size=(64, 64))
    out = Renderer(RasterSettings(image_size=(64, 64)))(mesh, camera)
    loss = silhouette_iou_loss(out.soft_mask, target_mask)

Conventions (frames, NDC, pixel centres, winding, depth) are in ``ganfactory.render.conventions``; the
math is in ``ganfactory.render.functional``; kaolin's function names are in
``ganfactory.render.kaolin_compat``.
"""

from ganfactory.render import conventions, functional
from ganfactory.render.camera import Camera, look_at
from ganfactory.render.losses import flatten_loss, masked_l1, silhouette_iou_loss, uniform_laplacian_loss
from ganfactory.render.mesh import Mesh
from ganfactory.render.rasterizer import MeshRasterizer, rasterize_mesh
from ganfactory.render.renderer import Renderer
from ganfactory.render.shader import MeshShader
from ganfactory.render.template import edge_face_pairs, edges, icosphere, vertex_adjacency
from ganfactory.render.types import (
    DirectionalLights,
    Fragments,
    RasterSettings,
    RenderOutput,
    SHLights,
    SoftMaskSettings,
)

__all__ = [
    "Mesh", "Camera", "look_at",
    "RasterSettings", "SoftMaskSettings", "Fragments", "RenderOutput", "DirectionalLights", "SHLights",
    "MeshRasterizer", "MeshShader", "Renderer", "rasterize_mesh",
    "silhouette_iou_loss", "masked_l1", "uniform_laplacian_loss", "flatten_loss",
    "icosphere", "edges", "edge_face_pairs", "vertex_adjacency",
    "conventions", "functional",
]
