"""Which torch device a command runs on: one home for ``--device`` of every command.

``auto`` (every command's default) is ``cuda:LOCAL_RANK`` when CUDA is available (so each
``torchrun`` rank takes its own GPU; LOCAL_RANK is 0 outside torchrun) and the CPU otherwise.
Explicit names are checked before anything is written: ``cpu``, ``cuda`` (= ``cuda:LOCAL_RANK``),
``cuda:N`` (N must be a visible GPU) and ``mps`` (Apple GPUs, where available). Each problem is
one :class:`UserError` line; the choice is reported in one stage line (with the run's first).
"""

from __future__ import annotations

import os

import torch

from .errors import UserError
from .logging import info_later, warn

KINDS = ("auto", "cpu", "cuda", "cuda:N", "mps")
GPU_PRIORS = ("stable-diffusion", "deepfloyd-if")  # far too slow for a CPU at their presets' sizes


def _local_rank() -> int:
    raw = os.environ.get("LOCAL_RANK", "0")
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"LOCAL_RANK={raw!r} is not an integer (set by torchrun)") from None


def _cuda_device(index: int, spec: str) -> torch.device:
    if not torch.cuda.is_available():
        why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device is visible"
        raise UserError(f"--device {spec}: CUDA is not available ({why}); use --device cpu or auto")
    count = torch.cuda.device_count()
    if index >= count:
        names = ", ".join(f"cuda:{i}" for i in range(count))
        raise UserError(f"--device {spec}: there is no cuda:{index}; {count} CUDA device(s) visible ({names})")
    return torch.device("cuda", index)


def resolve_device(spec: str | torch.device | None, announce: bool = True, prior_kind: str | None = None) -> torch.device:
    """``--device`` text → a checked ``torch.device`` (see the module docstring); with
    ``prior_kind``, also :func:`check_prior_device` (before the device line is printed).

    A CUDA device becomes the current one, so libraries that launch on the current device
    (nerfacc's kernels, accelerate's offload hooks) agree with the tensors' device.
    """
    text = "auto" if spec is None else str(spec).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            rank = _local_rank()
            if rank >= torch.cuda.device_count():
                raise UserError(f"--device auto: LOCAL_RANK {rank} but only {torch.cuda.device_count()} CUDA "
                                "device(s) visible: start at most one rank per GPU")
            device, why = torch.device("cuda", rank), "auto"
        else:
            device, why = torch.device("cpu"), "auto: no CUDA device"
    elif text == "cpu":
        device, why = torch.device("cpu"), "asked for"
    elif text == "cuda":
        device, why = _cuda_device(_local_rank(), text), "asked for"
    elif text.startswith("cuda:"):
        index = text.split(":", 1)[1]
        if not index.isdigit():
            raise UserError(f"--device {spec}: the GPU index must be a number, e.g. cuda:0")
        device, why = _cuda_device(int(index), text), "asked for"
    elif text == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UserError("--device mps: Apple's Metal backend (MPS) is not available on this machine")
        device, why = torch.device("mps"), "asked for"
    else:
        raise UserError(f"unknown device {spec!r}; choose one of {', '.join(KINDS)}")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        why = f"{torch.cuda.get_device_name(device)}, {why}"
    if prior_kind is not None:
        check_prior_device(prior_kind, text, device)
    if announce:  # printed with the run's first stage line, so a bad input stays a one-line error
        info_later(f"device: {device} ({why})")
    return device


def check_prior_device(prior_kind: str, spec: str | None, device: torch.device) -> None:
    """Large GPU priors on a CPU: an error when the CPU came from ``auto`` (a GPU preset on a
    machine without one), a warning when ``--device cpu`` was asked for explicitly."""
    if prior_kind not in GPU_PRIORS or device.type != "cpu":
        return
    if (spec or "auto").strip().lower() == "auto":
        raise UserError(f"the {prior_kind} prior needs a CUDA GPU and none was found; pass --device cpu to run "
                        "it on the CPU anyway (hours per thousand steps)")
    warn(f"running the {prior_kind} prior on the CPU: expect hours per thousand steps")
