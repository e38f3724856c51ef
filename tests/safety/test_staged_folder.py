"""The one checkpoint writer: stage a folder, then swap it in."""

import pytest

from dreamfusion3d.utils.io import current_folder, link_folder, previous_copy, replace_folder, staged_folder


def test_a_failed_write_leaves_the_previous_folder_and_no_debris(tmp_path):
    target = tmp_path / "ckpt"
    with staged_folder(target) as tmp:
        (tmp / "a.txt").write_text("one")
    with pytest.raises(RuntimeError):
        with staged_folder(target) as tmp:
            (tmp / "a.txt").write_text("two")
            raise RuntimeError("killed")
    assert (target / "a.txt").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_readers_find_the_previous_copy_when_a_swap_was_cut_short(tmp_path):
    target = tmp_path / "latest"
    target.mkdir()
    assert current_folder(target) == target
    target.rename(previous_copy(target))  # a kill between the two renames of replace_folder
    assert current_folder(target) == previous_copy(target)
    staged = tmp_path / "new"
    staged.mkdir()
    replace_folder(staged, target)
    assert current_folder(target) == target and not previous_copy(target).exists()


def test_link_folder_copies_a_tree_without_writing_it_twice(tmp_path):
    src = tmp_path / "final"
    (src / "trainer").mkdir(parents=True)
    (src / "model.bin").write_bytes(b"x" * 100)
    (src / "trainer" / "state.json").write_text("{}")
    dst = link_folder(src, tmp_path / "latest")
    assert (dst / "trainer" / "state.json").read_text() == "{}"
    assert (dst / "model.bin").stat().st_ino == (src / "model.bin").stat().st_ino


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_debris_of_a_killed_writer_is_swept_and_a_live_writers_kept(tmp_path):
    import os

    from dreamfusion3d.utils.io import atomic_path

    target = tmp_path / "latest"
    dead = _dead_pid()
    # what a kill -9 in the middle of staged_folder / atomic_path leaves beside the target
    (tmp_path / f".latest.stage-{dead}-abc123").mkdir()
    (tmp_path / f".latest.stage-{dead}-abc123" / "model.safetensors").write_bytes(b"x")
    (tmp_path / f".metrics.json.stage-{dead}-q1.tmp.json").write_text("{")
    live = tmp_path / f".latest.stage-{os.getppid()}-zzz"  # a writer that is still running
    live.mkdir()
    unrelated = tmp_path / ".latest.lock"
    unrelated.write_text("1")
    with staged_folder(target) as tmp:
        (tmp / "a.txt").write_text("one")
    with atomic_path(tmp_path / "metrics.json") as tmp:
        tmp.write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["latest", "metrics.json", live.name, unrelated.name])
