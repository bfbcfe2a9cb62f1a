"""A differentiable mesh renderer (DIB-R) in pure PyTorch, fast on a CPU."""

from ganfactory.render.mesh import Mesh

__all__ = ["Mesh"]
