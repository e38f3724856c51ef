"""View-dependent prompting: exact view words, caching, azimuth interpolation, Perp-Neg."""

import torch

from dreamfusion3d.guidance import ExactPrior, PromptConfig, PromptProcessor
from dreamfusion3d.guidance import sds as S
from dreamfusion3d.guidance.base import Prior


class RecordingPrior(Prior):
    """Embeds each distinct string as a random vector and records what was encoded."""

    def __init__(self):
        super().__init__()
        self.encoded: list[str] = []
        self.table: dict[str, torch.Tensor] = {}

    def _encode_text(self, prompts):
        self.encoded += prompts
        for p in prompts:
            self.table.setdefault(p, torch.randn(5))
        return torch.stack([self.table[p] for p in prompts])


def test_view_words_and_caching():
    prior = RecordingPrior()
    pp = PromptProcessor(prior, "a red cube", negative_prompt="blurry")
    az = torch.tensor([0.0, 30.0, -60.0, 100.0, 179.0, -150.0, 20.0])
    el = torch.tensor([0.0, 10.0, 20.0, 0.0, 30.0, 5.0, 75.0])
    cond, uncond = pp.embeddings(az, el)
    views = ["front", "front", "side", "side", "back", "back", "overhead"]
    assert torch.equal(cond, torch.stack([prior.table[f"a red cube, {v} view"] for v in views]))
    assert torch.equal(uncond, prior.table["blurry"].expand(7, 5))
    pp.embeddings(az, el)
    assert sorted(prior.encoded) == sorted(["a red cube", "blurry"] + [f"a red cube, {v} view" for v in
                                                                        ("front", "side", "back", "overhead")])
    plain = PromptProcessor(prior, "a red cube", view_dependent=False)
    assert torch.equal(plain.embeddings(az, el)[0], prior.table["a red cube"].expand(7, 5))
    assert len(prior.encoded) == 7  # "" is the only new string


def test_interpolation_between_neighbouring_views():
    prior = RecordingPrior()
    pp = PromptProcessor(prior, "a dog", interpolate_views=True)
    f, s, b = (prior.table[f"a dog, {v} view"] for v in ("front", "side", "back"))
    az = torch.tensor([0.0, 45.0, -45.0, 90.0, 135.0, 180.0, 60.0])
    el = torch.zeros(7)
    cond, _ = pp.embeddings(az, el)
    expected = [f, 0.5 * (f + s), 0.5 * (f + s), s, 0.5 * (s + b), b, f + (s - f) * (60 / 90)]
    assert torch.allclose(cond, torch.stack(expected), atol=1e-6)
    # continuous across the side view
    near = pp.embeddings(torch.tensor([89.999, 90.001]), torch.zeros(2))[0]
    assert torch.allclose(near[0], near[1], atol=1e-4)


def test_perp_neg_weights_and_conditioning():
    prior = RecordingPrior()
    pp = PromptProcessor.from_config(prior, "a dog", PromptConfig(perp_neg=True, perp_neg_weight=2.0))
    az = torch.tensor([0.0, 45.0, 90.0, 135.0, 180.0, 30.0])
    el = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 80.0])
    w = pp.negative_weights(az, el)
    assert torch.allclose(w, 2.0 * torch.tensor([[0, 1], [0.5, 0.5], [1, 0], [1, 0.5], [1, 1], [0, 0]]))
    c = pp.conditioning(az, el)
    assert c.negatives.shape == (6, 2, 5)
    assert torch.equal(c.negatives[3, 0], prior.table["a dog, front view"])
    assert torch.equal(c.negatives[3, 1], prior.table["a dog, side view"])


def test_perp_neg_through_the_sds_step_matches_by_hand():
    """With the exact prior (embeddings are image weights), Perp-Neg inside sds_loss equals the
    formula applied to separately evaluated predictions."""
    torch.manual_seed(0)
    data = torch.rand(4, 3, 6, 6)
    captions = {f"a dog, {v} view": [i] for i, v in enumerate(("front", "side", "back", "overhead"))}
    captions["a dog"] = [0, 1, 2, 3]
    prior = ExactPrior(data, captions=captions, guidance_scale=5.0)
    pp = PromptProcessor(prior, "a dog", perp_neg=True, interpolate_views=True)
    az, el = torch.tensor([30.0, 150.0]), torch.tensor([10.0, 10.0])
    images = torch.rand(2, 3, 6, 6)
    t, noise = torch.tensor([200, 600]), torch.randn(2, 3, 6, 6)
    out = pp.sds_loss(images, az, el, t=t, noise=noise)
    c = pp.conditioning(az, el)
    z = 2 * images - 1
    z_t = prior.scheduler.add_noise(z, noise, t)
    e_pos, e_u = prior.predict_noise(z_t, t, c.cond), prior.predict_noise(z_t, t, c.uncond)
    e_neg = torch.stack([prior.predict_noise(z_t, t, c.negatives[:, k]) for k in range(2)], 1)
    d_pos = e_pos - e_u
    corr = sum(c.negative_weights[:, k].view(-1, 1, 1, 1) * S.perpendicular_component(e_neg[:, k] - e_u, d_pos)
               for k in range(2))
    eps_hat = e_u + 5.0 * (d_pos - corr)
    w = 1 - prior.alphas_cumprod[t].view(-1, 1, 1, 1)
    assert torch.allclose(out.grad, w * (eps_hat - noise), atol=1e-4)
    plain = prior.sds_loss(images, c.cond, c.uncond, t=t, noise=noise)
    assert not torch.allclose(plain.grad, out.grad)  # the negatives did change the gradient
