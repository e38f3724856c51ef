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


def srgb_to_linear_reference(c8):  # uint8 sRGB -> float linear, the IEC 61966-2-1 curve
    c = np.asarray(c8, dtype=float) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def load_as_written(path):
    """The single mesh of a file as trimesh reads it, with the file's normals and a GLB's COLOR_0
    (``force="mesh"`` recomputes normals and drops COLOR_0 when there is a material)."""
    loaded = trimesh.load(path, process=False)
    if isinstance(loaded, trimesh.Scene):
        (loaded,) = loaded.geometry.values()
    return loaded


@pytest.mark.parametrize("fmt", ["glb", "ply", "obj"])
def test_round_trip_vertices_and_colors(mesh, tmp_path, fmt):
    (path,) = export_mesh(mesh, tmp_path / f"m.{fmt}")
    back = load_as_written(path) if fmt == "glb" else load(path)
    assert len(back.vertices) == len(mesh.vertices) and len(back.faces) == len(mesh.faces)
    np.testing.assert_allclose(back.vertices, world_to_y_up(mesh.vertices), atol=1e-5)
    srgb = mesh.visual.vertex_colors[:, :3]
    if fmt == "glb":  # COLOR_0 is linear (glTF spec), times a white matte material
        linear = back.visual.vertex_attributes["color"][:, :3] / 255.0
        np.testing.assert_allclose(linear, srgb_to_linear_reference(srgb), atol=0.6 / 255)
    else:  # PLY / OBJ colours are display (sRGB) values
        assert back.visual.kind == "vertex"
        np.testing.assert_allclose(back.visual.vertex_colors[:, :3], srgb, atol=1)
    assert back.volume > 0  # the rotation keeps outward winding


@pytest.mark.parametrize("fmt", ["glb", "ply", "obj"])
def test_files_carry_smooth_vertex_normals(mesh, tmp_path, fmt):
    (path,) = export_mesh(mesh, tmp_path / f"m.{fmt}")
    if fmt == "glb":
        assert "NORMAL" in _glb_json(path)["meshes"][0]["primitives"][0]["attributes"]
    back = load_as_written(path)
    assert "vertex_normals" in back._cache.cache  # read from the file, not recomputed on access
    # the sphere's outward normals, in the file's axes
    centre = world_to_y_up(np.array([[0.3, 0.0, 0.2]]))
    expected = (back.vertices - centre) / np.linalg.norm(back.vertices - centre, axis=1, keepdims=True)
    cos = (back.vertex_normals * expected).sum(1)
    assert cos.min() > 0.95


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


def test_vertex_colour_glb_has_color_0_and_a_matte_material(mesh, tmp_path):
    # without a material viewers (Blender) ignore COLOR_0 and show grey
    (path,) = export_mesh(mesh, tmp_path / "m.glb")
    gltf = _glb_json(path)
    primitive = gltf["meshes"][0]["primitives"][0]
    assert "COLOR_0" in primitive["attributes"] and "TEXCOORD_0" not in primitive["attributes"]
    pbr = gltf["materials"][primitive["material"]]["pbrMetallicRoughness"]
    assert pbr["baseColorFactor"] == [1.0, 1.0, 1.0, 1.0] and "baseColorTexture" not in pbr
    assert pbr["metallicFactor"] == 0.0 and pbr["roughnessFactor"] == pytest.approx(0.9)


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
    # --texture none: 0 errors and 0 warnings (hints allowed)
    (path,) = export_mesh(mesh, tmp_path / "m.glb")
    report = validate(path)
    assert (report["numErrors"], report["numWarnings"]) == (0, 0), report["messages"]


def test_validator_catches_a_broken_glb(mesh, tmp_path):
    # the check above means something only if the validator does flag bad files
    (path,) = export_mesh(mesh, tmp_path / "m.glb")
    data = bytearray(path.read_bytes())
    data[-200:] = b"\xff" * 200  # corrupt the tail of the binary chunk (indices)
    path.write_bytes(bytes(data))
    assert validate(path)["numErrors"] > 0


@pytest.fixture(scope="module")
def textured(mesh):
    from dreamfusion3d.export import bake_texture

    return bake_texture(mesh, color_fn, texture_size=256)


def test_textured_glb_has_base_color_texture_and_validates(textured, tmp_path):
    (path,) = export_mesh(textured, tmp_path / "t.glb")
    gltf = _glb_json(path)
    primitive = gltf["meshes"][0]["primitives"][0]
    pbr = gltf["materials"][primitive["material"]]["pbrMetallicRoughness"]
    assert "baseColorTexture" in pbr and pbr["metallicFactor"] == 0.0 and pbr["roughnessFactor"] == pytest.approx(0.9)
    assert "TEXCOORD_0" in primitive["attributes"] and "NORMAL" in primitive["attributes"]
    assert "COLOR_0" not in primitive["attributes"]  # glTF would multiply it into the texture
    back = load(path)
    # the baked texture, sampled at the reloaded UVs, reproduces the albedo at the vertices
    rgb = back.visual.to_color().vertex_colors[:, :3].astype(float)
    world = back.vertices[:, [2, 0, 1]]  # glTF (y, z, x) back to world (x, y, z)
    expected = color_fn(torch.tensor(world, dtype=torch.float32)).numpy() * 255
    assert np.abs(rgb - expected).mean() < 3.0
    report = validate(path)  # the default output: 0 errors, 0 warnings (hints allowed)
    assert (report["numErrors"], report["numWarnings"]) == (0, 0), report["messages"]


def test_textured_normals_are_smooth_across_uv_seams(mesh, textured, tmp_path):
    # seam vertices are duplicated for the atlas; each copy must keep the surface normal, or
    # every chart border shows as a crease in a viewer
    assert len(textured.vertices) > len(mesh.vertices)  # there are seams
    (path,) = export_mesh(textured, tmp_path / "t.glb")
    back = load_as_written(path)
    assert "vertex_normals" in back._cache.cache
    _, first, inverse = np.unique(np.round(back.vertices, 6), axis=0, return_index=True, return_inverse=True)
    gap = np.linalg.norm(back.vertex_normals - back.vertex_normals[first][inverse.ravel()], axis=1)
    assert gap.max() < 1e-5


def test_texture_gutters_are_dilated(mesh):
    # a constant albedo: every texel, inside a chart or in the gutter between charts, is that colour
    from dreamfusion3d.export import bake_texture

    colour = torch.tensor([0.2, 0.6, 0.4])
    baked = bake_texture(mesh, lambda p: colour.expand(len(p), 3), texture_size=64)
    image = np.asarray(baked.visual.material.baseColorTexture)
    np.testing.assert_array_equal(image.reshape(-1, 3), np.broadcast_to(np.round(colour.numpy() * 255), (64 * 64, 3)))


def test_textured_obj_writes_mtl_and_png(textured, tmp_path):
    paths = export_mesh(textured, tmp_path / "t.obj")
    assert sorted(p.name for p in paths) == ["t.mtl", "t.obj", "t.png"]
    assert "map_Kd t.png" in (tmp_path / "t.mtl").read_text()
    back = load(tmp_path / "t.obj")
    assert back.visual.kind == "texture" and back.visual.uv.shape == (len(back.vertices), 2)
    assert any(line.startswith("vn ") for line in (tmp_path / "t.obj").read_text().splitlines())


def test_textured_ply_is_the_closed_vertex_coloured_mesh(mesh, textured, tmp_path):
    # PLY has no texture slot: the seams are merged back and the colours are the field's at the vertices
    (path,) = export_mesh(textured, tmp_path / "t.ply")
    back = load(path)
    assert back.is_watertight and back.visual.kind == "vertex"
    assert (len(back.vertices), len(back.faces)) == (len(mesh.vertices), len(mesh.faces))
    world = back.vertices[:, [2, 0, 1]]
    expected = color_fn(torch.tensor(world, dtype=torch.float32)).numpy() * 255
    np.testing.assert_allclose(back.visual.vertex_colors[:, :3], expected, atol=1)


def test_missing_xatlas_falls_back_to_vertex_colours(mesh, monkeypatch, capsys):
    from dreamfusion3d.export import apply_texture, bake_texture

    monkeypatch.setitem(sys.modules, "xatlas", None)
    out, stats = apply_texture(mesh, color_fn, "albedo", 64)
    assert out is mesh and stats["texture"] == "none"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install xatlas" in err[0]
    with pytest.raises(UserError, match="pip install xatlas"):
        bake_texture(mesh, color_fn, texture_size=64)


@pytest.mark.parametrize("mode,size", [("albedo", 0), ("albedo", 15), ("albedo", 100000), ("png", 512), ("none", 0)])
def test_bad_texture_options(mode, size):
    from dreamfusion3d.export import check_texture_options

    with pytest.raises(UserError, match="texture"):
        check_texture_options(mode, size)


def test_our_renderer_reads_the_vertex_colour_glb(mesh, tmp_path):
    # `dreamfusion3d render --mesh mesh.glb` of a --texture none export: COLOR_0 back as sRGB
    from dreamfusion3d.world import load_mesh_asset

    (path,) = export_mesh(mesh, tmp_path / "m.glb")
    asset = load_mesh_asset(path)
    assert asset.texture is None and asset.vertex_colors is not None
    # 8-bit linear COLOR_0 is coarse in the darkest tones: sRGB 0..13 share two linear levels
    np.testing.assert_allclose(asset.vertex_colors * 255, mesh.visual.vertex_colors[:, :3], atol=7)
    assert np.abs(asset.vertex_colors * 255 - mesh.visual.vertex_colors[:, :3]).mean() < 0.5


def test_zero_vertex_normals_are_replaced_so_the_glb_validates(mesh, tmp_path):
    # a vertex whose faces cancel (a fold decimation can leave) and an unused vertex have zero
    # normals, which glTF forbids (ACCESSOR_VECTOR3_NON_UNIT errors)
    from dreamfusion3d.export.writers import unit_vertex_normals

    n = len(mesh.vertices)
    fold = np.array([[0, 0, 2.0], [1, 0, 2.0], [0, 1, 2.0]])
    vertices = np.concatenate([mesh.vertices, fold, [[0, 0, 3.0]]])
    faces = np.concatenate([mesh.faces, [[n, n + 1, n + 2], [n, n + 2, n + 1]]])
    odd = trimesh.Trimesh(vertices, faces, vertex_colors=np.full((len(vertices), 4), 200, np.uint8), process=False)
    assert (np.linalg.norm(odd.vertex_normals[n:], axis=1) < 1e-6).all()
    normals = unit_vertex_normals(odd)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(normals[:n], mesh.vertex_normals, atol=1e-6)  # good normals untouched
    assert np.allclose(np.abs(normals[n : n + 3, 2]), 1.0)  # the fold's own plane normal
    (path,) = export_mesh(odd, tmp_path / "odd.glb")
    report = validate(path)
    assert (report["numErrors"], report["numWarnings"]) == (0, 0), report["messages"]
