"""Training helpers shared by train-prior and train-novel-view."""

import json
import math
import os
import signal

import pytest
import torch

from dreamfusion3d.diffusion.training import (LossLog, StopRequest, check_resume, ema_decay, ema_update, frozen_copy,
                                              warmup_cosine_lr)
from dreamfusion3d.utils.errors import UserError


def test_lr_schedule_warms_up_then_follows_the_cosine_to_its_floor():
    lrs = [warmup_cosine_lr(1e-3, s, 10, 110) for s in range(120)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert lrs[10] == pytest.approx(1e-3)
    assert lrs[60] == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # half way: cos(π/2) = 0
    assert lrs[110] == pytest.approx(1e-4) and lrs[119] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    # a time budget used up anneals early; constant ignores it
    assert warmup_cosine_lr(1e-3, 20, 10, 110, time_frac=1.0) == pytest.approx(1e-4)
    assert warmup_cosine_lr(1e-3, 50, 10, 110, time_frac=1.0, constant=True) == 1e-3
    assert warmup_cosine_lr(1e-3, 35, 10, 110, floor=0.0) == pytest.approx(1e-3 * (1 + math.cos(math.pi / 4)) / 2)


def test_ema_moves_towards_the_model_by_one_minus_decay():
    model = torch.nn.Linear(3, 2)
    ema = frozen_copy(model)
    assert not any(p.requires_grad for p in ema.parameters()) and not ema.training
    before = [p.clone() for p in ema.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema_update(ema, model, 0.9)
    for b, e, m in zip(before, ema.parameters(), model.parameters()):
        torch.testing.assert_close(e, 0.9 * b + 0.1 * m)
    assert ema_decay(0.999, 0) == pytest.approx(0.1) and ema_decay(0.999, 10**6) == 0.999


def test_stop_request_turns_ctrl_c_into_a_flag_and_restores_the_handler():
    before = signal.getsignal(signal.SIGINT)
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        os.kill(os.getpid(), signal.SIGINT)  # without second_raises a second one is a flag too
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):
        with StopRequest(second_raises=True) as stop:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)


def test_resume_guard_and_loss_log(tmp_path):
    with pytest.raises(UserError, match="--resume given"):
        check_resume(tmp_path / "checkpoints" / "latest", True)
    check_resume(tmp_path / "nothing", False)
    log = LossLog(tmp_path / "log.jsonl")
    log.write({"step": 1, "loss": 0.5})
    log.write({"step": 2, "loss": 0.25})
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert rows == [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25}]
