"""Isosurface extraction against analytic shapes (independent SDFs/densities written here)."""

import math
import sys

import numpy as np
import pytest
import torch
import trimesh

from dreamfusion3d.export import EmptyFieldError, auto_density_threshold, evaluate_grid, extract_mesh
from dreamfusion3d.utils.errors import UserError


def sphere_sdf(center=(0.0, 0.0, 0.0), radius=0.6):
    c = torch.tensor(center)
    return lambda p: (p - c).norm(dim=-1) - radius


def box_sdf(half=0.5):
    def sdf(p):
        q = p.abs() - half
        return q.clamp(min=0).norm(dim=-1) + q.max(dim=-1).values.clamp(max=0)

    return sdf


def gaussian_blob(peak=50.0, sigma=0.2):
    return lambda p: peak * torch.exp(-(p**2).sum(-1) / (2 * sigma**2))


def position_color(p):  # [N, 3] -> [N, 3] in [0, 1]
    return torch.stack([(p[:, 0] + 1) / 2, (p[:, 1] + 1) / 2, (torch.sin(5 * p[:, 2]) + 1) / 2], dim=-1)


def test_grid_matches_meshgrid_and_chunking_does_not_matter():
    fn = lambda p: p[:, 0] * 100 + p[:, 1] * 10 + p[:, 2]  # noqa: E731
    lo, hi, r = (-1.0, -0.5, 0.0), (1.0, 0.5, 2.0), 7
    axes = [np.linspace(a, b, r) for a, b in zip(lo, hi)]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    ref = x * 100 + y * 10 + z
    for chunk in (5, 49, 50, 10_000):
        np.testing.assert_allclose(evaluate_grid(fn, lo, hi, r, chunk_size=chunk), ref, atol=1e-4)


def test_sphere_volume_area_watertight_outward():
    r = 0.6
    mesh = extract_mesh(sphere_sdf(radius=r), resolution=96, field_type="sdf", color_fn=position_color)
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * r**3, rel=0.02)
    assert mesh.area == pytest.approx(4 * math.pi * r**2, rel=0.02)
    assert mesh.volume > 0  # outward winding
    radial = mesh.vertices / np.linalg.norm(mesh.vertices, axis=1, keepdims=True)
    assert (np.einsum("ij,ij->i", mesh.vertex_normals, radial) > 0.9).mean() > 0.99
    assert np.abs(np.linalg.norm(mesh.vertices, axis=1) - r).max() < 2 / 95  # within one cell
    assert mesh.metadata["threshold"] == 0.0


def test_cube_volume_area_watertight():
    # marching cubes bevels the 12 edges by about one cell: at 96³ (cell 0.021) that costs ~0.6% of
    # the area and ~0.02% of the volume, inside the 2% tolerance
    mesh = extract_mesh(box_sdf(0.5), resolution=96, field_type="sdf")
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(1.0, rel=0.02)
    assert mesh.area == pytest.approx(6.0, rel=0.02)
    assert mesh.volume > 0
    np.testing.assert_allclose(mesh.bounds, [[-0.5] * 3, [0.5] * 3], atol=2 / 95)


def test_sdf_level_offsets_the_surface():
    mesh = extract_mesh(sphere_sdf(radius=0.4), resolution=64, field_type="sdf", threshold=0.1)
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * 0.5**3, rel=0.02)


def test_vertex_colors_come_from_color_fn():
    mesh = extract_mesh(sphere_sdf(radius=0.5), resolution=48, field_type="sdf", color_fn=position_color)
    expected = np.round(position_color(torch.tensor(mesh.vertices, dtype=torch.float32)).numpy() * 255)
    np.testing.assert_allclose(mesh.visual.vertex_colors[:, :3], expected, atol=1)
    assert (mesh.visual.vertex_colors[:, 3] == 255).all()


def test_auto_threshold_on_gaussian_blob_matches_analytic_silhouette():
    # σ = A exp(-|x|²/2s²). A ray at distance b from the centre has optical depth A s √(2π) e^{-b²/2s²};
    # it is 50% opaque out to b* = s √(2 ln(A s √(2π) / ln 2)). The level-τ isosurface is a sphere of
    # radius s √(2 ln(A/τ)), whose silhouette must be the field's: radius b*.
    peak, s = 50.0, 0.2
    b_star = s * math.sqrt(2 * math.log(peak * s * math.sqrt(2 * math.pi) / math.log(2)))
    mesh = extract_mesh(gaussian_blob(peak, s), resolution=97)
    assert mesh.is_watertight and mesh.volume > 0
    radius = np.linalg.norm(mesh.vertices, axis=1)
    assert radius.mean() == pytest.approx(b_star, rel=0.02)
    assert mesh.metadata["threshold"] == pytest.approx(peak * math.exp(-(b_star**2) / (2 * s**2)), rel=0.1)


def test_auto_threshold_with_thin_haze_and_thick_haze():
    peak, s, haze = 50.0, 0.2, 0.05
    blob = gaussian_blob(peak, s)
    # thin haze (alone 1 - exp(-0.1) ≈ 10% opacity across the box) only adds its optical depth 2·haze
    # to every ray: the 50% silhouette becomes b' = s √(2 ln(A s √(2π) / (ln 2 - 2·haze)))
    b_haze = s * math.sqrt(2 * math.log(peak * s * math.sqrt(2 * math.pi) / (math.log(2) - 2 * haze)))
    thin = extract_mesh(lambda p: blob(p) + haze, resolution=65)
    assert np.linalg.norm(thin.vertices, axis=1).mean() == pytest.approx(b_haze, rel=0.02)
    # haze alone makes every ray opaque (optical depth 2 · 2 = 4): the box faces must not be meshed
    thick = extract_mesh(lambda p: blob(p) + 2.0, resolution=65)
    assert thick.is_watertight and thick.volume > 0
    assert np.abs(thick.vertices).max() < 0.95
    assert thick.metadata["threshold"] > 2.0


@pytest.mark.parametrize(
    "fn, threshold",
    [
        (lambda p: torch.zeros(len(p)), "auto"),  # nothing at all
        (lambda p: torch.full((len(p),), 0.1), "auto"),  # invisible haze (20% opacity across the box)
        (gaussian_blob(5.0, 0.2), 10.0),  # level above the peak
        (gaussian_blob(5.0, 0.2), -1.0),  # the whole box is inside
    ],
)
def test_empty_field_is_one_clear_user_error(fn, threshold):
    with pytest.raises(EmptyFieldError) as info:
        extract_mesh(fn, resolution=24, threshold=threshold)
    assert isinstance(info.value, UserError)
    message = str(info.value)
    assert "\n" not in message and ("empty" in message or "inside" in message)


def test_auto_threshold_error_when_nothing_is_visible():
    with pytest.raises(EmptyFieldError, match="opacity"):
        auto_density_threshold(np.full((8, 8, 8), 1e-3), [0.1] * 3)


def test_bad_threshold_and_box_are_user_errors():
    with pytest.raises(UserError, match="threshold"):
        extract_mesh(sphere_sdf(), resolution=16, threshold="half")
    with pytest.raises(UserError, match="bounding box"):
        extract_mesh(sphere_sdf(), bbox_min=1.0, bbox_max=-1.0, resolution=16)


def test_largest_component_drops_the_small_piece():
    big, small = sphere_sdf((-0.4, 0, 0), 0.4), sphere_sdf((0.6, 0, 0), 0.15)
    both = lambda p: torch.minimum(big(p), small(p))  # noqa: E731
    kept = extract_mesh(both, resolution=64, field_type="sdf")
    allparts = extract_mesh(both, resolution=64, field_type="sdf", largest_component=False)
    assert len(allparts.split(only_watertight=False)) == 2
    assert kept.volume == pytest.approx(4 / 3 * math.pi * 0.4**3, rel=0.02)
    assert kept.vertices[:, 0].max() < 0.1


def test_surface_cut_by_the_box_is_capped():
    # a sphere of radius 0.7 pokes out of the faces of [-0.5, 0.5]³ but not its corners (0.87)
    mesh = extract_mesh(sphere_sdf(radius=0.7), bbox_min=-0.5, bbox_max=0.5, resolution=32, field_type="sdf")
    assert mesh.is_watertight and mesh.volume > 0
    np.testing.assert_allclose(mesh.bounds, [[-0.5] * 3, [0.5] * 3], atol=1e-6)
    assert mesh.volume < 1.0


def test_whole_box_inside_is_a_user_error():
    with pytest.raises(EmptyFieldError, match="whole box is inside the surface at threshold 0;"):
        extract_mesh(sphere_sdf(radius=0.9), bbox_min=-0.5, bbox_max=0.5, resolution=16, field_type="sdf")


def test_decimation_keeps_shape_and_colors():
    pytest.importorskip("fast_simplification")
    mesh = extract_mesh(sphere_sdf(radius=0.6), resolution=64, field_type="sdf", color_fn=position_color, decimate_to=2000)
    assert len(mesh.faces) <= 2100
    assert mesh.is_watertight and mesh.volume > 0
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * 0.6**3, rel=0.02)
    assert len(mesh.visual.vertex_colors) == len(mesh.vertices)


def test_decimation_without_fast_simplification_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "fast_simplification", None)
    with pytest.raises(UserError, match="pip install fast_simplification"):
        extract_mesh(sphere_sdf(), resolution=32, field_type="sdf", decimate_to=100)


def test_mesh_is_a_trimesh_in_the_world_frame():
    mesh = extract_mesh(sphere_sdf((0, 0, 0.3), 0.3), resolution=48, field_type="sdf")
    assert isinstance(mesh, trimesh.Trimesh)
    assert mesh.centroid == pytest.approx([0, 0, 0.3], abs=0.01)


def test_face_budget_keeps_a_bumpy_closed_surface_closed_and_whole():
    """A bumpy sphere (like an SDS-trained SDF) meshed at 128³ exceeds 20k faces; the budgeted
    mesh has at most 20k, is still closed, one piece, and still the sphere."""
    def sdf(p: torch.Tensor) -> torch.Tensor:
        bumps = 0.02 * torch.sin(40 * p[:, 0]) * torch.sin(40 * p[:, 1]) * torch.sin(40 * p[:, 2])
        return p.norm(dim=-1) - 0.5 + bumps

    full = extract_mesh(sdf, -1.0, 1.0, 128, field_type="sdf")
    assert len(full.faces) > 20000
    mesh = extract_mesh(sdf, -1.0, 1.0, 128, field_type="sdf", decimate_to=20000)
    assert len(mesh.faces) <= 20000 and mesh.is_watertight and len(mesh.split(only_watertight=False)) == 1
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert abs(float(np.median(radii)) - 0.5) < 0.03
