"""Per-pixel work on the covered pixels only, and the weighted gather every interpolation is.

Why this module: interpolating corner attributes, reading textures and computing barycentrics are all
"gather a few rows of a table, blend them with weights". Written with autograd's ops on dense
[B, H, W, 3, C] tensors, the backward pass materialises the broadcast products, reduces them over a
strided axis and scatters with a generic index backward; on the CPU that cost several times the whole
forward pass. Here the same maths runs on the covered pixels as a flat list, and ``blend`` has its
backward written out: it saves indices, weights and the gathered rows, and scatters once per corner.

On one CPU thread (torch 2.14, 126k rows of 9 channels into 10k), ``index_put_(..., accumulate=True)``
took 4 ms where ``index_add_`` and ``scatter_add_`` on [N, C] rows took 20-40 ms; for rows of up to 3
numbers a 1-D ``scatter_add_`` on flat element indices is faster still (``add_rows_`` picks).
Gathers use ``index_select`` on contiguous tables (``gather_rows``): the generic ``tensor[index]`` and
``index_select`` on a strided view are several times slower.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["Covered", "add_rows_", "blend", "gather_rows", "scatter_add_rows"]


def scatter_add_rows(index: Tensor, values: Tensor, num_rows: int) -> Tensor:
    """[num_rows, ...] zeros with ``values[i]`` added to row ``index[i]`` (repeated indices sum)."""
    return add_rows_(values.new_zeros(num_rows, *values.shape[1:]), index, values)


def add_rows_(out: Tensor, index: Tensor, values: Tensor) -> Tensor:
    """``out[index[i]] += values[i]`` in place, repeated indices summing; returns ``out`` (contiguous).

    Rows of up to 3 numbers go through a 1-D ``scatter_add_`` on flat element indices, which on one CPU
    thread took half the time of ``index_put_`` (61k rows of 3 into 10k); wider rows use ``index_put_``.
    """
    width = values[0].numel() if values.shape[0] else 0
    if 0 < width <= 3 and out.is_contiguous():
        flat = (index[:, None] * width + torch.arange(width, device=index.device)).reshape(-1)
        out.view(-1).scatter_add_(0, flat, values.reshape(-1))
        return out
    return out.index_put_((index,), values, accumulate=True)


class _GatherRows(torch.autograd.Function):
    """out = table[idx] along the first dim; the backward scatters with ``scatter_add_rows``."""

    @staticmethod
    def forward(ctx, table: Tensor, idx: Tensor) -> Tensor:
        ctx.save_for_backward(idx)
        ctx.num_rows = table.shape[0]
        # index_select from a strided view (a select like ``fvv[..., 2]``, an expanded light) takes more
        # than ten times as long as copying the table first and gathering from the copy.
        return table.contiguous().index_select(0, idx)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        (idx,) = ctx.saved_tensors
        return scatter_add_rows(idx, grad, ctx.num_rows), None


def gather_rows(table: Tensor, idx: Tensor) -> Tensor:
    """``table[idx]`` for ``table`` [N, ...] and int64 ``idx`` [M] -> [M, ...], differentiable in ``table``.

    Why not ``table[idx]``: on the CPU the generic indexing kernel (``aten::index``) takes several times
    as long as ``index_select`` for the same rows, and it was the largest single cost of a render.
    """
    return _GatherRows.apply(table, idx)


class _Blend(torch.autograd.Function):
    """out[p] = sum_k w[p, k] table[idx[p, k]]; gradients to ``table`` and ``w``."""

    @staticmethod
    def forward(ctx, table: Tensor, idx: Tensor, w: Tensor) -> Tensor:
        P, K = idx.shape
        rows = table.contiguous().index_select(0, idx.reshape(-1)).view(P, K, table.shape[1])
        out = rows[:, 0] * w[:, :1]
        for k in range(1, K):
            out = torch.addcmul(out, rows[:, k], w[:, k:k + 1])
        # The gathered rows are kept for grad_w (cheaper than gathering them again).
        ctx.save_for_backward(idx, w, rows if ctx.needs_input_grad[2] else None)
        ctx.num_rows = table.shape[0]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        idx, w, rows = ctx.saved_tensors
        P, K = idx.shape
        grad_table = grad_w = None
        # One scatter of w_k g per corner k into the same table: a third faster than building the
        # [P, K, C] outer products first (and than bmm's [K, 1] x [1, C]). The dot products rows_k . g as
        # bmm's [K, C] x [C, 1] (faster than multiply-and-sum).
        if ctx.needs_input_grad[0]:
            grad_table = grad.new_zeros(ctx.num_rows, grad.shape[1])
            for k in range(K):
                add_rows_(grad_table, idx[:, k], grad * w[:, k:k + 1])
        if ctx.needs_input_grad[2]:
            grad_w = torch.bmm(rows, grad.unsqueeze(-1)).squeeze(-1)
        return grad_table, None, grad_w


def blend(table: Tensor, idx: Tensor, w: Tensor) -> Tensor:
    """Weighted rows: ``table`` [N, C], ``idx`` [P, K] int64 rows, ``w`` [P, K] -> [P, C].

    Differentiable in ``table`` and ``w`` (first order), with a hand-written backward.
    """
    if table.ndim != 2 or idx.ndim != 2 or w.shape != idx.shape:
        raise ValueError(f"blend needs table [N, C], idx [P, K] and w [P, K], got {tuple(table.shape)}, "
                         f"{tuple(idx.shape)}, {tuple(w.shape)}")
    return _Blend.apply(table, idx, w)


@dataclass(frozen=True)
class Covered:
    """The covered pixels of a face-index image as a flat list (what per-pixel work runs on)."""

    pixel: Tensor
    """[P] int64 flat index ``(b * H + row) * W + col``, in increasing order."""
    batch: Tensor
    """[P] int64 sample of each pixel."""
    face: Tensor
    """[P] int64 face drawn at each pixel."""
    shape: tuple[int, int, int]
    """(B, H, W) of the image."""

    @classmethod
    def of(cls, face_idx: Tensor) -> Covered:
        """From ``face_idx`` [B, H, W] (-1 for background)."""
        B, H, W = face_idx.shape
        flat = face_idx.reshape(-1)
        pixel = torch.nonzero(flat >= 0).squeeze(1)
        return cls(pixel, torch.div(pixel, H * W, rounding_mode="floor"), flat.index_select(0, pixel), (B, H, W))

    @property
    def num_pixels(self) -> int:
        return self.pixel.shape[0]

    def take(self, dense: Tensor) -> Tensor:
        """[B, H, W, ...] -> [P, ...] at the covered pixels (differentiable)."""
        B, H, W = self.shape
        return gather_rows(dense.reshape(B * H * W, *dense.shape[3:]), self.pixel)

    def spread(self, values: Tensor, fill: float = 0.0) -> Tensor:
        """[P, ...] -> [B, H, W, ...] with ``fill`` on background (differentiable in ``values``)."""
        B, H, W = self.shape
        out = values.new_full((B * H * W, *values.shape[1:]), fill)
        # In place into the new tensor (autograd records it): the out-of-place index_copy cloned it first.
        return out.index_copy_(0, self.pixel, values).view(B, H, W, *values.shape[1:])
