"""`dreamfusion3d export` end to end: world objects (analytic ground truth) and NeRF checkpoints."""

import math

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
               "--out", str(out), "--format", "glb", "ply"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "export.json", "mesh.glb", "mesh.ply"]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["command"] == "export" and config["world_shape"] == "sphere"
    part = primitive_scene("sphere", "blue", seed=0).metadata()["parts"][0]
    glb = trimesh.load(out / "mesh.glb", force="mesh")
    assert glb.is_watertight
    assert glb.volume == pytest.approx(4 / 3 * math.pi * part["params"]["radius"] ** 3, rel=0.02)
    rgb = glb.visual.vertex_colors[:, :3].astype(float) / 255
    np.testing.assert_allclose(rgb.mean(0), part["color"], atol=2 / 255)


def test_bad_input_is_one_line_and_overwrites_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mesh.glb").write_bytes(b"earlier result")
    for args in (
        ["--world-shape", "blob"],
        [str(tmp_path / "missing-run")],
        [],  # neither a run nor a world object
        ["--world-shape", "sphere", "--threshold", "lots"],
    ):
        assert main(["--quiet", "export", *args, "--out", str(out), "--resolution", "16"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("dreamfusion3d: error:") and "\n" not in err
    assert (out / "mesh.glb").read_bytes() == b"earlier result"
    assert sorted(p.name for p in out.iterdir()) == ["mesh.glb"]


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


def test_nerf_run_export(tmp_path, capsys):
    # an untrained field is its density blob: the mesh is a closed blob around the origin
    run, renderer = _nerf_run(tmp_path)
    out = tmp_path / "out"
    rc = main(["--quiet", "export", str(run), "--resolution", "48", "--out", str(out), "--format", "glb", "obj"])
    assert rc == 0, capsys.readouterr().err
    glb = trimesh.load(out / "mesh.glb", force="mesh", process=False)
    assert glb.is_watertight and glb.volume > 0
    assert glb.visual.kind == "vertex"
    assert np.linalg.norm(glb.centroid) < 0.1
    # the colours are the field's albedo at the vertices (glTF axes back to world: (y, z, x) -> (x, y, z))
    with torch.no_grad():
        albedo = renderer.field(torch.tensor(glb.vertices[:, [2, 0, 1]], dtype=torch.float32))[1].numpy()
    np.testing.assert_allclose(glb.visual.vertex_colors[:, :3] / 255, albedo, atol=2 / 255)
    assert (out / "mesh.obj").is_file() and (out / "config.yaml").is_file()


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
