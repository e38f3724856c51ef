"""save_representation / load_representation: exact round trip (field, background, occupancy grid, configs, extra)
and one-line UserErrors for missing or corrupt checkpoints."""

import json

import pytest
import torch

from dreamfusion3d.cameras import orbit_cameras
from dreamfusion3d.fields import FieldConfig
from dreamfusion3d.rendering import BackgroundConfig, RendererConfig
from dreamfusion3d.representations import build_nerf, load_representation, save_representation
from dreamfusion3d.utils.errors import UserError


def _trained_renderer():
    renderer = build_nerf(
        FieldConfig(kind="hashgrid", hash_levels=4, hash_log2_table_size=12, blob_radius=0.3),
        RendererConfig(num_steps=48, occupancy_resolution=16),
        BackgroundConfig(kind="mlp", color=(0.1, 0.5, 0.9)),
    ).train()
    with torch.no_grad():
        for p in renderer.parameters():
            p.add_(0.05 * torch.randn_like(p))
    renderer.update_occupancy(0)
    return renderer.eval()


def test_round_trip_renders_identically(tmp_path):
    renderer = _trained_renderer()
    assert 0.0 < renderer.occupied_fraction() < 1.0
    save_representation(tmp_path / "run" / "checkpoints" / "final", renderer, {"step": 7, "prompt": "a red cube"})
    assert (tmp_path / "run" / "checkpoints" / "final" / "model.safetensors").is_file()
    loaded, extra = load_representation(tmp_path / "run")  # a run folder resolves to checkpoints/final
    assert extra == {"step": 7, "prompt": "a red cube"}
    assert loaded.field.config == renderer.field.config and loaded.config == renderer.config
    assert loaded.background.config.color == (0.1, 0.5, 0.9)
    assert torch.equal(loaded.estimator.binaries, renderer.estimator.binaries)
    cams = orbit_cameras([10.0, 100.0], [20.0, 5.0], 2.5, 40.0, 16)
    with torch.no_grad():
        a = renderer.render(cams, "lambertian")
        b = loaded.eval().render(cams, "lambertian")
    assert a["num_samples"] == b["num_samples"]
    torch.testing.assert_close(a["rgb"], b["rgb"], rtol=0, atol=0)


def test_latest_is_used_when_there_is_no_final(tmp_path):
    renderer = _trained_renderer()
    save_representation(tmp_path / "checkpoints" / "latest", renderer, {"step": 3})
    _, extra = load_representation(tmp_path)
    assert extra["step"] == 3


def test_missing_and_corrupt_checkpoints_raise_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_representation(tmp_path / "nope")
    with pytest.raises(UserError, match="not a checkpoint"):
        load_representation(tmp_path)
    folder = save_representation(tmp_path / "ckpt", _trained_renderer(), {})
    good = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(good[: len(good) // 2])
    with pytest.raises(UserError, match="corrupt") as err:
        load_representation(folder)
    assert "\n" not in str(err.value)
    (folder / "model.safetensors").write_bytes(good)
    (folder / "representation.json").write_text('{"format": "dreamfusion3d-representation/1", "kind": ')
    with pytest.raises(UserError, match="corrupt"):
        load_representation(folder)
    meta = {"format": "dreamfusion3d-representation/1", "kind": "nerf", "sections": {"field": {"kind": "dense"}}}
    (folder / "representation.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="does not match"):
        load_representation(folder)
    meta["kind"] = "voxels"
    (folder / "representation.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="unknown geometry 'voxels'"):
        load_representation(folder)


def test_checkpoints_of_earlier_versions_still_load(tmp_path):
    """A folder written before the representation seam (nerf.json) loads as a NeRF, unchanged."""
    renderer = _trained_renderer()
    folder = save_representation(tmp_path / "new", renderer, {"step": 5})
    meta = json.loads((folder / "representation.json").read_text())
    legacy = {"format": "dreamfusion3d-nerf/1", **meta["sections"], "extra": meta["extra"]}
    (folder / "representation.json").unlink()
    (folder / "nerf.json").write_text(json.dumps(legacy))
    loaded, extra = load_representation(folder)
    assert extra == {"step": 5} and loaded.kind == "nerf"
    for key, value in renderer.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
