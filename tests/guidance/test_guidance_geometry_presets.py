"""The GPU presets (sd, if) select either geometry by config; run end to end on the tiny offline
pipelines (on the CPU) with the SDF geometry."""

import json

import pytest
import trimesh
import yaml

from dreamfusion3d.cli import main


@pytest.mark.slow
@pytest.mark.parametrize("preset,folder,kind", [("sd", "tiny_sd_folder", "stable-diffusion"),
                                                ("if", "tiny_if_folder", "deepfloyd-if")])
def test_gpu_presets_run_the_sdf_geometry(preset, folder, kind, request, tmp_path, tiny_args):
    model = request.getfixturevalue(folder)
    out = tmp_path / preset
    args = tiny_args(model, out, steps=3) + ["--config", preset, "--device", "cpu", "--geometry", "sdf",
                                              "--prior.vae-resolution", "64", "--prior.dtype", "float32",
                                              "--prior.variant", "None"]
    assert main(args) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["geometry"] == "sdf" and config["prior"]["kind"] == kind
    meta = json.loads((out / "checkpoints" / "final" / "representation.json").read_text())
    assert meta["kind"] == "sdf" and meta["sections"]["sdf"]["init_radius"] > 0
    mesh = trimesh.load(out / "mesh.glb", force="mesh")
    assert len(mesh.faces) > 0
