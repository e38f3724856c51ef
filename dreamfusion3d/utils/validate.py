"""Input checks that every command runs before it writes anything.

* ``validate_config(command, cfg)`` (called by the CLI right after parsing, for every command):
  every float option anywhere in the config must be finite, and the numeric options listed in
  ``RANGES`` must lie in their range. A new rule is one line in ``RANGES``.
* Content checks for files a command reads: ``read_text_file`` (decodes as UTF-8 text),
  ``check_model_folder`` (a local model folder holds safetensors weights, not only pickles),
  ``check_memory`` (an estimate of a run's peak memory against the machine's).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from .errors import UserError

INF = math.inf

# command -> option path (as on the command line, without "--") -> (lowest, highest) allowed
RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "generate": {
        "steps": (1, 10**7), "batch-size": (1, 1024), "resolution": (8, 4096), "num-threads": (0, 4096),
        "prior.guidance-scale": (0, 10**5), "prior.t-min": (0, 1), "prior.t-max": (0, 1), "prior.t-max-end": (0, 1),
        "prior.vae-resolution": (8, 4096),
        "optim.lr": (0, 100), "optim.lr-network": (0, 100), "optim.lr-background": (0, 100),
        "optim.warmup-steps": (0, 10**7), "optim.eps": (0, 1), "optim.ema-decay": (0, 1), "optim.ema-start": (0, 10**7),
        "background.random-prob": (0, 1), "field.dense-blur": (0, 16), "losses.transmittance-target": (0, 1),
        "output.mesh-resolution": (8, 1024), "output.video-frames": (1, 10**4),
        "output.video-resolution": (8, 4096), "output.video-fps": (1, 240), "output.preview-every": (0, 10**7),
        "output.checkpoint-every": (1, 10**7),
        "renderer.num-steps": (1, 4096), "renderer.chunk-rays": (1, 2**31), "renderer.occupancy-resolution": (4, 512),
        "shading.albedo-prob": (0, 1), "shading.lambertian-prob": (0, 1), "shading.ambient": (0, 1),
    },
    "sample": {"num-images": (1, 10**5), "steps": (1, 10**4), "batch-size": (1, 4096), "guidance-scale": (0, 10**5),
               "eta": (0, 1)},
    "export": {"resolution": (3, 2048), "bound": (1e-6, 1e6), "texture-size": (8, 16384), "chunk-size": (1, 2**31),
               "decimate-to": (4, 2**31)},
    "novel-view": {"azimuths": (-3600, 3600), "elevations": (-89, 89), "input-azimuth": (-3600, 3600),
                   "input-elevation": (-89, 89), "input-radius": (1e-3, 1e3), "steps": (1, 10**4),
                   "guidance-scale": (0, 1000), "input-weight": (0, 1), "display-size": (8, 4096)},
    "reconstruct": {"steps": (1, 10**7), "batch-rays": (1, 2**24), "lr": (0, 100), "checkpoint-every": (1, 10**7),
                    "threads": (0, 4096), "background": (0, 1)},
    "make-dataset": {"num-objects": (0, 10**6), "views": (1, 10**4), "val-views": (0, 10**4),
                     "test-views": (0, 10**4), "resolution": (8, 1024), "supersample": (1, 8), "threads": (0, 4096)},
    "render": {"views": (1, 10**4), "resolution": (8, 2048), "supersample": (1, 8), "radius": (1e-3, 1e3),
               "fov-deg": (1, 179), "fps": (0.1, 240), "threads": (0, 4096), "background": (0, 1),
               "elevations": (-90, 90)},
    "train-prior": {"steps": (1, 10**8), "batch-size": (1, 65536), "lr": (0, 100), "warmup-steps": (0, 10**8),
                    "weight-decay": (0, 10), "ema-decay": (0, 1), "caption-dropout": (0, 1),
                    "checkpoint-minutes": (1e-6, 10**6), "sample-every": (0, 10**8), "sample-steps": (1, 10**4),
                    "num-threads": (0, 4096), "data.random-background-prob": (0, 1)},
    "train-classifier": {"train-objects": (1, 10**6), "test-objects": (0, 10**6), "views": (1, 10**4),
                         "resolution": (8, 1024), "steps": (1, 10**8), "batch-size": (1, 65536), "lr": (0, 100),
                         "random-background-prob": (0, 1)},
    "evaluate-prior": {"samples-per-caption": (1, 10**5), "steps": (1, 10**4), "guidance-scale": (0, 10**5)},
    "train-novel-view": {"steps": (1, 10**8), "batch-size": (1, 65536), "lr": (0, 100), "warmup-steps": (0, 10**8),
                         "weight-decay": (0, 10), "ema-decay": (0, 1), "cond-dropout": (0, 0.999999),
                         "max-objects": (1, 10**7), "num-threads": (0, 4096), "checkpoint-minutes": (1e-6, 10**6),
                         "max-minutes": (1e-6, 10**7), "sample-every": (0, 10**8), "sample-steps": (1, 10**4)},
    "evaluate-novel-view": {"max-objects": (1, 10**6), "num-targets": (1, 10**4), "steps": (1, 10**4),
                            "guidance-scale": (0, 1000), "input-weight": (0, 1), "consistency-objects": (0, 10**6),
                            "grid-objects": (0, 10**6)},
    "evaluate": {"steps": (1, 10**7), "views": (1, 10**4), "view-resolution": (8, 4096),
                 "geometry-resolution": (8, 1024), "num-threads": (0, 4096)},
    "bench": {"repeats": (1, 10**5), "warmup": (0, 10**5), "resolutions": (8, 8192), "samples-per-ray": (2, 8192),
              "matmul-size": (16, 65536), "num-threads": (0, 4096)},
}


def _flag(path: str) -> str:
    return "--" + path.replace("_", "-")


def _walk(obj: Any, prefix: str = ""):
    """(option path, value) for every leaf of a dataclass config."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from _walk(value, path + ".")
        else:
            yield path, value


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, (tuple, list)):
        return [v for item in value for v in _numbers(item)]
    return []


def check_finite(cfg: Any) -> None:
    """Every float option must be a real number (no nan / inf), nested configs included."""
    for path, value in _walk(cfg):
        for number in _numbers(value):
            if isinstance(number, float) and not math.isfinite(number):
                raise UserError(f"{_flag(path)} must be a finite number, got {number}")


def check_ranges(command: str, cfg: Any) -> None:
    rules = RANGES.get(command, {})
    leaves = {path.replace("_", "-"): value for path, value in _walk(cfg)}
    for path, (lo, hi) in rules.items():
        for number in _numbers(leaves.get(path)):
            if not lo <= number <= hi:
                bound = f"be >= {lo:g}" if hi in (INF, None) else f"lie in [{lo:g}, {hi:g}]"
                raise UserError(f"--{path} must {bound}, got {number:g}")


def validate_config(command: str, cfg: Any) -> None:
    """The checks every command gets before its own ``run`` starts."""
    if not dataclasses.is_dataclass(cfg):
        return
    check_finite(cfg)
    check_ranges(command, cfg)


# ---------------------------------------------------------------------- file contents


def read_text_file(path: str | os.PathLike, what: str = "file") -> str:
    """The UTF-8 text of ``path`` (a missing, unreadable or binary file is one line)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist" if not path.exists() else f"{what} {path} is not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror}") from None
    if b"\x00" in data:
        raise UserError(f"{what} {path} is not a text file (it holds binary data)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def check_model_folder(path: str | os.PathLike, what: str = "model folder") -> Path:
    """A local model folder must hold safetensors weights; pickled weights alone are refused
    (this package never unpickles weights). Hub ids (not existing paths) are left to the loader."""
    path = Path(path)
    if not path.exists():
        return path
    if not path.is_dir():
        raise UserError(f"{what} {path} is not a folder")
    if any(path.rglob("*.safetensors")):
        return path
    pickles = sorted(p.name for p in path.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise UserError(f"{what} {path} holds only pickled weights ({', '.join(pickles[:3])}); "
                        "convert them to safetensors")
    raise UserError(f"{what} {path} holds no safetensors weights")


def memory_bytes() -> int:
    """Physical memory of this machine (the budget an estimate is checked against)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 40


def check_memory(estimate: float, what: str, hint: str) -> None:
    """Refuse a run whose estimated peak memory exceeds the machine's memory."""
    budget = memory_bytes()
    if estimate > budget:
        raise UserError(f"{what} needs about {estimate / 2**30:.0f} GiB but this machine has "
                        f"{budget / 2**30:.0f} GiB: {hint}")
