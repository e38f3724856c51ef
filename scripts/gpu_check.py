"""Body of ``scripts/gpu_check.sh`` (run that; it needs a CUDA device and exits early without one).

Checks, each with its own time limit so that the whole stays under 8 minutes:
1. nerfacc's CUDA kernels: JIT-built or loaded (in a subprocess, at most 240 s); if they cannot
   be, the rest runs with the portable sampler (that is the designed fallback, not a failure);
2. ``pytest -m cuda``: the CUDA-only tests, among them march_cuda vs march_cpu on one field;
3. resume exactness: 40 steps straight vs 20 + checkpoint + reload + 20, and a control that
   reloads without the CUDA RNG state (it must differ, or the check would prove nothing);
4. a timed ``generate`` with the bundled prior and the default preset on CUDA (peak memory too).
One table at the end; ``GPU_CHECK_OUT=DIR`` keeps the outputs and a ``gpu_check.json`` there.
Exit status 1 when a check fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROWS: list[tuple[str, str, str]] = []
DEADLINE = time.time() + 440  # the table must print well inside the 8 minutes


def budget(most: float) -> float:
    """Seconds a check may take: at most ``most``, and never past the deadline."""
    return max(10.0, min(most, DEADLINE - time.time()))


def row(check: str, status, figure: str) -> None:
    status = {True: "ok", False: "FAIL"}.get(status, status)
    ROWS.append((check, status, figure))
    print(f"[gpu_check] {check}: {status} {figure}", file=sys.stderr, flush=True)


def check_kernels() -> None:
    start = time.time()
    code = "import json; from dreamfusion3d.rendering.kernels import _probe; print(json.dumps(_probe()))"
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=budget(240))
        ready, why = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else (False, proc.stderr[-200:])
    except subprocess.TimeoutExpired:
        ready, why = False, "the JIT build took too long"
    if not ready:
        os.environ["DREAMFUSION3D_NERFACC_CUDA"] = "0"  # the rest uses the portable sampler
    row("nerfacc CUDA kernels", True if ready else "fallback",
        f"{'built or loaded' if ready else why} in {time.time() - start:.0f} s")


def check_pytest(work: Path) -> None:
    junit = work / "cuda_tests.xml"
    start = time.time()
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget(150))
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    cases = ET.parse(junit).getroot().iter("testcase") if junit.exists() else []
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    details = []
    for case in cases:
        state = ("failed" if case.find("failure") is not None or case.find("error") is not None
                 else "skipped" if case.find("skipped") is not None else "passed")
        counts[state] += 1
        details.append((case.get("name"), state))
    row("pytest -m cuda", rc == 0 and counts["passed"] > 0,
        f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped in {time.time() - start:.0f} s")
    for name, state in details:
        if "march" in name or "sampler" in name or state != "passed":
            row(f"  {name}", {"passed": True, "failed": False}.get(state, state), "")


def check_generate(work: Path) -> None:
    out = work / "generate"
    code = ("import sys, torch; from dreamfusion3d.cli import main; rc = main(sys.argv[1:]); "
            "print('peak', torch.cuda.max_memory_allocated()); sys.exit(rc)")
    args = ["generate", "--prompt", "a red cube", "--out", str(out), "--device", "cuda", "--quiet"]
    start = time.time()
    try:
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                              timeout=budget(200))
    except subprocess.TimeoutExpired:
        row("generate, bundled prior, default preset, cuda", False, f"stopped after {time.time() - start:.0f} s")
        return
    wall = time.time() - start
    if proc.returncode != 0 or not (out / "metrics.json").is_file():
        row("generate, bundled prior, default preset, cuda", False, f"exit {proc.returncode}: {proc.stderr[-200:]}")
        return
    m = json.loads((out / "metrics.json").read_text())
    train = m["train_seconds_this_session"]
    peak = int(proc.stdout.split("peak")[-1].split()[0]) / 2**30
    row(f"generate, bundled prior, default preset ({m['steps']} steps), cuda", True,
        f"{wall:.0f} s end to end: train {train:.0f} s ({m['steps'] / max(train, 1e-9):.1f} steps/s), "
        f"export {m['export_seconds']:.0f} s, CUDA peak allocated {peak:.2f} GB")


def check_resume(work: Path) -> None:
    import torch

    from dreamfusion3d.generate.config import GenerateConfig
    from dreamfusion3d.generate.loop import Generation

    steps, cut = 40, 20

    def config(name: str) -> GenerateConfig:
        return GenerateConfig(prompt="a red cube", out=work / name, steps=steps, device="cuda", seed=0)

    def finish(gen: Generation) -> dict:
        while gen.step < steps:
            gen.train_step()
        return {k: v.detach().float().cpu() for k, v in gen.representation.state_dict().items()}

    start = time.time()
    ref_gen = Generation(config("ref"), "a red cube", work / "ref")
    ref = finish(ref_gen)
    first = Generation(config("cut"), "a red cube", work / "cut", prior=ref_gen.prior)
    while first.step < cut:
        first.train_step()
    folder = first.save("latest")

    def resumed(control: bool) -> float:
        gen = Generation(config("cut"), "a red cube", work / "cut", prior=ref_gen.prior)
        gen.load(folder)
        if control:
            torch.cuda.manual_seed(0)  # as before this fix: only the CPU RNG came back
        out = finish(gen)
        return max((ref[k] - out[k]).abs().max().item() for k in ref)

    exact, control = resumed(False), resumed(True)
    row(f"resume: {cut} + {steps - cut} steps vs {steps} straight, cuda", exact <= 1e-5 and control > exact,
        f"max |dw| = {exact:.2g} ({'bit-identical' if exact == 0 else 'not bit-identical'}); "
        f"control without the CUDA RNG: {control:.2g}; {time.time() - start:.0f} s")


def main() -> int:
    import torch

    keep = os.environ.get("GPU_CHECK_OUT")
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="gpu_check."))
    work.mkdir(parents=True, exist_ok=True)
    header = (f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
              f"{torch.cuda.device_count()} device(s)")
    print(f"[gpu_check] {header}", file=sys.stderr, flush=True)
    start = time.time()
    checks = {"nerfacc CUDA kernels": check_kernels, "pytest -m cuda": lambda: check_pytest(work),
              "resume on cuda": lambda: check_resume(work), "generate on cuda": lambda: check_generate(work)}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # one broken check must not hide the others' figures
            row(name, False, f"{type(exc).__name__}: {str(exc)[:200]}")
    width = max(len(r[0]) for r in ROWS)
    lines = [f"gpu_check on {header} ({time.time() - start:.0f} s)", f"{'check'.ljust(width)}  result    figure"]
    lines += [f"{c.ljust(width)}  {s.ljust(8)}  {f}" for c, s, f in ROWS]
    print("\n".join(lines))
    (work / "gpu_check.json").write_text(json.dumps({"header": header, "rows": ROWS}, indent=1))
    return 1 if any(s == "FAIL" for _, s, _ in ROWS) else 0


if __name__ == "__main__":
    sys.exit(main())
