"""``dreamfusion3d train-novel-view``: train the pose-conditioned novel-view model on pairs of
views from a NeRF-synthetic-layout dataset (``dreamfusion3d make-dataset``).

Plain DDPM training (ε- or v-prediction, diffusers DDPMScheduler) on (noisy target ‖ source view,
camera pair), with the source view and pose dropped together for classifier-free guidance, AdamW, an EMA copy, and checkpoints in
safetensors + JSON (``utils.checkpoint``) that resume exactly: the data order and the noise are
functions of (seed, step, rank), so nothing but the step counter needs to come back for them.
Runs on one process or under ``torchrun --nproc_per_node N`` (DistributedDataParallel: gloo on
CPU, nccl on CUDA); every rank draws a different shard of each global batch.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from ..diffusion.training import LossLog, StopRequest, check_resume, ema_decay, ema_update, frozen_copy, warmup_cosine_lr
from ..utils.checkpoint import load_checkpoint, save_checkpoint
from ..utils.config import save_config
from ..utils.errors import UserError
from ..utils.logging import info, progress
from ..utils.outdir import check_output_folder, has_checkpoint, output_folder
from ..utils.validate import check_model_folder
from .data import ViewSet, load_view_set, object_fraction, pair_batch, pair_indices, step_seed, world_dataset_api
from .distributed import report_rank_sync, setup_distributed
from .model import CameraPrior, NovelViewArchitecture, NovelViewModel, drop_condition
from .preview import preview as preview_grid


@dataclass
class TrainNovelViewConfig:
    """Train the novel-view diffusion model (3DiM-style) on multi-view renders."""

    data: Path = Path("outputs/datasets/world32")
    """Dataset root written by `dreamfusion3d make-dataset` (NeRF-synthetic layout, object-level splits)."""
    out: Path = Path("outputs/novel_view")
    """Run folder: view cache, checkpoints, sample grids, log, exported model."""
    resume: bool = False
    """Continue from ``out/checkpoints/latest`` (same config; ``--steps`` may be raised)."""
    overwrite: bool = False
    """Replace a non-empty --out (the old run is kept aside until the new one has a checkpoint)."""
    steps: int = 3000
    """Total optimisation steps."""
    batch_size: int = 32
    """Pairs per step, summed over all ranks."""
    lr: float = 5e-4
    """Peak AdamW learning rate."""
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    """After warm-up: cosine decay to 10% of ``lr`` at ``steps``, or constant."""
    warmup_steps: int = 200
    """Linear learning-rate warm-up."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    ema_decay: float = 0.999
    """EMA decay (warmed up as min(decay, (1+step)/(10+step)))."""
    cond_dropout: float = 0.1
    """Share of pairs whose source view and pose are zeroed (classifier-free guidance)."""
    arch: NovelViewArchitecture = field(default_factory=NovelViewArchitecture)
    """UNet size and resolution."""
    max_objects: int | None = None
    """Use only the first N training objects (None = all)."""
    seed: int = 0
    """Seed of initialisation, data order and noise."""
    device: str = "auto"
    """auto (cuda:LOCAL_RANK if CUDA is available, else cpu), cpu, cuda, cuda:N, mps; under torchrun on CUDA each rank takes cuda:LOCAL_RANK."""
    num_threads: int = 0
    """torch CPU threads per process (0 = torch's default)."""
    checkpoint_minutes: float = 4.0
    """Write ``out/checkpoints/latest`` at least this often (and on Ctrl-C and at the end)."""
    max_minutes: float | None = None
    """Stop (checkpoint + export) after this much wall time, even before ``steps``."""
    sample_every: int = 500
    """Write a preview grid (source | sample | truth) every N steps (0 = only at the end)."""
    sample_steps: int = 25
    """DDIM steps for preview grids."""
    init_from: Path | None = None
    """Start from the UNet weights of this model folder (save_pretrained layout) instead of random."""
    export_to: Path | None = None
    """Also export the EMA model here at the end (e.g. dreamfusion3d/assets/novel_view)."""
    export_fp16: bool = True
    """Store exported weights in fp16."""


def _lr_at(cfg: TrainNovelViewConfig, step: int, time_frac: float = 0.0) -> float:
    """Warm-up, then cosine decay driven by whichever runs out first: steps or the time budget
    (``time_frac`` = elapsed / max_minutes), so a run cut by ``max_minutes`` still ends annealed."""
    return warmup_cosine_lr(cfg.lr, step, cfg.warmup_steps, cfg.steps, time_frac=time_frac,
                            constant=cfg.lr_schedule == "constant")


def draw_noise(gen: torch.Generator, global_batch: int, shape: tuple[int, ...], num_timesteps: int,
               cond_dropout: float, rank: int = 0, world_size: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    """(t [B], noise [B,3,H,W], drop [B]) for the whole global batch, then this rank's rows: the
    run's randomness does not depend on how many processes share it."""
    t = torch.randint(0, num_timesteps, (global_batch,), generator=gen)
    noise = torch.randn((global_batch, *shape), generator=gen)
    drop = torch.rand(global_batch, generator=gen) < cond_dropout
    return t[rank::world_size], noise[rank::world_size], drop[rank::world_size]


def diffusion_loss(model: torch.nn.Module, core: NovelViewModel, source: Tensor, target: Tensor,
                   src_sph: Tensor, tgt_sph: Tensor, gen: torch.Generator, cond_dropout: float,
                   drawn: tuple[Tensor, Tensor, Tensor] | None = None) -> Tensor:
    """DDPM loss (ε- or v-prediction MSE) for one batch; ``model`` may be the DDP wrapper of ``core``.
    ``drawn`` = precomputed ``draw_noise`` output (else drawn from ``gen`` for this batch)."""
    b, device = target.shape[0], target.device
    if drawn is None:
        drawn = draw_noise(gen, b, tuple(target.shape[1:]), core.scheduler.config.num_train_timesteps, cond_dropout)
    t, noise, drop = (x.to(device) for x in drawn)
    cond, pose = core.condition(source, src_sph, tgt_sph)
    cond, pose = drop_condition(cond, pose, drop)
    x_t = core.scheduler.add_noise(target, noise, t)
    if core.scheduler.config.prediction_type == "v_prediction":
        goal = core.scheduler.get_velocity(target, noise, t)
    else:
        goal = noise
    return F.mse_loss(model(x_t, t, cond, pose), goal)


def _camera_prior(views: ViewSet) -> CameraPrior:
    sph = views.spherical.reshape(-1, 3)
    subset = views.images[:, :4].reshape(-1, *views.images.shape[2:])[:512].float()
    # canonical input camera: the front, slightly above (as a user's photo usually is), at the
    # training cameras' typical distance; the framing is measured on the training views
    radius = round(float(sph[:, 2].median()), 2)
    return CameraPrior(azimuth=0.0, elevation=20.0, radius=radius, fov_y_deg=views.fov_y_deg,
                       object_fraction=round(object_fraction(subset), 3))


def _load_split(cfg: TrainNovelViewConfig, split: str, rank: int, world: int, max_objects: int | None) -> ViewSet:
    cache = cfg.out / "cache"
    if world > 1 and rank != 0:
        dist.barrier()  # rank 0 builds the cache first
    cache.mkdir(parents=True, exist_ok=True)
    views = load_view_set(cfg.data, split, cfg.arch.resolution, max_objects, cache_dir=cache)
    if world > 1 and rank == 0:
        dist.barrier()
    return views


def run(cfg: TrainNovelViewConfig) -> None:
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    latest = cfg.out / "checkpoints" / "latest"
    check_resume(latest, cfg.resume)
    check_output_folder(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume)
    if cfg.init_from is not None:
        check_model_folder(cfg.init_from, "--init-from")
    world_dataset_api()[1](cfg.data, "train")  # the dataset's split list, before anything is written
    if not 0.0 <= cfg.cond_dropout < 1.0:
        raise UserError(f"--cond-dropout must be in [0, 1), got {cfg.cond_dropout}")
    if cfg.batch_size < 1 or cfg.steps < 0:
        raise UserError("--batch-size must be >= 1 and --steps >= 0")
    rank, world, device = setup_distributed(cfg.device)
    if cfg.batch_size % world:
        raise UserError(f"--batch-size {cfg.batch_size} is not divisible by the {world} ranks")
    ok = False
    try:  # rank 0 checks, locks and prepares the folder; the other ranks wait for it
        with (output_folder(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume, started=has_checkpoint)
              if rank == 0 else contextlib.nullcontext()):
            if world > 1:
                dist.barrier()
            _train(cfg, rank, world, device, latest)
            if world > 1:
                dist.barrier()  # rank 0 holds the folder's lock until every rank is done
        ok = True
    finally:
        if world > 1 and dist.is_initialized():
            if ok:
                # The DDP wrapper sits in a reference cycle that holds the process group: freed
                # only by the garbage collector, it used to be torn down during interpreter
                # shutdown, racing the other rank closing its gloo connections (SIGABRT). Free
                # it now, while every rank is alive, then leave together.
                gc.collect()
                dist.barrier()
            dist.destroy_process_group()


def _train(cfg: TrainNovelViewConfig, rank: int, world: int, device: torch.device, latest: Path) -> None:
    main = rank == 0
    if main:
        cfg.out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, cfg.out / "config.yaml", command="train-novel-view")
    views = _load_split(cfg, "train", rank, world, cfg.max_objects)
    preview: ViewSet | None = None
    if main:
        _, list_objects = world_dataset_api()
        for split in ("val", "test"):
            if list_objects(cfg.data, split):
                preview = load_view_set(cfg.data, split, cfg.arch.resolution, 6, cache_dir=cfg.out / "cache")
                break

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = NovelViewModel.from_architecture(cfg.arch, _camera_prior(views)).to(device)
    if cfg.init_from is not None and not cfg.resume:
        init = NovelViewModel.from_pretrained(cfg.init_from)
        try:
            model.unet.load_state_dict(init.unet.state_dict())
        except RuntimeError as exc:
            raise UserError(f"--init-from {cfg.init_from} does not match --arch: {str(exc).splitlines()[0]}") from exc
        info(f"initialised from {cfg.init_from}") if main else None
    ema = frozen_copy(model)
    optimizer = torch.optim.AdamW(model.unet.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, elapsed_before = 0, 0.0
    if cfg.resume:
        state = load_checkpoint(latest, {"unet": model.unet, "ema": ema.unet}, optimizer)
        step = int(state["step"])
        elapsed_before = float(state.get("elapsed_s", 0.0))
        info(f"resumed from {latest} at step {step}") if main else None
    wrapped: torch.nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        wrapped = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    if main:
        n_params = sum(p.numel() for p in model.unet.parameters())
        info(f"novel-view UNet: {n_params / 1e6:.2f} M parameters, {world} rank(s), device {device}, "
             f"{views.num_objects} objects x {views.num_views} views")

    def checkpoint() -> None:
        if main:
            save_checkpoint(latest, {"unet": model.unet, "ema": ema.unet}, optimizer,
                            state={"step": step, "world_size": world, "seed": cfg.seed,
                                   "elapsed_s": elapsed_before + time.time() - t_start})

    def _time_frac() -> float:  # share of the wall-time budget used (over all resumed sessions)
        if cfg.max_minutes is None:
            return 0.0
        frac = (elapsed_before + time.time() - t_start) / (60.0 * cfg.max_minutes)
        if world > 1:  # ranks must agree on the learning rate
            t = torch.tensor([frac], device=device)
            dist.broadcast(t, 0)
            frac = float(t)
        return frac

    # Ctrl-C: finish the step, then checkpoint and leave; twice = leave now. torchrun answers
    # Ctrl-C by sending SIGTERM to its workers: treat both alike
    stop = StopRequest((signal.SIGINT, signal.SIGTERM), second_raises=True).install()
    log = LossLog(cfg.out / "log.jsonl")
    t_start = last_ckpt = time.time()
    bar = progress(total=cfg.steps, initial=step, desc="train-novel-view", unit="step", disable=not main)
    model.train()
    local_b = cfg.batch_size // world
    loss_avg = None
    try:
        while step < cfg.steps:
            t0 = time.time()
            obj, src, tgt = pair_indices(step, cfg.seed, cfg.batch_size, views.num_objects, views.num_views,
                                         rank, world)
            source, target, s_sph, t_sph = pair_batch(views, obj, src, tgt, device)
            gen = torch.Generator().manual_seed(step_seed(cfg.seed, step, 1))
            drawn = draw_noise(gen, cfg.batch_size, tuple(source.shape[1:]), cfg.arch.num_train_timesteps,
                               cfg.cond_dropout, rank, world)
            lr = _lr_at(cfg, step, _time_frac())
            for g in optimizer.param_groups:
                g["lr"] = lr
            loss = diffusion_loss(wrapped, model, source, target, s_sph, t_sph, gen, cfg.cond_dropout, drawn)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.unet.parameters(), 1.0)
            optimizer.step()
            step += 1
            ema_update(ema.unet, model.unet, ema_decay(cfg.ema_decay, step))
            loss_val = float(loss.detach())
            loss_avg = loss_val if loss_avg is None else 0.98 * loss_avg + 0.02 * loss_val
            if main:
                ips = cfg.batch_size / max(time.time() - t0, 1e-6)
                bar.update(1)
                bar.set_postfix(loss=f"{loss_avg:.4f}", img_s=f"{ips:.0f}")
                log.write({"step": step, "loss": round(loss_val, 5), "lr": lr, "img_per_s": round(ips, 1),
                           "time": round(time.time(), 1)})
                if preview is not None and cfg.sample_every and step % cfg.sample_every == 0:
                    preview_grid(ema, preview, cfg.sample_steps, cfg.out / "samples" / f"step_{step:06d}.png", device)
                if time.time() - last_ckpt > 60 * cfg.checkpoint_minutes:
                    checkpoint()
                    last_ckpt = time.time()
            out_of_time = _time_frac() >= 1.0
            flag = torch.tensor([float(stop.requested or out_of_time)], device=device)
            if world > 1:  # every rank stops at the same step
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            if flag.item() > 0:
                break
    finally:
        bar.close()
        stop.restore()
    if world > 1:
        report_rank_sync(model, cfg.out, rank, world, device)
    checkpoint()
    if not main:
        return
    info(f"checkpoint at step {step}: {latest}")
    if stop.requested:
        info(f"interrupted at step {step}: continue with --resume")
        raise KeyboardInterrupt
    if preview is not None:
        preview_grid(ema, preview, cfg.sample_steps, cfg.out / "samples" / f"step_{step:06d}.png", device)
    meta = {"steps": step, "batch_size": cfg.batch_size, "data": str(cfg.data), "final_loss_ema": loss_avg,
            "training_config": "configs/novel_view.yaml", "command": " ".join(["dreamfusion3d"] + sys.argv[1:])}
    ema.save_pretrained(cfg.out / "model", fp16=False, info=meta)
    info(f"EMA model saved to {cfg.out / 'model'}")
    if cfg.export_to is not None:
        ema.save_pretrained(cfg.export_to, fp16=cfg.export_fp16, info=meta)
        info(f"exported to {cfg.export_to} ({'fp16' if cfg.export_fp16 else 'fp32'})")
