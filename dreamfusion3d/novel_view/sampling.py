"""DDIM (or DPM-Solver++ / UniPC) sampling of novel views with classifier-free guidance and 3DiM's stochastic conditioning.

Views are generated one after another. With stochastic conditioning (the default) every
denoising step of a new view conditions on a view drawn at random from the input and the views
finished so far, each with its own relative pose; over the ~50 steps the new view is pulled
towards agreement with all of them, which is what keeps a set of views consistent without a 3D
representation. ``stochastic=False`` conditions every step on the input alone.

3DiM draws the conditioning view uniformly. Generated views carry the model's errors, and a
uniform draw gives the one real view less and less weight as the set grows; ``input_weight``
keeps a fixed share of the steps on the input instead (the rest stay uniform over the
generated views).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..diffusion.sampling import denoise, make_scheduler
from ..utils.logging import progress
from .model import NovelViewModel, drop_condition
from .pose import angular_distance_deg

# Sampling defaults of `novel-view` and `evaluate-novel-view`, chosen on the val split of the
# world dataset for the shipped model (docs/RESULTS.md): guidance on the source view, and the share
# of stochastic-conditioning steps that condition on the input.
GUIDANCE_SCALE = 2.0
INPUT_WEIGHT: float | None = 0.75

# Samplers (diffusers schedulers on the model's training noise schedule) and their default step
# counts: DDIM at 50 steps was the only sampler before issue 23; the multistep solvers reach the
# same PSNR on held-out objects in fewer steps (docs/RESULTS.md, "Speed (issue 23)").
SAMPLERS = ("ddim", "dpmsolver", "unipc")  # dpmsolver: DPM-Solver++ 2M (diffusers' default order and algorithm)
DEFAULT_STEPS = {"ddim": 50, "dpmsolver": 25, "unipc": 25}


def generation_order(src_sph: Tensor, tgt_sph: Tensor) -> list[int]:
    """Targets ordered by viewing-angle distance from the input (nearest first): the far side is
    generated last, when the most context exists. ``src_sph [3]``, ``tgt_sph [K, 3]``."""
    dist = angular_distance_deg(src_sph.expand_as(tgt_sph), tgt_sph)
    return sorted(range(tgt_sph.shape[0]), key=lambda k: (round(float(dist[k]), 4), k))


@torch.no_grad()
def sample_views(
    model: NovelViewModel,
    source: Tensor,  # [B, 3, H, W] in [0, 1]
    src_sph: Tensor,  # [B, 3] (azimuth_deg, elevation_deg, radius)
    tgt_sph: Tensor,  # [B, K, 3]
    steps: int = 50,
    guidance_scale: float = GUIDANCE_SCALE,
    stochastic: bool = True,
    generator: torch.Generator | None = None,
    order: list[int] | None = None,
    show_progress: bool = False,
    input_weight: float | None = INPUT_WEIGHT,
    sampler: str = "ddim",
) -> Tensor:  # [B, K, 3, H, W] in [0, 1]
    """Generate ``K`` target views for each of ``B`` independent inputs (batched).

    ``input_weight`` (stochastic only): probability that a denoising step conditions on the input
    rather than on a generated view; None = uniform over all views so far (3DiM).
    ``sampler``: one of ``SAMPLERS`` (``steps`` is its number of model evaluations per view).
    """
    if input_weight is not None and not 0.0 <= input_weight <= 1.0:
        raise ValueError(f"input_weight must lie in [0, 1], got {input_weight}")

    device = source.device
    b, k = tgt_sph.shape[:2]
    order = list(range(k)) if order is None else list(order)
    if sorted(order) != list(range(k)):
        raise ValueError("order must be a permutation of the target indices")
    step_kwargs = {"eta": 0.0} if sampler == "ddim" else {}
    gen = generator if generator is not None else torch.Generator().manual_seed(0)

    pool_img = [source * 2.0 - 1.0]  # conditioning views in model space
    pool_sph = [src_sph.float()]
    out = torch.empty(b, k, *source.shape[1:], dtype=source.dtype, device=device)
    bar = progress(total=k * steps, desc="novel views", unit="step", leave=False, disable=not show_progress)
    rows = torch.arange(b, device=device)
    for idx in order:
        target = tgt_sph[:, idx].float()
        noise = torch.randn(source.shape, generator=gen).to(device=device, dtype=source.dtype)
        imgs, sphs = torch.stack(pool_img, 1), torch.stack(pool_sph, 1)  # [B, P, 3, H, W], [B, P, 3]
        scheduler = make_scheduler(model.scheduler.config, sampler, epsilon=False)  # v-prediction; multistep solvers keep state: one per view

        def predict(x: Tensor, t: Tensor) -> Tensor | tuple[Tensor, Tensor]:
            if stochastic and (input_weight is None or imgs.shape[1] == 1):
                pick = torch.randint(imgs.shape[1], (b,), generator=gen).to(device)
            elif stochastic:
                on_input = torch.rand(b, generator=gen) < input_weight
                generated = torch.randint(1, imgs.shape[1], (b,), generator=gen)
                pick = torch.where(on_input, torch.zeros_like(generated), generated).to(device)
            else:
                pick = torch.zeros(b, dtype=torch.long, device=device)
            cond, pose = model.condition(imgs[rows, pick], sphs[rows, pick], target)
            tt = t.expand(b).to(device)
            if guidance_scale == 1.0:
                return model(x, tt, cond, pose)
            ucond, upose = drop_condition(cond, pose, torch.ones(b, dtype=torch.bool, device=device))
            return model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([cond, ucond]),
                         torch.cat([pose, upose])).chunk(2)

        x = denoise(predict, scheduler, noise, steps, guidance_scale, device, step_kwargs, lambda: bar.update(1))
        view = ((x.clamp(-1, 1) + 1) / 2).to(source.dtype)
        out[:, idx] = view
        pool_img.append(x.clamp(-1, 1))
        pool_sph.append(target)
    bar.close()
    return out
