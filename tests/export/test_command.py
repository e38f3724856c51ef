"""`dreamfusion3d export` end to end: world objects (analytic ground truth) and NeRF checkpoints."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
import yaml

from dreamfusion3d.cli import main


def test_world_sphere_export(tmp_path, capsys):
    from dreamfusion3d.world import primitive_scene

    out = tmp_path / "out"
    rc = main(["--quiet", "export", "--world-shape", "sphere", "--world-color", "blue", "--resolution", "64",
               "--texture-size", "128", "--out", str(out), "--format", "glb", "ply"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "export.json", "mesh.glb", "mesh.ply"]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["command"] == "export" and config["world_shape"] == "sphere"
    part = primitive_scene("sphere", "blue", seed=0).metadata()["parts"][0]
    expected_volume = 4 / 3 * math.pi * part["params"]["radius"] ** 3
    glb = trimesh.load(out / "mesh.glb", force="mesh")  # textured by default
    assert glb.visual.kind == "texture" and glb.visual.material.baseColorTexture.size == (128, 128)
    rgb = glb.visual.to_color().vertex_colors[:, :3].astype(float) / 255
    np.testing.assert_allclose(rgb.mean(0), part["color"], atol=2 / 255)
    ply = trimesh.load(out / "mesh.ply", force="mesh")
    assert ply.is_watertight and ply.volume == pytest.approx(expected_volume, rel=0.02)
    np.testing.assert_allclose(ply.visual.vertex_colors[:, :3].mean(0) / 255, part["color"], atol=2 / 255)
    stats = json.loads((out / "export.json").read_text())
    assert stats["texture"] == "albedo" and stats["texture_size"] == 128 and stats["bake_seconds"] > 0
    assert stats["vertices"] == len(ply.vertices) and stats["faces"] == len(ply.faces)


def test_texture_none_writes_vertex_colours(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["--quiet", "export", "--world-shape", "cube", "--world-color", "green", "--resolution", "32",
               "--texture", "none", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "export.json", "mesh.glb", "mesh.obj", "mesh.ply"]
    stats = json.loads((out / "export.json").read_text())
    assert stats["texture"] == "none" and stats["texture_size"] is None
    obj = trimesh.load(out / "mesh.obj", force="mesh")
    assert obj.visual.kind == "vertex"


def test_face_budget(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["--quiet", "export", "--world-shape", "sphere", "--resolution", "64", "--decimate-to", "2000",
               "--texture-size", "64", "--format", "ply", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    stats = json.loads((out / "export.json").read_text())
    ply = trimesh.load(out / "mesh.ply", force="mesh")
    assert stats["faces"] == len(ply.faces) and 1900 <= len(ply.faces) <= 2000
    assert stats["watertight"] and ply.is_watertight


def _corrupt_run(root: Path) -> Path:
    ckpt = root / "broken" / "checkpoints" / "final"
    ckpt.mkdir(parents=True)
    (ckpt / "nerf.json").write_text("{not json")
    (ckpt / "model.safetensors").write_bytes(b"\x00" * 64)
    return root / "broken"


BAD_INPUTS = {
    "unknown shape": ["--world-shape", "blob"],
    "missing run folder": ["{tmp}/missing-run"],
    "folder with no run": ["{tmp}/empty"],
    "corrupt checkpoint": ["{tmp}/broken"],
    "neither run nor world object": [],
    "both run and world object": ["{tmp}/empty", "--world-shape", "sphere"],
    "threshold not a number": ["--world-shape", "sphere", "--threshold", "lots"],
    "NaN threshold": ["--world-shape", "sphere", "--threshold", "nan"],
    "resolution 0": ["--world-shape", "sphere", "--resolution", "0"],
    "unknown format": ["--world-shape", "sphere", "--format", "stl"],
    "no format": ["--world-shape", "sphere", "--format"],
    "texture size 0": ["--world-shape", "sphere", "--texture-size", "0"],
    "texture size 100000": ["--world-shape", "sphere", "--texture-size", "100000"],
    "unknown texture mode": ["--world-shape", "sphere", "--texture", "png"],
    "bound 0": ["--world-shape", "sphere", "--bound", "0"],
    "negative face budget": ["--world-shape", "sphere", "--decimate-to", "-5"],
    "name with a folder": ["--world-shape", "sphere", "--name", "../escape"],
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_overwrites_nothing(case, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    _corrupt_run(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mesh.glb").write_bytes(b"earlier result")
    args = [a.format(tmp=tmp_path) for a in BAD_INPUTS[case]]
    extra = [] if "--resolution" in args else ["--resolution", "16"]
    try:
        rc = main(["--quiet", "export", *args, "--out", str(out), "--overwrite", *extra])  # only the bad input is wrong
    except SystemExit as exc:  # errors found while parsing the command line exit from the parser
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dreamfusion3d: error:") and "\n" not in err, err
    assert (out / "mesh.glb").read_bytes() == b"earlier result"
    assert sorted(p.name for p in out.iterdir()) == ["mesh.glb"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "empty", "out"]  # nothing written beside


def _nerf_run(tmp_path, **field_kwargs):
    from dreamfusion3d.fields import FieldConfig
    from dreamfusion3d.rendering import BackgroundConfig, RendererConfig
    from dreamfusion3d.representations import build_nerf, save_representation

    torch.manual_seed(0)
    field = FieldConfig(kind="dense", dense_resolution=16, dense_features=4, hidden_dim=16, **field_kwargs)
    renderer = build_nerf(field, RendererConfig(), BackgroundConfig())
    run = tmp_path / "run"
    save_representation(run / "checkpoints" / "final", renderer, {"prompt": "a test blob"})
    return run, renderer


@pytest.mark.parametrize("texture", ["albedo", "none"])
def test_nerf_run_export(tmp_path, capsys, texture):
    # an untrained field is its density blob: the mesh is a closed blob around the origin
    run, renderer = _nerf_run(tmp_path)
    out = tmp_path / "out"
    rc = main(["--quiet", "export", str(run), "--resolution", "48", "--out", str(out), "--format", "glb", "obj",
               "--texture", texture, "--texture-size", "256"])
    assert rc == 0, capsys.readouterr().err
    obj = trimesh.load(out / "mesh.obj", force="mesh", process=False)
    geometry = trimesh.Trimesh(obj.vertices, obj.faces)  # UV seams merged
    assert geometry.is_watertight and geometry.volume > 0
    assert np.linalg.norm(geometry.centroid) < 0.1
    if texture == "albedo":
        assert obj.visual.kind == "texture" and (out / "mesh.png").is_file()
        rgb = obj.visual.to_color().vertex_colors[:, :3] / 255  # the texture sampled at the vertices
    else:
        assert obj.visual.kind == "vertex" and not (out / "mesh.png").exists()
        rgb = obj.visual.vertex_colors[:, :3] / 255
    # the colours are the field's albedo at the vertices (OBJ/glTF axes back to world: (y, z, x) -> (x, y, z))
    with torch.no_grad():
        albedo = renderer.field(torch.tensor(obj.vertices[:, [2, 0, 1]], dtype=torch.float32))[1].numpy()
    tolerance = 2 / 255 if texture == "none" else 4 / 255
    assert np.abs(rgb - albedo).mean() < tolerance
    assert (out / "mesh.glb").is_file() and (out / "config.yaml").is_file()


def test_empty_nerf_is_a_clear_error(tmp_path, capsys):
    run, _ = _nerf_run(tmp_path, blob="none", density_shift=-30.0)
    out = tmp_path / "out"
    assert main(["--quiet", "export", str(run), "--resolution", "24", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dreamfusion3d: error: field is empty") and "\n" not in err
    assert not out.exists() or not any(out.iterdir())


def test_world_cube_matches_its_analytic_box():
    # the world's cube is a box rotated about Z: volume 8·hx·hy·hz and area 8(hx·hy + hy·hz + hz·hx)
    from dreamfusion3d.export import extract_mesh
    from dreamfusion3d.world import primitive_scene

    scene = primitive_scene("cube", "red", seed=3)
    hx, hy, hz = scene.metadata()["parts"][0]["params"]["half"]
    mesh = extract_mesh(scene.sdf, resolution=96, field_type="sdf", color_fn=scene.albedo)
    assert mesh.is_watertight and mesh.volume > 0
    assert mesh.volume == pytest.approx(8 * hx * hy * hz, rel=0.02)
    assert mesh.area == pytest.approx(8 * (hx * hy + hy * hz + hz * hx), rel=0.02)
    assert mesh.bounds[:, 2] == pytest.approx([-hz, hz], abs=0.03)  # upright: +Z is up


def test_occupancy_grid_masks_density_like_the_renderer(tmp_path):

    _, renderer = _nerf_run(tmp_path)
    renderer.estimator.binaries.zero_()
    renderer.estimator.binaries[0, :16] = True  # only the x < 0 half is occupied (32 cells per side)
    density_fn = renderer.export_fields().field_fn
    points = torch.tensor([[-0.3, 0.0, 0.0], [0.3, 0.0, 0.0]])
    with torch.no_grad():
        sigma, raw = density_fn(points), renderer.field.density(points)
    assert sigma[0] == pytest.approx(raw[0].item()) and raw[1] > 0 and sigma[1] == 0
