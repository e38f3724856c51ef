"""Reading the run folders the app's jobs write (the same folders the CLI writes).

Nothing here needs gradio: the page is a function of what is on disk (config.yaml, progress/,
meshes, metrics.json) plus the job log, so a run can be reopened after the browser was closed
or the app restarted.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..utils.io import atomic_path, previous_copy

# tqdm lines as the CLI prints them to stderr: "generate: a red cube:  12%|█▏  | 72/600 [00:05<..."
_BAR = re.compile(r"\|\s*(\d+)/(\d+) \[")
_STAGE = re.compile(r"^\[dreamfusion3d\] (.+)$", re.MULTILINE)
_ERROR = re.compile(r"^dreamfusion3d: (?:error: )?(.+)$", re.MULTILINE)
INTERNAL = ".app"  # the app's own files (job records, logs, download zips) inside the runs folder


@dataclass
class LogProgress:
    """What a job's log says: the last progress bar's step/total, stage line and error line."""

    step: int | None = None
    total: int | None = None
    stage: str = ""
    error: str = ""


def read_log(path: Path, tail_bytes: int = 65536) -> LogProgress:
    if not path.is_file():
        return LogProgress()
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - tail_bytes))
        text = f.read().decode("utf-8", "replace").replace("\r", "\n")
    bars = _BAR.findall(text)
    stages = _STAGE.findall(text)
    errors = _ERROR.findall(text)
    step, total = (int(bars[-1][0]), int(bars[-1][1])) if bars else (None, None)
    return LogProgress(step, total, stages[-1].strip() if stages else "", errors[-1].strip() if errors else "")


def run_command(folder: Path) -> str | None:
    """The command that wrote ``folder`` (from its config.yaml), or None if it is no run."""
    cfg = folder / "config.yaml"
    if not cfg.is_file():
        return None
    try:
        data = yaml.safe_load(cfg.read_text()) or {}
    except (yaml.YAMLError, OSError):
        return None
    return data.get("command") if isinstance(data, dict) else None


def run_config(folder: Path) -> dict:
    try:
        data = yaml.safe_load((folder / "config.yaml").read_text()) or {}
    except (yaml.YAMLError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def read_metrics(folder: Path) -> dict | None:
    """metrics.json (generate, image-to-3d) or views.json (novel-view) once the run finished."""
    for name in ("metrics.json", "views.json"):
        path = folder / name
        if path.is_file():
            try:
                return json.loads(path.read_text())
            except (json.JSONDecodeError, OSError):
                return None
    return None


def previews(folder: Path) -> list[Path]:
    """The progress grids written so far, oldest first (temporary files of atomic writes skipped)."""
    return sorted(p for p in (folder / "progress").glob("step_*.png") if not p.name.startswith("."))


def checkpoint_step(folder: Path) -> int | None:
    """The step of the run's latest checkpoint (None without one)."""
    for latest in (folder / "checkpoints" / "latest", previous_copy(folder / "checkpoints" / "latest")):
        try:
            state = json.loads((latest / "trainer" / "state.json").read_text())
            return int(state["state"]["step"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    return None


@dataclass
class RunFiles:
    """The finished outputs of a run that the page shows or offers for download."""

    glb: Path | None = None
    ply: Path | None = None
    obj_zip: Path | None = None
    turntable: Path | None = None
    views: list[Path] = field(default_factory=list)
    sheet: Path | None = None

    @property
    def downloads(self) -> list[Path]:
        return [p for p in (self.glb, self.obj_zip, self.ply) if p is not None]


def run_files(folder: Path, downloads: Path) -> RunFiles:
    """The outputs in ``folder``; the OBJ (+ MTL + textures) is zipped into ``downloads`` once."""
    files = RunFiles()
    if (folder / "mesh.glb").is_file():
        files.glb = folder / "mesh.glb"
    if (folder / "mesh.ply").is_file():
        files.ply = folder / "mesh.ply"
    if (folder / "mesh.obj").is_file():
        files.obj_zip = obj_zip(folder / "mesh.obj", downloads / folder.name / "mesh_obj.zip")
    if (folder / "turntable.gif").is_file():
        files.turntable = folder / "turntable.gif"
    files.views = sorted(folder.glob("view_*.png"))
    if (folder / "views.png").is_file():
        files.sheet = folder / "views.png"
    return files


def obj_companions(obj: Path) -> list[Path]:
    """The OBJ, its MTL libraries and the texture images they name (those that exist)."""
    found = [obj]
    for line in obj.read_text(errors="replace").splitlines()[:2000]:
        if line.startswith("mtllib "):
            mtl = obj.parent / line.split(None, 1)[1].strip()
            if mtl.is_file() and mtl not in found:
                found.append(mtl)
                for mline in mtl.read_text(errors="replace").splitlines():
                    parts = mline.split()
                    if parts and parts[0].startswith("map_"):
                        image = obj.parent / parts[-1]
                        if image.is_file() and image not in found:
                            found.append(image)
    return found


def obj_zip(obj: Path, target: Path) -> Path:
    """A zip of the OBJ with its MTL and textures (rebuilt when the OBJ is newer), written atomically."""
    if target.is_file() and target.stat().st_mtime >= obj.stat().st_mtime:
        return target
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in obj_companions(obj):
            zf.write(path, arcname=path.name)
    return target


def list_runs(root: Path) -> list[Path]:
    """Run folders under the app's runs folder, newest first (the app's own files skipped)."""
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and run_command(p)]
    return sorted(runs, key=lambda p: (p / "config.yaml").stat().st_mtime, reverse=True)
