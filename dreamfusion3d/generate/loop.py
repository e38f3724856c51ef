"""The DreamFusion loop: random cameras → NeRF render → SDS from a frozen prior → Adam step.

Every step draws its randomness (cameras, light, shading, diffusion time and noise) from one
torch.Generator whose state is checkpointed with the weights, the optimiser moments and the
global RNG (used by the occupancy-grid update), so a killed run resumes to the same result.
"""

from __future__ import annotations

import contextlib
import math
import re
import resource
import time
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

import torch
from torch import Tensor

from ..cameras import sample_cameras
from ..diffusion.training import StopRequest, ema_update, frozen_copy
from ..guidance import PromptProcessor, load_prior
from ..rendering.background import random_backgrounds
from ..representations import build_representation, load_weights, representation_class, save_representation
from ..utils.checkpoint import load_checkpoint, save_checkpoint
from ..utils.config import resumed_config, save_config
from ..utils.device import resolve_device
from ..utils.errors import UserError
from ..utils.io import current_folder, link_folder, staged_folder, write_json_atomic
from ..utils.logging import info, progress, warn
from ..utils.outdir import has_checkpoint, output_folder
from ..utils.validate import validate_config
from ..world.render import headlight_positions
from .checks import Ranks, claim_folder, rank_and_world, read_prompts_file, validate_generate  # noqa: F401
from .config import GenerateConfig
from .memory import apply_memory_plan
from .outputs import export_outputs, save_preview

SHADINGS = ("albedo", "lambertian", "textureless")


def slugify(prompt: str, max_len: int = 60) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")
    return slug[:max_len].strip("-") or "prompt"


LOG_EVERY = 10  # steps between reads of the step figures: the loop's only planned host sync


@dataclass
class StepStats:
    """One step's figures, left on the device (0-d tensors): read them with ``float()`` only when
    they are logged, so a GPU step does not wait for the device."""

    sds: Tensor | float
    orientation: Tensor | float
    opacity: Tensor | float
    total: Tensor | float
    shading: str
    num_samples: int
    terms: dict[str, Tensor] = dc_field(default_factory=dict)
    """Further figures logged next to the above (image → 3D with a prompt: sds_image, sds_text)."""


def transmittance_loss(opacity: Tensor, target: float) -> Tensor:
    """Dream Fields' transmittance term, one per view and averaged: ``relu(τ − T̄)`` with ``T̄`` a
    view's mean transmittance ``1 − α``. Zero while an object covers at most ``1 − τ`` of the frame.
    opacity ``[B, H, W, 1]``."""
    transmittance = 1.0 - opacity.flatten(1).mean(dim=1)
    return torch.relu(target - transmittance).mean()


def lr_factor(optim, step: int, steps: int) -> float:
    """The learning rate of step ``step`` (of ``steps``) as a fraction of each group's base rate: a
    linear warm-up, then 1 (``decay none``) or a cosine down to ``final_lr_fraction`` at the last step."""
    factor = min(1.0, (step + 1) / max(1, optim.warmup_steps))
    if optim.decay == "cosine" and step >= optim.warmup_steps:
        frac = min(1.0, (step - optim.warmup_steps) / max(1, steps - 1 - optim.warmup_steps))
        factor = optim.final_lr_fraction + (1 - optim.final_lr_fraction) * 0.5 * (1 + math.cos(math.pi * frac))
    return factor


class Generation:
    """One prompt's optimisation: owns the 3D representation, prior, conditioning and optimiser."""

    def __init__(self, cfg: GenerateConfig, prompt: str, out: Path, prior=None):
        self.cfg = cfg
        self.prompt = prompt
        self.out = out
        self.device = resolve_device(cfg.device, announce=False)
        self.prior = prior if prior is not None else load_prior(cfg.prior, device=self.device)
        self.prior.defer_finite_check = True  # NaN/Inf steps are reported every LOG_EVERY steps
        self._build_guidance()
        torch.manual_seed(cfg.seed)
        self.representation = build_representation(cfg.geometry, cfg).to(self.device)
        self.optimizer = torch.optim.Adam(self._param_groups(), betas=cfg.optim.betas, eps=cfg.optim.eps)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.step = 0
        self.timings: dict[str, float] = {"render": 0.0, "prior": 0.0, "backward": 0.0, "occupancy": 0.0}
        self.history: list[dict] = []
        self.ema = frozen_copy(self.representation) if cfg.optim.ema_decay > 0.0 else None

    # ------------------------------------------------------------------ setup
    def _build_guidance(self) -> None:
        """What scores the renders; text → 3D: the prompt's (view-dependent) embeddings.
        Image → 3D overrides this with the image-conditioned prior's conditioning."""
        self.prompts = PromptProcessor.from_config(self.prior, self.prompt, self.cfg.prompting)

    def guidance_loss(self, images: Tensor, cams, az: Tensor, el: Tensor):
        """The score-distillation term for renders ``images [B,3,H,W]`` of ``cams``; an ``SDSOutput``."""
        return self.prompts.sds_loss(images, az, el, generator=self.generator,
                                     progress=self.step / max(1, self.cfg.steps))

    def step_terms(self) -> dict[str, Tensor]:
        """Figures of the step just taken to log beside sds/opacity/orientation/total (detached 0-d
        tensors; none for text → 3D)."""
        return {}

    def report_nonfinite(self) -> None:
        """Warn about the steps whose SDS gradient was not finite (every LOG_EVERY steps)."""
        self.prior.report_nonfinite()

    def extra_losses(self) -> dict[str, Tensor]:
        """Further weighted loss terms of a step (none for text → 3D; image → 3D adds its
        reference-view losses here)."""
        return {}

    def _param_groups(self) -> list[dict]:
        o = self.cfg.optim
        groups = self.representation.param_groups(o.lr, o.lr_network, o.lr_background)
        return [{**g, "base_lr": g["lr"]} for g in groups]

    # ------------------------------------------------------------------ checkpoints
    def save(self, name: str = "latest") -> Path:
        """Weights (``load_representation`` format) plus ``trainer/`` (optimiser, RNG, step), staged
        in a sibling folder and swapped in, so a kill at any moment leaves one complete checkpoint."""
        folder = self.out / "checkpoints" / name
        with staged_folder(folder) as staging:
            save_representation(staging, self.representation, {"prompt": self.prompt, "step": self.step}, staged=False)
            save_checkpoint(staging / "trainer", self._ema_modules(), self.optimizer, {"run": self.generator},
                            {"step": self.step, "prompt": self.prompt, "history": self.history},
                            global_rng=self.device, staged=False)  # CPU + CUDA RNG (nerfacc's CUDA sampler draws from it)
        return folder

    def _ema_modules(self) -> dict:
        return {} if self.ema is None else {"ema": self.ema}

    def resume_latest(self) -> None:
        """Continue from ``OUT/checkpoints/latest`` (or its ``.old`` copy if a kill came mid-swap);
        without one, say so and start from step 0."""
        latest = current_folder(self.out / "checkpoints" / "latest")
        if (latest / "trainer").exists():
            self.load(latest)
            info(f"resumed at step {self.step}")
        else:
            warn(f"no checkpoint in {self.out}; starting from step 0")

    def load(self, folder: Path) -> None:
        load_weights(folder, self.representation)
        state = load_checkpoint(folder / "trainer", self._ema_modules(), self.optimizer, {"run": self.generator},
                                global_rng=self.device)
        if state.get("prompt") != self.prompt:
            raise UserError(f"checkpoint {folder} is for prompt {state.get('prompt')!r}, not {self.prompt!r}")
        self.step = int(state["step"])
        self.history = state.get("history", [])
        if "torch_rng" in state:  # checkpoints written before the RNG states moved into the tensors
            torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))

    # ------------------------------------------------------------------ one step
    def _lights(self, cam_positions: Tensor) -> Tensor:  # [B,3] -> [B,3]
        s = self.cfg.shading
        if s.light == "headlight":
            return headlight_positions(cam_positions)
        b = cam_positions.shape[0]
        g = self.generator
        direction = cam_positions / cam_positions.norm(dim=-1, keepdim=True)
        jitter = torch.randn(b, 3, generator=g) * math.radians(s.light_jitter_deg)
        direction = direction + jitter.to(direction.device)
        direction = direction / direction.norm(dim=-1, keepdim=True)
        lo, hi = s.light_distance_range
        dist = lo + (hi - lo) * torch.rand(b, 1, generator=g)
        return direction * dist.to(direction.device)

    def _shading(self) -> str:
        s = self.cfg.shading
        u = torch.rand(1, generator=self.generator).item()
        if self.step < s.albedo_only_steps:
            return "albedo"
        if u < s.albedo_prob:
            return "albedo"
        if u < s.albedo_prob + s.lambertian_prob:
            return "lambertian"
        return "textureless"

    def _random_background(self, out: dict) -> Tensor:  # rgb [B,H,W,3]
        b = self.cfg.background
        return random_backgrounds(out["rgb"], out["opacity"], b.random_prob, self.generator, tuple(b.color))

    def _update_ema(self) -> None:
        """Fold this step's parameters into the moving average (``optim.ema_decay`` > 0): a copy at
        step ``optim.ema_start``, then ``ema ← decay·ema + (1 − decay)·θ`` (the checkpoints carry it)."""
        o = self.cfg.optim
        if self.ema is not None and self.step >= o.ema_start:
            ema_update(self.ema, self.representation, 0.0 if self.step == o.ema_start else o.ema_decay)

    def _apply_ema(self) -> None:
        """Put the averaged parameters into the representation (the result that is saved and exported)."""
        if self.ema is None or self.step <= self.cfg.optim.ema_start:
            return
        ema_update(self.representation, self.ema, 0.0)  # decay 0: a copy of the average

    def _set_lr(self) -> None:
        factor = lr_factor(self.cfg.optim, self.step, self.cfg.steps)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor

    def train_step(self) -> StepStats:
        cfg = self.cfg
        cams, az, el = sample_cameras(cfg.cameras, cfg.batch_size, cfg.resolution, generator=self.generator,
                                      device=self.device)
        lights = self._lights(cams.positions)
        shading = self._shading()
        t0 = time.perf_counter()
        out = self.representation.render(cams, shading=shading, light_positions=lights, ambient=cfg.shading.ambient)
        images = self._random_background(out).permute(0, 3, 1, 2)  # [B,3,H,W]
        t1 = time.perf_counter()
        sds = self.guidance_loss(images, cams, az, el)
        t2 = time.perf_counter()
        opacity = out["opacity"].clamp(1e-5, 1 - 1e-5)
        l = cfg.losses
        loss_orient = out["orientation_loss"]
        loss_opacity = opacity.mean()
        loss_entropy = -(opacity * opacity.log() + (1 - opacity) * (1 - opacity).log()).mean()
        total = (sds.loss + l.orientation.at(self.step) * loss_orient + l.opacity.at(self.step) * loss_opacity
                 + l.entropy.at(self.step) * loss_entropy)
        w_transmittance = l.transmittance.at(self.step)
        if w_transmittance > 0.0:  # zero weight: not even computed (the presets that keep it off)
            total = total + w_transmittance * transmittance_loss(out["opacity"], l.transmittance_target)
        for term in (*self.representation.regularisers(out, self.step).values(), *self.extra_losses().values()):
            total = total + term
        self._set_lr()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self._update_ema()
        t3 = time.perf_counter()
        self.representation.update(self.step)
        t4 = time.perf_counter()
        self.step += 1
        for k, dt in zip(self.timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            self.timings[k] += dt
        return StepStats(sds.loss.detach(), loss_orient.detach(), loss_opacity.detach(), total.detach(), shading,
                         int(out.get("num_samples", 0)), dict(self.step_terms()))

    # ------------------------------------------------------------------ the run
    def run(self) -> dict:
        cfg = self.cfg
        stop = StopRequest().install()  # Ctrl-C: finish the step, checkpoint, leave
        t_start = time.time()
        bar = progress(total=cfg.steps, initial=self.step, desc=f"generate: {self.prompt[:40]}", unit="step")
        try:
            while self.step < cfg.steps and not stop.requested:
                stats = self.train_step()
                bar.update(1)
                if self.step % LOG_EVERY == 0 or self.step == cfg.steps:  # the figures' one host sync
                    row = {k: float(getattr(stats, k)) for k in ("sds", "opacity", "orientation", "total")}
                    row.update((k, float(v)) for k, v in stats.terms.items())
                    bar.set_postfix(sds=f"{row['sds']:.3g}", opacity=f"{row['opacity']:.2f}")
                    self.history.append({"step": self.step, **row})
                    self.report_nonfinite()
                if cfg.output.preview_every and self.step % cfg.output.preview_every == 0:
                    save_preview(self.representation, self.out / "progress" / f"step_{self.step:06d}.png", cfg)
                if self.step % cfg.output.checkpoint_every == 0 and self.step < cfg.steps:
                    self.save("latest")
        finally:
            bar.close()
            stop.restore()
        train_time = time.time() - t_start
        if stop.requested:
            self.save("latest")
            info(f"interrupted at step {self.step}: checkpoint written; continue with --resume {self.out}")
            raise KeyboardInterrupt
        self._apply_ema()
        final = self.save("final")  # latest = the same files, linked (the tensors are written once)
        link_folder(final, final.with_name("latest"))
        t_export = time.time()
        files, figures = export_outputs(self.representation, self.out, cfg)
        export_time = time.time() - t_export
        metrics = {
            "prompt": self.prompt,
            "steps": self.step,
            "train_seconds_this_session": train_time,
            "export_seconds": export_time,
            "stage_seconds": {k: round(v, 3) for k, v in self.timings.items()},
            "final": self.history[-1] if self.history else {},
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "outputs": files,
            "device": str(self.device),
            "geometry": self.representation.kind,
            **figures,
            **self.representation.stats(),
        }
        write_json_atomic(self.out / "metrics.json", metrics)
        return metrics


# ---------------------------------------------------------------------- command


def run(cfg: GenerateConfig) -> None:
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    if cfg.resume is not None:
        cfg = resumed_config(GenerateConfig, cfg.resume, "generate", "a generate run")
        validate_config("generate", cfg)
    prompts = validate_generate(cfg)  # everything is checked before anything is written
    representation_class(cfg.geometry)  # an unknown --geometry is an error before anything is written
    device = resolve_device(cfg.device, prior_kind=cfg.prior.kind)  # checked before anything is written
    if cfg.vram_gb is not None and device.type != "cuda":
        warn(f"--vram-gb plans GPU memory; ignored on {device}")
    elif cfg.vram_gb is not None:
        apply_memory_plan(cfg)  # before config.yaml is written, so that it records the plan
    rank, world = rank_and_world()
    multi, resuming = cfg.prompts_file is not None, cfg.resume is not None
    jobs = [(p, cfg.out / slugify(p) if multi else cfg.out) for p in prompts][rank::world]
    ranks, ok = Ranks(world), False
    try:  # rank 0 checks, locks and prepares the folder; the other ranks wait for it
        with (output_folder(cfg.out, overwrite=cfg.overwrite, resume=resuming, started=has_checkpoint)
              if rank == 0 else contextlib.nullcontext(cfg.out)):
            if rank == 0 and not resuming:
                save_config(cfg, cfg.out / "config.yaml", command="generate")  # keeps --device as given (auto)
            cfg.device = str(device)
            ranks.wait()
            _run_jobs(cfg, jobs, multi, resuming)
            ranks.wait()  # rank 0 holds the lock until every rank is done
        ok = True
    finally:
        ranks.close(ok)


def _run_jobs(cfg: GenerateConfig, jobs: list[tuple[str, Path]], multi: bool, resuming: bool) -> None:
    prior = None
    for prompt, out in jobs:
        if multi:
            claim_folder(out, resuming)
        gen = Generation(cfg, prompt, out, prior=prior)
        info(f"prompt {prompt!r} -> {out}")
        prior = gen.prior  # load the prior once for all prompts
        if resuming:
            gen.resume_latest()
        metrics = gen.run()
        info(f"done in {metrics['train_seconds_this_session']:.0f} s: " + ", ".join(metrics["outputs"]))
