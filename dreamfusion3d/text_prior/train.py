"""``dreamfusion3d train-prior``: train the bundled text-conditioned pixel diffusion model on
captioned renders of the procedural world.

The dataset (renders + captions with view words) is made once and cached in the run folder. The
loop is plain DDPM ε-prediction with caption dropout for classifier-free guidance, an EMA copy of
the weights, and checkpoints (safetensors + JSON, no pickle) that resume exactly: model, EMA,
optimizer moments and the data/noise RNG all come back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..diffusion.training import LossLog, StopRequest, check_resume, ema_decay, ema_update, frozen_copy, warmup_cosine_lr
from ..utils.checkpoint import load_checkpoint, save_checkpoint
from ..utils.config import save_config
from ..utils.device import resolve_device
from ..utils.errors import UserError
from ..utils.logging import info, progress
from ..utils.outdir import check_output_folder, has_checkpoint, output_folder
from ..utils.validate import check_model_folder
from .data import PriorDataConfig, load_or_build_dataset, training_images
from .model import TextPriorArchitecture, TextPriorModel
from .sampling import sample_images, save_grid
from .text_encoder import BUNDLED_ENCODER, SentenceEncoder

PREVIEW_CAPTIONS = (
    "a red cube",
    "a blue sphere",
    "a green cylinder",
    "a yellow cone",
    "a purple torus",
    "an orange cube, side view",
    "a white sphere",
    "a red cone, overhead view",
)


@dataclass
class TrainPriorConfig:
    """Train the bundled text prior (pixel-space DDPM conditioned on MiniLM sentence embeddings)."""

    out: Path = Path("outputs/text_prior")
    """Run folder: dataset cache, checkpoints, sample grids, training log, exported model."""
    resume: bool = False
    """Continue from ``out/checkpoints/latest`` (same config)."""
    overwrite: bool = False
    """Replace a non-empty --out (the old run is kept aside until the new one has a checkpoint)."""
    steps: int = 4000
    """Total optimisation steps."""
    batch_size: int = 32
    """Images per step."""
    lr: float = 3e-4
    """Peak AdamW learning rate (linear warm-up, cosine decay to 10%)."""
    warmup_steps: int = 200
    """Learning-rate warm-up steps."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    ema_decay: float = 0.999
    """EMA decay (with the usual (1+n)/(10+n) warm-up, so early EMA weights are usable)."""
    caption_dropout: float = 0.1
    """Probability of replacing a caption by the empty one (classifier-free guidance)."""
    session_steps: int = 0
    """Stop after this many steps in this invocation, with a checkpoint (0: no limit); continue
    later with --resume. Trains in chunks on machines that cannot run for hours."""
    checkpoint_minutes: float = 5.0
    """Write ``checkpoints/latest`` this often (and on Ctrl-C and at the end)."""
    sample_every: int = 500
    """Write a sample grid every N steps (0: never)."""
    sample_steps: int = 25
    """DDIM steps for the preview grids."""
    seed: int = 0
    """Seed for the dataset, initialisation, batches and noise."""
    device: str = "auto"
    """auto (cuda:LOCAL_RANK if CUDA is available, else cpu), cpu, cuda, cuda:N, mps."""
    num_threads: int = 0
    """torch CPU threads (0: torch's default)."""
    text_encoder: str = BUNDLED_ENCODER
    """Sentence encoder: the bundled MiniLM, a hub id or a local folder."""
    export_to: Path | None = None
    """Also save the final EMA model as a ``from_pretrained`` folder here (e.g. the package assets)."""
    export_fp16: bool = True
    """Store exported weights in float16 (halves the size)."""
    init_from: Path | None = None
    """Start from the weights of this text-prior folder (fine-tuning), e.g. the shipped one;
    its architecture must match ``arch``."""
    text_norm: bool = True
    """Centre the caption embeddings and scale them to unit RMS before the UNet's projection (the
    statistics come from the training captions; folded back into the weights on export)."""
    arch: TextPriorArchitecture = field(default_factory=TextPriorArchitecture)
    """UNet size."""
    data: PriorDataConfig = field(default_factory=PriorDataConfig)
    """Training data."""


# ---------------------------------------------------------------- training


def _lr_at(cfg: TrainPriorConfig, step: int) -> float:
    return warmup_cosine_lr(cfg.lr, step, cfg.warmup_steps, cfg.steps)


def training_step(
    model: TextPriorModel,
    x0: Tensor,
    emb: Tensor,
    uncond: Tensor,
    cfg: TrainPriorConfig,
    gen: torch.Generator,
) -> Tensor:
    """DDPM ε-prediction loss on one batch (x0 in [-1, 1]); captions dropped with ``caption_dropout``."""
    b = x0.shape[0]
    drop = torch.rand(b, generator=gen) < cfg.caption_dropout
    emb = torch.where(drop[:, None].to(emb.device), uncond.expand_as(emb), emb)
    t = torch.randint(0, model.scheduler.config.num_train_timesteps, (b,), generator=gen).to(x0.device)
    noise = torch.randn(x0.shape, generator=gen).to(x0.device)
    x_t = model.scheduler.add_noise(x0, noise, t)
    return F.mse_loss(model(x_t, t, emb), noise)


def text_normalisation(table: Tensor) -> tuple[Tensor, float]:
    """Mean ``[D]`` of the distinct training captions' embeddings and 1 / RMS of the centred ones."""
    mean = table.mean(0)
    rms = float((table - mean).pow(2).mean().sqrt())
    return mean, 1.0 / max(rms, 1e-8)


def _load_initial_weights(model: TextPriorModel, folder: Path) -> None:
    source = TextPriorModel.from_pretrained(folder)
    if source.text_encoder_id != model.text_encoder_id:
        raise UserError(f"--init-from {folder} was trained with text encoder {source.text_encoder_id}, not {model.text_encoder_id}")
    theirs = {k: v.float() for k, v in source.unet.state_dict().items()}
    ours = model.unet.state_dict()
    bad = [k for k in ours if k not in theirs or theirs[k].shape != ours[k].shape]
    if bad or len(theirs) != len(ours):
        raise UserError(f"--init-from {folder} does not match the configured architecture (first mismatch: {(bad or ['extra keys'])[0]})")
    model.unet.load_state_dict(theirs)
    info(f"initialised from {folder}")


def run(cfg: TrainPriorConfig) -> None:
    resolve_device(cfg.device)  # a bad --device is an error before anything is written
    latest = cfg.out / "checkpoints" / "latest"
    check_resume(latest, cfg.resume)
    check_output_folder(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume)
    if cfg.init_from is not None:
        check_model_folder(cfg.init_from, "--init-from")
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    with output_folder(cfg.out, overwrite=cfg.overwrite, resume=cfg.resume, started=has_checkpoint):
        _train(cfg, latest)


def _train(cfg: TrainPriorConfig, latest: Path) -> None:
    save_config(cfg, cfg.out / "config.yaml", command="train-prior")
    device = resolve_device(cfg.device)

    torch.manual_seed(cfg.seed)
    model = TextPriorModel.from_architecture(cfg.arch, text_encoder_id=cfg.text_encoder).to(device)
    if cfg.init_from is not None:  # checked before the (slow) dataset, so a bad folder fails at once
        _load_initial_weights(model, cfg.init_from)
    images, captions = load_or_build_dataset(cfg)
    info(f"{len(captions)} training images, {len(set(captions))} distinct captions")
    encoder = SentenceEncoder.from_pretrained(cfg.text_encoder, device=device)
    unique = sorted(set(captions))
    index = {c: i for i, c in enumerate(unique)}
    table = torch.cat([encoder.encode(unique[i : i + 256]) for i in range(0, len(unique), 256)]).to(device)
    caption_ids = torch.tensor([index[c] for c in captions])
    uncond = encoder.encode([""]).to(device)

    if cfg.text_norm:
        mean, scale = text_normalisation(table)
        model.set_text_normalisation(mean, scale)
        info(f"caption embeddings centred and scaled by {scale:.1f} (RMS of the centred embeddings: {1 / scale:.4f})")
    ema = frozen_copy(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    step = 0
    if cfg.resume:
        state = load_checkpoint(latest, {"model": model, "ema": ema}, optimizer, {"data": gen})
        step = int(state["step"])
        info(f"resumed from {latest} at step {step}")
    info(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters")

    def checkpoint() -> None:
        extra = {"step": step}
        if model.text_mean is not None:
            extra["text_norm"] = {"mean": model.text_mean.tolist(), "scale": model.text_scale}
        save_checkpoint(latest, {"model": model, "ema": ema}, optimizer, {"data": gen}, extra)

    log = LossLog(cfg.out / "log.jsonl")
    last_ckpt = time.time()
    bar = progress(total=cfg.steps, initial=step, desc="train-prior", unit="step")
    model.train()
    with StopRequest() as stop:  # Ctrl-C: finish the current step, then checkpoint and leave
        try:
            session_end = step + cfg.session_steps if cfg.session_steps > 0 else cfg.steps
            while step < min(cfg.steps, session_end) and not stop.requested:
                t0 = time.time()
                idx = torch.randint(0, images.shape[0], (cfg.batch_size,), generator=gen)
                x0 = training_images(images[idx], cfg.data.random_background_prob, gen).to(device)
                emb = table[caption_ids[idx].to(device)]
                for g in optimizer.param_groups:
                    g["lr"] = _lr_at(cfg, step)
                loss = training_step(model, x0, emb, uncond, cfg, gen)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                step += 1
                ema_update(ema, model, ema_decay(cfg.ema_decay, step))
                ips = cfg.batch_size / max(time.time() - t0, 1e-6)
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{ips:.0f}")
                log.write({"step": step, "loss": loss.item(), "img_per_s": ips, "time": time.time()})
                if cfg.sample_every and step % cfg.sample_every == 0:
                    g = torch.Generator().manual_seed(1234)
                    imgs = sample_images(ema, encoder, list(PREVIEW_CAPTIONS), cfg.sample_steps, 5.0, g, device)
                    save_grid(imgs, cfg.out / "samples" / f"step_{step:06d}.png")
                if time.time() - last_ckpt > 60 * cfg.checkpoint_minutes:
                    checkpoint()
                    last_ckpt = time.time()
        finally:
            bar.close()
    checkpoint()
    info(f"checkpoint at step {step}: {latest}")
    if stop.requested or step < cfg.steps:
        info(f"stopped at step {step} of {cfg.steps}: continue with --resume")
        if stop.requested:
            raise KeyboardInterrupt
        return
    ema.save_pretrained(cfg.out / "prior", fp16=False, info={"steps": step})
    info(f"EMA model saved to {cfg.out / 'prior'}")
    if cfg.export_to is not None:
        ema.save_pretrained(cfg.export_to, fp16=cfg.export_fp16, info={"steps": step, "training_config": "configs/train_prior.yaml"})
        info(f"exported to {cfg.export_to}")


def export_checkpoint(run_dir: Path, out: Path, fp16: bool = False) -> int:
    """Save the EMA weights of ``run_dir/checkpoints/latest`` as a ``from_pretrained`` folder
    (to try an intermediate prior before training ends); returns the checkpoint's step."""
    import yaml

    from ..utils.config import from_dict

    data = yaml.safe_load((run_dir / "config.yaml").read_text())
    data.pop("command", None)
    cfg = from_dict(TrainPriorConfig, data)
    latest = run_dir / "checkpoints" / "latest"
    ema = TextPriorModel.from_architecture(cfg.arch, text_encoder_id=cfg.text_encoder)
    state = load_checkpoint(latest, {"ema": ema})
    if "text_norm" in state:  # weights live in the normalised input space: set it, then reload them
        ema.set_text_normalisation(torch.tensor(state["text_norm"]["mean"]), state["text_norm"]["scale"])
        state = load_checkpoint(latest, {"ema": ema})
    ema.save_pretrained(out, fp16=fp16, info={"steps": int(state["step"])})
    return int(state["step"])
