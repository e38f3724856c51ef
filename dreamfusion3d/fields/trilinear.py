"""A dense grid's trilinear value and its spatial Jacobian in one pass, with a first-order backward.

Normals and the eikonal term need ∇ₓ of the field. Through ``grid_sample`` autograd gets them by a
double backward (``GridSampler3DBackwardBackward``), which the CPU profile of an SDS step shows as
about a third of the step. Trilinear interpolation has a closed-form Jacobian, so this function
returns both ``value [N, F]`` and ``jacobian [N, F, 3]`` from the 8 corner features gathered once
(lerps along x, y, z; the derivative along an axis is the interpolated difference of its two
faces), and the backward is that chain transposed followed by one ``index_add_`` into the grid.
Losses on the Jacobian (normals, eikonal) then reach the grid through this first-order backward;
only the small MLP above it is differentiated twice.

Semantics are those of ``F.grid_sample(grid, x, mode="bilinear", padding_mode="border",
align_corners=True)`` with ``grid [1, F, D, H, W]`` read as ``grid[:, :, z, y, x]``: coordinates
outside ``[-1, 1]`` are clamped, and the derivative along a clamped axis is 0. The points get no
gradient (the callers' sample positions are constants); ``value_and_jacobian`` refuses points that
require one.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function

from .. import kernels


def _cells(points: Tensor, size: tuple[int, int, int]) -> tuple[Tensor, Tensor, Tensor]:
    """Flat index of each point's 8 cell corners, corner-major ``[8, N]`` (corner c = 4 bz + 2 by + bx;
    the grid is ``[z][y][x]``), the fractions ``[3, N]`` within the cell (x, y, z) and the slopes
    ``[3, N]`` d(grid coordinate)/dx (0 along a clamped axis)."""
    d, h, w = size
    sides = points.new_tensor([w, h, d])  # x, y, z
    scale = (sides - 1) * 0.5  # align_corners=True
    pos = (points.clamp(-1.0, 1.0) + 1.0) * scale
    cell = torch.minimum(pos.floor(), sides - 2).clamp_min(0)
    slope = torch.where(points.abs() <= 1.0, scale, torch.zeros_like(scale))
    c = cell.long()
    base = c[:, 2] * (h * w) + c[:, 1] * w + c[:, 0]
    offsets = torch.tensor([0, 1, w, w + 1, h * w, h * w + 1, h * w + w, h * w + w + 1], device=points.device)
    return offsets[:, None] + base, (pos - cell).t(), slope.t()


class _TrilinearWithJacobian(Function):
    """Separable trilinear interpolation: lerp along x, then y, then z; the derivative along an axis
    is its slope times the interpolated difference of the cell's two faces across that axis. The
    eager path works feature-major (``[F, z, y, x, N]`` corners, ``[F, N]`` blocks):
    the gather and the gradient's scatter run along the grid's rows, one per feature, which is
    what lets them use both cores (a row-wise ``index_add_`` of ``[8N, F]`` did not)."""

    @staticmethod
    def forward(ctx, grid: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:  # grid [F, D, H, W]
        feats, n = grid.shape[0], points.shape[0]
        ctx.grid_shape = grid.shape
        lib = _kernel_for(grid)
        if lib is not None:  # the fused C kernel (kernels/trilinear.c): one pass, no [F, 8N] arrays
            rows, points = grid.reshape(feats, -1).t().contiguous(), points.contiguous()  # [D·H·W, F]: a view of
            # the channels-last grid that DenseGridEncoding keeps (a copy for any other layout)
            value, jac = grid.new_empty(n, feats), grid.new_empty(n, feats, 3)
            getattr(lib, f"trilinear_forward_{kernels.SUFFIX[grid.dtype]}")(
                rows.data_ptr(), feats, *grid.shape[1:], points.data_ptr(), n, value.data_ptr(), jac.data_ptr(),
                kernels.threads_for(n))
            ctx.save_for_backward(points)
            ctx.kernel = lib
            return value, jac
        ctx.kernel = None
        index, frac, slope = _cells(points, tuple(grid.shape[1:]))
        c = grid.reshape(feats, -1).index_select(1, index.reshape(-1)).view(feats, 2, 2, 2, n)  # [F, z, y, x, N]
        fx, fy, fz = frac
        cx = torch.lerp(c[:, :, :, 0], c[:, :, :, 1], fx)  # [F, z, y, N]
        ex = c[:, :, :, 1] - c[:, :, :, 0]  # differences across x
        cxy = torch.lerp(cx[:, :, 0], cx[:, :, 1], fy)  # [F, z, N]
        exy = torch.lerp(ex[:, :, 0], ex[:, :, 1], fy)
        ey = cx[:, :, 1] - cx[:, :, 0]  # differences across y
        value = torch.lerp(cxy[:, 0], cxy[:, 1], fz)  # [F, N]
        jac = torch.empty(3, feats, n, dtype=value.dtype, device=value.device)  # axis-major
        torch.lerp(exy[:, 0], exy[:, 1], fz, out=jac[0])
        torch.lerp(ey[:, 0], ey[:, 1], fz, out=jac[1])
        torch.sub(cxy[:, 1], cxy[:, 0], out=jac[2])
        jac *= slope[:, None]
        ctx.save_for_backward(index, frac, slope)
        return value.t(), jac.permute(2, 1, 0)  # [N, F], [N, F, 3]: views of [F, N] and [3, F, N]

    @staticmethod
    def backward(ctx, grad_value: Tensor | None, grad_jacobian: Tensor | None) -> tuple[Tensor | None, None]:
        if ctx.kernel is not None:
            (points,) = ctx.saved_tensors
            gv = grad_value.contiguous() if grad_value is not None else None  # [N, F]
            gj = grad_jacobian.contiguous() if grad_jacobian is not None else None  # [N, F, 3]
            feats, threads = ctx.grid_shape[0], kernels.threads_for(points.shape[0])
            rows = points.new_zeros(ctx.grid_shape[1:].numel(), feats)  # [D·H·W, F]
            scratch = points.new_zeros(threads - 1, *rows.shape)  # one more grid per extra thread
            getattr(ctx.kernel, f"trilinear_backward_{kernels.SUFFIX[rows.dtype]}")(
                *ctx.grid_shape, points.data_ptr(), points.shape[0], None if gv is None else gv.data_ptr(),
                None if gj is None else gj.data_ptr(), rows.data_ptr(), scratch.data_ptr(), threads)
            return rows.t().reshape(ctx.grid_shape), None
        index, frac, slope = ctx.saved_tensors
        feats, n = ctx.grid_shape[0], index.shape[1]
        gv = grad_value.t() if grad_value is not None else frac.new_zeros(feats, n)  # [F, N]
        gj = (grad_jacobian.permute(2, 1, 0) if grad_jacobian is not None else frac.new_zeros(3, feats, n))
        gx, gy, gz = gj * slope[:, None]  # [F, N] each
        fx, fy, fz = frac
        # The forward's chain transposed, z first (value = lerp_z(cxy), J_z ∝ cxy₁ − cxy₀, ...).
        zw = torch.stack([1.0 - fz, fz])  # [z, N]
        g_cxy = gv[:, None] * zw  # [F, z, N]
        g_cxy[:, 0] -= gz
        g_cxy[:, 1] += gz
        g_exy, g_ey = gx[:, None] * zw, gy[:, None] * zw  # [F, z, N]
        g_cx = torch.empty(feats, 2, 2, n, dtype=gv.dtype, device=gv.device)  # [F, z, y, N]
        torch.mul(g_cxy, 1.0 - fy, out=g_cx[:, :, 0])
        g_cx[:, :, 0] -= g_ey
        torch.mul(g_cxy, fy, out=g_cx[:, :, 1])
        g_cx[:, :, 1] += g_ey
        g_ex = torch.stack([g_exy * (1.0 - fy), g_exy * fy], 2)  # [F, z, y, N]
        g_c = torch.empty(feats, 2, 2, 2, n, dtype=gv.dtype, device=gv.device)  # [F, z, y, x, N]
        torch.mul(g_cx, 1.0 - fx, out=g_c[:, :, :, 0])
        g_c[:, :, :, 0] -= g_ex
        torch.mul(g_cx, fx, out=g_c[:, :, :, 1])
        g_c[:, :, :, 1] += g_ex
        rows = gv.new_zeros(feats, ctx.grid_shape[1:].numel())
        rows.index_add_(1, index.reshape(-1), g_c.view(feats, -1))
        return rows.view(ctx.grid_shape), None


def _kernel_for(grid: Tensor):
    """The compiled kernel library when it can take ``grid`` (CPU, float32/64), else None."""
    if grid.device.type != "cpu" or grid.dtype not in kernels.SUFFIX:
        return None
    return kernels.load("trilinear")


def value_and_jacobian(grid: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
    """``grid [F, D, H, W]`` (or ``[1, F, D, H, W]``) at ``points [N, 3]`` in ``[-1, 1]³``:
    ``(value [N, F], jacobian [N, F, 3])``, differentiable in the grid (first order)."""
    if points.requires_grad:
        raise ValueError("value_and_jacobian gives no gradient to the points; pass them detached")
    if grid.dim() == 5:
        grid = grid[0]
    return _TrilinearWithJacobian.apply(grid, points.to(grid.dtype))
