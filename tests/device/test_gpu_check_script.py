"""scripts/gpu_check.sh on a machine without CUDA: one line, exit 0, nothing run or installed."""

import os
import py_compile
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_without_cuda_is_one_line(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "GPU_CHECK_OUT": str(tmp_path / "out")}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no CUDA device here (torch "), proc.stdout
    assert lines[0].endswith("nothing to check") and proc.stderr == ""
    assert not (tmp_path / "out").exists()


def test_the_gpu_part_compiles(tmp_path):
    py_compile.compile(str(ROOT / "scripts" / "gpu_check.py"), cfile=str(tmp_path / "c.pyc"), doraise=True)
