import math
from types import SimpleNamespace

import pytest
import torch

from ganfactory.render import Camera, Mesh, icosphere


def random_soup(B, F, seed=0, dtype=torch.float64, scale=0.6):
    """Random overlapping triangles: face_vertices_image [B, F, 3, 2] in about [-1, 1], z [B, F, 3] < 0."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(B, F, 1, 2, generator=g, dtype=dtype) * 2.2 - 1.1
    fvi = centres + (torch.rand(B, F, 3, 2, generator=g, dtype=dtype) - 0.5) * scale
    fz = -1.0 - 2.0 * torch.rand(B, F, 3, generator=g, dtype=dtype)
    return fvi, fz


def orbit(B, azimuth=0.0, elevation=0.2, distance=3.0, size=(32, 32), dtype=torch.float32):
    az = torch.full((B,), azimuth, dtype=dtype) + torch.arange(B, dtype=dtype) * 2 * math.pi / B
    return Camera.orbit(az, torch.full((B,), elevation, dtype=dtype), torch.full((B,), distance, dtype=dtype),
                        0.7, size)




def sphere_mesh(B=2, level=2, dtype=torch.float32, **fields):
    v, f = icosphere(level, dtype=dtype)
    return Mesh(v[None].repeat(B, 1, 1), f, **fields)


@pytest.fixture
def h():
    """The helpers above, for tests (with --import-mode=importlib, test modules cannot import conftest)."""
    return SimpleNamespace(random_soup=random_soup, orbit=orbit, sphere_mesh=sphere_mesh)
