"""The one output-folder policy (utils.outdir): refusal, staged swap, old run kept aside, cleanup."""

import os

import pytest

from dreamfusion3d.utils.errors import UserError
from dreamfusion3d.utils.lock import FolderLock, lock_path
from dreamfusion3d.utils.outdir import aside_path, has_checkpoint, output_folder


def snapshot(folder):
    """{relative path: bytes (None for folders)} of everything under ``folder``."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes())
            for p in sorted(folder.rglob("*"))}


def seeded(tmp_path):
    out = tmp_path / "run"
    (out / "sub").mkdir(parents=True)
    (out / "old.txt").write_text("old run")
    (out / "sub" / "weights.bin").write_bytes(bytes(range(256)))
    return out


class Boom(Exception):
    pass


def test_non_empty_folder_is_refused_without_overwrite(tmp_path):
    out = seeded(tmp_path)
    before = snapshot(out)
    with pytest.raises(UserError, match="not empty: pass --overwrite"):
        with output_folder(out):
            pass
    assert snapshot(out) == before and sorted(os.listdir(tmp_path)) == ["run"]


def test_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        with output_folder(tmp_path / "f", overwrite=True):
            pass


@pytest.mark.parametrize("staged", [True, False])
def test_overwrite_replaces_only_on_success(tmp_path, staged):
    out = seeded(tmp_path)
    with output_folder(out, overwrite=True, staged=staged) as target:
        (target / "new.txt").write_text("new run")
        assert (out / "old.txt").exists() == staged  # staged: the old run stays readable meanwhile
    assert snapshot(out) == {"new.txt": b"new run"}
    assert sorted(os.listdir(tmp_path)) == ["run"]  # no staging, aside copy or lock file left


@pytest.mark.parametrize("staged", [True, False])
def test_a_failed_overwrite_leaves_the_old_run_byte_identical(tmp_path, staged):
    out = seeded(tmp_path)
    before = snapshot(out)
    with pytest.raises(Boom):
        with output_folder(out, overwrite=True, staged=staged) as target:
            (target / "config.yaml").write_text("half of a new run")
            raise Boom
    assert snapshot(out) == before
    assert sorted(os.listdir(tmp_path)) == ["run"]


def test_a_run_that_started_keeps_its_checkpoint_and_drops_the_old_one(tmp_path):
    out = seeded(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with output_folder(out, overwrite=True, started=has_checkpoint) as target:
            (target / "checkpoints" / "latest").mkdir(parents=True)
            raise KeyboardInterrupt  # Ctrl-C after the first checkpoint: the new run is resumable
    assert snapshot(out) == {"checkpoints": None, "checkpoints/latest": None}
    assert not aside_path(out).exists()


@pytest.mark.parametrize("staged", [True, False])
def test_nothing_of_a_rejected_fresh_run_remains(tmp_path, staged):
    out = tmp_path / "a" / "b" / "run"
    with pytest.raises(Boom):
        with output_folder(out, staged=staged) as target:
            (target / "config.yaml").write_text("x")
            raise Boom
    assert os.listdir(tmp_path) == []  # not even the parents it created


def test_an_existing_empty_folder_is_emptied_again(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with pytest.raises(Boom):
        with output_folder(out) as target:
            (target / "config.yaml").write_text("x")
            raise Boom
    assert out.is_dir() and os.listdir(out) == []


def test_owned_files_replace_only_their_namesakes(tmp_path):
    out = tmp_path / "docs"
    out.mkdir()
    (out / "README.md").write_text("unrelated")
    (out / "eval.json").write_text("old")
    with pytest.raises(UserError, match="already holds eval.json"):
        with output_folder(out, owns=("eval.json",)):
            pass
    with output_folder(out, overwrite=True, owns=("eval.json",)) as target:
        (target / "eval.json").write_text("new")
    assert snapshot(out) == {"README.md": b"unrelated", "eval.json": b"new"}


def test_resume_writes_in_place(tmp_path):
    out = seeded(tmp_path)
    with output_folder(out, resume=True) as target:
        assert target == out
        (target / "more.txt").write_text("continued")
    assert (out / "old.txt").read_text() == "old run" and (out / "more.txt").is_file()
    with pytest.raises(UserError, match="does not exist"):
        with output_folder(tmp_path / "missing", resume=True):
            pass


def test_an_interrupted_overwrite_is_reported_not_guessed(tmp_path):
    out = seeded(tmp_path)
    aside = aside_path(out)
    aside.mkdir()
    (aside / "older.txt").write_text("the run an earlier --overwrite moved aside")
    with pytest.raises(UserError, match="interrupted --overwrite"):
        with output_folder(out, overwrite=True):
            pass
    assert (aside / "older.txt").is_file() and (out / "old.txt").is_file()


def test_the_folder_is_locked_while_a_command_writes(tmp_path):
    out = tmp_path / "run"
    with output_folder(out):
        assert lock_path(out).read_text().strip() == str(os.getpid())
        with pytest.raises(UserError, match=f"in use by another dreamfusion3d run \\(PID {os.getpid()}\\)"):
            FolderLock(out).acquire()  # a second open file description conflicts, even in one process
    assert not lock_path(out).exists()


def test_generate_overwrite_replaces_an_old_run(tmp_path, tiny_prior, tiny_args):
    from dreamfusion3d.cli import main

    out = seeded(tmp_path)
    assert main(tiny_args(tiny_prior, out, steps=2) + ["--overwrite"]) == 0
    names = set(os.listdir(out))
    assert {"mesh.glb", "metrics.json", "config.yaml", "checkpoints"} <= names and "old.txt" not in names
    assert sorted(os.listdir(tmp_path)) == ["run"]


def test_a_failed_resume_leaves_the_run_as_it_was(tmp_path, tiny_prior, tiny_args, capsys):
    from dreamfusion3d.cli import main

    out = tmp_path / "run"
    assert main(tiny_args(tiny_prior, out, steps=2)) == 0
    for f in (out / "checkpoints" / "latest" / "trainer").rglob("*.safetensors"):
        f.write_bytes(b"not safetensors")  # a corrupt checkpoint
    before = snapshot(out)
    capsys.readouterr()
    assert main(["generate", "--resume", str(out), "--quiet"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert snapshot(out) == before  # config.yaml included


@pytest.mark.parametrize("argv", [
    ["train-novel-view", "--data", "{tmp}/no-data"],
    ["reconstruct", "--data", "{tmp}/no-data"],
    ["generate", "--prompt", "a red cube", "--prior.model", "{tmp}/no-prior"],
], ids=["train-novel-view", "reconstruct", "generate"])
def test_a_rejected_run_on_a_fresh_folder_leaves_nothing(tmp_path, capsys, argv):
    from dreamfusion3d.cli import main

    out = tmp_path / "new" / "run"
    assert main([a.format(tmp=tmp_path) for a in argv] + ["--out", str(out)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()
