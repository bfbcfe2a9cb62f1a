"""The renderer's math as plain functions; modules in ``ganfactory.render`` only compose these."""

from ganfactory.render.functional.interpolate import (
           face_normals,
           interpolate,
           perspective_correct,
           vertex_normals,
)
from ganfactory.render.functional.rasterize import barycentrics, select_faces
from ganfactory.render.functional.shading import blinn_phong, sh9_basis, sh9_irradiance
from ganfactory.render.functional.soft_mask import soft_silhouette
from ganfactory.render.functional.texture import sample_texture

__all__ = ["select_faces", "barycentrics", "soft_silhouette", "interpolate", "perspective_correct",
           "face_normals", "vertex_normals", "sample_texture", "blinn_phong", "sh9_basis", "sh9_irradiance"]
