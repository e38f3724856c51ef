"""Where to evaluate the field along each ray.

Both samplers share one nerfacc ``OccGridEstimator`` over the scene box:

* CUDA: ``OccGridEstimator.sampling`` (nerfacc's grid traversal kernel) gives packed samples.
* CPU: nerfacc's traversal has no CPU kernel, so rays march at a fixed step between their
  entry and exit of the box (ray–AABB slab test in torch), and samples whose occupancy cell is
  empty in the estimator's ``binaries`` are dropped. Dropped samples have zero density, so
  removing them from a ray changes nothing in the compositing: the kept samples of each ray are
  packed to the left of a ``[n_rays, K]`` batch (K = most kept samples on any ray), which the
  batched nerfacc compositing reads.

Both return ``RaySamples`` with the packed (flat) view that the field evaluates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from nerfacc import OccGridEstimator
from torch import Tensor

from .. import kernels


@dataclass
class RaySamples:
    """Samples of ``n_rays`` rays. ``positions``/``ray_indices``/``t_starts``/``t_ends`` are flat
    ``[M]``; ``batch_index`` (CPU only) places flat sample i at ``[ray, k]`` of a ``[n_rays, K]``
    batch, flattened (``ray * K + k``)."""

    ray_indices: Tensor  # [M] long
    t_starts: Tensor  # [M]
    t_ends: Tensor  # [M]
    positions: Tensor  # [M, 3]
    n_rays: int
    num_dense: Tensor | int  # samples a plain march (no grid) would evaluate; 0-d tensor (no host sync)
    batch_index: Tensor | None = None  # [M] long, CPU batched layout
    batch_width: int = 0  # K

    @property
    def num_samples(self) -> int:
        return int(self.t_starts.shape[0])


def ray_aabb_intersect(origins: Tensor, dirs: Tensor, aabb: Tensor, near: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """Slab test; returns ``t_near [R]``, ``t_far [R]`` (clipped at ``near``) and ``hit [R]``."""
    lo, hi = aabb[:3], aabb[3:]
    safe = torch.where(dirs.abs() < 1e-12, torch.full_like(dirs, 1e-12), dirs)
    inv = 1.0 / safe
    t0 = (lo - origins) * inv  # [R, 3]
    t1 = (hi - origins) * inv
    t_near = torch.minimum(t0, t1).amax(-1).clamp_min(near)
    t_far = torch.maximum(t0, t1).amin(-1)
    return t_near, t_far, t_far > t_near


def occupied(binaries: Tensor, aabb: Tensor, points: Tensor) -> Tensor:
    """Whether each point ``[..., 3]`` lies in an occupied cell of ``binaries [X, Y, Z]``
    (the estimator's level-0 grid; cell (i, j, k) covers aabb_min + (i, j, k) · size / res)."""
    res = torch.tensor(binaries.shape, device=points.device)
    lo, hi = aabb[:3], aabb[3:]
    cell = ((points - lo) / (hi - lo) * res).floor().long()
    cell = torch.minimum(cell.clamp_min(0), res - 1)
    return binaries[cell[..., 0], cell[..., 1], cell[..., 2]]


def _occupied_box(binaries: Tensor, aabb: Tensor) -> Tensor | None:
    """The bounding box ``[6]`` of the occupied cells of ``binaries [X, Y, Z]`` (widened by a cell's
    hundredth against rounding); ``None`` when it is the whole grid or no cell is occupied."""
    cells = binaries.nonzero()
    res = torch.tensor(binaries.shape, device=aabb.device)
    if cells.shape[0] == 0 or cells.shape[0] == binaries.numel():
        return None
    size = (aabb[3:] - aabb[:3]) / res
    lo = aabb[:3] + (cells.amin(0) - 0.01) * size
    hi = aabb[:3] + (cells.amax(0) + 1.01) * size
    return torch.cat([lo, hi])


def march_cpu(
    estimator: OccGridEstimator,
    origins: Tensor,  # [R, 3]
    dirs: Tensor,  # [R, 3] unit
    step: float,
    near: float = 0.0,
    use_occupancy: bool = True,
    stratified: bool = False,
    generator: torch.Generator | None = None,
) -> RaySamples:
    """Fixed-step march through the scene box, keeping only samples in occupied cells.

    Sample k of a ray sits at ``t_near + (k + jitter) · step`` (``t_near``: the scene box's entry).
    With the occupancy grid on, only the steps inside the bounding box of the occupied cells
    (from each ray's first to its last step there, plus one either side) are formed and looked up:
    the same samples as a march over the whole box, which are then filtered by cell."""
    aabb = estimator.aabbs[0].to(origins.dtype)
    n_rays = origins.shape[0]
    t_near, t_far, hit = ray_aabb_intersect(origins, dirs, aabb, near)
    length = torch.where(hit, t_far - t_near, torch.zeros_like(t_near))
    steps = int(torch.ceil(length.max() / step).item()) if n_rays else 0
    steps = max(steps, 1)
    if stratified:
        jitter = torch.rand(n_rays, 1, generator=generator, dtype=origins.dtype).to(origins.device)
    else:
        jitter = torch.full((n_rays, 1), 0.5, dtype=origins.dtype, device=origins.device)
    box = _occupied_box(estimator.binaries[0], aabb) if use_occupancy else None
    first = count = None
    if box is not None:  # march only the steps inside the occupied cells' bounding box
        b_near, b_far, b_hit = ray_aabb_intersect(origins, dirs, box, near)
        first = ((b_near - t_near) / step - jitter[:, 0]).floor() - 1.0
        last = ((b_far - t_near) / step - jitter[:, 0]).ceil() + 1.0
        first = torch.where(b_hit, first.clamp(0.0, steps - 1), torch.zeros_like(first))
        count = torch.where(b_hit, (last.clamp_max(steps - 1.0) - first + 1).clamp_min(0), 0)
    lib = kernels.load("march") if origins.device.type == "cpu" and origins.dtype == torch.float32 else None
    if lib is not None:
        return _march_compiled(lib, estimator.binaries[0] if use_occupancy else None, aabb, origins, dirs, t_near,
                               t_far, hit, jitter, step, steps, first, count)
    k = torch.arange(steps, dtype=origins.dtype, device=origins.device)
    valid = hit[:, None] & (t_near[:, None] + (k[None, :] + jitter) * step < t_far[:, None])  # [R, S]
    num_dense = valid.sum()
    if box is not None:
        width = max(int(count.max().item()) if n_rays else 0, 1)
        m = torch.arange(width, dtype=origins.dtype, device=origins.device)
        k = first[:, None] + m[None, :]  # [R, S'] the steps marched, integer-valued
        valid = valid.gather(1, k.long().clamp_max(steps - 1)) & (m[None, :] < count[:, None])
    else:
        k = k[None, :]
    t_mid = t_near[:, None] + (k + jitter) * step  # [R, S']
    points = origins[:, None, :] + t_mid[..., None] * dirs[:, None, :]  # [R, S, 3]
    keep = valid & occupied(estimator.binaries[0], aabb, points) if use_occupancy else valid
    # Pack the kept samples of each ray to the left (order along the ray is preserved): row-major
    # nonzero lists each ray's kept columns in order, and a running count gives their slots.
    ray_idx, col = keep.nonzero(as_tuple=True)  # [M]
    slot = (keep.cumsum(1, dtype=torch.int32) - 1)[ray_idx, col].long()
    width = int(slot.max().item()) + 1 if slot.numel() else 1
    t = t_mid[ray_idx, col]
    return RaySamples(
        ray_indices=ray_idx,
        t_starts=t - 0.5 * step,
        t_ends=t + 0.5 * step,
        positions=points[ray_idx, col],
        n_rays=n_rays,
        num_dense=num_dense,
        batch_index=ray_idx * width + slot,
        batch_width=width,
    )


def _march_compiled(lib, binaries: Tensor | None, aabb: Tensor, origins: Tensor, dirs: Tensor, t_near: Tensor,
                    t_far: Tensor, hit: Tensor, jitter: Tensor, step: float, steps: int, first: Tensor | None,
                    count: Tensor | None) -> RaySamples:
    """``march_cpu``'s samples by the C kernel (kernels/march.c): count per ray, then fill."""
    n_rays = origins.shape[0]
    if first is None:  # no box: every step of the march
        first, count = torch.zeros(n_rays), torch.full((n_rays,), float(steps))
    o, d, tn, tf, jit, box = (x.contiguous() for x in (origins, dirs, t_near, t_far, jitter[:, 0], aabb))
    hit8 = hit.to(torch.uint8).contiguous()
    first_l, count_l = first.long().contiguous(), count.long().contiguous()
    occ = binaries.to(torch.uint8).contiguous() if binaries is not None else None  # None: keep every valid step
    res = tuple(occ.shape) if occ is not None else (0, 0, 0)
    occ_ptr = occ.data_ptr() if occ is not None else None
    threads = kernels.threads_for(n_rays, per_thread=256)
    kept, dense = torch.empty(n_rays, dtype=torch.long), torch.empty(n_rays, dtype=torch.long)
    common = (o.data_ptr(), d.data_ptr(), n_rays, tn.data_ptr(), tf.data_ptr(), hit8.data_ptr(), jit.data_ptr(), step)
    lib.march_count_f32(*common, steps, first_l.data_ptr(), count_l.data_ptr(), occ_ptr, *res, box.data_ptr(),
                        kept.data_ptr(), dense.data_ptr(), threads)
    total = int(kept.sum())
    offset = kept.cumsum(0) - kept
    ray_idx, slot = torch.empty(total, dtype=torch.long), torch.empty(total, dtype=torch.long)
    t, positions = torch.empty(total), torch.empty(total, 3)
    lib.march_fill_f32(*common, first_l.data_ptr(), count_l.data_ptr(), occ_ptr, *res, box.data_ptr(),
                       offset.data_ptr(), ray_idx.data_ptr(), t.data_ptr(), positions.data_ptr(), slot.data_ptr(),
                       threads)
    width = max(int(kept.max()) if n_rays else 0, 1)
    return RaySamples(
        ray_indices=ray_idx,
        t_starts=t - 0.5 * step,
        t_ends=t + 0.5 * step,
        positions=positions,
        n_rays=n_rays,
        num_dense=dense.sum(),
        batch_index=ray_idx * width + slot,
        batch_width=width,
    )


def march_cuda(
    estimator: OccGridEstimator,
    origins: Tensor,
    dirs: Tensor,
    step: float,
    near: float = 0.0,
    use_occupancy: bool = True,
    stratified: bool = False,
    sigma_fn=None,
    early_stop_eps: float = 0.0,
) -> RaySamples:
    """nerfacc's occupancy-grid traversal (CUDA kernels); packed samples."""
    aabb = estimator.aabbs[0].to(origins.dtype)
    t_near, t_far, hit = ray_aabb_intersect(origins, dirs, aabb, near)
    t_far = torch.where(hit, t_far, t_near)
    binaries = estimator.binaries
    if not use_occupancy:  # sample every cell: temporarily a full grid
        estimator.binaries = torch.ones_like(binaries)
    ray_indices, t_starts, t_ends = estimator.sampling(
        origins, dirs, sigma_fn=sigma_fn, t_min=t_near, t_max=t_far, render_step_size=step,
        early_stop_eps=early_stop_eps, alpha_thre=0.0, stratified=stratified,
    )
    estimator.binaries = binaries
    ray_indices = ray_indices.long()
    t_mid = 0.5 * (t_starts + t_ends)
    positions = origins[ray_indices] + t_mid[:, None] * dirs[ray_indices]
    num_dense = torch.ceil(((t_far - t_near) / step).clamp_min(0)).sum().long()
    return RaySamples(ray_indices, t_starts, t_ends, positions, origins.shape[0], num_dense)
