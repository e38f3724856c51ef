"""The bundled pixel prior's thin Prior wrapper (tiny TextPriorModel + tiny sentence encoder)."""

import pytest
import torch
import torch.nn.functional as F

from dreamfusion3d.guidance import PriorConfig, PromptProcessor, load_prior
from dreamfusion3d.guidance.bundled import BundledPrior
from dreamfusion3d.utils.errors import UserError


@pytest.fixture(scope="module")
def bundled(tiny_bundled_folder):
    return load_prior(PriorConfig(kind="bundled", model=str(tiny_bundled_folder)))


def test_loads_model_and_its_sentence_encoder(bundled):
    assert isinstance(bundled, BundledPrior)
    assert bundled.resolution == 32 and bundled.guidance_scale == 20.0
    emb = bundled.encode_text(["a red cube, front view", ""])
    assert emb.shape == (2, 32)
    assert torch.allclose(emb[0], bundled.encoder.encode(["a red cube, front view"])[0])
    assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)  # L2-normalised sentence vectors


def test_sds_gradient_by_hand_through_antialiased_resize(bundled):
    B, s = 2, 20.0
    images = torch.rand(B, 3, 64, 64, requires_grad=True)
    pp = PromptProcessor(bundled, "a red cube")
    az, el = torch.tensor([10.0, 170.0]), torch.tensor([5.0, 20.0])
    cond, uncond = pp.embeddings(az, el)
    assert torch.equal(cond, bundled.encode_text(["a red cube, front view", "a red cube, back view"]))
    t, noise = torch.tensor([40, 900]), torch.randn(B, 3, 32, 32)
    out = pp.sds_loss(images, az, el, t=t, noise=noise)
    x = F.interpolate(images.detach(), size=(32, 32), mode="bilinear", align_corners=False, antialias=True) * 2 - 1
    assert torch.allclose(out.latents.detach(), x, atol=1e-6)
    a = bundled.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    x_t = a.sqrt() * x + (1 - a).sqrt() * noise
    with torch.no_grad():
        e_c = bundled.model(x_t, t, cond)
        e_u = bundled.model(x_t, t, uncond)
    expected = (1 - a) * (e_u + s * (e_c - e_u) - noise)
    assert torch.allclose(out.grad, expected, atol=1e-4, rtol=1e-4)
    out.loss.backward()
    # d/dimages of <x(images), expected/B> where x = 2*resize(images) - 1
    img2 = images.detach().clone().requires_grad_()
    ref = F.interpolate(img2, size=(32, 32), mode="bilinear", align_corners=False, antialias=True) * 2 - 1
    (ref_grad,) = torch.autograd.grad(ref, img2, grad_outputs=expected / B)
    assert torch.allclose(images.grad, ref_grad, atol=1e-5, rtol=1e-4)


def test_missing_bundled_folder(tmp_path):
    with pytest.raises(UserError, match="not a text-prior folder"):
        load_prior(PriorConfig(kind="bundled", model=str(tmp_path)))


def test_shipped_bundled_prior_if_present():
    """The real shipped model with the real MiniLM encoder (skipped until the weights are shipped)."""
    from dreamfusion3d.text_prior import SHIPPED_PRIOR

    if not (SHIPPED_PRIOR / "prior.json").is_file():
        pytest.skip(f"no shipped prior at {SHIPPED_PRIOR} yet")
    prior = load_prior(PriorConfig())
    pp = PromptProcessor(prior, "a red cube")
    images = torch.rand(2, 3, 64, 64, requires_grad=True)
    out = pp.sds_loss(images, torch.tensor([0.0, 180.0]), torch.tensor([10.0, 10.0]))
    out.loss.backward()
    assert out.latents.shape == (2, 3, prior.resolution, prior.resolution)
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


def test_auto_precision_is_bfloat16_only_on_amx_cpus(monkeypatch, tiny_bundled_folder):
    """dtype "auto": bfloat16 + channels-last for the bundled UNet on a CPU with AMX, float32 on
    other CPUs, float16 on CUDA; an explicit dtype wins; ε in bfloat16 stays close to float32's."""
    from dreamfusion3d.guidance import loading

    cpu = torch.device("cpu")
    monkeypatch.setattr(loading, "cpu_has_amx", lambda: False)
    assert loading.resolve_pixel_dtype("auto", cpu) == torch.float32
    full = load_prior(PriorConfig(kind="bundled", model=str(tiny_bundled_folder)))
    assert full.dtype == torch.float32
    monkeypatch.setattr(loading, "cpu_has_amx", lambda: True)
    assert loading.resolve_pixel_dtype("auto", cpu) == torch.bfloat16
    assert loading.resolve_pixel_dtype("float32", cpu) == torch.float32
    assert loading.resolve_pixel_dtype("auto", torch.device("cuda")) == torch.float16
    half = load_prior(PriorConfig(kind="bundled", model=str(tiny_bundled_folder)))
    assert half.dtype == torch.bfloat16
    conv = next(m for m in half.model.unet.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    t = torch.tensor([50, 300, 600, 900])
    emb = full.encode_text(["a red cube", "a red cube", "", ""])
    eps_full, eps_half = full.predict_noise(x, t, emb), half.predict_noise(x, t, emb)
    assert eps_half.dtype == torch.float32
    assert float((eps_half - eps_full).norm() / eps_full.norm()) < 0.03
    assert not torch.equal(eps_half, eps_full)  # it did run in bfloat16
