"""The SDF geometry against an analytic sphere: distance, depth, normals, eikonal residual, and
export at its zero level set."""

import math

import numpy as np
import pytest
import torch

from dreamfusion3d.cameras import orbit_cameras
from dreamfusion3d.export import extract_mesh
from dreamfusion3d.fields import FieldConfig
from dreamfusion3d.rendering import BackgroundConfig, RendererConfig
from dreamfusion3d.representations import SDFConfig, SDFGeometry
from dreamfusion3d.representations.sdf import laplace_density

RADIUS = 0.55


def sphere(beta: float = 0.01, num_steps: int = 256) -> SDFGeometry:
    """An SDF geometry whose distance is exactly |x| - RADIUS (the MLP's distance output zeroed)."""
    sections = {"field": FieldConfig(kind="dense", dense_resolution=16, dense_features=4),
                "sdf": SDFConfig(init_radius=RADIUS, beta_start=beta, beta_end=beta),
                "renderer": RendererConfig(num_steps=num_steps, use_occupancy=False, stratified=False),
                "background": BackgroundConfig(kind="fixed", color=(1.0, 1.0, 1.0))}
    geo = SDFGeometry.from_sections(sections)
    with torch.no_grad():
        geo.field.head[-1].weight[0].zero_()
        geo.field.head[-1].bias[0].zero_()
    return geo.eval()


def test_distance_is_the_sphere_and_density_is_volsdf():
    geo = sphere()
    points = torch.randn(500, 3) * 0.6
    d = geo.field.sdf(points)
    torch.testing.assert_close(d, points.norm(dim=-1) - RADIUS)
    beta = torch.tensor(0.01)
    # Laplace CDF: half density on the surface, → 1/β deep inside, → 0 far outside
    assert float(laplace_density(torch.tensor(0.0), beta) * beta) == pytest.approx(0.5)
    assert float(laplace_density(torch.tensor(-0.2), beta) * beta) == pytest.approx(1.0, abs=1e-6)
    assert float(laplace_density(torch.tensor(0.2), beta)) < 1e-6


def test_render_depth_normals_and_silhouette_match_the_analytic_sphere():
    geo = sphere()
    radius, fov, res = 2.5, 40.0, 24
    cams = orbit_cameras([30.0], [15.0], radius, fov, res)
    with torch.no_grad():
        out = geo.render(cams, shading="albedo", with_normals=True)
    origins, dirs = cams.generate_rays()
    o, d = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    # ray-sphere intersection: t = -(o·d) - sqrt((o·d)^2 - |o|^2 + r^2)
    b = (o * d).sum(-1)
    disc = b.square() - o.square().sum(-1) + RADIUS**2
    hit = disc > 0
    t_hit = -b - disc.clamp_min(0).sqrt()
    opacity = out["opacity"].reshape(-1)
    depth = out["depth"].reshape(-1)
    normals = out["normals"].reshape(-1, 3)
    inner = disc > 0.05  # well inside the silhouette (away from grazing rays)
    assert bool((opacity[inner] > 0.99).all())
    assert bool((opacity[disc < -0.15] < 0.01).all())
    # expected depth of VolSDF's Laplace density sits within a few β of the analytic hit
    assert float((depth[inner] - t_hit[inner]).abs().max()) < 0.05
    true_n = torch.nn.functional.normalize(o + t_hit[:, None] * d, dim=-1)
    cos = (torch.nn.functional.normalize(normals[inner], dim=-1) * true_n[inner]).sum(-1)
    assert float(cos.min()) > 0.995
    assert hit.any() and (~hit).any()


def test_eikonal_residual_is_zero_for_a_distance_and_one_for_twice_a_distance():
    geo = sphere()
    points = torch.rand(2000, 3) * 2 - 1
    assert float(geo.eikonal(points)) < 1e-8
    geo.field.sdf_config.residual_scale = 0.0
    orig = geo.field._sdf
    geo.field._sdf = lambda raw, p: 2.0 * orig(raw, p)  # |∇(2d)| = 2: residual (2 - 1)^2 = 1
    assert float(geo.eikonal(points)) == pytest.approx(1.0, abs=1e-5)


def test_regulariser_is_the_weighted_eikonal_term():
    geo = sphere()
    geo.field.sdf_config.eikonal_weight = 0.5
    terms = geo.regularisers({}, step=0)
    assert set(terms) == {"eikonal"} and float(terms["eikonal"]) < 1e-8
    geo.field.sdf_config.eikonal_weight = 0.0
    assert geo.regularisers({}, step=0) == {}


def test_beta_anneals_with_the_steps():
    geo = sphere()
    c = geo.field.sdf_config
    c.beta_start, c.beta_end, c.beta_steps = 0.1, 0.02, 100
    geo.train()
    geo.update(49)  # after step 49 the next render is step 50: half-way
    assert float(geo.field.beta) == pytest.approx(0.06)
    geo.update(500)
    assert float(geo.field.beta) == pytest.approx(0.02)


def test_export_is_within_one_voxel_of_the_zero_level_set():
    geo = sphere()
    f = geo.export_fields()
    assert f.field_type == "sdf"
    resolution = 64
    mesh = extract_mesh(f.field_fn, -1.0, 1.0, resolution, "auto", color_fn=f.color_fn, field_type=f.field_type)
    voxel = 2.0 / (resolution - 1)
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(radii - RADIUS).max() < voxel
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(4.0 / 3.0 * math.pi * RADIUS**3, rel=0.03)


def test_smoothness_term_is_zero_on_a_plane_and_positive_on_a_bumpy_surface():
    geo = sphere()
    c = geo.field.sdf_config
    c.eikonal_weight, c.smoothness_weight, c.eikonal_points = 0.0, 1.0, 4000
    geo.field._sdf = lambda raw, p: p[:, 2] - 0.1 + 0.0 * raw[:, 0]  # a plane: normals constant
    terms = geo.regularisers({}, step=0)
    assert set(terms) == {"smoothness"} and float(terms["smoothness"]) < 1e-10
    geo.field._sdf = lambda raw, p: p[:, 2] - 0.1 + 0.05 * torch.sin(60 * p[:, 0]) + 0.0 * raw[:, 0]
    assert float(geo.regularisers({}, step=0)["smoothness"]) > 1e-3


def test_grid_total_variation_matches_brute_force():
    from dreamfusion3d.representations.sdf import grid_tv

    g = torch.randn(1, 2, 3, 4, 5)
    brute = 0.0
    for axis in (2, 3, 4):
        a = g.movedim(axis, -1)
        brute += float(((a[..., 1:] - a[..., :-1]) ** 2).mean())
    assert float(grid_tv(g)) == pytest.approx(brute, rel=1e-6)
    assert float(grid_tv(torch.ones(1, 2, 3, 4, 5))) == 0.0


def test_display_renders_the_analytic_silhouette_without_the_soft_halo_and_restores_beta():
    """A soft β (0.08) draws opacity well outside the sphere's silhouette; for_display renders at
    display_beta (0.005) where only the pixels the sphere covers (plus a pixel of blur) are opaque,
    and the trained β comes back afterwards, even after an error."""
    from dreamfusion3d.generate.outputs import render_views, speckle_fraction

    geo = sphere(beta=0.08)
    cams = orbit_cameras([0.0, 120.0], [20.0], 2.5, 40.0, 32)
    origins, dirs = cams.generate_rays()
    o, d = origins.reshape(2, 32, 32, 3), dirs.reshape(2, 32, 32, 3)
    b = (o * d).sum(-1)
    miss = np.asarray(o.square().sum(-1) - b.square() > (RADIUS + 0.1) ** 2)  # rays 0.1 or more from the sphere
    geo.field.sdf_config.display_beta = None
    _, soft = render_views(geo, cams, "albedo", with_alpha=True)
    geo.field.sdf_config.display_beta = 0.005
    _, sharp = render_views(geo, cams, "albedo", with_alpha=True)
    assert float(soft[miss].max()) > 0.1  # the halo: rays passing 0.1 from the surface still see it
    assert float(sharp[miss].max()) < 1e-3
    assert float(speckle_fraction(sharp).max()) == 0.0 and float(speckle_fraction(soft).max()) > 0.01
    assert float(geo.field.beta) == pytest.approx(0.08)  # restored
    with pytest.raises(RuntimeError):
        with geo.for_display():
            assert float(geo.field.beta) == pytest.approx(0.005)
            raise RuntimeError("a render failed")
    assert float(geo.field.beta) == pytest.approx(0.08)
    geo.field.beta.fill_(0.002)  # already sharper than display_beta: left as it is
    with geo.for_display():
        assert float(geo.field.beta) == pytest.approx(0.002)
