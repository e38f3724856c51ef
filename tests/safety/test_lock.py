"""The advisory run-folder lock between real processes: a second run on a folder gets one line and
exit 2; a lock left by a killed process is taken over."""

import os
import signal
import subprocess
import sys
import time

import pytest

from dreamfusion3d.utils.lock import FolderLock, lock_path

HOLDER = """
import sys
from dreamfusion3d.utils.lock import FolderLock
lock = FolderLock(sys.argv[1]).acquire()
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin (or kills us)
"""


def _holder(folder):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_on_a_locked_folder_gets_one_line_and_exit_2(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("the first run's file")
    holder = _holder(out)
    try:
        cmd = [sys.executable, "-m", "dreamfusion3d", "export", "--world-shape", "cube", "--resolution", "8",
               "--out", str(out), "--overwrite"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        err = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(err) == 1, proc.stderr
        assert f"in use by another dreamfusion3d run (PID {holder.pid})" in err[0]
        assert sorted(os.listdir(out)) == ["keep.txt"]  # the refused run wrote nothing
    finally:
        holder.stdin.close()
        holder.wait(timeout=120)
    # the holder is gone: the same command now runs (and --overwrite replaces the folder)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "mesh.glb" in os.listdir(out) and "keep.txt" not in os.listdir(out)
    assert not lock_path(out).exists()


def test_a_lock_left_by_a_killed_process_is_stale_and_taken_over(tmp_path):
    out = tmp_path / "run"
    holder = _holder(out)
    holder.kill()  # SIGKILL: no cleanup, the lock file with its PID stays behind
    holder.wait(timeout=120)
    assert lock_path(out).read_text().strip() == str(holder.pid)
    lock = FolderLock(out).acquire()
    try:
        assert lock.stale_owner == holder.pid
        assert lock_path(out).read_text().strip() == str(os.getpid())
    finally:
        lock.release()


@pytest.mark.slow
def test_two_generate_runs_on_one_folder(tmp_path, tiny_prior, tiny_args):
    """The issue's race: a second `generate --overwrite` on a running run's folder is refused."""
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "dreamfusion3d", *tiny_args(tiny_prior, out, steps=100000)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 600
        while time.time() < deadline and not (out / "checkpoints" / "latest").exists():
            assert first.poll() is None, first.stderr.read()
            time.sleep(0.2)
        second = subprocess.run([sys.executable, "-m", "dreamfusion3d",
                                 *tiny_args(tiny_prior, out, steps=4), "--overwrite"],
                                capture_output=True, text=True, timeout=600)
        err = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(err) == 1 and f"PID {first.pid}" in err[0], second.stderr
        assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=600)
    assert first.returncode == 130, err[-1000:]
    assert err.rstrip().splitlines()[-1] == "dreamfusion3d: interrupted"
