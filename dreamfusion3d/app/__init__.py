"""``dreamfusion3d app``: a local web page over the CLI (Gradio, offline).

Type a prompt or drop an image, watch the previews appear, turn the mesh in the browser and
download it. Every job is a subprocess of the CLI writing an ordinary run folder under
``--runs``, so what the page makes is what ``dreamfusion3d generate`` makes (and
``generate --resume`` continues it). Gradio is an optional extra: ``pip install 'dreamfusion3d[app]'``.
"""

from __future__ import annotations

import importlib.util
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from ..utils.errors import UserError

OFFLINE_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",  # no usage pings, no version check
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


@dataclass
class AppConfig:
    """Serve a web page to type a prompt or drop an image, watch it form and turn the result in 3D."""

    host: str = "127.0.0.1"
    """Address to listen on (0.0.0.0 lets other machines of your network in)."""
    port: int = 7860
    """Port to listen on."""
    runs: Path = Path("outputs/app")
    """Folder of the runs the page starts (one CLI run folder each) and lists as history."""
    max_jobs: int = 1
    """Jobs that run at the same time; the rest wait in a queue (on a CPU keep 1)."""
    presets: tuple[str, ...] = ()
    """Generate presets (names from configs/ or YAML paths) offered on the text → 3D tab, the first
    selected; none: `default`, plus `sd` and `if` when a CUDA device is present."""
    preview_every: int = 10
    """Steps between the progress previews a generate job writes (0: keep the preset's)."""
    num_threads: int = 0
    """torch CPU threads of each job (0: torch's default)."""
    max_steps: int = 20000
    """Largest step count the page accepts."""
    max_upload_mb: float = 20.0
    """Largest image upload, in megabytes."""


def _check(cfg: AppConfig) -> None:
    if not 0 <= cfg.port <= 65535:
        raise UserError(f"--port must lie in [0, 65535], got {cfg.port}")
    if cfg.max_jobs < 1:
        raise UserError("--max-jobs must be >= 1")
    if cfg.preview_every < 0 or cfg.max_steps < 1 or cfg.max_upload_mb <= 0:
        raise UserError("--preview-every must be >= 0, --max-steps >= 1 and --max-upload-mb > 0")
    if cfg.runs.exists() and not cfg.runs.is_dir():
        raise UserError(f"--runs {cfg.runs} exists and is not a folder")


def _interrupt(signum, frame):  # SIGTERM: shut down like Ctrl-C (jobs get SIGINT, checkpoint)
    raise KeyboardInterrupt


def run(cfg: AppConfig) -> None:
    _check(cfg)
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    if importlib.util.find_spec("gradio") is None:
        raise UserError("the app needs Gradio: pip install 'dreamfusion3d[app]'")
    from .jobs import JobQueue
    from .submit import presets_offered

    presets = presets_offered(cfg)  # fail on a bad preset before anything is written
    from .ui import build, launch  # imports gradio (seconds)

    cfg.runs.mkdir(parents=True, exist_ok=True)
    jobs = JobQueue(cfg.runs, max_parallel=cfg.max_jobs, env=OFFLINE_ENV)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        demo = build(cfg, jobs, presets)
        launch(demo, cfg)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        jobs.shutdown()
