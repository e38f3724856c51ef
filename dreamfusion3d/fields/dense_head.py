"""A dense grid and its one-hidden-layer ReLU head in one compiled pass, with ∂(output 0)/∂x.

A signed-distance field needs, per sample, the head's outputs ``raw = head(grid(x))`` and the
gradient of the distance ``raw₀`` in the point (normals, eikonal term); training then
differentiates that gradient again. Through autograd this is a double backward of the head — a
dozen ``[N, hidden]`` intermediate arrays per step, which on a CPU are memory-bound. ReLU's second
derivative is zero almost everywhere, so the gradient's own backward is first-order in closed
form: :func:`grid_head_and_gradient` runs forward and backward in the C kernel
(``kernels/trilinear.c``, ``dense_head_*``; tiles of 32 points, no ``[N, hidden]`` array in
memory; the backward recomputes the forward rather than storing it) and returns ``(raw [N, O], ∂raw₀/∂x [N, 3])``, differentiable (first order) in the grid and the
head's weights. Where it does not apply (another head, a coarse grid, no compiler, not float32/64
on a CPU) it returns ``None`` and the caller differentiates through autograd as before.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from .. import kernels
from .encoding import DenseGridEncoding

_MAX_WIDTH = 256  # a tile's scratch ([width][32] arrays) lives on the C stack


def _one_hidden_relu(head: nn.Module) -> tuple[nn.Linear, nn.Linear] | None:
    layers = list(head) if isinstance(head, nn.Sequential) else []
    if (len(layers) == 3 and isinstance(layers[0], nn.Linear) and isinstance(layers[1], nn.ReLU)
            and isinstance(layers[2], nn.Linear) and layers[0].bias is not None and layers[2].bias is not None):
        return layers[0], layers[2]
    return None


class _GridHead(Function):
    @staticmethod
    def forward(ctx, grid: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, points: Tensor,
                lib, threads: int) -> tuple[Tensor, Tensor]:  # grid [1, F, D, H, W]
        feats, n, hidden, outs = grid.shape[1], points.shape[0], w1.shape[0], w2.shape[0]
        rows = grid[0].reshape(feats, -1).t().contiguous()  # point-major [D·H·W, F]: a view of a channels-last grid
        params = [t.contiguous() for t in (w1, b1, w2, b2)]
        out, gq = grid.new_empty(n, outs), grid.new_empty(n, 3)
        getattr(lib, f"dense_head_forward_{kernels.SUFFIX[grid.dtype]}")(
            rows.data_ptr(), feats, *grid.shape[2:], *(t.data_ptr() for t in params), hidden, outs,
            points.data_ptr(), n, out.data_ptr(), gq.data_ptr(), threads)
        ctx.save_for_backward(rows, *params, points)
        ctx.grid_shape, ctx.lib, ctx.threads = grid.shape, lib, threads
        return out, gq

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out: Tensor | None, g_gq: Tensor | None):
        rows, w1, b1, w2, b2, points = ctx.saved_tensors
        (_, feats, *size), threads = ctx.grid_shape, ctx.threads
        hidden, outs = w1.shape[0], w2.shape[0]
        go = g_out.contiguous() if g_out is not None else None
        gk = g_gq.contiguous() if g_gq is not None else None
        grad_rows = torch.zeros_like(rows)
        scratch = rows.new_zeros(threads - 1, *rows.shape)
        sizes = [hidden * feats, hidden, outs * hidden, outs]
        grad_params = rows.new_zeros(threads, sum(sizes))
        getattr(ctx.lib, f"dense_head_backward_{kernels.SUFFIX[rows.dtype]}")(
            rows.data_ptr(), feats, *size, w1.data_ptr(), b1.data_ptr(), w2.data_ptr(), b2.data_ptr(), hidden,
            outs, points.data_ptr(), points.shape[0], None if go is None else go.data_ptr(),
            None if gk is None else gk.data_ptr(), grad_rows.data_ptr(), scratch.data_ptr(),
            grad_params.data_ptr(), threads)
        gw1, gb1, gw2, gb2 = grad_params[0].split(sizes)
        # [1, F, D, H, W] in the grid's channels-last layout: a view, which autograd keeps as the grid's .grad
        return (grad_rows.t().reshape(ctx.grid_shape), gw1.view_as(w1), gb1, gw2.view_as(w2), gb2,
                None, None, None)


def grid_head_and_gradient(encoding: nn.Module, head: nn.Module, points: Tensor) -> tuple[Tensor, Tensor] | None:
    """``(head(encoding(points)) [N, O], its output 0's gradient in the points [N, 3])`` from the
    compiled kernel, differentiable in the grid and the head; ``None`` where the kernel does not
    apply (the caller then uses autograd)."""
    linears = _one_hidden_relu(head)
    if not isinstance(encoding, DenseGridEncoding) or encoding.coarse is not None or linears is None:
        return None
    grid = encoding.effective_grid()  # [1, F, D, H, W], whole: a slice of it would cost a zero-filled copy in the backward
    first, last = linears
    if (grid.device.type != "cpu" or grid.dtype not in kernels.SUFFIX or grid.shape[1] > _MAX_WIDTH
            or first.out_features > _MAX_WIDTH or last.out_features > _MAX_WIDTH
            or any(p.dtype != grid.dtype for p in (*first.parameters(), *last.parameters()))):
        return None
    lib = kernels.load("trilinear")
    if lib is None:
        return None
    pts = points.detach().to(grid.dtype).contiguous()
    return _GridHead.apply(grid, first.weight, first.bias, last.weight, last.bias, pts, lib,
                           kernels.threads_for(pts.shape[0]))
