"""Sampler + compositing against an independent dense quadrature, transmittance, gradients,
empty-space skipping, and CPU/CUDA equivalence."""

import math

import numpy as np
import pytest
import torch

from dreamfusion3d.cameras import orbit_cameras
from dreamfusion3d.fields import FieldConfig, NeRFField
from dreamfusion3d.rendering import BackgroundConfig, RendererConfig, VolumeRenderer
from dreamfusion3d.representations import build_nerf
from dreamfusion3d.rendering.background import build_background
from tests.conftest import requires_cuda


class BallField(NeRFField):
    """A random hash-grid field whose density is cut to exactly 0 outside a ball."""

    def __init__(self, config: FieldConfig, radius: float) -> None:
        super().__init__(config)
        self.radius = radius

    def _activate(self, raw, points):
        inside = (points.norm(dim=-1) < self.radius).to(raw.dtype)
        return super()._activate(raw, points) * inside


class SlabField(NeRFField):
    """Constant density ``sigma`` for |x| < half, zero elsewhere; white albedo."""

    def __init__(self, sigma: float, half: float) -> None:
        super().__init__(FieldConfig(kind="dense", dense_resolution=4))
        self.sigma, self.half = sigma, half

    def _activate(self, raw, points):
        return self.sigma * (points[:, 0].abs() < self.half).to(points.dtype) + 0.0 * raw


def _random_field(kind: str = "hashgrid", radius: float = 0.7) -> BallField:
    field = BallField(FieldConfig(kind=kind, blob="none", density_shift=0.0), radius)
    with torch.no_grad():
        for p in field.parameters():
            p.normal_(0.0, 1.0 if p.dim() > 1 else 0.3)
    return field


def dense_reference(field, origins, dirs, step, background):
    """Plain numpy quadrature: midpoint samples every `step` from box entry to exit, no skipping."""
    o, d = origins.double().numpy(), dirs.double().numpy()
    rgb_out, alpha_out = [], []
    for oi, di in zip(o, d):
        with np.errstate(divide="ignore"):
            inv = 1.0 / di
        t0, t1 = (-1.0 - oi) * inv, (1.0 - oi) * inv
        near = max(np.max(np.minimum(t0, t1)), 0.0)
        far = np.min(np.maximum(t0, t1))
        color, trans = np.zeros(3), 1.0
        if far > near:
            ts = near + (np.arange(int(np.ceil((far - near) / step))) + 0.5) * step
            ts = ts[ts < far]
            pts = torch.from_numpy(oi + ts[:, None] * di).float()
            with torch.no_grad():
                sigma, albedo = field(pts)
            for s, c in zip(sigma.double().numpy(), albedo.double().numpy()):
                a = 1.0 - math.exp(-s * step)
                color += trans * a * c
                trans *= 1.0 - a
        rgb_out.append(color + trans * np.asarray(background))
        alpha_out.append(1.0 - trans)
    return np.array(rgb_out), np.array(alpha_out)


def _renderer(field, **cfg) -> VolumeRenderer:
    bg = build_background(BackgroundConfig(kind="fixed", color=(0.2, 0.4, 0.6)))
    return VolumeRenderer(RendererConfig(**cfg), field, bg).eval()


def test_cpu_sampler_and_compositing_match_dense_reference():
    field = _random_field(radius=0.7)
    renderer = _renderer(field, num_steps=96, occupancy_resolution=16)
    # Occupancy: exactly the cells that touch the ball (a cell's nearest point is within the radius).
    res = 16
    centres = (torch.stack(torch.meshgrid(*[torch.arange(res)] * 3, indexing="ij"), -1) + 0.5) / res * 2 - 1
    nearest = (centres.abs() - 1.0 / res).clamp_min(0).norm(dim=-1)
    renderer.estimator.binaries[0] = nearest < 0.7
    cams = orbit_cameras([20.0, 200.0], [10.0, 50.0], 2.6, 40.0, 12)
    with torch.no_grad():
        out = renderer.render(cams)
    assert out["num_samples"] < 0.6 * out["num_dense"]  # the grid did skip samples
    origins, dirs = cams.generate_rays()
    ref_rgb, ref_alpha = dense_reference(field, origins.reshape(-1, 3), dirs.reshape(-1, 3), renderer.step_size,
                                         (0.2, 0.4, 0.6))
    assert ref_alpha.max() > 0.5  # the random field is not empty
    np.testing.assert_allclose(out["rgb"].reshape(-1, 3).numpy(), ref_rgb, atol=1e-4)
    np.testing.assert_allclose(out["opacity"].reshape(-1).numpy(), ref_alpha, atol=1e-4)


def test_transmittance_through_constant_slab():
    sigma, half = 3.0, 0.25
    renderer = _renderer(SlabField(sigma, half), num_steps=4000, use_occupancy=False)
    origins = torch.tensor([[-3.0, 0.1, -0.2], [-3.0, 0.5, 0.3], [3.0, 0.0, 0.0]])
    dirs = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    with torch.no_grad():
        out = renderer.render_rays(origins, dirs)
    expected = 1.0 - math.exp(-sigma * 2 * half)
    np.testing.assert_allclose(out["opacity"][:, 0].numpy(), expected, atol=3e-3)
    # An oblique ray crosses a thicker slab: d = 2 half / cos(θ).
    d = torch.tensor([[math.cos(0.5), math.sin(0.5), 0.0]])
    with torch.no_grad():
        oblique = renderer.render_rays(torch.tensor([[-2.0, -1.5, 0.0]]) - 0.0 * d, d)
    np.testing.assert_allclose(oblique["opacity"][0, 0].item(), 1 - math.exp(-sigma * 2 * half / math.cos(0.5)), atol=3e-3)
    # Depth of the slab's first surface along the ray: weights concentrate near the entry.
    assert 2.7 < out["depth"][0, 0].item() / expected < 3.0


@pytest.mark.parametrize("kind", ["hashgrid", "dense"])
@pytest.mark.parametrize("shading", ["albedo", "lambertian"])
def test_gradients_reach_every_parameter(kind, shading):
    field = NeRFField(FieldConfig(kind=kind, normals="analytic" if shading == "lambertian" else "finite_difference"))
    renderer = VolumeRenderer(RendererConfig(num_steps=48), field, build_background(BackgroundConfig(kind="mlp"))).train()
    cams = orbit_cameras([0.0, 120.0], [15.0, 30.0], 2.5, 40.0, 16)
    out = renderer.render(cams, shading=shading, light_positions=torch.tensor([[3.0, 1.0, 2.0], [0.0, 3.0, 1.0]]))
    loss = (out["rgb"] - 0.3).square().mean() + out["depth"].mean() + out["orientation_loss"]
    loss.backward()
    for name, p in renderer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    if shading == "lambertian":
        assert out["orientation_loss"].item() >= 0 and out["normals"].abs().sum() > 0


def test_lambertian_and_textureless_shading():
    # A white field seen with the light behind the camera vs behind the object.
    field = NeRFField(FieldConfig(blob_density=20.0, blob_radius=0.3, normals="analytic"))
    with torch.no_grad():
        field.head[-1].bias[1:4] = 10.0  # albedo ≈ 1
    renderer = _renderer(field, num_steps=128)
    cams = orbit_cameras([0.0], [0.0], 3.0, 20.0, 8)
    with torch.no_grad():
        front = renderer.render(cams, "lambertian", light_positions=torch.tensor([[5.0, 0.0, 0.0]]), ambient=0.1)
        back = renderer.render(cams, "lambertian", light_positions=torch.tensor([[-5.0, 0.0, 0.0]]), ambient=0.1)
        plain = renderer.render(cams, "textureless", light_positions=torch.tensor([[5.0, 0.0, 0.0]]), ambient=0.1)
    centre = (slice(None), slice(3, 5), slice(3, 5))
    assert front["opacity"][centre].min() > 0.99
    assert front["rgb"][centre].mean() > 0.8  # lit head-on
    assert back["rgb"][centre].mean() < 0.2  # only the ambient term (0.1 · white)
    torch.testing.assert_close(plain["rgb"], front["rgb"], atol=1e-3, rtol=0)  # white albedo either way
    # Normals at the front of the blob point at the camera (+X).
    assert front["normals"][0, 3:5, 3:5, 0].min() > 0.9


def test_occupancy_grid_skips_empty_space():
    cfg = FieldConfig(blob_density=16.0, blob_radius=0.25, density_shift=-8.0)  # clear empty space
    renderer = build_nerf(cfg, RendererConfig(num_steps=96, occupancy_resolution=32), BackgroundConfig(kind="fixed"))
    renderer.train()
    renderer.update_occupancy(0)  # warm-up: every cell evaluated
    cams = orbit_cameras([30.0, 150.0], [20.0, -5.0], 2.5, 40.0, 24)
    renderer.eval()
    with torch.no_grad():
        skipped = renderer.render(cams)
        renderer.config.use_occupancy = False
        dense = renderer.render(cams)
    assert dense["num_samples"] == dense["num_dense"] == skipped["num_dense"]
    assert skipped["num_samples"] < 0.2 * dense["num_samples"]
    # Only nearly empty space was skipped: the image barely changes.
    assert (skipped["rgb"] - dense["rgb"]).abs().max() < 0.02
    assert skipped["opacity"].max() > 0.9


@requires_cuda
def test_cuda_sampler_matches_cpu_sampler():
    field = _random_field(radius=0.7)
    cpu = VolumeRenderer(RendererConfig(num_steps=96, occupancy_resolution=32, early_stop_eps=0.0), field,
                       build_background(BackgroundConfig(kind="fixed"))).train()
    cpu.update_occupancy(0)
    cpu.eval()
    gpu = VolumeRenderer(RendererConfig(num_steps=96, occupancy_resolution=32, early_stop_eps=0.0), _random_field(),
                       build_background(BackgroundConfig(kind="fixed")))
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.cuda().eval()
    cams = orbit_cameras([20.0, 200.0], [10.0, 50.0], 2.6, 40.0, 24)
    with torch.no_grad():
        a = cpu.render(cams)
        b = gpu.render(cams.to("cuda"))
    assert abs(a["num_samples"] - b["num_samples"]) <= 0.02 * a["num_samples"]
    torch.testing.assert_close(b["rgb"].cpu(), a["rgb"], atol=2e-3, rtol=0)
    torch.testing.assert_close(b["opacity"].cpu(), a["opacity"], atol=2e-3, rtol=0)


def _refresh_three_times(cls, threads):
    """An occupancy grid after three post-warm-up refreshes, whose cell lists repeat cells (a
    random quarter of the grid plus up to as many occupied cells), each evaluation random. At 32³
    nerfacc's own update gives another grid on two threads than on one (and differs run to run)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        est = cls(roi_aabb=[-1, -1, -1, 1, 1, 1], resolution=32, levels=1)  # the default grid
        est.occs.uniform_(0.0, 0.02)
        est.binaries = (est.occs > 0.01).view(est.binaries.shape)
        seen = []

        def occ_eval_fn(x):
            seen.append(len(x))
            return torch.rand(len(x), 1) * (x.norm(dim=-1, keepdim=True) < 0.7)

        for step in (256, 272, 288):
            torch.manual_seed(step)
            cells = est._sample_uniform_and_occupied_cells(est.cells_per_lvl // 4)[0]
            assert len(cells.unique()) < len(cells)  # repeated cells: the case at stake
            torch.manual_seed(step)
            est._update(step, occ_eval_fn, occ_thre=0.01, ema_decay=0.95, warmup_steps=256)
        return est.occs.clone(), est.binaries.clone()
    finally:
        torch.set_num_threads(previous)


def test_occupancy_refresh_is_nerfaccs_on_one_thread_and_the_same_on_two():
    from nerfacc import OccGridEstimator

    from dreamfusion3d.rendering.renderer import OccupancyGrid

    ours_one = _refresh_three_times(OccupancyGrid, 1)
    theirs_one = _refresh_three_times(OccGridEstimator, 1)  # the reference: nerfacc's update, one thread
    assert torch.equal(ours_one[0], theirs_one[0]) and torch.equal(ours_one[1], theirs_one[1])
    for _ in range(3):  # two threads: the same result, every time
        ours_two = _refresh_three_times(OccupancyGrid, 2)
        assert torch.equal(ours_two[0], ours_one[0]) and torch.equal(ours_two[1], ours_one[1])
