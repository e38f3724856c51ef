"""One output-folder policy for every command that writes.

* A folder that holds anything is refused unless ``--overwrite`` (or ``--resume``, where a command
  has it) is given; a path that is a file is refused; both before anything is written.
* The folder is locked (``utils.lock``) while the command runs: a second process gets one line.
* Nothing of a rejected or failed run remains, and an earlier run is never half-replaced:

  - ``staged=True`` (short commands: render, export, sample, novel-view, make-dataset, evaluate-*):
    the command writes into a hidden sibling folder that is swapped in only when it succeeds.
  - ``staged=False`` (long runs with checkpoints: generate, train-*, reconstruct, evaluate): the
    command writes into the folder itself. With ``--overwrite`` the old run is moved aside first
    and comes back if the new one fails before ``started(folder)`` is true (its first checkpoint,
    say); once the new run has started, the old one is deleted. A fresh folder that a failed run
    created is removed again (an existing empty one is emptied).

Usage, one line per command::

    with output_folder(cfg.out, overwrite=cfg.overwrite) as out:
        ...write into out...
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import UserError
from .io import replace_folder
from .lock import FolderLock
from .logging import info


def aside_path(out: Path) -> Path:
    """Where ``--overwrite`` keeps the previous run until the new one has started."""
    out = Path(out).absolute()
    return out.parent / f".{out.name}.replaced"


def is_empty(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def check_output_folder(out: str | os.PathLike, *, overwrite: bool = False, resume: bool | None = None,
                        owns: tuple[str, ...] = (), flag: str = "--out", _locked: bool = False) -> Path:
    """Refuse a path that cannot become this run's folder; writes nothing. ``resume=None``: the
    command has no --resume (the hint then only names --overwrite). ``owns``: the command writes
    only these names into a folder that may hold other things (then only they count)."""
    out = Path(out)
    if not _locked:
        FolderLock(out).check_free()  # a running command's folder: refused before any work
    if owns and out.is_dir():
        taken = [name for name in owns if (out / name).exists()]
        if taken and not overwrite:
            raise UserError(f"{flag} {out} already holds {taken[0]}: pass --overwrite to replace it "
                            f"(or choose another {flag})")
        return out
    if out.exists() and not out.is_dir():
        raise UserError(f"{flag} {out} exists and is not a folder")
    if resume:
        if not out.is_dir():
            raise UserError(f"--resume: {out} does not exist")
        return out
    if not is_empty(out) and not overwrite:
        hint = "pass --overwrite to replace it" + (" or --resume to continue it" if resume is not None else "")
        raise UserError(f"{flag} {out} is not empty: {hint} (or choose another {flag})")
    aside = aside_path(out)
    if aside.exists():
        raise UserError(f"{aside} holds the run that an interrupted --overwrite of {out} replaced: "
                        "move it back or delete it first")
    parent = _existing_ancestor(out.absolute())
    if not parent.is_dir():
        raise UserError(f"cannot write to {flag} {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK) or (out.is_dir() and not os.access(out, os.W_OK | os.X_OK)):
        raise UserError(f"cannot write to {flag} {out}: permission denied")
    return out


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _missing_ancestors(path: Path) -> list[Path]:
    """The folders (outermost first) that creating ``path`` would create."""
    missing = []
    path = path.absolute()
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing[::-1]


def _remove_created(created: list[Path]) -> None:
    for folder in reversed(created):
        if folder.is_dir():
            shutil.rmtree(folder) if folder == created[-1] else _rmdir_if_empty(folder)


def _rmdir_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _clear(folder: Path) -> None:
    for child in folder.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


@contextmanager
def output_folder(out: str | os.PathLike, *, overwrite: bool = False, resume: bool | None = None,
                  staged: bool = False, started: Callable[[Path], bool] | None = None,
                  owns: tuple[str, ...] = (), lock: bool = True, flag: str = "--out") -> Iterator[Path]:
    """Check, lock and prepare ``out``; yield the folder to write into (see the module notes).
    With ``owns`` the command writes into a staging folder whose entries are moved into ``out``
    (next to whatever else it holds) when the command succeeds."""
    out = Path(out)
    check_output_folder(out, overwrite=overwrite, resume=resume, owns=owns, flag=flag)
    created = _missing_ancestors(out)
    holder = FolderLock(out) if lock else None
    if holder is not None:
        holder.acquire()  # creates missing parents for the lock file
        if holder.stale_owner:
            info(f"took over the lock of {out} left by PID {holder.stale_owner} (no longer running)")
        # filled by another process meanwhile?
        check_output_folder(out, overwrite=overwrite, resume=resume, owns=owns, flag=flag, _locked=True)
    try:
        if resume:
            yield out
        elif owns:
            yield from _staged(out, created, merge=True)
        elif staged:
            yield from _staged(out, created)
        else:
            yield from _aside(out, created, started)
    finally:
        if holder is not None:
            holder.release()
        if created and not out.exists():
            for folder in reversed(created[:-1]):
                _rmdir_if_empty(folder)


def _staged(out: Path, created: list[Path], merge: bool = False) -> Iterator[Path]:
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".staging", dir=parent))
    try:
        yield staging
        if merge and out.is_dir():  # each entry replaces its namesake, the rest of out stays
            for entry in sorted(staging.iterdir()):
                if entry.is_dir():
                    replace_folder(entry, out / entry.name)
                else:
                    os.replace(entry, out / entry.name)
            return
        if out.is_dir() and is_empty(out):
            out.rmdir()
        replace_folder(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _aside(out: Path, created: list[Path], started: Callable[[Path], bool] | None) -> Iterator[Path]:
    aside = aside_path(out)
    existed_empty = out.is_dir() and is_empty(out)
    if out.is_dir() and not existed_empty:
        os.replace(out, aside)
    out.mkdir(parents=True, exist_ok=True)
    try:
        yield out
    except BaseException:
        if started is not None and out.is_dir() and started(out):
            if aside.exists():
                shutil.rmtree(aside)
            raise
        # the run never really started: leave the disk as it was found
        if out.is_dir():
            if aside.exists() or not existed_empty:
                shutil.rmtree(out)
            else:
                _clear(out)
        if aside.exists():
            os.replace(aside, out)
        elif created:
            _remove_created(created)
        raise
    if aside.exists():
        shutil.rmtree(aside)


def has_checkpoint(folder: Path) -> bool:
    """``started`` for runs that write ``checkpoints/latest`` (in the folder or up to two levels down)."""
    return any(any(folder.glob(f"{sub}checkpoints/latest*")) for sub in ("", "*/", "*/*/"))
