"""Real meshes through the same cameras: normalisation, orientation, colours, and agreement with
the analytic renderer on the same geometry."""

import numpy as np
import pytest
import torch
import trimesh

from dreamfusion3d.cameras import orbit_cameras, turntable_cameras
from dreamfusion3d.utils.errors import UserError
from dreamfusion3d.world import primitive_scene, render_scene
from dreamfusion3d.world.mesh import load_mesh_asset, render_mesh

SHARED = ["spot.obj", "cow.obj", "teapot.obj", "suzanne.obj", "stanford-bunny.obj"]


@pytest.mark.parametrize("name", SHARED)
def test_shared_mesh_renders_a_plausible_silhouette(shared_meshes, name):
    asset = load_mesh_asset(shared_meshes / name)
    verts = np.asarray(asset.mesh.vertices)
    assert np.linalg.norm(verts, axis=1).max() == pytest.approx(0.8, abs=1e-6)
    assert np.abs(verts.max(0) + verts.min(0)).max() < 1e-6  # bounding box centred
    out = render_mesh(asset, turntable_cameras(3, width=32))
    coverage = out["alpha"].mean(dim=(1, 2, 3))
    assert ((coverage > 0.05) & (coverage < 0.8)).all(), coverage
    hit = out["alpha"][..., 0] > 0
    assert torch.allclose(out["normals"][hit].norm(dim=-1), torch.ones(1), atol=1e-4)
    depth = out["depth"][hit]
    assert depth.min() > 3.0 - 0.8 - 1e-3 and depth.max() < 3.0 + 0.8 + 1e-3


def test_textured_mesh_uses_its_texture(shared_meshes):
    asset = load_mesh_asset(shared_meshes / "spot.obj")
    assert asset.color_source == "texture"
    out = render_mesh(asset, orbit_cameras([0.0], [15.0], 3.0, 40.0, 64))
    albedo = out["albedo"][0][out["alpha"][0, ..., 0] > 0]
    # Spot's texture is white with black patches and a pink nose: many distinct colours.
    assert albedo.std(dim=0).max() > 0.1
    grey = load_mesh_asset(shared_meshes / "cow.obj")
    assert grey.color_source == "flat"


def test_mesh_and_analytic_renderers_agree_on_a_sphere(tmp_path):
    path = tmp_path / "ball.obj"
    trimesh.creation.icosphere(subdivisions=4, radius=2.0).export(path)  # scale is normalised away
    asset = load_mesh_asset(path, up_axis="z")
    scene = primitive_scene("sphere", "white", scale=1.0, color_jitter=0.0)
    cams = orbit_cameras([0.0, 120.0], [10.0, 50.0], 3.0, 40.0, 40)
    a, b = render_mesh(asset, cams), render_scene(scene, cams)
    ma, mb = a["alpha"][..., 0] > 0, b["alpha"][..., 0] > 0
    iou = (ma & mb).sum() / (ma | mb).sum()
    assert iou > 0.97
    both = ma & mb
    gap = (a["depth"][both] - b["depth"][both]).abs()  # the faceted sphere lies slightly inside
    assert gap.mean() < 0.005 and gap.max() < 0.03
    assert (a["normals"][both] * b["normals"][both]).sum(-1).min() > 0.99


def test_up_axis_option_turns_y_up_into_z_up(tmp_path):
    cone = trimesh.creation.cone(radius=0.5, height=2.0)  # apex at +Z
    cone.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]))  # apex now at +Y
    assert cone.vertices[:, 1].max() == pytest.approx(2.0)
    path = tmp_path / "cone.obj"
    cone.export(path)
    verts = np.asarray(load_mesh_asset(path, up_axis="y").mesh.vertices)
    apex = verts[np.argmax(np.linalg.norm(verts - verts.mean(0), axis=1))]
    assert apex[2] == pytest.approx(verts[:, 2].max()) and apex[2] > 0.7
    verts_z = np.asarray(load_mesh_asset(path, up_axis="z").mesh.vertices)
    assert verts_z[:, 2].max() - verts_z[:, 2].min() < 0.8  # without the conversion it lies flat (height ~1.5)


def test_vertex_colours_are_used(tmp_path):
    box = trimesh.creation.box()
    box.visual.vertex_colors = np.tile([255, 0, 0, 255], (len(box.vertices), 1))
    path = tmp_path / "box.ply"
    box.export(path)
    asset = load_mesh_asset(path, up_axis="z")
    assert asset.color_source == "vertex"
    out = render_mesh(asset, orbit_cameras([30.0], [20.0], 3.0, 40.0, 32))
    albedo = out["albedo"][0][out["alpha"][0, ..., 0] > 0]
    assert torch.allclose(albedo, torch.tensor([1.0, 0.0, 0.0]).expand_as(albedo), atol=1e-3)


def test_bad_mesh_paths_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_mesh_asset(tmp_path / "missing.obj")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match="unsupported"):
        load_mesh_asset(tmp_path / "notes.txt")
    (tmp_path / "empty.obj").write_text("# nothing here\n")
    with pytest.raises(UserError):
        load_mesh_asset(tmp_path / "empty.obj")
    with pytest.raises(UserError, match="up_axis"):
        trimesh.creation.box().export(tmp_path / "box.obj")
        load_mesh_asset(tmp_path / "box.obj", up_axis="w")
