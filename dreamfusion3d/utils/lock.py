"""An advisory lock per run folder, so two processes never write into the same folder at once.

The lock is ``fcntl.flock`` on a small file beside the folder (``.<name>.lock``, so it survives the
folder being moved aside or swapped) that holds the owner's PID. The kernel drops a flock when its
owner dies, so a lock file left by a killed process is stale by construction: the next process
takes it over (and says whose it was). Advisory means every dreamfusion3d command takes it; other
programs are not stopped.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import UserError


def lock_path(folder: str | os.PathLike) -> Path:
    folder = Path(folder).absolute()
    return folder.parent / f".{folder.name}.lock"


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class FolderLock:
    """``with FolderLock(folder):`` holds the folder's lock; a second holder gets a ``UserError``."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = lock_path(folder)
        self._fd: int | None = None
        self.stale_owner: int | None = None  # PID of a dead process whose lock file was taken over

    def acquire(self) -> "FolderLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read_pid(fd)
                os.close(fd)
                raise self._in_use(owner) from None
            # The previous holder unlinks the file on release: make sure we locked the file that
            # is at the path now, not an unlinked one (else two processes could both "hold" it).
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_pid(fd)
        if previous and previous != os.getpid() and not pid_alive(previous):
            self.stale_owner = previous
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def check_free(self) -> None:
        """Raise the "in use" error now if another process holds the lock (takes nothing)."""
        if not self.path.is_file():
            return
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self._in_use(_read_pid(fd)) from None
        finally:
            os.close(fd)  # drops the probe's lock, if it got one

    def _in_use(self, owner: int | None) -> UserError:
        who = f"PID {owner}" if owner else "another process"
        return UserError(f"{self.folder} is in use by another dreamfusion3d run ({who}); "
                         "wait for it to finish or choose another --out")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
