"""DeepFloyd IF stage-I prior, loaded from a tiny IF-shaped checkpoint (6-channel UNet, T5)."""

import pytest
import torch
import torch.nn.functional as F

from dreamfusion3d.guidance import PriorConfig, load_prior
from dreamfusion3d.guidance.deepfloyd import DeepFloydIFPrior
from dreamfusion3d.utils.errors import UserError


@pytest.fixture(scope="module")
def if_prior(tiny_if_folder):
    return load_prior(PriorConfig(kind="deepfloyd-if", model=str(tiny_if_folder)))


def test_loads_t5_and_six_channel_unet(if_prior):
    assert isinstance(if_prior, DeepFloydIFPrior)
    assert if_prior.unet.config.out_channels == 6 and if_prior.channels == 3
    assert if_prior.guidance_scale == 20.0 and if_prior.dtype == torch.float32
    emb = if_prior.encode_text(["a red cube, front view", ""])
    assert emb.shape == (2, 77, 32)
    tokens = if_prior.tokenizer(["a red cube, front view"], padding="max_length", max_length=77, return_tensors="pt")
    with torch.no_grad():
        ref = if_prior.text_encoder(tokens.input_ids, attention_mask=tokens.attention_mask).last_hidden_state
    assert torch.allclose(emb[:1], ref)
    assert if_prior.latent_shape(1) == (1, 3, 16, 16)


def test_sds_uses_the_noise_half_of_the_output(if_prior):
    B, s = 2, 20.0
    images = torch.rand(B, 3, 64, 64, requires_grad=True)
    cond, uncond = if_prior.encode_text(["a red cube"]), if_prior.encode_text([""])
    t, noise = torch.tensor([300, 800]), torch.randn(B, 3, 16, 16)
    out = if_prior.sds_loss(images, cond, uncond, t=t, noise=noise)
    x = F.interpolate(images.detach(), size=(16, 16), mode="bilinear", align_corners=False, antialias=True) * 2 - 1
    assert torch.allclose(out.latents.detach(), x, atol=1e-6)
    a = if_prior.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    x_t = a.sqrt() * x + (1 - a).sqrt() * noise
    with torch.no_grad():
        full_c = if_prior.unet(x_t, t, encoder_hidden_states=cond.expand(B, -1, -1)).sample
        full_u = if_prior.unet(x_t, t, encoder_hidden_states=uncond.expand(B, -1, -1)).sample
    assert full_c.shape[1] == 6
    e_c, e_u = full_c[:, :3], full_u[:, :3]
    expected = (1 - a) * (e_u + s * (e_c - e_u) - noise)
    assert torch.allclose(out.grad, expected, atol=1e-4, rtol=1e-4)
    (dz,) = torch.autograd.grad(out.loss, out.latents)
    assert torch.allclose(dz * B, expected, atol=1e-4, rtol=1e-4)


def test_missing_tokenizer_is_one_line(tiny_if_folder, tmp_path):
    import shutil

    broken = tmp_path / "if"
    shutil.copytree(tiny_if_folder, broken)
    shutil.rmtree(broken / "tokenizer")
    with pytest.raises(UserError, match="has no tokenizer/tokenizer_config.json"):
        load_prior(PriorConfig(kind="deepfloyd-if", model=str(broken)))
