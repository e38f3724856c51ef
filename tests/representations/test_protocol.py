"""Every registered 3D representation through the one protocol that generate, export, evaluate
and bench use: render, parameter groups, update, regularisers, export fields, save / load."""

import pytest
import torch

from dreamfusion3d.cameras import orbit_cameras
from dreamfusion3d.export import extract_mesh
from dreamfusion3d.generate.config import GenerateConfig
from dreamfusion3d.representations import (
    REGISTRY, Representation, build_representation, load_representation, save_representation,
)
from dreamfusion3d.utils.errors import UserError


def small_config() -> GenerateConfig:
    cfg = GenerateConfig()
    cfg.field.dense_resolution, cfg.field.dense_features = 16, 4
    cfg.renderer.num_steps, cfg.renderer.occupancy_resolution = 32, 8
    cfg.renderer.occupancy_update_every, cfg.renderer.occupancy_warmup_steps = 1, 2
    return cfg


@pytest.fixture(params=sorted(REGISTRY))
def rep(request) -> Representation:
    torch.manual_seed(0)
    return build_representation(request.param, small_config())


def test_registry_has_both_geometries():
    assert {"nerf", "sdf"} <= set(REGISTRY)
    with pytest.raises(UserError, match="unknown geometry"):
        build_representation("voxels", small_config())


def test_render_outputs_and_gradients(rep):
    cams = orbit_cameras([0.0, 120.0], [20.0], 2.5, 40.0, 12)
    out = rep.render(cams, shading="lambertian", light_positions=cams.positions * 1.5, ambient=0.3)
    assert out["rgb"].shape == (2, 12, 12, 3) and out["opacity"].shape == (2, 12, 12, 1)
    assert out["depth"].shape == (2, 12, 12, 1) and out["normals"].shape == (2, 12, 12, 3)
    assert 0.0 < float(out["opacity"].detach().mean()) < 1.0  # the initial blob / sphere is in view, not everywhere
    loss = out["rgb"].mean() + out["orientation_loss"] + sum(rep.regularisers(out, 0).values(), torch.zeros(()))
    loss.backward()
    groups = rep.param_groups(0.03, 0.003, 0.001)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in rep.parameters())  # every parameter exactly once
    assert {g["name"] for g in groups} >= {"encoding", "network"}
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in rep.parameters())


def test_update_then_export_fields_mesh_the_object(rep):
    rep.train()
    for step in range(3):
        rep.update(step)
    rep.eval()
    f = rep.export_fields()
    assert f.field_type in ("density", "sdf")
    mesh = extract_mesh(f.field_fn, -1.0, 1.0, 32, "auto", color_fn=f.color_fn, field_type=f.field_type)
    assert len(mesh.faces) > 0 and mesh.is_watertight
    assert mesh.bounds[1].max() < 1.0  # a blob at the centre, not the box


def test_save_load_round_trip_renders_the_same(rep, tmp_path):
    rep.train()
    rep.update(0)
    with torch.no_grad():
        for p in rep.parameters():
            p.add_(0.01 * torch.randn_like(p))
    rep.eval()
    folder = save_representation(tmp_path / "ckpt", rep, {"step": 3})
    loaded, extra = load_representation(folder)
    loaded.eval()
    assert extra == {"step": 3} and type(loaded) is type(rep)
    assert loaded.section_configs() == rep.section_configs()
    cams = orbit_cameras([45.0], [10.0], 2.5, 40.0, 10)
    with torch.no_grad():
        a, b = rep.render(cams, "textureless"), loaded.render(cams, "textureless")
    torch.testing.assert_close(a["rgb"], b["rgb"])
    torch.testing.assert_close(a["depth"], b["depth"])
