"""Checks of what a visitor typed or dropped, before any job or file exists.

Each check returns the clean value or raises ``UserError`` with the sentence the page shows;
nothing here writes anything.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..utils.errors import UserError

MAX_PROMPT_CHARS = 300
MAX_SEED = 2**31 - 1


def check_prompt(prompt: str | None) -> str:
    text = " ".join((prompt or "").split())
    if not text:
        raise UserError("The prompt is empty: type what to make, e.g. “a red cube”.")
    if len(text) > MAX_PROMPT_CHARS:
        raise UserError(f"The prompt is {len(text)} characters long; keep it under {MAX_PROMPT_CHARS}.")
    return text


def check_int(value, name: str, low: int, high: int) -> int:
    """An integer in ``[low, high]`` (the number boxes send floats, or None when cleared)."""
    if value is None or value == "":
        raise UserError(f"{name} is empty: give a whole number from {low} to {high}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a whole number from {low} to {high}, not {value!r}.") from None
    if not math.isfinite(number) or number != int(number):
        raise UserError(f"{name} must be a whole number from {low} to {high}, not {value}.")
    if not low <= number <= high:
        raise UserError(f"{name} must lie between {low} and {high}; {int(number)} is out of range.")
    return int(number)


def check_seed(value) -> int:
    return check_int(value, "The seed", 0, MAX_SEED)


def check_image(path: str | Path | None, max_mb: float) -> Path:
    """An uploaded file that is a readable 2D image no larger than ``max_mb`` megabytes."""
    from ..novel_view.images import read_image

    if path is None or str(path) == "":
        raise UserError(f"No image yet: drop a PNG or JPG (at most {max_mb:g} MB) of one object on a plain background.")
    path = Path(path)
    if not path.is_file():
        raise UserError("The upload did not arrive; drop the image again.")
    size_mb = path.stat().st_size / 2**20
    if size_mb > max_mb:
        raise UserError(f"{path.name} is {size_mb:.1f} MB; the limit is {max_mb:g} MB.")
    try:
        read_image(path)
    except UserError:
        raise UserError(f"{path.name} is not an image this app can read (PNG, JPG, WebP, BMP).") from None
    return path
