"""The CPU sampler's packing without argsort (issue 23): the same samples as the argsort packing —
each test once through the compiled march (kernels/march.c) and once through the eager one."""

import pytest
import torch
from nerfacc import OccGridEstimator

from dreamfusion3d.rendering import march_cpu
from dreamfusion3d.rendering.sampler import occupied, ray_aabb_intersect


pytestmark = pytest.mark.usefixtures("compiled_or_eager")


def _old_march(estimator, origins, dirs, step, jitter):
    """The argsort packing of 8e1db29, for reference."""
    aabb = estimator.aabbs[0]
    t_near, t_far, hit = ray_aabb_intersect(origins, dirs, aabb, 0.0)
    length = torch.where(hit, t_far - t_near, torch.zeros_like(t_near))
    steps = max(int(torch.ceil(length.max() / step).item()), 1)
    t_mid = t_near[:, None] + (torch.arange(steps)[None, :] + jitter) * step
    valid = hit[:, None] & (t_mid < t_far[:, None])
    points = origins[:, None, :] + t_mid[..., None] * dirs[:, None, :]
    keep = valid & occupied(estimator.binaries[0], aabb, points)
    counts = keep.sum(1)
    width = max(int(counts.max().item()), 1)
    order = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)[:, :width]
    slot_used = torch.arange(width)[None, :] < counts[:, None]
    ray_idx, slot = slot_used.nonzero(as_tuple=True)
    col = order[ray_idx, slot]
    return ray_idx, t_mid[ray_idx, col], points[ray_idx, col], ray_idx * width + slot, width


def _rays(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    origins = torch.randn(n, 3, generator=g)
    origins = 2.5 * origins / origins.norm(dim=-1, keepdim=True)
    target = (torch.rand(n, 3, generator=g) - 0.5)
    dirs = torch.nn.functional.normalize(target - origins, dim=-1)
    return origins, dirs


def test_packing_is_the_argsort_packing():
    est = OccGridEstimator(roi_aabb=[-1, -1, -1, 1, 1, 1], resolution=16, levels=1)
    est.binaries.copy_(torch.rand(est.binaries.shape, generator=torch.Generator().manual_seed(1)) < 0.3)
    origins, dirs = _rays()
    s = march_cpu(est, origins, dirs, 0.05, stratified=False)
    ray_idx, t, pos, bidx, width = _old_march(est, origins, dirs, 0.05, 0.5)
    assert torch.equal(s.ray_indices, ray_idx) and torch.equal(s.batch_index, bidx) and s.batch_width == width
    assert torch.allclose(0.5 * (s.t_starts + s.t_ends), t, atol=1e-6) and torch.equal(s.positions, pos)


def test_marching_only_the_occupied_box_gives_the_same_samples():
    """Occupied cells in a sub-box (a ball off-centre, plus a lone cell): the march over that box only
    (stratified, so every ray has its own offset) keeps exactly the samples of a whole-box march."""
    est = OccGridEstimator(roi_aabb=[-1, -1, -1, 1, 1, 1], resolution=16, levels=1)
    centers = (torch.stack(torch.meshgrid(*[torch.arange(16)] * 3, indexing="ij"), -1) + 0.5) / 8 - 1
    ball = (centers - torch.tensor([0.2, -0.1, 0.0])).norm(dim=-1) < 0.45
    ball[3, 12, 5] = True
    est.binaries.copy_(ball[None])
    origins, dirs = _rays(500, seed=2)
    s = march_cpu(est, origins, dirs, 0.04, stratified=True, generator=torch.Generator().manual_seed(5))
    jitter = torch.rand(500, 1, generator=torch.Generator().manual_seed(5))
    ray_idx, t, pos, bidx, width = _old_march(est, origins, dirs, 0.04, jitter)
    assert s.num_samples > 1000 and s.batch_width == width
    assert torch.equal(s.ray_indices, ray_idx) and torch.equal(s.batch_index, bidx)
    assert torch.allclose(0.5 * (s.t_starts + s.t_ends), t, atol=1e-6, rtol=0) and torch.equal(s.positions, pos)
    full = march_cpu(est, origins, dirs, 0.04, use_occupancy=False, stratified=True,
                     generator=torch.Generator().manual_seed(5))
    assert int(s.num_dense) == int(full.num_dense) == full.num_samples
