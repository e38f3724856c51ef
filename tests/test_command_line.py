"""The command line: overview, per-command help, presets and one-line errors."""

import subprocess
import sys
from pathlib import Path

import pytest

from dreamfusion3d.cli import COMMANDS, main
from dreamfusion3d.generate.config import GenerateConfig
from dreamfusion3d.utils.config import load_preset, to_dict

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_overview_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name} " in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert f"dreamfusion3d {name}" in capsys.readouterr().out


def test_wrong_flag_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--stepz", "3"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--stepz" in err[0] and "--steps" in err[0]


def test_bad_value_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--steps", "many"])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_missing_preset_and_unknown_command(capsys):
    assert main(["generate", "--config", "no-such-preset"]) == 2
    assert "no-such-preset" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2


def test_console_script_exits_nonzero_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dreamfusion3d", "generate", "--prompt", " ", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_default_preset_is_the_default_config():
    preset = load_preset(GenerateConfig, str(CONFIGS / "default.yaml"), command="generate")
    assert to_dict(preset) == to_dict(GenerateConfig())


@pytest.mark.parametrize("name", ["sd", "if", "train_prior"])
def test_presets_load(name):
    import yaml

    command = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())["command"]
    from dreamfusion3d.cli import _load

    cfg = load_preset(_load(COMMANDS[command].config), name, command=command)
    assert cfg is not None


def test_preset_for_another_command_is_refused(capsys):
    assert main(["train-prior", "--config", "sd"]) == 2
    assert "is for `generate`" in capsys.readouterr().err


def test_presets_ship_in_the_package_and_configs_links_to_them():
    from dreamfusion3d.utils.config import presets_dir

    shipped = presets_dir()
    assert shipped.parent.name == "dreamfusion3d" and (shipped / "sd.yaml").is_file()
    assert CONFIGS.resolve() == shipped.resolve()  # the checkout's configs/ is the same folder


def test_a_configs_folder_in_the_working_folder_comes_first(tmp_path, monkeypatch):
    from dreamfusion3d.utils.config import resolve_preset

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "sd.yaml").write_text("command: generate\nsteps: 7\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_preset("sd").resolve() == (tmp_path / "configs" / "sd.yaml").resolve()
    assert load_preset(GenerateConfig, "sd", command="generate").steps == 7
    assert resolve_preset("if").resolve().parent.name == "presets"  # not edited here: the shipped one
