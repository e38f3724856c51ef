"""GLB/OBJ/PLY writers: round trips through trimesh's loaders, axes, atomicity, Khronos validator."""

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from dreamfusion3d.export import Z_UP_TO_Y_UP, export_all, export_mesh, extract_mesh
from dreamfusion3d.utils.errors import UserError

REPO = Path(__file__).resolve().parents[2]
VALIDATE = REPO / "scripts" / "validate_gltf.mjs"


def color_fn(p):  # [N, 3] -> [N, 3]
    return torch.stack([(p[:, 0] + 1) / 2, (p[:, 1] + 1) / 2, (torch.cos(4 * p[:, 2]) + 1) / 2], dim=-1)


@pytest.fixture(scope="module")
def mesh():
    # a sphere shifted up (+Z) and forward (+X): the axis conversion must move it to +Y and +Z
    c = torch.tensor([0.3, 0.0, 0.2])
    return extract_mesh(lambda p: (p - c).norm(dim=-1) - 0.5, resolution=40, field_type="sdf", color_fn=color_fn)


def load(path):
    return trimesh.load(path, force="mesh", process=False)


def world_to_y_up(v):  # independent of the implementation's matrix: (x, y, z) -> (y, z, x)
    return np.stack([v[:, 1], v[:, 2], v[:, 0]], axis=1)


@pytest.mark.parametrize("fmt", ["glb", "ply", "obj"])
def test_round_trip_vertices_and_colors(mesh, tmp_path, fmt):
    (path,) = export_mesh(mesh, tmp_path / f"m.{fmt}")
    back = load(path)
    assert len(back.vertices) == len(mesh.vertices) and len(back.faces) == len(mesh.faces)
    np.testing.assert_allclose(back.vertices, world_to_y_up(mesh.vertices), atol=1e-5)
    assert back.visual.kind == "vertex"
    np.testing.assert_allclose(back.visual.vertex_colors[:, :3], mesh.visual.vertex_colors[:, :3], atol=1)
    assert back.volume > 0  # the rotation keeps outward winding


@pytest.mark.parametrize("fmt", ["ply", "obj"])
def test_z_up_option_keeps_world_frame(mesh, tmp_path, fmt):
    (path,) = export_mesh(mesh, tmp_path / f"m.{fmt}", up_axis="z")
    np.testing.assert_allclose(load(path).vertices, mesh.vertices, atol=1e-5)


def test_axis_conversion_z_up_to_y_up(tmp_path):
    np.testing.assert_allclose(np.linalg.det(Z_UP_TO_Y_UP[:3, :3]), 1.0)  # a rotation, not a mirror
    points = trimesh.Trimesh(
        vertices=[[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 0]], faces=[[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]]
    )
    (path,) = export_mesh(points, tmp_path / "axes.glb")
    v = load(path).vertices
    np.testing.assert_allclose(v[0], [0, 1, 0], atol=1e-7)  # up: world +Z -> glTF +Y
    np.testing.assert_allclose(v[1], [0, 0, 1], atol=1e-7)  # front: world +X -> glTF +Z (glTF's front)
    np.testing.assert_allclose(v[2], [1, 0, 0], atol=1e-7)  # left: world +Y -> glTF +X


def test_obj_has_rgb_on_vertex_lines(mesh, tmp_path):
    (path,) = export_mesh(mesh, tmp_path / "m.obj")
    first_v = next(line for line in path.read_text().splitlines() if line.startswith("v "))
    assert len(first_v.split()) == 7  # v x y z r g b


def test_glb_color_0_attribute(mesh, tmp_path):
    (path,) = export_mesh(mesh, tmp_path / "m.glb")
    gltf = _glb_json(path)
    assert "COLOR_0" in gltf["meshes"][0]["primitives"][0]["attributes"]


def test_encoding_error_leaves_existing_files_untouched(mesh, tmp_path):
    (tmp_path / "mesh.glb").write_bytes(b"old")
    with pytest.raises(UserError, match="unknown mesh format"):
        export_all(mesh, tmp_path, ["glb", "stl"])
    assert (tmp_path / "mesh.glb").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh.glb"]  # no temp files left


def _glb_json(path):
    data = Path(path).read_bytes()
    (length,) = struct.unpack_from("<I", data, 12)
    return json.loads(data[20 : 20 + length])


def _validator():
    node = shutil.which("node")
    installed = (REPO / ".ci" / "gltf" / "node_modules" / "gltf-validator").is_dir()
    if node is None or not installed:
        pytest.skip("Khronos glTF validator not available: needs node and `bash scripts/install_gltf_validator.sh`")
    return node


def validate(path):
    node = _validator()
    proc = subprocess.run([node, str(VALIDATE), str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_glb_passes_khronos_validator(mesh, tmp_path):
    (path,) = export_mesh(mesh, tmp_path / "m.glb")
    report = validate(path)
    assert report["numErrors"] == 0, report["messages"]


def test_validator_catches_a_broken_glb(mesh, tmp_path):
    # the check above means something only if the validator does flag bad files
    (path,) = export_mesh(mesh, tmp_path / "m.glb")
    data = bytearray(path.read_bytes())
    data[-200:] = b"\xff" * 200  # corrupt the tail of the binary chunk (indices)
    path.write_bytes(bytes(data))
    assert validate(path)["numErrors"] > 0


@pytest.fixture(scope="module")
def textured(mesh):
    pytest.importorskip("xatlas")
    from dreamfusion3d.export import bake_texture

    return bake_texture(mesh, color_fn, texture_size=256)


def test_textured_glb_has_base_color_texture_and_validates(textured, tmp_path):
    (path,) = export_mesh(textured, tmp_path / "t.glb")
    gltf = _glb_json(path)
    assert "baseColorTexture" in gltf["materials"][0]["pbrMetallicRoughness"]
    assert "TEXCOORD_0" in gltf["meshes"][0]["primitives"][0]["attributes"]
    back = load(path)
    # the baked texture, sampled at the reloaded UVs, reproduces the albedo at the vertices
    rgb = back.visual.to_color().vertex_colors[:, :3].astype(float)
    world = back.vertices[:, [2, 0, 1]]  # glTF (y, z, x) back to world (x, y, z)
    expected = color_fn(torch.tensor(world, dtype=torch.float32)).numpy() * 255
    assert np.abs(rgb - expected).mean() < 3.0
    if shutil.which("node") and (REPO / ".ci" / "gltf" / "node_modules" / "gltf-validator").is_dir():
        assert validate(path)["numErrors"] == 0


def test_textured_obj_writes_mtl_and_png(textured, tmp_path):
    paths = export_mesh(textured, tmp_path / "t.obj")
    assert sorted(p.name for p in paths) == ["t.mtl", "t.obj", "t.png"]
    assert "map_Kd t.png" in (tmp_path / "t.mtl").read_text()
    back = load(tmp_path / "t.obj")
    assert back.visual.kind == "texture" and back.visual.uv.shape == (len(back.vertices), 2)


def test_missing_xatlas_says_how_to_install(mesh, monkeypatch):
    from dreamfusion3d.export import bake_texture

    monkeypatch.setitem(sys.modules, "xatlas", None)
    with pytest.raises(UserError, match="pip install xatlas"):
        bake_texture(mesh, color_fn, texture_size=64)
