"""Fused CPU kernels in C, compiled on first use and cached: the per-sample work that eager PyTorch
makes memory-bound (every intermediate a full-size array) done one sample at a time.

Nothing is built at install time. The first time a kernel is needed, its ``NAME.c`` next to this
module is compiled with the system's C compiler (``$CC``, else ``cc``/``gcc``/``clang``; with
OpenMP when the compiler has it) into ``$DREAMFUSION3D_CACHE`` (default
``~/.cache/dreamfusion3d``), for this CPU's vector units (``-march=native`` where the compiler takes it),
named by a hash of the source, the flags, the platform and the CPU, and loaded
with ``ctypes``; later runs load the cached library. Without a compiler, when the build fails, or
with ``DREAMFUSION3D_KERNELS=0``, :func:`load` returns ``None`` and the callers run their eager
PyTorch path (the same results up to float rounding, slower).

Kernels: ``trilinear`` (a dense grid's value + Jacobian and its backward,
:mod:`dreamfusion3d.fields.trilinear`; the grid with its ReLU head and the head's gradient in x,
:mod:`dreamfusion3d.fields.dense_head`), ``march`` (the CPU ray march through the occupancy grid,
:mod:`dreamfusion3d.rendering.sampler`) and ``group_norm`` (GroupNorm of channels-last bfloat16
tensors in the small UNets, :mod:`dreamfusion3d.diffusion.cpu_bfloat16`).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sysconfig
import tempfile
from functools import lru_cache
from pathlib import Path

import torch

HERE = Path(__file__).parent
FLAGS = ["-O3", "-std=c99", "-fPIC", "-shared"]  # c99: no contraction into FMAs, the eager rounding
OPENMP = ["-fopenmp"]  # share the samples over the cores; dropped if the compiler has no OpenMP
NATIVE = ["-march=native"]  # this CPU's vector units (the cache key names the CPU); dropped if refused

SUFFIX = {torch.float32: "f32", torch.float64: "f64"}  # the kernels' name suffix per dtype they take
_L, _P, _I, _F = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int, ctypes.c_float  # int64_t, pointers, int, float
SIGNATURES = {  # C argument types of each exported function
    "trilinear": {
        **{f"trilinear_forward_{s}": [_P, _L, _L, _L, _L, _P, _L, _P, _P, _I] for s in ("f32", "f64")},
        **{f"trilinear_backward_{s}": [_L, _L, _L, _L, _P, _L, _P, _P, _P, _P, _I] for s in ("f32", "f64")},
        **{f"dense_head_forward_{s}": [_P, _L, _L, _L, _L, _P, _P, _P, _P, _L, _L, _P, _L, _P, _P, _I]
           for s in ("f32", "f64")},
        **{f"dense_head_backward_{s}": [_P, _L, _L, _L, _L, _P, _P, _P, _P, _L, _L, _P, _L, _P, _P, _P, _P, _P, _I]
           for s in ("f32", "f64")},
    },
    "group_norm": {"group_norm_channels_last_bf16": [_P, _L, _L, _L, _L, _P, _P, ctypes.c_double, _I, _P, _I]},
    "march": {
        "march_count_f32": [_P, _P, _L, _P, _P, _P, _P, _F, _L, _P, _P, _P, _L, _L, _L, _P, _P, _P, _I],
        "march_fill_f32": [_P, _P, _L, _P, _P, _P, _P, _F, _P, _P, _P, _L, _L, _L, _P, _P, _P, _P, _P, _P, _I],
    },
}


def cache_dir() -> Path:
    root = os.environ.get("DREAMFUSION3D_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dreamfusion3d")
    return Path(root)


def compiler() -> str | None:
    for cand in (os.environ.get("CC"), sysconfig.get_config_var("CC"), "cc", "gcc", "clang"):
        exe = cand.split()[0] if cand else None
        if exe and shutil.which(exe):
            return exe
    return None


def build(name: str, cc: str) -> Path:
    """The cached library of kernel ``name`` for this source and compiler, built if missing."""
    source = HERE / f"{name}.c"
    key = hashlib.sha256(source.read_bytes() + " ".join([cc, *FLAGS, *NATIVE, platform.machine(), platform.system(),
                                                         _cpu()]).encode())
    target = cache_dir() / f"{name}_{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:  # built aside, then moved in whole
        out = Path(tmp) / target.name
        for extra in (NATIVE + OPENMP, OPENMP, NATIVE, []):
            proc = subprocess.run([cc, *FLAGS, *extra, "-o", str(out), str(source), "-lm"], capture_output=True)
            if proc.returncode == 0:
                break
        proc.check_returncode()
        os.replace(out, target)
    return target


def _cpu() -> str:
    """What ``-march=native`` depends on: the CPU's model and feature flags (Linux), else its name."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    return "".join(line for line in info.splitlines(keepends=True)
                   if line.split(":")[0].strip() in ("model name", "flags", "Features"))[:4096]


@lru_cache(maxsize=None)
def load(name: str) -> ctypes.CDLL | None:
    """Kernel library ``name`` (a key of :data:`SIGNATURES`), or ``None``: switched off, no
    compiler, or the build failed."""
    if os.environ.get("DREAMFUSION3D_KERNELS", "1") == "0":
        return None
    cc = compiler()
    if cc is None:
        return None
    try:
        lib = ctypes.CDLL(str(build(name, cc)))
    except (OSError, subprocess.CalledProcessError):
        return None
    for function, argtypes in SIGNATURES[name].items():
        getattr(lib, function).argtypes = argtypes
    return lib


def threads_for(n: int, per_thread: int = 4096) -> int:
    """Threads for ``n`` independent items: torch's intra-op count, at most one per ``per_thread``."""
    return max(1, min(torch.get_num_threads(), n // per_thread))
