"""The one guided sampling loop against closed-form references."""

import pytest
import torch

from dreamfusion3d.diffusion import classifier_free_guidance, denoise, make_scheduler
from dreamfusion3d.utils.errors import UserError

CONFIG = {"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2", "clip_sample": False,
          "prediction_type": "epsilon"}


def gaussian_eps(scheduler, mu: float, sigma: float):
    """The exact ε-prediction E[ε | x_t] when the data are N(mu, sigma²)."""
    abar = scheduler.alphas_cumprod

    def eps(x, t):
        a = abar[int(t)].double()
        return (torch.sqrt(1 - a) * (x.double() - torch.sqrt(a) * mu) / (a * sigma**2 + 1 - a)).float()

    return eps


@pytest.mark.parametrize("kind,steps", [("ddim", 100), ("dpmsolver", 25), ("ddpm", 200)])
def test_sampling_a_gaussian_gives_that_gaussian(kind, steps):
    scheduler = make_scheduler(CONFIG, kind)
    predict = gaussian_eps(scheduler, mu=0.3, sigma=0.2)
    g = torch.Generator().manual_seed(0)
    x = denoise(predict, scheduler, torch.randn(20000, 1, 1, 1, generator=g), steps, step_kwargs={"generator": g})
    assert abs(x.mean().item() - 0.3) < 0.01
    assert abs(x.std().item() - 0.2) < 0.015


def test_guidance_mixes_the_two_branches_like_the_formula():
    scheduler = make_scheduler(CONFIG, "ddim")
    cond, uncond = gaussian_eps(scheduler, 0.5, 0.1), gaussian_eps(scheduler, -0.5, 0.1)
    noise = torch.randn(64, generator=torch.Generator().manual_seed(1))
    pair = denoise(lambda x, t: (cond(x, t), uncond(x, t)), scheduler, noise, 20, guidance_scale=3.0)
    mixed = denoise(lambda x, t: uncond(x, t) + 3.0 * (cond(x, t) - uncond(x, t)), scheduler, noise, 20)
    assert torch.equal(pair, mixed)
    assert pair.mean() > 1.0  # s = 3 extrapolates past the conditional mean
    u, c = torch.zeros(3), torch.ones(3)
    assert torch.equal(classifier_free_guidance(u, c, 2.0), torch.full((3,), 2.0))


def test_callback_runs_once_per_step_and_unknown_sampler_is_refused():
    calls = []
    scheduler = make_scheduler(CONFIG, "ddim")
    denoise(lambda x, t: torch.zeros_like(x), scheduler, torch.zeros(2), 7, callback=lambda: calls.append(1))
    assert len(calls) == 7
    with pytest.raises(UserError, match="unknown sampler"):
        make_scheduler(CONFIG, "euler")
