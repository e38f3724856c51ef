"""Ctrl-C: exit status 130 for every command, the message on its own line after a progress bar,
and nothing of the interrupted (not yet started) run left behind."""

import os

import pytest

from dreamfusion3d import cli
from dreamfusion3d.cli import main


def test_ctrl_c_during_a_progress_bar(tmp_path, capsys, monkeypatch):
    import dreamfusion3d.world.render_cli as render_cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(render_cli, "render_scene", interrupted)
    out = tmp_path / "views"
    assert main(["render", "--spec", "red cube", "--spec", "blue sphere", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "objects:" in err  # a progress bar was on screen ...
    assert err.endswith("\ndreamfusion3d: interrupted\n")  # ... and the message has a line of its own
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
