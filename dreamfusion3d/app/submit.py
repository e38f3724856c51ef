"""From what the page sends to a queued CLI job: check, pick a run folder, build the command line.

Gradio-free (tested on its own). Every check runs before anything is written; a bad value raises
``UserError`` with the sentence the page shows.
"""

from __future__ import annotations

import dataclasses
import shutil
import typing
from pathlib import Path

from ..cli import COMMANDS, _load
from ..generate.loop import slugify
from ..utils.config import load_preset, resolve_preset
from ..utils.errors import UserError
from ..world.captions import TRAIN_COLORS, TRAIN_SHAPES, _article
from . import AppConfig
from .inputs import check_image, check_int, check_prompt, check_seed
from .jobs import JobQueue
from .runs import INTERNAL

NOVEL_VIEW_MAX_STEPS = 500


def example_prompts() -> list[str]:
    """One prompt per shape, colours cycling, from the bundled prior's training vocabulary."""
    colours, shapes = list(TRAIN_COLORS), list(TRAIN_SHAPES)
    pairs = [(colours[i % len(colours)], shape) for i, shape in enumerate(shapes)] + [(colours[5], shapes[4]),
                                                                                      (colours[6], shapes[1])]
    return [_article(f"{colour} {shape}") for colour, shape in pairs]


def presets_offered(cfg: AppConfig) -> dict[str, tuple[str, int]]:
    """Preset label -> (``--config`` value, its step count); a bad preset fails here, at start."""
    names = list(cfg.presets)
    if not names:
        import torch

        names = ["default"] + (["sd", "if"] if torch.cuda.is_available() else [])
    from ..generate.config import GenerateConfig

    offered = {}
    for name in names:
        path = resolve_preset(name)
        label = name if path.stem == name else path.stem
        offered[label] = (str(path.resolve()), load_preset(GenerateConfig, str(path), command="generate").steps)
    return offered


def command_options(name: str) -> set[str]:
    """Dotted option names of a CLI command's config (``steps``, ``output.preview_every``, ...)."""
    def walk(cls, prefix: str) -> set[str]:
        found = set()
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            found.add(prefix + f.name)
            if dataclasses.is_dataclass(hints.get(f.name)):
                found |= walk(hints[f.name], f"{prefix}{f.name}.")
        return found

    return walk(_load(COMMANDS[name].config), "")


def option_default(name: str, option: str):
    """The default of a top-level option of a CLI command (None when it has none)."""
    for f in dataclasses.fields(_load(COMMANDS[name].config)):
        if f.name == option and f.default is not dataclasses.MISSING:
            return f.default
    return None


def _common_args(cfg: AppConfig, kind: str, out: Path, steps: int | None, seed: int) -> list[str]:
    """--out, --seed and, where the command has them, --steps, the preview period and threads."""
    options = command_options(kind)
    args = ["--out", str(out), "--seed", str(seed)]
    if steps is not None and "steps" in options:
        args += ["--steps", str(steps)]
    if cfg.preview_every and "output.preview_every" in options:
        args += ["--output.preview-every", str(cfg.preview_every)]
    if cfg.num_threads and "num_threads" in options:
        args += ["--num-threads", str(cfg.num_threads)]
    return args


def submit_generate(jobs: JobQueue, cfg: AppConfig, presets: dict[str, tuple[str, int]], prompt, preset, steps,
                    seed) -> str:
    """Queue ``dreamfusion3d --config PRESET generate ...``; returns the run id (its folder's name)."""
    prompt = check_prompt(prompt)
    if preset not in presets:
        raise UserError(f"Unknown preset {preset!r}; choose one of {', '.join(presets)}.")
    steps, seed = check_int(steps, "Steps", 1, cfg.max_steps), check_seed(seed)
    run_id = jobs.new_id(slugify(prompt, 40))
    args = ["--config", presets[preset][0], "generate", "--prompt", prompt]
    jobs.submit(run_id, "generate", args + _common_args(cfg, "generate", jobs.runs / run_id, steps, seed),
                label=prompt)
    return run_id


def submit_image(jobs: JobQueue, cfg: AppConfig, kind: str, image, steps, seed) -> str:
    """Queue ``dreamfusion3d KIND --image ...`` (novel-view, image-to-3d) on a kept copy of the upload."""
    path = check_image(image, cfg.max_upload_mb)
    max_steps = NOVEL_VIEW_MAX_STEPS if kind == "novel-view" else cfg.max_steps
    steps = check_int(steps, "Steps", 1, max_steps) if steps is not None else None
    seed = check_seed(seed)
    run_id = jobs.new_id(slugify(path.stem, 40))
    kept = jobs.runs / INTERNAL / "uploads" / run_id / path.name  # gradio's upload cache is temporary
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, kept)
    args = [kind, "--image", str(kept)] + _common_args(cfg, kind, jobs.runs / run_id, steps, seed)
    jobs.submit(run_id, kind, args, label=path.name)
    return run_id


def resume(jobs: JobQueue, run_id: str, label: str = "") -> str:
    """Queue ``dreamfusion3d generate --resume FOLDER`` for a stopped or interrupted run."""
    jobs.submit(run_id, "generate", ["generate", "--resume", str(jobs.runs / run_id)], label=label)
    return run_id
