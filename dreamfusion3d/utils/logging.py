"""One clear line per stage and progress bars that ``--quiet`` silences."""

from __future__ import annotations

import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_QUIET = False
_PENDING: list[str] = []  # stage lines that wait for the run to get going (see info_later)


def set_quiet(quiet: bool) -> None:
    global _QUIET
    _QUIET = quiet


def is_quiet() -> bool:
    return _QUIET


def info(message: str) -> None:
    """Print one stage line to stderr (silenced by ``--quiet``), after any pending ones."""
    if not _QUIET:
        for line in [*_PENDING, message]:
            print(f"[dreamfusion3d] {line}", file=sys.stderr, flush=True)
    _PENDING.clear()


def info_later(message: str) -> None:
    """A stage line printed just before the next one: a choice made while the input is still being
    checked (e.g. the device) is reported once the run starts, and a run that stops at a bad input
    still prints only its one error line."""
    _PENDING.append(message)


def clear_pending() -> None:
    """Drop the lines of :func:`info_later` (the CLI does this as each command starts)."""
    _PENDING.clear()


def warn(message: str) -> None:
    """Warnings are printed even with ``--quiet``."""
    print(f"[dreamfusion3d] warning: {message}", file=sys.stderr, flush=True)


def progress(iterable: Iterable[T] | None = None, **kwargs) -> tqdm:
    """A tqdm bar on stderr, disabled by ``--quiet``."""
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("file", sys.stderr)
    disable = bool(kwargs.pop("disable", False)) or _QUIET
    return tqdm(iterable, disable=disable, **kwargs)
