"""Spatial encodings for NeRF fields, in plain torch.

* ``HashGridEncoding`` — multi-resolution hash grid (Müller et al. 2022, instant-NGP): ``L`` levels
  whose resolutions grow geometrically from ``base_resolution`` to ``max_resolution``; each level
  keeps a table of ``T`` feature vectors of size ``F``. Coarse levels whose ``(N+1)^3`` corners fit
  in the table are indexed densely, finer ones by the spatial hash
  ``(x·1) xor (y·2654435761) xor (z·805459861) mod T``. Features of the 8 cell corners are
  interpolated trilinearly and the levels concatenated.
* ``DenseGridEncoding`` — one dense 3D feature grid read with ``torch.nn.functional.grid_sample``.

Both take points in the scene box ``[-1, 1]^3``. CPU cost matters most here: densely indexed
hash levels are read with ``grid_sample`` (a view of the same table rows), hashed levels with one
``index_select`` over level-major ``[L, N, 8]`` int32 indices built per axis by broadcasting.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .trilinear import value_and_jacobian

HASH_PRIMES = (1, 2654435761, 805459861)


def level_resolutions(num_levels: int, base_resolution: int, max_resolution: int) -> list[int]:
    """Geometric progression N_l = floor(N_min * b^l), b = exp((ln N_max - ln N_min) / (L - 1))."""
    if num_levels == 1:
        return [base_resolution]
    growth = math.exp((math.log(max_resolution) - math.log(base_resolution)) / (num_levels - 1))
    return [int(math.floor(base_resolution * growth**level + 1e-6)) for level in range(num_levels)]


class HashGridEncoding(nn.Module):
    """Multi-resolution hash encoding; ``forward(points [N, 3]) -> [N, L * F]``."""

    def set_step(self, step: int) -> None:
        """No schedule: every level is on from the start."""

    def __init__(
        self,
        num_levels: int = 12,
        features_per_level: int = 2,
        log2_table_size: int = 16,
        base_resolution: int = 16,
        max_resolution: int = 256,
        init_scale: float = 1e-4,
    ) -> None:
        super().__init__()
        self.num_levels = num_levels
        self.features_per_level = features_per_level
        self.table_size = 2**log2_table_size
        resolutions = level_resolutions(num_levels, base_resolution, max_resolution)
        dense = [(r + 1) ** 3 <= self.table_size for r in resolutions]
        sizes = [(r + 1) ** 3 if d else self.table_size for r, d in zip(resolutions, dense)]
        offsets = [0]
        for s in sizes[:-1]:
            offsets.append(offsets[-1] + s)
        self.register_buffer("resolutions", torch.tensor(resolutions, dtype=torch.long), persistent=False)
        self.register_buffer("dense_levels", torch.tensor(dense), persistent=False)
        if sum(sizes) >= 2**31:
            raise ValueError("hash grid too large: total table rows must stay below 2^31")
        self.register_buffer("level_offsets", torch.tensor(offsets, dtype=torch.int32), persistent=False)
        side = torch.tensor([r + 1 for r in resolutions], dtype=torch.long)
        strides = torch.stack([torch.ones_like(side), side, side * side], dim=-1)  # [L, 3]
        self.register_buffer("dense_strides", strides.view(-1, 1, 3, 1).to(torch.int32), persistent=False)
        # The primes as two's-complement int32: the low bits of the wrapped product are those of the
        # uint32 product, and the table index only keeps low bits (T divides 2^32).
        primes = [p - 2**32 if p >= 2**31 else p for p in HASH_PRIMES]
        self.register_buffer("primes", torch.tensor(primes, dtype=torch.int32).view(1, 1, 3, 1), persistent=False)
        # Levels are ordered coarse to fine, so the densely indexed ones come first.
        self.num_dense_levels = sum(dense)
        assert all(dense[: self.num_dense_levels]) and not any(dense[self.num_dense_levels :])
        self.table = nn.Parameter(torch.empty(sum(sizes), features_per_level).uniform_(-init_scale, init_scale))

    @property
    def output_dim(self) -> int:
        return self.num_levels * self.features_per_level

    def corner_indices(self, points: Tensor, first_level: int = 0) -> tuple[Tensor, Tensor]:
        """Table rows ``[L, N, 8]`` of each point's cell corners and their trilinear weights ``[L, N, 8]``.

        Corner c = bx + 2 by + 4 bz (bits = offset along x, y, z). Indices and weights are built
        per axis and combined by broadcasting, which keeps the elementwise work small.
        """
        unit = ((points + 1.0) * 0.5).clamp(0.0, 1.0)  # [N, 3]
        res = self.resolutions[first_level:].to(points.dtype).view(-1, 1, 1)  # [L, 1, 1]
        pos = unit.unsqueeze(0) * res  # [L, N, 3]
        cell = torch.minimum(pos.detach().floor(), res - 1)  # [L, N, 3]
        frac = pos - cell  # [L, N, 3], differentiable in the points
        cell = cell.to(torch.int32)  # int32 halves the memory traffic; hashing wraps mod 2^32 as intended
        # Per axis: corner coordinate (cell, cell + 1) -> [L, N, 3, 2]; weights (1 - f, f).
        coord = torch.stack([cell, cell + 1], dim=-1)
        w = torch.stack([1.0 - frac, frac], dim=-1)  # [L, N, 3, 2]
        weights = (w[:, :, 2, :, None, None] * w[:, :, 1, None, :, None] * w[:, :, 0, None, None, :]).flatten(2)
        nd = max(self.num_dense_levels - first_level, 0)
        parts = []
        if nd > 0:  # dense levels: x + (N+1) y + (N+1)^2 z
            c = coord[:nd] * self.dense_strides[first_level : first_level + nd]  # [Ld, N, 3, 2]
            parts.append((c[:, :, 2, :, None, None] + c[:, :, 1, None, :, None] + c[:, :, 0, None, None, :]).flatten(2))
        if nd < coord.shape[0]:  # hashed levels: (x p0) xor (y p1) xor (z p2) mod T
            c = coord[nd:] * self.primes  # [Lh, N, 3, 2]
            h = c[:, :, 2, :, None, None] ^ c[:, :, 1, None, :, None] ^ c[:, :, 0, None, None, :]
            parts.append(h.flatten(2) & (self.table_size - 1))
        index = torch.cat(parts) if len(parts) > 1 else parts[0]
        return index + self.level_offsets[first_level:].view(-1, 1, 1), weights

    def forward(self, points: Tensor) -> Tensor:  # [N, 3] -> [N, L * F]
        n, nd, feats = points.shape[0], self.num_dense_levels, self.features_per_level
        outs = []
        # Densely indexed levels are plain (N+1)^3 grids stored row-major as [z][y][x]: read them
        # with grid_sample (same trilinear interpolation, native kernel, far cheaper than gathers).
        coords = points.clamp(-1.0, 1.0).view(1, n, 1, 1, 3)
        for level in range(nd):
            side = int(self.resolutions[level]) + 1
            start = int(self.level_offsets[level])
            grid = self.table[start : start + side**3].view(side, side, side, feats).permute(3, 0, 1, 2)[None]
            out = F.grid_sample(grid, coords, mode="bilinear", padding_mode="border", align_corners=True)
            outs.append(out.view(feats, n).t())
        if nd < self.num_levels:
            index, weights = self.corner_indices(points, first_level=nd)
            hashed = self.table.index_select(0, index.reshape(-1)).view(*index.shape, feats)  # [Lh, N, 8, F]
            hashed = (hashed * weights.unsqueeze(-1)).sum(2)  # [Lh, N, F]
            outs.extend(hashed.unbind(0))
        return torch.cat(outs, dim=-1)


class DenseGridEncoding(nn.Module):
    """A dense ``[F, R, R, R]`` feature grid over ``[-1, 1]^3``, trilinearly interpolated.

    With ``coarse_resolution > 0`` a second, coarse grid is added to the features and the fine grid
    is faded in by ``fine_weight`` (0 → 1 between the two steps of ``fine_ramp``, set by
    :meth:`set_step`): early optimisation moves the surface in coarse voxels, which keeps the large-
    scale shape coherent, and the fine grid adds detail later (coarse-to-fine, as Magic3D and
    Neuralangelo schedule their resolutions).

    With ``blur_sigma > 0`` the features are read from the grid convolved with a Gaussian of that
    standard deviation (in voxels; separable, border-replicated, truncated at 2σ): a low-pass
    parametrisation, so detail finer than ~2σ voxels cannot be represented at all (rendered, meshed
    and judged alike), and each parameter's gradient is the blurred gradient of its neighbourhood."""

    def __init__(self, resolution: int = 64, features: int = 8, init_scale: float = 1e-2,
                 coarse_resolution: int = 0, fine_ramp: tuple[int, int] = (0, 0), blur_sigma: float = 0.0) -> None:
        super().__init__()
        self.features = features
        self.blur_sigma = float(blur_sigma)
        if self.blur_sigma > 0:
            self.register_buffer("blur", blur_matrix(resolution, self.blur_sigma).float(), persistent=False)
        self.fine_ramp = (int(fine_ramp[0]), int(fine_ramp[1]))
        # grid_sample reads (x, y, z) as (W, H, D): grid[:, :, z, y, x]. Stored channels-last (a
        # voxel's features side by side: [z][y][x][F] in memory), the layout the compiled kernels
        # read (fields/trilinear.py, fields/dense_head.py), so no step transposes it.
        grid = init_scale * torch.randn(1, features, resolution, resolution, resolution)
        self.grid = nn.Parameter(grid.contiguous(memory_format=torch.channels_last_3d))
        if coarse_resolution > 0:
            r = coarse_resolution
            self.coarse = nn.Parameter(init_scale * torch.randn(1, features, r, r, r))
            self.register_buffer("fine_weight", torch.tensor(self.fine_weight_at(0)))
        else:
            self.coarse = None

    @property
    def output_dim(self) -> int:
        return self.features

    def fine_weight_at(self, step: int) -> float:
        """Weight of the fine grid at optimisation step ``step`` (1 without a coarse grid)."""
        start, end = self.fine_ramp
        if step >= end:
            return 1.0
        return 0.0 if step <= start else (step - start) / (end - start)

    def set_step(self, step: int) -> None:
        if self.coarse is not None:
            self.fine_weight.fill_(self.fine_weight_at(step))

    @staticmethod
    def _read(grid: Tensor, coords: Tensor) -> Tensor:
        return F.grid_sample(grid, coords, mode="bilinear", padding_mode="border", align_corners=True)

    def effective_grid(self) -> Tensor:
        """The fine grid the features are read from: the parameter itself, or its Gaussian blur
        (``blur_sigma`` > 0), channels-last like the parameter (differentiable in it)."""
        if self.blur_sigma <= 0:
            return self.grid
        return separable_blur(self.grid, (self.blur,) * 3)

    def forward(self, points: Tensor) -> Tensor:  # [N, 3] -> [N, F]
        n = points.shape[0]
        grid = self.effective_grid()
        coords = points.view(1, n, 1, 1, 3).to(grid.dtype)
        if self.coarse is None:
            out = self._read(grid, coords)
        else:
            out = self._read(self.coarse, coords) + self.fine_weight * self._read(grid, coords)
        return out.view(self.features, n).t()

    def value_and_jacobian(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """``(forward(points) [N, F], its Jacobian in the points [N, F, 3])`` without a double
        backward (see :mod:`.trilinear`); ``points`` must not require grad."""
        value, jac = value_and_jacobian(self.effective_grid(), points)
        if self.coarse is not None:
            coarse, coarse_jac = value_and_jacobian(self.coarse, points)
            value, jac = coarse + self.fine_weight * value, coarse_jac + self.fine_weight * jac
        return value, jac


def gaussian_kernel_1d(sigma: float) -> Tensor:
    """Normalised 1D Gaussian taps of standard deviation ``sigma`` (samples), truncated at 2σ
    (rounded to the nearest tap, as ``scipy.ndimage.gaussian_filter(truncate=2)`` does)."""
    radius = max(1, int(2.0 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def blur_matrix(size: int, sigma: float) -> Tensor:
    """``[size, size]`` matrix ``B`` with ``(B v)_i = Σ_o k_o v_clamp(i+o)``: the Gaussian taps of
    :func:`gaussian_kernel_1d` applied along one axis, borders replicated (the value
    ``grid_sample`` reads outside the box with padding "border")."""
    k = gaussian_kernel_1d(sigma)
    r = (k.numel() - 1) // 2
    b = torch.zeros(size, size, dtype=torch.float64)
    rows = torch.arange(size)
    for o in range(-r, r + 1):
        b.index_put_((rows, (rows + o).clamp(0, size - 1)), k[o + r].expand(size), accumulate=True)
    return b


def separable_blur(grid: Tensor, matrices: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """``grid [1, C, D, H, W]`` blurred along D, H and W by the three :func:`blur_matrix` matrices,
    as three small matrix products (a grouped 3D convolution took ~15× longer, forward and backward,
    on a 2-core CPU); the result
    is channels-last like the dense grid."""
    bd, bh, bw = (m.to(grid.dtype) for m in matrices)
    c, d, h, w = grid.shape[1:]
    x = grid[0].permute(1, 2, 3, 0).contiguous()  # [D, H, W, C]: no copy for a channels-last grid
    x = (bd @ x.view(d, h * w * c)).view(d, h, w * c)  # along D
    x = (bh @ x).view(d * h, w, c)  # along H (batched over D)
    x = (bw @ x).view(d, h, w, c)  # along W (batched over D·H)
    return x.permute(3, 0, 1, 2).unsqueeze(0)  # [1, C, D, H, W], channels-last memory
