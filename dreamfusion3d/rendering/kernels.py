"""Whether nerfacc's CUDA kernels can run on this machine.

nerfacc 0.5.3 ships no compiled code: its kernels are JIT-built on the first ``_C`` call, which
needs the CUDA toolkit (``nvcc``) and a compiler. On a GPU machine without them the grid
traversal cannot run; the renderer then uses the portable sampler (``march_cpu``: plain torch,
so it runs on the GPU too) and says so once. The probe runs once per process, on the first CUDA
render, never on a CPU-only run. ``DREAMFUSION3D_NERFACC_CUDA=0`` skips the probe and uses the
portable sampler (e.g. where a build would take too long).
"""

from __future__ import annotations

import contextlib
import io
import os

from ..utils.logging import info, warn

_READY: bool | None = None


def _probe() -> tuple[bool, str]:
    """Build or load the kernels; ``(ready, why not)``."""
    captured = io.StringIO()  # nerfacc prints its own console lines while it builds
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            from nerfacc.cuda._backend import _C
    except Exception as exc:  # a failed JIT build surfaces as RuntimeError, OSError, ImportError, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return False, f"their JIT build failed: {first[:200]}"
    if _C is None:
        return False, "no CUDA toolkit (nvcc) to build them"
    return True, ""


def nerfacc_cuda_ready() -> bool:
    """True when nerfacc's CUDA sampler can be used (decided once; one warning when it cannot)."""
    global _READY
    if _READY is None and os.environ.get("DREAMFUSION3D_NERFACC_CUDA", "").strip() == "0":
        warn("nerfacc's CUDA kernels are off (DREAMFUSION3D_NERFACC_CUDA=0); rendering with the portable sampler")
        _READY = False
    if _READY is None:
        info("loading nerfacc's CUDA kernels (the first run on a machine builds them: a few minutes)")
        ready, why = _probe()
        if not ready:
            warn(f"nerfacc's CUDA kernels are unavailable ({why}); rendering with the portable sampler on "
                 "the GPU instead (same images, slower). Install the CUDA toolkit (nvcc) to build them.")
        _READY = ready
    return _READY


def reset() -> None:
    """Forget the decision (tests)."""
    global _READY
    _READY = None
