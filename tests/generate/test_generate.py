"""The generate command: bad input, outputs of a short run, and kill -9 + --resume reproducibility."""

import json
import os
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import pytest
import trimesh

from dreamfusion3d.cli import main


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt_is_one_clear_error(tmp_path, capsys, prompt):
    assert main(["generate", "--prompt", prompt, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "prompt is empty" in err[0]
    assert not (tmp_path / "o").exists()


def test_prompt_file_without_prompts(tmp_path, capsys):
    f = tmp_path / "prompts.txt"
    f.write_text("\n# only a comment\n   \n")
    assert main(["generate", "--prompts-file", str(f), "--out", str(tmp_path / "o")]) == 2
    assert "contains no prompts" in capsys.readouterr().err


def test_non_empty_out_is_refused_and_kept(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    assert main(["generate", "--prompt", "a red cube", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]


def test_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["generate", "--prompt", "a red cube", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err or "not a folder" in err


@pytest.mark.parametrize("option", [["--output.texture-size", "0"], ["--output.texture-size", "100000"]])
def test_bad_texture_option_fails_before_the_run(tmp_path, capsys, option):
    out = tmp_path / "o"
    assert main(["generate", "--prompt", "a red cube", "--out", str(out), *option]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--output.texture-size" in err[0]
    assert not out.exists()


def test_missing_prior_folder(tmp_path, capsys):
    assert main(["generate", "--prompt", "a red cube", "--out", str(tmp_path / "o"),
                 "--prior.model", str(tmp_path / "nope")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.slow
def test_short_run_writes_every_output(tmp_path, tiny_prior, tiny_args):
    out = tmp_path / "run"
    assert main(tiny_args(tiny_prior, out)) == 0
    mesh = trimesh.load(out / "mesh.glb", force="mesh")
    assert len(mesh.faces) > 0
    assert mesh.visual.kind == "texture" and mesh.visual.material.baseColorTexture.size == (64, 64)
    assert (out / "mesh.mtl").is_file() and (out / "mesh.png").is_file()
    for fmt in ("obj", "ply"):
        assert len(trimesh.load(out / f"mesh.{fmt}", force="mesh").faces) == len(mesh.faces)
    frames = list(iio.imiter(out / "turntable.mp4"))
    assert len(frames) == 3 and frames[0].shape[:2] == (16, 16)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["peak_rss_mb"] > 0
    assert metrics["mesh"]["faces"] == len(mesh.faces) and metrics["mesh"]["components"] == 1
    assert 0.0 <= metrics["turntable"]["speckle_max"] < 1.0
    assert metrics["mesh"]["texture"] == "albedo" and metrics["mesh"]["texture_size"] == 64
    assert metrics["mesh"]["bake_seconds"] > 0
    assert set(metrics["stage_seconds"]) >= {"render", "prior", "backward"}
    # the resolved config is a valid preset for the same command (and passes its checks)
    from dreamfusion3d.generate.config import GenerateConfig
    from dreamfusion3d.utils.config import load_preset
    from dreamfusion3d.utils.validate import validate_config

    again = load_preset(GenerateConfig, str(out / "config.yaml"), command="generate")
    validate_config("generate", again)
    assert again.steps == 6 and again.prior.model == str(tiny_prior)


@pytest.mark.slow
@pytest.mark.parametrize("geometry,extra", [("nerf", []), ("sdf", []),
                                            ("sdf", ["--optim.ema-decay", "0.9", "--optim.ema-start", "2"])],
                         ids=["nerf", "sdf", "sdf-ema"])
def test_kill_9_then_resume_matches_uninterrupted(tmp_path, tiny_prior, tiny_args, geometry, extra, same_final_weights):
    """Killed after step 4 and resumed: the same final weights (with ``ema`` the moving average,
    begun before the kill, travels in the checkpoint)."""
    steps = 40
    ref = tmp_path / "ref"
    assert main(tiny_args(tiny_prior, ref, steps) + ["--geometry", geometry, *extra]) == 0

    run = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DREAMFUSION3D_THREADS": "1"}
    cmd = [sys.executable, "-m", "dreamfusion3d", *tiny_args(tiny_prior, run, steps), "--geometry", geometry,
           *extra, "--num-threads", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = run / "checkpoints" / "latest" / "trainer" / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["state"]["step"] >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "checkpoints" / "final").exists()

    assert main(["generate", "--resume", str(run), "--quiet"]) == 0
    same_final_weights(ref, run)
    # and the untrained initial field is not what came out (the run did optimise)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == steps and metrics["geometry"] == geometry
