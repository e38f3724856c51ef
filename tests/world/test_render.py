"""The analytic renderer against closed forms, and the scenes' geometry against brute force."""

import math

import numpy as np
import pytest
import torch

from dreamfusion3d.cameras import orbit_cameras, turntable_cameras
from dreamfusion3d.world import ALL_SHAPES, COLORS, SHAPES, primitive_scene, random_scene, render_scene
from dreamfusion3d.world.scene import FIT_RADIUS, Part


def test_sphere_silhouette_area_matches_projected_disc():
    r, dist, fov, width = 0.6, 3.0, 40.0, 128
    scene = primitive_scene("sphere", "red", scale=r / FIT_RADIUS)
    assert scene.parts[0].params["radius"] == pytest.approx(r)
    out = render_scene(scene, orbit_cameras([0.0], [20.0], dist, fov, width))
    focal = 0.5 * width / math.tan(math.radians(fov) / 2)
    # The silhouette of a ball seen from distance D is a cone of half-angle asin(r / D).
    disc_radius_px = focal * math.tan(math.asin(r / dist))
    area = out["alpha"].sum().item()
    assert area == pytest.approx(math.pi * disc_radius_px**2, rel=0.01)


def test_depth_at_centre_is_distance_minus_radius():
    r, dist = 0.5, 2.7
    scene = primitive_scene("sphere", "blue", scale=r / FIT_RADIUS)
    cams = orbit_cameras([0.0, 123.0], [0.0, 40.0], dist, 40.0, 33)  # odd width: a pixel on the axis
    out = render_scene(scene, cams)
    centre = out["depth"][:, 16, 16, 0]
    assert torch.allclose(centre, torch.full_like(centre, dist - r), atol=2e-4)
    # The normal there points back at the camera.
    expected = cams.positions / cams.positions.norm(dim=-1, keepdim=True)
    assert torch.allclose(out["normals"][:, 16, 16], expected, atol=1e-3)
    # Empty pixels: depth 0, normals 0, background colour.
    corner = out["alpha"][:, 0, 0, 0] == 0
    assert corner.all() and (out["depth"][:, 0, 0] == 0).all() and (out["rgb"][:, 0, 0] == 1).all()


def test_cube_face_normals_are_axis_directions():
    scene = primitive_scene("cube", "green", yaw=0.0, half=(1.0, 1.0, 1.0))
    cams = orbit_cameras([0.0, 90.0, 0.0, 35.0], [0.0, 0.0, 89.0, 25.0], 3.0, 40.0, 33)
    out = render_scene(scene, cams)
    n = out["normals"]
    assert torch.allclose(n[0, 16, 16], torch.tensor([1.0, 0.0, 0.0]), atol=1e-4)
    assert torch.allclose(n[1, 16, 16], torch.tensor([0.0, 1.0, 0.0]), atol=1e-4)
    assert torch.allclose(n[2, 16, 16], torch.tensor([0.0, 0.0, 1.0]), atol=1e-4)
    # An oblique view sees three faces: almost every covered pixel has an axis-aligned normal.
    hit = out["alpha"][3, ..., 0] > 0
    axis_like = n[3][hit].abs().max(dim=-1).values > 0.999
    assert axis_like.float().mean() > 0.9
    seen = {tuple(v) for v in torch.round(n[3][hit][axis_like]).int().tolist()}
    assert seen == {(1, 0, 0), (0, 1, 0), (0, 0, 1)}


def test_alpha_is_binary_without_antialiasing_and_soft_with_it():
    scene = primitive_scene("torus", "yellow", seed=3)
    cams = turntable_cameras(3, width=32)
    hard = render_scene(scene, cams)["alpha"]
    assert set(hard.unique().tolist()) == {0.0, 1.0}
    soft = render_scene(scene, cams, supersample=2)["alpha"]
    assert ((soft > 0) & (soft < 1)).any()
    assert soft.sum().item() == pytest.approx(hard.sum().item(), rel=0.1)


def test_lambertian_shading_with_a_fixed_light():
    scene = primitive_scene("sphere", "white", color_jitter=0.0)
    cams = orbit_cameras([0.0], [0.0], 3.0, 40.0, 33)
    out = render_scene(scene, cams, light_dir=(1.0, 0.0, 0.0), ambient=0.25)
    albedo, n = out["albedo"][0], out["normals"][0]
    expected = albedo * (0.25 + 0.75 * n[..., :1].clamp_min(0))
    hit = out["alpha"][0, ..., 0] > 0
    assert torch.allclose(out["rgb"][0][hit], expected[hit], atol=1e-5)
    assert torch.allclose(out["albedo"][0, 16, 16], torch.tensor(COLORS["white"]), atol=1e-6)


def _surface_samples(kind: str, p: dict, n: int = 160) -> torch.Tensor:
    """Dense parametric samples of a primitive's surface in its local frame (independent of the SDF)."""
    u = torch.linspace(0, 1, n)
    a, b = torch.meshgrid(u, u, indexing="ij")
    th = 2 * math.pi * b
    if kind == "cone":
        h, r = p["half_height"], p["radius"]
        z = -h + 2 * h * a
        side = torch.stack([r * (h - z) / (2 * h) * th.cos(), r * (h - z) / (2 * h) * th.sin(), z], -1)
        base = torch.stack([r * a * th.cos(), r * a * th.sin(), torch.full_like(a, -h)], -1)
        pts = [side, base]
    elif kind == "cylinder":
        h, r = p["half_height"], p["radius"]
        side = torch.stack([r * th.cos(), r * th.sin(), -h + 2 * h * a], -1)
        pts = [side] + [torch.stack([r * a * th.cos(), r * a * th.sin(), torch.full_like(a, s * h)], -1) for s in (-1, 1)]
    elif kind == "torus":
        phi = 2 * math.pi * a
        ring = p["major"] + p["minor"] * phi.cos()
        pts = [torch.stack([ring * th.cos(), ring * th.sin(), p["minor"] * phi.sin()], -1)]
    else:  # cube: six faces
        half = torch.tensor(p["half"])
        pts = []
        for axis in range(3):
            for sign in (-1.0, 1.0):
                face = torch.zeros(n, n, 3)
                others = [i for i in range(3) if i != axis]
                face[..., axis] = sign * half[axis]
                face[..., others[0]] = (2 * a - 1) * half[others[0]]
                face[..., others[1]] = (2 * b - 1) * half[others[1]]
                pts.append(face)
    return torch.cat([x.reshape(-1, 3) for x in pts])


@pytest.mark.parametrize("kind,params", [
    ("cone", {"radius": 0.5, "half_height": 0.6}),
    ("cylinder", {"radius": 0.4, "half_height": 0.5}),
    ("torus", {"major": 0.5, "minor": 0.15}),
    ("cube", {"half": (0.3, 0.5, 0.4)}),
])
def test_sdf_is_the_signed_distance_to_a_dense_surface_sampling(kind, params):
    rot = primitive_scene("cube", "red", yaw=30.0).parts[0].rotation  # a rotated frame
    part = Part(kind, params, (1.0, 0.0, 0.0), center=(0.1, -0.2, 0.05), rotation=rot)
    surface = _surface_samples(kind, params) @ torch.tensor(rot).T + torch.tensor(part.center)
    gen = torch.Generator().manual_seed(0)
    query = (torch.rand(1000, 3, generator=gen) * 2 - 1) * 1.2
    sdf = part.sdf(query)
    brute = torch.cdist(query, surface).min(dim=1).values
    assert (sdf < 0).sum() > 10  # some points inside: the sign is checked too
    assert torch.allclose(sdf, torch.where(sdf < 0, -brute, brute), atol=0.01)


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_every_shape_fits_inside_the_world_radius(shape):
    scene = primitive_scene(shape, "red", seed=7, scale=1.0)
    grid = torch.stack(torch.meshgrid(*[torch.linspace(-1, 1, 81)] * 3, indexing="ij"), -1).reshape(-1, 3)
    inside = grid[scene.sdf(grid) < 0]
    assert inside.shape[0] > 500
    assert inside.norm(dim=-1).max().item() <= FIT_RADIUS + 1e-3
    assert scene.bound_radius() <= FIT_RADIUS + 1e-6
    # Roughly centred: the bounding box of the solid is centred at the origin.
    centre = (inside.max(0).values + inside.min(0).values) / 2
    assert centre.abs().max().item() < 0.06


def test_scenes_are_deterministic_per_seed():
    a, b, c = random_scene(11, compositions=True), random_scene(11, compositions=True), random_scene(12, compositions=True)
    assert a.metadata() == b.metadata()
    assert a.metadata() != c.metadata()
    cams = turntable_cameras(2, width=24)
    assert torch.equal(render_scene(a, cams)["rgb"], render_scene(b, cams)["rgb"])
    gen = np.random.default_rng(5)
    scenes = [random_scene(gen) for _ in range(40)]
    assert {s.shape for s in scenes} == set(SHAPES)


def _colour_mask(out, name, tol=0.12):
    return ((out["albedo"] - torch.tensor(COLORS[name])).abs().max(dim=-1).values < tol) & (out["alpha"][..., 0] > 0)


def test_front_objects_show_their_front_only_from_the_front():
    cams = orbit_cameras([0.0, 180.0, 90.0], [10.0, 10.0, 10.0], 3.0, 40.0, 48)
    for shape in ("sphere_with_nose", "cube_with_front_face"):
        scene = primitive_scene(shape, "blue", seed=1, second_color="orange", color_jitter=0.0)
        assert scene.has_front
        front = _colour_mask(render_scene(scene, cams), "orange").flatten(1).sum(1)
        assert front[0] > 40, shape  # front view: the nose / front face is visible
        assert front[1] == 0, shape  # back view: hidden
    # From the side the nose points to +X, which is image-left for a camera at +Y.
    scene = primitive_scene("sphere_with_nose", "blue", seed=1, second_color="orange", color_jitter=0.0)
    cols = torch.nonzero(_colour_mask(render_scene(scene, cams[2]), "orange")[0])[:, 1].float()
    assert cols.mean() < 24 - 10


def test_compositions_stack_top_over_bottom():
    scene = primitive_scene("sphere_on_cube", "red", seed=2, second_color="green", color_jitter=0.0)
    assert scene.colors == ["red", "green"]
    out = render_scene(scene, orbit_cameras([30.0], [10.0], 3.0, 40.0, 48))
    top_rows = torch.nonzero(_colour_mask(out, "red")[0])[:, 0].float()
    bottom_rows = torch.nonzero(_colour_mask(out, "green")[0])[:, 0].float()
    assert top_rows.max() <= bottom_rows.min() + 1  # image row 0 is the top


def test_headlight_positions_relight_a_world_render_exactly():
    # Lambertian shading of the world render's own normals and albedo under point lights at
    # headlight_positions (what generate uses with --shading.light headlight) reproduces its pixels
    from dreamfusion3d.world.render import headlight_positions, shade

    cams = orbit_cameras([30.0, -120.0, 75.0], [20.0, -5.0, 60.0], 2.6, 40.0, 24)
    out = render_scene(primitive_scene("sphere", "orange", seed=0), cams)
    hit = out["alpha"][..., 0] > 0.5
    assert hit.sum() > 100
    lights = headlight_positions(cams.positions)  # [B, 3], 1000 units away
    assert torch.allclose(lights.norm(dim=-1), torch.full((3,), 1000.0))
    # a headlight: on the camera's side and above its line of sight
    view = cams.positions / cams.positions.norm(dim=-1, keepdim=True)
    assert ((lights / 1000.0 * view).sum(-1) > 0.7).all()
    # surface points lie within 1 of the origin, so the direction to a light 1000 away is its own to 1e-3
    light_dir = (lights / lights.norm(dim=-1, keepdim=True))[:, None, None, :]
    relit = shade(out["albedo"], out["normals"], light_dir, 0.3)
    assert (relit[hit] - out["rgb"][hit]).abs().max() < 2e-3
