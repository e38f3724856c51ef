"""Helpers every training command shares: learning-rate schedule, EMA, a stop on Ctrl-C that
lets the current step finish (then checkpoint), the ``--resume`` guard, and the JSONL loss log."""

from __future__ import annotations

import json
import math
import signal
import threading
from pathlib import Path
from typing import Any

import torch

from ..utils.errors import UserError


def warmup_cosine_lr(lr: float, step: int, warmup_steps: int, total_steps: int, floor: float = 0.1,
                     time_frac: float = 0.0, constant: bool = False) -> float:
    """Linear warm-up over ``warmup_steps``, then (unless ``constant``) cosine decay to
    ``floor * lr`` at ``total_steps``, driven by whichever runs out first: the steps or a wall-time
    budget (``time_frac`` = elapsed / budget), so a run cut short by time still ends annealed."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if constant:
        return lr
    frac = min(1.0, max((step - warmup_steps) / max(1, total_steps - warmup_steps), time_frac))
    return lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * frac)))


def ema_decay(decay: float, step: int) -> float:
    """The EMA decay at ``step``, warmed up as min(decay, (1 + step) / (10 + step))."""
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema ← decay · ema + (1 − decay) · model, parameter by parameter."""
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm.detach(), 1.0 - decay)


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy in eval mode without gradients (the EMA model)."""
    import copy

    ema = copy.deepcopy(model).eval()
    ema.requires_grad_(False)
    return ema


class StopRequest:
    """While active (``with StopRequest() as stop:``, or between :meth:`install` and
    :meth:`restore`), Ctrl-C (and the other ``signals``) only sets ``stop.requested``: the loop
    finishes its step, checkpoints and leaves. With ``second_raises``, a second Ctrl-C raises
    KeyboardInterrupt at once. Handlers are installed only in the main thread (elsewhere the flag
    just stays False) and restored on exit."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGINT,), second_raises: bool = False):
        self.signals, self.second_raises = signals, second_raises
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested and self.second_raises and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def install(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.signals}
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def __enter__(self) -> "StopRequest":
        return self.install()

    def __exit__(self, *exc) -> None:
        self.restore()


def check_resume(latest: Path, resume: bool) -> None:
    """``--resume`` needs the checkpoint it resumes from."""
    if resume and not latest.exists():
        raise UserError(f"--resume given but {latest} does not exist")


class LossLog:
    """Append-only JSONL log (``log.jsonl``): one JSON object per line, one line per step."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
