"""What the page shows for one run, worked out from its job (if the app ran it) and its folder.

Gradio-free so that it is testable on its own; :mod:`.ui` turns a ``RunView`` into updates.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from pathlib import Path

from .jobs import ACTIVE, JobQueue
from .runs import (
    INTERNAL,
    RunFiles,
    checkpoint_step,
    list_runs,
    previews,
    read_metrics,
    run_command,
    run_config,
    run_files,
)


@dataclass
class RunView:
    run_id: str
    kind: str
    label: str
    state: str
    """queued, running, done, failed, stopped, interrupted, incomplete, missing."""
    status: str
    step: int | None = None
    total: int | None = None
    previews: list[tuple[str, str]] = field(default_factory=list)
    files: RunFiles | None = None
    metrics: dict | None = None
    resumable: bool = False

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def progress_html(self) -> str:
        value = ""
        if self.total:
            value = f' value="{self.step or 0}" max="{self.total}"'
        elif self.state == "done":
            value = ' value="1" max="1"'
        return (f'<div class="df-progress" data-state="{self.state}"><progress{value}></progress>'
                f"<span>{html.escape(self.status)}</span></div>")


def _label(kind: str, folder: Path, job_label: str) -> str:
    if job_label:
        return job_label
    cfg = run_config(folder)
    if kind == "generate":
        return str(cfg.get("prompt") or folder.name)
    return Path(str(cfg.get("image") or folder.name)).name


def _elapsed(start: float | None, end: float | None = None) -> str:
    if start is None:
        return ""
    seconds = int((end or time.time()) - start)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def view_run(jobs: JobQueue, run_id: str) -> RunView:
    folder = jobs.runs / run_id
    job = jobs.get(run_id)
    kind = job.kind if job else (run_command(folder) or "unknown")
    label = _label(kind, folder, job.label if job else "")
    metrics = read_metrics(folder)
    log = jobs.progress(run_id) if job else None
    step = total = None
    if job and job.state in ACTIVE:
        state = job.state
    elif metrics is not None:
        state = "done"
    elif job:
        state = "failed" if job.state == "done" else job.state
    else:
        state = "incomplete" if folder.is_dir() else "missing"
    ckpt = checkpoint_step(folder) if kind == "generate" and state != "done" else None
    if state == "queued":
        ahead = jobs.position(run_id)
        status = f"Queued: {ahead} job{'s' if ahead != 1 else ''} ahead." if ahead else "Queued: next to run."
    elif state == "running":
        if log and log.total:
            step, total = log.step, log.total
            status = f"Step {step} / {total}"
        else:
            status = "Starting: loading the model"
        if log and log.stage and not log.stage.startswith(("prompt ", "done in", "resumed")):
            status += f" · {log.stage}"
        status += f" · {_elapsed(job.started)}"
    elif state == "done":
        took = _elapsed(job.started, job.finished) if job and job.finished else ""
        status = "Done" + (f" in {took}" if took else "") + "."
    elif state == "failed":
        status = f"Failed: {job.error if job else 'no outputs'}"
    elif state == "missing":
        status = "This run's folder is gone."
    else:
        why = {"stopped": "Stopped", "interrupted": "Interrupted (the app stopped while it ran)",
               "incomplete": "Not finished"}[state]
        status = why + (f" at step {ckpt}: Resume continues from its checkpoint." if ckpt is not None else ".")
    view = RunView(run_id, kind, label, state, status, step, total, metrics=metrics,
                   resumable=ckpt is not None and state in ("stopped", "interrupted", "incomplete", "failed"))
    view.previews = [(str(p), f"step {int(p.stem.split('_')[-1])}") for p in previews(folder)]
    if state == "done":
        view.files = run_files(folder, jobs.runs / INTERNAL / "downloads")
    return view


def history(jobs: JobQueue, kinds: tuple[str, ...]) -> list[tuple[str, str]]:
    """(label, run id) of the runs of these kinds, newest first: the app's jobs and any CLI runs
    found in its runs folder."""
    seen: dict[str, float] = {}
    entries: dict[str, tuple[str, str]] = {}
    for job in jobs.jobs():
        if job.kind in kinds:
            seen[job.id] = job.submitted
            entries[job.id] = (job.label, job.state)
    for folder in list_runs(jobs.runs):
        if folder.name not in seen and run_command(folder) in kinds:
            seen[folder.name] = (folder / "config.yaml").stat().st_mtime
            kind = run_command(folder) or ""
            entries[folder.name] = (_label(kind, folder, ""), "done" if read_metrics(folder) else "not finished")
    out = []
    for run_id in sorted(seen, key=seen.get, reverse=True):
        label, state = entries[run_id]
        stamp = time.strftime("%m-%d %H:%M", time.localtime(seen[run_id]))
        out.append((f"{stamp} · {label[:50]} · {state}", run_id))
    return out
