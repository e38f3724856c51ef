"""Ctrl-C: exit status 130 for every command, the message on its own line after a progress bar,
and nothing of the interrupted (not yet started) run left behind."""

import os

import pytest

from dreamfusion3d import cli
from dreamfusion3d.cli import main


def test_ctrl_c_during_a_progress_bar(tmp_path, capsys, monkeypatch):
    """A bar that is still open (as the novel-view sampler's and mesh extraction's are when Ctrl-C
    lands) is closed before the message, so the message starts a line of its own."""
    from dreamfusion3d.utils.logging import progress

    def run_with_open_bar(config):
        bar = progress(total=10, desc="novel views", unit="step", leave=False)
        bar.update(3)
        raise KeyboardInterrupt

    real_load = cli._load
    monkeypatch.setattr(cli, "_load", lambda ref: run_with_open_bar if ref == cli.COMMANDS["novel-view"].run
                        else real_load(ref))
    assert main(["novel-view", "--image", str(tmp_path / "x.png"), "--out", str(tmp_path / "o")]) == 130
    err = capsys.readouterr().err
    assert "novel views:" in err  # the bar was on screen ...
    last = err.split("\r")[-1]
    assert last.strip(" ").startswith("dreamfusion3d: interrupted"), repr(err[-200:])  # ... and is cleared first
    assert err.endswith("dreamfusion3d: interrupted\n")


def test_ctrl_c_in_a_real_command_leaves_nothing(tmp_path, capsys, monkeypatch):
    import dreamfusion3d.world.render_cli as render_cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(render_cli, "render_scene", interrupted)
    out = tmp_path / "views"
    assert main(["render", "--spec", "red cube", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.endswith("\ndreamfusion3d: interrupted\n")
    assert os.listdir(tmp_path) == []  # the staged views were discarded


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_every_command_exits_130(command, capsys, monkeypatch):
    def interrupted(config):
        raise KeyboardInterrupt

    real_load = cli._load
    monkeypatch.setattr(cli, "_load", lambda ref: interrupted if ref == cli.COMMANDS[command].run else real_load(ref))
    monkeypatch.setattr(cli, "_parse", lambda name, cls, args, default: object())
    assert main([command]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == "dreamfusion3d: interrupted"
