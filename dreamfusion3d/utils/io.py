"""Atomic file writes: a killed run leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def _staging_prefix(name: str) -> str:
    """Temporary siblings of ``name`` carry the writer's PID, so that debris a killed writer left
    (``kill -9`` between creating and renaming it) can be told apart from a live writer's."""
    return f".{name}.stage-{os.getpid()}-"


def sweep_stale_staging(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary siblings of ``folder`` (from :func:`atomic_path` / :func:`staged_folder`)
    whose writing process is gone; a live process's are kept. Returns what was removed."""
    from .lock import pid_alive

    folder = Path(folder)
    removed = []
    for path in folder.parent.glob(f".{glob.escape(folder.name)}.stage-*-*"):
        pid = path.name[len(folder.name) + len(".") + len(".stage-"):].split("-", 1)[0]
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed over ``path``.

    The temporary name keeps the suffix so that writers that pick a format by extension
    (imageio, trimesh, safetensors) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_staging(path)
    fd, tmp = tempfile.mkstemp(prefix=_staging_prefix(path.name), suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; finished files get the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def previous_copy(folder: str | os.PathLike) -> Path:
    """Where :func:`replace_folder` keeps the old ``folder`` during a swap."""
    folder = Path(folder)
    return folder.with_name(folder.name + ".old")


def current_folder(folder: str | os.PathLike) -> Path:
    """``folder``, or its previous copy when a kill came in the middle of a swap (readers use this)."""
    folder = Path(folder)
    return previous_copy(folder) if not folder.exists() and previous_copy(folder).exists() else folder


@contextmanager
def staged_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty hidden sibling of ``folder`` to write into; when the block succeeds it is
    swapped in (:func:`replace_folder`), when it fails it is removed and ``folder`` is untouched.
    Siblings left by a killed writer are swept first (:func:`sweep_stale_staging`)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_staging(folder)
    tmp = Path(tempfile.mkdtemp(prefix=_staging_prefix(folder.name), dir=folder.parent))
    try:
        yield tmp
        replace_folder(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def link_folder(source: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """Make ``folder`` a copy of the tree ``source`` whose files are hard links (copies where the
    file system has none), swapped in as :func:`staged_folder` does. Files here are only ever
    replaced whole, never edited in place, so the two trees cannot drift apart."""
    source = Path(source)
    with staged_folder(folder) as tmp:
        for path in sorted(source.rglob("*")):
            target = tmp / path.relative_to(source)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
    return Path(folder)


def replace_folder(staged: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """Swap a fully written ``staged`` folder into ``folder``.

    The old folder is moved aside (:func:`previous_copy`) first and removed last, so at every
    moment one complete copy exists (readers find it with :func:`current_folder`).
    """
    staged, folder = Path(staged), Path(folder)
    old = previous_copy(folder)
    if folder.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(folder, old)
    os.replace(staged, folder)
    if old.exists():
        shutil.rmtree(old)
    return folder
