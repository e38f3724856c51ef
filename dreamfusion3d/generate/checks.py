"""What ``generate`` checks before it writes anything, and how its ranks share one output folder.

The generic checks (finite numbers, option ranges) run in the CLI for every command
(``utils.validate``); here: the prompts, the prior's files, a memory estimate, and the torchrun
plumbing (rank 0 prepares the folder while the other ranks wait; each prompt's folder is claimed
with an atomic ``mkdir``).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..utils.errors import UserError
from ..utils.validate import check_memory, check_model_folder, read_text_file
from .config import GenerateConfig

# Autograd keeps the field's activations of every sample of every ray of a step: measured
# order of magnitude for the default hash-grid field (features, MLP activations, gradients).
BYTES_PER_SAMPLE = 2048


def read_prompts_file(path: Path) -> list[str]:
    """One prompt per line; blank lines and ``#`` comments are skipped; none at all is an error."""
    prompts = [ln.strip() for ln in read_text_file(path, "prompts file").splitlines()]
    prompts = [p for p in prompts if p and not p.startswith("#")]
    if not prompts:
        raise UserError(f"prompts file {path} contains no prompts")
    return prompts


def read_prompts(cfg: GenerateConfig) -> list[str]:
    if cfg.prompts_file is not None:
        return read_prompts_file(cfg.prompts_file)
    if not cfg.prompt.strip():
        raise UserError("the prompt is empty: pass --prompt \"a red cube\" (or --prompts-file FILE)")
    return [cfg.prompt.strip()]


def estimate_step_bytes(cfg: GenerateConfig) -> float:
    """Rough peak memory of one optimisation step (rays x samples per ray x bytes per sample)."""
    rays = cfg.batch_size * cfg.resolution * cfg.resolution
    return float(rays) * cfg.renderer.num_steps * BYTES_PER_SAMPLE


def validate_generate(cfg: GenerateConfig) -> list[str]:
    """All of ``generate``'s inputs, before anything is written; returns the prompts."""
    prompts = read_prompts(cfg)
    if cfg.resume is not None and not cfg.resume.is_dir():
        raise UserError(f"--resume {cfg.resume}: no such run folder")
    p = cfg.prior
    if p.t_min >= p.t_max:
        raise UserError(f"--prior.t-min ({p.t_min:g}) must be below --prior.t-max ({p.t_max:g})")
    if cfg.shading.albedo_prob + cfg.shading.lambertian_prob > 1 + 1e-9:
        raise UserError("--shading.albedo-prob + --shading.lambertian-prob must be at most 1")
    if cfg.background.random_prob > 0 and cfg.background.kind != "fixed":
        raise UserError("--background.random-prob needs --background.kind fixed (a learned background is not recoloured)")
    lo, hi = cfg.shading.light_distance_range
    if not 0 < lo <= hi:
        raise UserError(f"--shading.light-distance-range must be 0 < near <= far, got {lo:g} {hi:g}")
    if p.model is not None and p.kind == "bundled" and not Path(p.model).expanduser().exists():
        raise UserError(f"--prior.model {p.model}: no such model folder")
    for option, value in (("--prior.model", p.model), ("--prior.text-encoder", p.text_encoder)):
        if value is not None and p.kind != "exact":
            check_model_folder(Path(value).expanduser(), option)
    if p.kind == "exact" and p.model is not None and not Path(p.model).is_dir():
        raise UserError(f"--prior.model {p.model}: no such folder of images")
    check_memory(estimate_step_bytes(cfg), f"--batch-size {cfg.batch_size} at --resolution {cfg.resolution}",
                 "lower --resolution, --batch-size or --renderer.num-steps")
    return prompts


# ---------------------------------------------------------------------- torchrun


def rank_and_world() -> tuple[int, int]:
    try:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise UserError("RANK and WORLD_SIZE must be integers (as torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world:
        raise UserError(f"RANK={rank} does not fit WORLD_SIZE={world}")
    return rank, world


class Ranks:
    """A CPU (gloo) process group used only to order the ranks around the output folder; no-op
    for a single process. ``wait()`` is a barrier."""

    def __init__(self, world: int):
        self.world = world
        self._owned = False
        if world > 1:
            import torch.distributed as dist

            if not os.environ.get("MASTER_ADDR"):
                raise UserError("WORLD_SIZE > 1 needs torchrun (MASTER_ADDR/MASTER_PORT are not set)")
            if not dist.is_initialized():
                dist.init_process_group("gloo")
                self._owned = True

    def wait(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self, ok: bool = True) -> None:
        if self._owned:
            import torch.distributed as dist

            if ok:
                dist.barrier()  # nobody tears its connections down while a peer still uses them
            dist.destroy_process_group()
            self._owned = False


def claim_folder(folder: Path, resume: bool) -> Path:
    """Make ``folder`` this process's (an atomic ``mkdir``: exactly one rank or run wins it)."""
    if resume:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        raise UserError(f"{folder} already exists: two prompts with the same folder name, "
                        "or another run writes there") from None
    return folder
