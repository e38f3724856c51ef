"""The app's job queue: each job is a subprocess of the real CLI writing a normal run folder.

A job outlives the page that submitted it: closing the browser does not touch the process, and
the CLI writes every file atomically, so a run folder never holds half a file. ``max_parallel``
workers take jobs in submission order (one at a time by default: on a CPU two runs only share
the cores). A job record (``<runs>/.app/jobs/<id>.json``) and its log sit beside the runs, so the
history survives a restart of the app; stopping a job sends SIGINT, on which ``generate`` writes a
checkpoint and ``generate --resume`` continues it.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..utils.io import write_json_atomic
from .runs import INTERNAL, LogProgress, read_log

ACTIVE = ("queued", "running")


@dataclass
class Job:
    id: str
    """Also the name of the run folder under the runs folder."""
    kind: str
    """The CLI command: generate, novel-view, image-to-3d."""
    args: list[str]
    """Arguments after ``python -m dreamfusion3d`` (the output folder included)."""
    label: str = ""
    """What the history list shows (the prompt, the image's name)."""
    state: str = "queued"
    """queued, running, done, failed, stopped, interrupted (the app stopped while it ran)."""
    returncode: int | None = None
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str = ""


class JobQueue:
    """Runs ``python -m dreamfusion3d ARGS`` jobs, ``max_parallel`` at a time, in order."""

    def __init__(self, runs: Path, max_parallel: int = 1, env: dict[str, str] | None = None):
        self.runs = Path(runs)
        self.folder = self.runs / INTERNAL / "jobs"
        self.env = {**os.environ, **(env or {})}
        self._jobs: dict[str, Job] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._load_records()
        self._workers = [threading.Thread(target=self._work, daemon=True, name=f"app-job-{i}")
                         for i in range(max(1, max_parallel))]
        for worker in self._workers:
            worker.start()

    # ------------------------------------------------------------------ records
    def _load_records(self) -> None:
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                job = Job(**json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError, TypeError):
                continue
            if job.state in ACTIVE:  # the app that ran it is gone
                job.state = "interrupted"
            self._jobs[job.id] = job

    def _save(self, job: Job) -> None:
        write_json_atomic(self.folder / f"{job.id}.json", asdict(job))

    def log_path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.log"

    # ------------------------------------------------------------------ public
    def new_id(self, stem: str) -> str:
        """A fresh run-folder name: ``YYYYmmdd-HHMMSS-<stem>`` (suffixed when taken)."""
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}"
        with self._lock:
            name, n = base, 1
            while name in self._jobs or (self.runs / name).exists():
                n += 1
                name = f"{base}-{n}"
            self._jobs[name] = Job(name, "reserved", [])  # reserve until submit()
        return name

    def submit(self, job_id: str, kind: str, args: list[str], label: str = "") -> Job:
        job = Job(job_id, kind, list(args), label=label)
        with self._lock:
            self._jobs[job_id] = job
            self._save(job)
        self._queue.put(job_id)
        return job

    def get(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        return None if job is None or job.kind == "reserved" else job

    def jobs(self) -> list[Job]:
        return [j for j in self._jobs.values() if j.kind != "reserved"]

    def position(self, job_id: str) -> int:
        """How many queued jobs were submitted before this one (0: next)."""
        job = self._jobs.get(job_id)
        if job is None or job.state != "queued":
            return 0
        return sum(1 for j in self.jobs() if j.state == "queued" and j.submitted < job.submitted)

    def progress(self, job_id: str) -> LogProgress:
        return read_log(self.log_path(job_id))

    def stop(self, job_id: str) -> bool:
        """SIGINT a running job (generate checkpoints and exits) or drop a queued one."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state not in ACTIVE:
                return False
            if job.state == "queued":
                job.state, job.finished = "stopped", time.time()
                self._save(job)
                return True
            proc = self._procs.get(job_id)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            return True
        return False

    def wait(self, job_id: str, timeout: float | None = None) -> Job | None:
        """Block until the job leaves the queue (for scripts and tests)."""
        deadline = None if timeout is None else time.time() + timeout
        while (job := self.get(job_id)) is not None and job.state in ACTIVE:
            if deadline is not None and time.time() > deadline:
                break
            time.sleep(0.2)
        return self.get(job_id)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the workers; running jobs get SIGINT (generate leaves a resumable checkpoint)."""
        for job in self.jobs():
            if job.state in ACTIVE:
                self.stop(job.id)
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join(timeout)

    # ------------------------------------------------------------------ workers
    def _work(self) -> None:
        while (job_id := self._queue.get()) is not None:
            with self._lock:
                job = self._jobs[job_id]
                if job.state != "queued":  # stopped while waiting
                    continue
                job.state, job.started = "running", time.time()
                self._save(job)
                log = self.log_path(job_id).open("wb")
                try:
                    proc = subprocess.Popen([sys.executable, "-m", "dreamfusion3d", *job.args], stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env)
                except OSError as exc:
                    job.state, job.error, job.finished = "failed", f"could not start: {exc}", time.time()
                    self._save(job)
                    log.close()
                    continue
                self._procs[job_id] = proc
            code = proc.wait()
            log.close()
            with self._lock:
                self._procs.pop(job_id, None)
                job.returncode, job.finished = code, time.time()
                job.state = "done" if code == 0 else "stopped" if code in (130, -signal.SIGINT) else "failed"
                if code != 0:
                    died = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
                    job.error = read_log(self.log_path(job_id)).error or died
                self._save(job)
