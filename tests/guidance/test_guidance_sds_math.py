"""The SDS arithmetic (timesteps, CFG, Perp-Neg, weights, surrogate loss) and the exact prior,
each against an independent reference."""

import math

import pytest
import torch
from diffusers import DDPMScheduler

from dreamfusion3d.guidance import ExactPrior
from dreamfusion3d.guidance import sds as S
from dreamfusion3d.utils.errors import UserError


# ---- timesteps ---------------------------------------------------------------------------------
def test_timestep_bounds_and_uniform_sampling():
    lo, hi = S.timestep_bounds(1000, 0.02, 0.98)
    assert (lo, hi) == (20, 980)
    g = torch.Generator().manual_seed(0)
    t = S.sample_timesteps(40000, lo, hi, generator=g)
    assert t.dtype == torch.long and int(t.min()) == 20 and int(t.max()) == 980
    # uniform on 961 integers: mean 500, sd 277/sqrt(n) ≈ 1.4
    assert abs(t.float().mean().item() - 500.0) < 7.0
    counts = torch.bincount(t - lo, minlength=hi - lo + 1)
    assert counts.min() > 0  # every integer in range is reachable


def test_linear_annealing_of_t_max():
    b = lambda p: S.timestep_bounds(1000, 0.02, 0.98, progress=p, anneal="linear", t_max_end=0.5)  # noqa: E731
    assert b(0.0) == (20, 980) and b(1.0) == (20, 500) and b(0.5) == (20, 740)
    assert S.timestep_bounds(1000, 0.3, 0.98, progress=1.0, anneal="linear", t_max_end=0.1) == (300, 300)
    assert S.timestep_bounds(1000, 0.02, 0.98, progress=1.0, anneal="none") == (20, 980)
    with pytest.raises(ValueError):
        S.timestep_bounds(1000, 0.9, 0.1)


def test_linear_annealing_of_t_min_moves_the_window():
    b = lambda p: S.timestep_bounds(1000, 0.9, 0.98, progress=p, anneal="linear", t_max_end=0.5,  # noqa: E731
                                    t_min_end=0.02)
    # both ends move linearly: (0.9 → 0.02, 0.98 → 0.5); at p = 0.5 the window is [0.46, 0.74]
    assert b(0.0) == (900, 980) and b(0.5) == (460, 740) and b(1.0) == (20, 500)
    for p in torch.linspace(0, 1, 21).tolist():
        lo, hi = b(p)
        assert lo == round(1000 * (0.9 - 0.88 * p)) and lo <= hi
    # unset: t_min stays (the window of test_linear_annealing_of_t_max); no anneal: nothing moves
    assert S.timestep_bounds(1000, 0.02, 0.98, 0.5, "linear", 0.5, None) == (20, 740)
    assert S.timestep_bounds(1000, 0.9, 0.98, 0.5, "none", 0.5, 0.02) == (900, 980)


def test_prior_config_refuses_a_t_min_end_outside_the_window():
    from dreamfusion3d.guidance.config import PriorConfig
    PriorConfig(t_min=0.9, t_anneal="linear", t_min_end=0.02).check()
    with pytest.raises(UserError, match="t_min_end"):
        PriorConfig(t_min=0.9, t_anneal="linear", t_min_end=1.5).check()
    with pytest.raises(UserError, match="t_min_end"):
        PriorConfig(t_min=0.9, t_anneal="linear", t_min_end=0.7, t_max_end=0.5).check()


def test_mixed_timesteps_replace_a_share_of_the_views_by_mid_range_draws():
    g = torch.Generator().manual_seed(0)
    t = S.sample_timesteps(20000, 900, 980, generator=g)
    assert torch.equal(S.mix_timesteps(t, 0.0, 1000, 0.4, 0.7, generator=g), t)
    all_mid = S.mix_timesteps(t, 1.0, 1000, 0.4, 0.7, generator=g)
    assert int(all_mid.min()) == 400 and int(all_mid.max()) == 700
    mixed = S.mix_timesteps(t, 0.25, 1000, 0.4, 0.7, generator=g)
    moved = mixed != t  # windows disjoint: every replaced view is visible
    # binomial(20000, 0.25): sd 61, so ±300 is 5 sd
    assert abs(int(moved.sum()) - 5000) < 300
    assert bool(((mixed[moved] >= 400) & (mixed[moved] <= 700)).all()) and torch.equal(mixed[~moved], t[~moved])


def test_prior_draws_mid_range_timesteps_for_the_configured_share():
    from dreamfusion3d.guidance.config import PriorConfig

    prior = ExactPrior(torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)))
    prior.configure(PriorConfig(kind="exact", t_min=0.9, t_max=0.98, t_mid_prob=0.5, t_mid_range=(0.2, 0.3)))
    z = torch.zeros(4000, 3, 4, 4)
    cond = prior.encode_text(["x"])
    t = prior.sds_loss_latents(z, cond, cond, generator=torch.Generator().manual_seed(1)).t
    T = prior.num_train_timesteps
    low = t < 0.5 * T
    assert abs(float(low.float().mean()) - 0.5) < 0.04
    assert bool((t[low] >= round(0.2 * T)).all() and (t[low] <= round(0.3 * T)).all())
    assert bool((t[~low] >= round(0.9 * T)).all())
    with pytest.raises(UserError, match="t_mid_prob"):
        PriorConfig(t_mid_prob=1.5).check()
    with pytest.raises(UserError, match="t_mid_range"):
        PriorConfig(t_mid_range=(0.7, 0.4)).check()


# ---- guidance ----------------------------------------------------------------------------------
def test_classifier_free_guidance_arithmetic():
    u, c = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    assert torch.allclose(S.classifier_free_guidance(u, c, 1.0), c, atol=1e-6)
    assert torch.allclose(S.classifier_free_guidance(u, c, 0.0), u)
    s = 7.5  # Ho & Salimans' form with w = s - 1: (1 + w) c - w u
    assert torch.allclose(S.classifier_free_guidance(u, c, s), (1 + (s - 1)) * c - (s - 1) * u, atol=1e-5)


def test_perpendicular_projection_2d_and_batched():
    v = torch.tensor([[[[1.0, 1.0]]], [[[3.0, 4.0]]]])  # [2, 1, 1, 2]
    r = torch.tensor([[[[2.0, 0.0]]], [[[0.0, -1.0]]]])
    p = S.perpendicular_component(v, r)
    assert torch.allclose(p, torch.tensor([[[[0.0, 1.0]]], [[[3.0, 0.0]]]]))
    v, r = torch.randn(3, 4, 5, 5, dtype=torch.float64), torch.randn(3, 4, 5, 5, dtype=torch.float64)
    p = S.perpendicular_component(v, r)
    for b in range(3):
        vb, rb, pb = v[b].flatten(), r[b].flatten(), p[b].flatten()
        assert abs(torch.dot(pb, rb).item()) < 1e-10  # orthogonal to the reference
        parallel = vb - pb  # the removed part is a multiple of the reference
        coef = torch.dot(vb, rb) / torch.dot(rb, rb)
        assert torch.allclose(parallel, coef * rb)


def test_perp_neg_guidance_by_hand():
    torch.manual_seed(1)
    B, K, s = 2, 2, 10.0
    u, pos = torch.randn(B, 3, 4, 4, dtype=torch.float64), torch.randn(B, 3, 4, 4, dtype=torch.float64)
    neg = torch.randn(B, K, 3, 4, 4, dtype=torch.float64)
    w = torch.tensor([[0.5, 1.0], [2.0, 0.0]], dtype=torch.float64)
    got = S.perp_neg_guidance(u, pos, neg, w, s)
    for b in range(B):  # flat-vector arithmetic, one sample at a time
        dp = (pos[b] - u[b]).flatten()
        total = dp.clone()
        for k in range(K):
            dn = (neg[b, k] - u[b]).flatten()
            total -= w[b, k] * (dn - torch.dot(dn, dp) / torch.dot(dp, dp) * dp)
        assert torch.allclose(got[b].flatten(), u[b].flatten() + s * total)
    # a negative parallel to the positive direction changes nothing: plain CFG
    par = (u + 3.0 * (pos - u)).unsqueeze(1)
    assert torch.allclose(S.perp_neg_guidance(u, pos, par, torch.ones(B, 1, dtype=torch.float64), s),
                          S.classifier_free_guidance(u, pos, s))


# ---- weights and surrogate ----------------------------------------------------------------------
def test_sds_weights_match_the_beta_schedule():
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    t = torch.tensor([0, 10, 500, 999])
    alpha_bar = torch.cumprod(1.0 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)  # DDPM's schedule
    w = S.sds_weights(sched.alphas_cumprod, t, "sds")
    assert torch.allclose(w.double(), 1.0 - alpha_bar[t], atol=1e-6)
    assert torch.equal(S.sds_weights(sched.alphas_cumprod, t, "uniform"), torch.ones(4))
    with pytest.raises(ValueError):
        S.sds_weights(sched.alphas_cumprod, t, "nope")


def test_surrogate_loss_gradient_is_grad_over_batch():
    z = torch.randn(3, 4, 8, 8, requires_grad=True)
    g = torch.randn(3, 4, 8, 8)
    loss = S.sds_surrogate_loss(z, g)
    (dz,) = torch.autograd.grad(loss, z)
    assert torch.allclose(dz, g / 3)  # sum over pixels, mean over the batch
    assert math.isclose(loss.item(), 0.5 * g.pow(2).sum().item() / 3, rel_tol=1e-5)


def test_noise_from_v_prediction():
    a = torch.tensor([0.3, 0.8])
    x0, eps = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    av = a.view(-1, 1, 1, 1)
    x_t = av.sqrt() * x0 + (1 - av).sqrt() * eps
    v = av.sqrt() * eps - (1 - av).sqrt() * x0  # Salimans & Ho's velocity
    assert torch.allclose(S.noise_from_prediction(v, x_t, a, "v_prediction"), eps, atol=1e-5)
    assert torch.allclose(S.noise_from_prediction(x0, x_t, a, "sample"), eps, atol=1e-5)


# ---- the exact prior ----------------------------------------------------------------------------
def _exact(n=5, size=6, captions=None):
    g = torch.Generator().manual_seed(3)
    return ExactPrior(torch.rand(n, 3, size, size, generator=g), captions=captions)


def test_exact_prior_eps_is_tweedie_score_of_the_mixture():
    """ε̂ = −√(1−ᾱ) ∇ log p(x_t) with p the Gaussian mixture of the noised data (autograd reference)."""
    prior = _exact(captions={"a": [1, 3]})
    t = torch.tensor([50, 400, 900])
    x_t = torch.randn(3, 3, 6, 6, dtype=torch.float64)
    for prompt, idx in (("", [0, 1, 2, 3, 4]), ("a", [1, 3])):
        emb = prior.encode_text([prompt] * 3)
        eps = prior.predict_noise(x_t.float(), t, emb).double()
        for b in range(3):
            a = prior.alphas_cumprod[t[b]].double()
            x = x_t[b].clone().requires_grad_()
            means = a.sqrt() * prior.data[idx].double()
            logp = torch.logsumexp(-((x - means) ** 2).flatten(1).sum(1) / (2 * (1 - a)), 0)
            (score,) = torch.autograd.grad(logp, x)
            assert torch.allclose(eps[b], -(1 - a).sqrt() * score, atol=2e-4)


def test_exact_prior_sds_gradient_vanishes_on_a_training_image():
    prior = _exact()
    z = prior.data[2:3].clone().requires_grad_()
    c = prior.encode_text([""])
    out = prior.sds_loss_latents(z, c, c, t=torch.tensor([30]), guidance_scale=1.0)
    assert out.grad.abs().max() < 1e-3
    assert out.grad_norm.shape == (1,)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        prior.sds_loss(torch.rand(1, 6, 6, 3), c, c)  # channels-last renders must be permuted first


def test_exact_prior_unknown_prompt_and_view_suffix():
    prior = _exact(captions={"a red cube": [0]})
    assert torch.equal(prior.encode_text(["a red cube, back view"]), prior.encode_text(["a red cube"]))
    with pytest.raises(UserError, match="unknown prompt"):
        prior.encode_text(["a blue cone"])


def test_grad_norm_weighting_gives_unit_mean_norm():
    prior = _exact()
    z = torch.rand(4, 3, 6, 6) * 2 - 1
    c = prior.encode_text([""])
    out = prior.sds_loss_latents(z, c, c, weighting="grad-norm", generator=torch.Generator().manual_seed(0))
    norms = out.grad.flatten(1).norm(dim=1)
    assert math.isclose(norms.mean().item(), 1.0, rel_tol=1e-5)
    assert torch.allclose(norms / norms.mean(), out.grad_norm / out.grad_norm.mean(), rtol=1e-5)


# ---- NaN handling --------------------------------------------------------------------------------
class _NaNPrior(ExactPrior):
    def _model_output(self, z_t, t, emb):
        out = super()._model_output(z_t, t, emb)
        out[0, 0, 0, 0] = float("nan")
        return out


def test_nonfinite_gradient_is_caught(capsys):
    prior = _NaNPrior(torch.rand(3, 3, 4, 4))
    images = torch.rand(2, 3, 4, 4, requires_grad=True)
    c = prior.encode_text([""])
    out = prior.sds_loss(images, c, c)
    assert out.nonfinite and torch.equal(out.grad, torch.zeros_like(out.grad))
    out.loss.backward()
    assert out.loss.item() == 0.0 and torch.equal(images.grad, torch.zeros_like(images))
    assert "non-finite SDS gradient" in capsys.readouterr().err
    # a NaN render is caught the same way and does not poison the loss
    bad = torch.rand(1, 3, 4, 4)
    bad[0, 1, 2, 3] = float("nan")
    out = ExactPrior(torch.rand(3, 3, 4, 4)).sds_loss(bad.requires_grad_(), c, c)
    assert out.nonfinite and out.loss.item() == 0.0


# ---- 2D SDS against the exact prior converges to a training image ----------------------------------
@pytest.mark.parametrize("anneal", ["none", "linear"])
def test_2d_sds_converges_to_a_training_image(anneal):
    torch.manual_seed(0)
    data = torch.rand(6, 3, 16, 16)
    prior = ExactPrior(data, captions={"a": [0, 1, 2], "b": [3, 4, 5]}, guidance_scale=7.5)
    prior.t_anneal, prior.t_max_end = anneal, 0.02
    g = torch.Generator().manual_seed(1)
    image = (0.5 + 0.05 * torch.randn(1, 3, 16, 16)).requires_grad_()
    opt = torch.optim.Adam([image], lr=0.02)
    cond, uncond = prior.encode_text(["a"]), prior.encode_text([""])
    steps = 400
    for i in range(steps):
        out = prior.sds_loss(image, cond, uncond, generator=g, progress=i / steps)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        with torch.no_grad():
            image.clamp_(0.0, 1.0)
    mse = (image.detach() - data).pow(2).flatten(1).mean(1)
    print(f"2D SDS ({anneal}): MSE to nearest training image {mse.min().item():.2e}, to others >= "
          f"{mse.sort().values[1].item():.3f}")
    assert mse.min() < 0.01
    assert int(mse.argmin()) in (0, 1, 2)  # an image of the prompted subset


def test_load_prior_validates_its_config(tmp_path):
    from dreamfusion3d.guidance import PriorConfig, load_prior

    with pytest.raises(UserError, match="t_min"):
        load_prior(PriorConfig(kind="exact", model=str(tmp_path), t_min=0.9, t_max=0.5))
    with pytest.raises(UserError, match="needs --prior.model"):
        load_prior(PriorConfig(kind="exact"))
    with pytest.raises(UserError, match="no .png/.jpg images"):
        load_prior(PriorConfig(kind="exact", model=str(tmp_path)))
    (tmp_path / "a.png").write_text("not an image")
    with pytest.raises(UserError, match="cannot read image"):
        load_prior(PriorConfig(kind="exact", model=str(tmp_path)))
