"""A plain (non-editable) install works: build the wheel, install it into a fresh virtual
environment and run the commands from outside the checkout, so nothing can be read from the
repository (presets, bundled weights)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    """(bin folder of a venv holding only the built wheel, its environment, a work folder outside the checkout)."""
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs a git checkout (the wheel is built from its tracked files)")
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"  # build from a copy so the checkout gets no build/ or egg-info
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        path = REPO / name
        if path.is_symlink() or not path.is_file():
            continue  # configs/ is a link to dreamfusion3d/presets: the wheel must not need it
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)], root, env)
    wheel = next(dist.glob("dreamfusion3d-*.whl"))
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], root, env)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    _run([str(bin_dir / "python"), "-m", "pip", "install", "--no-deps", "--no-build-isolation", str(wheel)], root, env)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    work = root / "elsewhere"
    work.mkdir()
    return bin_dir, env, work


def test_the_installed_package_is_the_wheel(installed):
    bin_dir, env, work = installed
    out = _run([str(bin_dir / "python"), "-c", "import dreamfusion3d; print(dreamfusion3d.__file__)"], work, env).stdout
    assert Path(out.strip()).resolve().is_relative_to(bin_dir.parent.resolve())


def test_presets_ship_in_the_wheel(installed):
    bin_dir, env, work = installed
    out = _run([str(bin_dir / "dreamfusion3d"), "generate", "--config", "sd", "--help"], work, env).stdout
    assert "dreamfusion3d generate" in out
    assert "stable-diffusion" in out  # the sd preset's prior kind is the default shown in --help
    names = _run([str(bin_dir / "python"), "-c", "from dreamfusion3d.utils.config import presets_dir; "
                  "print(*sorted(p.stem for p in presets_dir().glob('*.yaml')))"], work, env).stdout.split()
    assert names == sorted(p.stem for p in (REPO / "dreamfusion3d" / "presets").glob("*.yaml"))


def test_sample_and_novel_view_from_the_wheel(installed):
    bin_dir, env, work = installed
    exe = str(bin_dir / "dreamfusion3d")
    _run([exe, "--quiet", "sample", "--prompt", "a red cube", "--out", "samples", "--num-images", "2", "--steps", "3",
          "--device", "cpu"], work, env)
    assert sorted(p.name for p in (work / "samples").glob("*.png")) == ["grid.png", "sample_000.png", "sample_001.png"]
    _run([exe, "--quiet", "render", "--out", "render", "--shape", "cube", "--color", "red", "--views", "1",
          "--resolution", "64"], work, env)
    image = sorted((work / "render").glob("*.png"))[0]
    _run([exe, "--quiet", "novel-view", "--image", str(image), "--out", "views", "--azimuths", "90", "--steps", "3",
          "--no-mp4", "--device", "cpu"], work, env)
    assert (work / "views" / "turntable.gif").is_file() and list((work / "views").glob("view_00_*.png"))
