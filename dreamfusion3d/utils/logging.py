"""One clear line per stage and progress bars that ``--quiet`` silences."""

from __future__ import annotations

import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_QUIET = False


def set_quiet(quiet: bool) -> None:
    global _QUIET
    _QUIET = quiet


def is_quiet() -> bool:
    return _QUIET


def info(message: str) -> None:
    """Print one stage line to stderr (silenced by ``--quiet``)."""
    if not _QUIET:
        print(f"[dreamfusion3d] {message}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """Warnings are printed even with ``--quiet``."""
    print(f"[dreamfusion3d] warning: {message}", file=sys.stderr, flush=True)


def progress(iterable: Iterable[T] | None = None, **kwargs) -> tqdm:
    """A tqdm bar on stderr, disabled by ``--quiet``."""
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("file", sys.stderr)
    disable = bool(kwargs.pop("disable", False)) or _QUIET
    return tqdm(iterable, disable=disable, **kwargs)
