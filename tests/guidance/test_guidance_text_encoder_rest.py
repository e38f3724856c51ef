"""Prompt embeddings are cached, then the SD / IF text encoder rests off the GPU; SDS is unchanged."""

import pytest
import torch

from dreamfusion3d.guidance import PriorConfig, PromptProcessor, load_prior
from dreamfusion3d.guidance.loading import text_encoder_rest


def test_rest_policy():
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert text_encoder_rest(cuda, offloaded=False) == cpu
    assert text_encoder_rest(cuda, offloaded=True) is None  # accelerate's hooks move it already
    assert text_encoder_rest(cpu, offloaded=False) is None


def _config(kind, tiny_sd_folder, tiny_if_folder):
    if kind == "stable-diffusion":
        return PriorConfig(kind=kind, model=str(tiny_sd_folder), vae_resolution=32, guidance_scale=7.5)
    return PriorConfig(kind=kind, model=str(tiny_if_folder), guidance_scale=7.5)


@pytest.mark.parametrize("kind", ["stable-diffusion", "deepfloyd-if"])
def test_encoder_comes_to_the_device_once_then_rests(kind, tiny_sd_folder, tiny_if_folder):
    cfg = _config(kind, tiny_sd_folder, tiny_if_folder)
    resident = load_prior(cfg, "cpu")
    assert resident.text_encoder_rest is None  # on a CPU nothing moves
    resting = load_prior(cfg, "cpu")
    resting.text_encoder_rest = torch.device("cpu")  # what from_config chooses on a GPU

    moves, forwards = [], []
    encoder = resting.text_encoder
    real_to = encoder.to
    encoder.to = lambda *a, **k: (moves.append(torch.device(a[0])), real_to(*a, **k))[1]
    encoder.register_forward_hook(lambda m, i, o: forwards.append(1))

    unet_moves = []
    real_unet_to = resting.unet.to
    resting.unet.to = lambda *a, **k: (unet_moves.append(torch.device(a[0])), real_unet_to(*a, **k))[1]

    pp = PromptProcessor(resting, "a red cube", perp_neg=True)  # fills the cache: prompt, negative, 4 views
    assert moves == [resting.device, torch.device("cpu")]  # came once for the whole cache, then left
    assert len(forwards) == 1
    # IF's UNet steps aside while T5 visits the device (they never share it); SD's stays
    assert unet_moves == ([torch.device("cpu"), resting.device] if kind == "deepfloyd-if" else [])

    ref = PromptProcessor(resident, "a red cube", perp_neg=True)
    for v in ref.view_embs:
        assert torch.equal(pp.view_embs[v], ref.view_embs[v])
    images = torch.rand(2, 3, 16, 16)
    az, el = torch.tensor([10.0, 150.0]), torch.tensor([20.0, 30.0])
    t = torch.tensor([300, 700])
    noise = torch.randn(resting.latent_shape(2) if kind == "deepfloyd-if" else (2, 4, 16, 16))
    a = pp.sds_loss(images, az, el, t=t, noise=noise, generator=torch.Generator().manual_seed(0))
    b = ref.sds_loss(images, az, el, t=t, noise=noise, generator=torch.Generator().manual_seed(0))
    assert len(forwards) == 1 and len(moves) == 2  # the SDS step needed no encoder
    assert torch.equal(a.grad, b.grad) and torch.equal(a.loss, b.loss)

    resting.encode_text(["a blue cone"])  # a new prompt: the encoder visits the device again
    assert moves[2:] == [resting.device, torch.device("cpu")] and len(forwards) == 2


@pytest.mark.parametrize("slicing", [False, True])
def test_sdpa_attention_unless_slicing_is_asked_for(tiny_sd_folder, slicing):
    from diffusers.models.attention_processor import AttnProcessor2_0, SlicedAttnProcessor

    prior = load_prior(PriorConfig(kind="stable-diffusion", model=str(tiny_sd_folder), vae_resolution=32,
                                   attention_slicing=slicing))
    kinds = {type(p) for p in prior.unet.attn_processors.values()}
    assert kinds == ({SlicedAttnProcessor} if slicing else {AttnProcessor2_0})


@pytest.mark.parametrize("preset", ["sd", "if"])
def test_gpu_presets_keep_sdpa_and_choose_the_device(preset):
    from dreamfusion3d.generate.config import GenerateConfig
    from dreamfusion3d.utils.config import load_preset

    cfg = load_preset(GenerateConfig, preset, command="generate")
    assert cfg.prior.attention_slicing is False and cfg.device == "auto"
