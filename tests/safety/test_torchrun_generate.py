"""`generate` under torchrun: rank 0 prepares the output folder while the other ranks wait, each
prompt's folder is claimed atomically, so 2 ranks x 2 prompts on a fresh folder never clash."""

import json
import os
import shutil
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_two_ranks_two_prompts_fresh_folder_five_times(tmp_path, tiny_prior, tiny_args):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red cube\na blue sphere\n")
    torchrun = shutil.which("torchrun")
    launcher = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    for attempt in range(5):
        out = tmp_path / f"run{attempt}"  # fresh, and no --overwrite
        args = tiny_args(tiny_prior, out, steps=2) + ["--prompts-file", str(prompts), "--num-threads", "1",
                                                      "--output.mesh-formats", "glb", "--output.no-gif"]
        proc = subprocess.run(launcher + ["--standalone", "--nproc_per_node", "2", "-m", "dreamfusion3d"] + args,
                              env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"attempt {attempt}: {proc.stderr[-2000:]}"
        assert sorted(os.listdir(out)) == ["a-blue-sphere", "a-red-cube", "config.yaml"]
        for slug, prompt in (("a-red-cube", "a red cube"), ("a-blue-sphere", "a blue sphere")):
            metrics = json.loads((out / slug / "metrics.json").read_text())
            assert metrics["prompt"] == prompt and metrics["steps"] == 2
            assert (out / slug / "mesh.glb").stat().st_size > 0
        assert sorted(os.listdir(tmp_path)) == ["prompts.txt"] + [f"run{i}" for i in range(attempt + 1)]  # no lock left
