"""``dreamfusion3d reconstruct``: fit the NeRF g(θ) to one object of a multi-view dataset.

Classic NeRF fitting, used to validate the renderer end to end: random ray batches from all
training views, MSE against the images composited over the dataset's background (white for
the procedural world), Adam, occupancy-grid updates. Checkpoints (``save_representation``) are written
periodically and at the end (also on Ctrl-C); held-out views are rendered to PNG and scored
(PSNR, SSIM from scikit-image) into ``<out>/metrics.json``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...fields import FieldConfig
from ...rendering import BackgroundConfig, RendererConfig
from .. import NeRF, build_nerf, save_representation
from ...utils.config import save_config
from ...utils.device import resolve_device
from ...utils.errors import UserError
from ...utils.images import psnr, save_png
from ...utils.io import write_json_atomic
from ...utils.logging import info, progress
from ...utils.outdir import check_output_folder, has_checkpoint, output_folder


def _default_field() -> FieldConfig:
    # No blob: the object's extent is unknown, so start with light fog everywhere and carve.
    return FieldConfig(kind="dense", blob="none", density_shift=-1.0, dense_resolution=64, dense_features=8)


def _default_renderer() -> RendererConfig:
    # Frequent updates and a short memory so that carved-out fog leaves the grid within a few hundred steps.
    return RendererConfig(num_steps=128, occupancy_resolution=64, occupancy_update_every=8, occupancy_warmup_steps=256,
                          occupancy_ema_decay=0.8)


@dataclass
class ReconstructConfig:
    """Fit a NeRF to one object of a NeRF-synthetic-layout dataset and report held-out PSNR."""

    data: Path
    """Object folder with transforms_{train,test}.json (e.g. <dataset>/train/obj_00000)."""
    out: Path
    """Run folder: checkpoints/, renders/, metrics.json, config.yaml."""
    steps: int = 1500
    """Optimisation steps."""
    batch_rays: int = 1024
    """Random rays per step (drawn from all training views)."""
    lr: float = 1e-2
    """Adam learning rate (decays exponentially to lr * lr_final_factor)."""
    lr_final_factor: float = 0.1
    """Learning-rate factor at the last step."""
    mask_weight: float = 0.1
    """Weight of MSE(opacity, alpha) on the training rays (0 = photometric loss only); clears fog fast."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Colour the RGBA images are composited over (and the renderer's fixed background)."""
    test_split: str = "test"
    """Split of held-out views to score and render."""
    checkpoint_every: int = 500
    """Write checkpoints/latest every n steps (0 = only at the end)."""
    seed: int = 0
    """Seed of the initialisation and the ray batches."""
    device: str = "auto"
    """auto (cuda:LOCAL_RANK if CUDA is available, else cpu), cpu, cuda, cuda:N, mps."""
    threads: int = 0
    """CPU threads for torch (0 = torch's default). On a busy machine 1 thread can be faster."""
    overwrite: bool = False
    """Replace a non-empty --out (the old run is kept aside until the new one has a checkpoint)."""
    field: FieldConfig = dc_field(default_factory=_default_field)
    """The NeRF field."""
    renderer: RendererConfig = dc_field(default_factory=_default_renderer)
    """Sampling and occupancy grid."""


def training_rays(images: Tensor, cameras, background: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """All rays of a view set: origins, dirs ``[N*H*W, 3]`` and target colours over ``background``."""
    origins, dirs = cameras.generate_rays()  # [N, H, W, 3]
    rgb, alpha = images[..., :3], images[..., 3:]
    target = rgb * alpha + (1.0 - alpha) * background
    return origins.reshape(-1, 3), dirs.reshape(-1, 3), target.reshape(-1, 3)


def fit(
    renderer: NeRF,
    images: Tensor,  # [N, H, W, 4] RGBA in [0, 1]
    cameras,
    steps: int,
    batch_rays: int = 1024,
    lr: float = 1e-2,
    lr_final_factor: float = 0.1,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    seed: int = 0,
    on_checkpoint=None,
    checkpoint_every: int = 0,
    mask_weight: float = 0.0,
) -> dict[str, Any]:
    """Photometric fitting loop; returns training statistics."""
    device = next(renderer.parameters()).device
    bg = torch.tensor(background, dtype=torch.float32, device=device)
    origins, dirs, target = training_rays(images.to(device), cameras.to(device), bg)
    alpha = images[..., 3].reshape(-1, 1).to(device)
    params = list(renderer.parameters())
    optimizer = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.99), eps=1e-15)
    gamma = lr_final_factor ** (1.0 / max(steps, 1))
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)
    generator = torch.Generator().manual_seed(seed)
    renderer.train()
    start = time.perf_counter()
    samples_seen, loss_ema = 0, None
    bar = progress(range(steps), desc="reconstruct", unit="step")
    for step in bar:
        renderer.update_occupancy(step)
        idx = torch.randint(0, origins.shape[0], (batch_rays,), generator=generator).to(device)
        out = renderer.render_rays(origins[idx], dirs[idx])
        loss = torch.nn.functional.mse_loss(out["rgb"], target[idx])
        total = loss + mask_weight * torch.nn.functional.mse_loss(out["opacity"], alpha[idx]) if mask_weight > 0 else loss
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        scheduler.step()
        samples_seen += int(out["num_samples"])
        loss_ema = loss.item() if loss_ema is None else 0.9 * loss_ema + 0.1 * loss.item()
        if step % 10 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{loss_ema:.4f}", psnr=f"{-10 * math.log10(max(loss_ema, 1e-10)):.1f}",
                            spr=f"{out['num_samples'] / batch_rays:.1f}")
        if on_checkpoint is not None and checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            on_checkpoint(step + 1)
    bar.close()
    return {
        "steps": steps,
        "train_seconds": time.perf_counter() - start,
        "train_psnr_recent": -10 * math.log10(max(loss_ema or 1.0, 1e-10)),
        "mean_samples_per_ray": samples_seen / max(steps * batch_rays, 1),
        "occupied_fraction": renderer.occupied_fraction(),
    }


@torch.no_grad()
def evaluate(renderer: NeRF, images: Tensor, cameras, background=(1.0, 1.0, 1.0)) -> dict[str, Any]:
    """Render every view; PSNR/SSIM against the images over ``background``; sample counts."""
    from skimage.metrics import structural_similarity

    renderer.eval()
    device = next(renderer.parameters()).device
    bg = torch.tensor(background, dtype=torch.float32)
    gt = (images[..., :3] * images[..., 3:] + (1 - images[..., 3:]) * bg).numpy()
    renders, psnrs, ssims, samples, dense = [], [], [], 0, 0
    for i in range(cameras.batch_size):
        out = renderer.render(cameras[i].to(device))
        img = out["rgb"][0].clamp(0, 1).cpu().numpy()
        renders.append(img)
        psnrs.append(psnr(img, gt[i]))
        ssims.append(float(structural_similarity(gt[i], img, data_range=1.0, channel_axis=-1)))
        samples += out["num_samples"]
        dense += int(out["num_dense"])
    return {
        "psnr": float(np.mean(psnrs)),
        "ssim": float(np.mean(ssims)),
        "psnr_per_view": psnrs,
        "num_samples": samples,
        "num_dense_samples": dense,
        "sample_fraction": samples / max(dense, 1),
        "renders": renders,
    }


def run(config: ReconstructConfig) -> None:
    from ...world.dataset import load_nerf_synthetic

    if config.steps < 1 or config.batch_rays < 1:
        raise UserError("reconstruct: --steps and --batch-rays must be positive")
    check_output_folder(config.out, overwrite=config.overwrite)
    train = load_nerf_synthetic(config.data, "train")
    test = load_nerf_synthetic(config.data, config.test_split)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    renderer = build_nerf(config.field, config.renderer, BackgroundConfig(kind="fixed", color=config.background))
    renderer.to(device)
    with output_folder(config.out, overwrite=config.overwrite, started=has_checkpoint) as out:
        save_config(config, out / "config.yaml", command="reconstruct")
        n, h, w = train.images.shape[:3]
        info(f"fitting {config.data} ({n} views, {w}x{h}) for {config.steps} steps on {device}")

        def checkpoint(step: int, name: str = "latest") -> None:
            save_representation(out / "checkpoints" / name, renderer, {"step": step, "data": str(config.data)})

        try:
            stats = fit(renderer, train.images, train.cameras, config.steps, config.batch_rays, config.lr,
                        config.lr_final_factor, config.background, config.seed, checkpoint, config.checkpoint_every,
                        config.mask_weight)
        except KeyboardInterrupt:
            checkpoint(-1)
            info(f"interrupted: checkpoint saved to {out / 'checkpoints' / 'latest'}")
            raise
        checkpoint(config.steps, "final")
        result = evaluate(renderer, test.images, test.cameras, config.background)
        # The same views marched densely (occupancy grid off): what the grid's skipping costs in PSNR.
        renderer.config.use_occupancy = False
        dense = evaluate(renderer, test.images, test.cameras, config.background)
        renderer.config.use_occupancy = True
        for i, img in enumerate(result.pop("renders")):
            save_png(out / "renders" / f"{config.test_split}_{i:03d}.png", img)
        metrics = {
            "test_psnr": result["psnr"], "test_ssim": result["ssim"], "test_psnr_per_view": result["psnr_per_view"],
            "test_views": test.images.shape[0], "train_views": n, "resolution": [h, w],
            "eval_samples": result["num_samples"], "eval_dense_samples": result["num_dense_samples"],
            "eval_sample_fraction": result["sample_fraction"], "test_psnr_dense_march": dense["psnr"],
            "torch_threads": torch.get_num_threads(), **stats,
        }
        write_json_atomic(out / "metrics.json", metrics)
        info(f"held-out PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.3f} over {test.images.shape[0]} views; "
             f"{stats['train_seconds']:.0f} s; field evaluated {result['sample_fraction']:.0%} of a dense march's samples "
             f"(dense march: {dense['psnr']:.2f} dB)")
