import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dreamfusion3d.novel_view.data import load_view_set, pair_indices
from dreamfusion3d.novel_view.model import NovelViewArchitecture, NovelViewModel
from dreamfusion3d.novel_view.train import TrainNovelViewConfig, run
from dreamfusion3d.utils.errors import UserError

ARCH = NovelViewArchitecture(resolution=16, block_out_channels=(16, 32), norm_num_groups=8)


def _cfg(data: Path, out: Path, steps: int, **kw) -> TrainNovelViewConfig:
    base = dict(data=data, out=out, steps=steps, batch_size=4, arch=ARCH, lr=1e-3, lr_schedule="constant",
                warmup_steps=2, sample_every=0, sample_steps=2, seed=5, num_threads=1)
    return TrainNovelViewConfig(**{**base, **kw})


def _tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "checkpoints" / "latest" / "tensors.safetensors"))


def test_views_are_loaded_over_white_with_cameras(tiny_dataset, tmp_path):
    views = load_view_set(tiny_dataset, "train", 16, cache_dir=tmp_path)
    assert views.images.shape[1:] == (6, 3, 16, 16)
    assert torch.allclose(views.images[:, :, :, 0, 0], torch.ones(()), atol=1e-3)  # corners are background
    assert torch.allclose(views.spherical[..., 2], torch.full_like(views.spherical[..., 2], 2.9), atol=0.35)
    again = load_view_set(tiny_dataset, "train", 16, cache_dir=tmp_path)  # from the safetensors cache
    assert torch.allclose(again.images, views.images, atol=1e-3) and again.names == views.names


def test_pair_sampler_is_rank_sharded_and_stateless():
    full = pair_indices(7, 0, 8, 10, 6)
    shards = [pair_indices(7, 0, 8, 10, 6, rank=r, world_size=2) for r in range(2)]
    for i in range(3):
        merged = torch.empty(8, dtype=torch.long)
        merged[0::2], merged[1::2] = shards[0][i], shards[1][i]
        assert torch.equal(merged, full[i])
    assert torch.all(full[1] != full[2])  # target differs from source
    assert not torch.equal(pair_indices(8, 0, 8, 10, 6)[0], full[0])


def test_resume_continues_with_same_step_and_optimizer_state(tiny_dataset, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    run(_cfg(tiny_dataset, straight, 4))
    run(_cfg(tiny_dataset, split, 2))
    state = json.loads((split / "checkpoints" / "latest" / "state.json").read_text())
    assert state["state"]["step"] == 2
    assert any(k.startswith("optim.") and k.endswith("exp_avg_sq") for k in _tensors(split))
    with pytest.raises(UserError, match="is not empty"):
        run(_cfg(tiny_dataset, split, 4))
    run(_cfg(tiny_dataset, split, 4, resume=True))
    state = json.loads((split / "checkpoints" / "latest" / "state.json").read_text())
    assert state["state"]["step"] == 4
    a, b = _tensors(straight), _tensors(split)
    assert a.keys() == b.keys()
    for key in a:  # weights, EMA and Adam moments all continue exactly
        assert torch.equal(a[key], b[key]), key
    model = NovelViewModel.from_pretrained(split / "model")
    assert model.info["steps"] == 4 and model.resolution == 16


def test_resume_without_checkpoint_is_user_error(tiny_dataset, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        run(_cfg(tiny_dataset, tmp_path / "none", 2, resume=True))


@pytest.mark.slow
def test_torchrun_two_ranks_stay_identical_and_match_one_process(tiny_dataset, tmp_path):
    ddp_out, single_out = tmp_path / "ddp", tmp_path / "single"
    args = ["train-novel-view", "--data", str(tiny_dataset), "--steps", "3", "--batch-size", "4",
            "--arch.resolution", "16", "--arch.block-out-channels", "16", "32", "--lr-schedule", "constant",
            "--warmup-steps", "2", "--lr", "1e-3", "--sample-every", "0", "--seed", "5", "--num-threads", "1",
            "--quiet"]
    torchrun = shutil.which("torchrun") or None
    launcher = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    proc = subprocess.run(launcher + ["--standalone", "--nproc_per_node", "2", "-m", "dreamfusion3d"] + args
                          + ["--out", str(ddp_out)], env=env, capture_output=True, text=True,
                          timeout=900)  # a hang guard only: 3 process starts take minutes on a loaded machine
    assert proc.returncode == 0, proc.stderr[-2000:]
    sync = json.loads((ddp_out / "ddp_sync.json").read_text())
    assert len(sync["fingerprints"]) == 2
    assert sync["max_abs_diff"] == 0.0  # DDP keeps the replicas bit-identical
    run(_cfg(tiny_dataset, single_out, 3, lr=1e-3))
    a, b = _tensors(ddp_out), _tensors(single_out)
    for key in (k for k in a if k.startswith("unet.")):
        # same global batch, noise and dropout: 2 ranks x 2 pairs == 1 rank x 4 pairs (up to fp sums)
        assert torch.allclose(a[key], b[key], atol=1e-5, rtol=1e-4), key


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_that_resumes(tiny_dataset, tmp_path):
    import signal
    import time

    out = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "dreamfusion3d", "train-novel-view", "--data", str(tiny_dataset), "--out", str(out),
           "--steps", "100000", "--batch-size", "2", "--arch.resolution", "16", "--arch.block-out-channels", "16",
           "32", "--sample-every", "0", "--num-threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "log.jsonl"
    deadline = time.time() + 600  # waits for training to start, however loaded the machine
    while time.time() < deadline and not (log.is_file() and len(log.read_text().splitlines()) >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-1000:]  # the Ctrl-C convention, as for every command
    assert "interrupted at step" in err and err.rstrip().splitlines()[-1] == "dreamfusion3d: interrupted"
    state = json.loads((out / "checkpoints" / "latest" / "state.json").read_text())
    assert state["state"]["step"] >= 2
    assert not (out / "model").exists()  # an interrupted run exports nothing
    run(_cfg(tiny_dataset, out, state["state"]["step"] + 1, batch_size=2, resume=True))
    assert json.loads((out / "checkpoints" / "latest" / "state.json").read_text())["state"]["step"] == \
        state["state"]["step"] + 1
