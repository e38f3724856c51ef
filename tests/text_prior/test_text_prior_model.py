
import pytest
import torch

from dreamfusion3d.text_prior import SentenceEncoder, TextPriorArchitecture, TextPriorModel
from dreamfusion3d.utils.checkpoint import load_checkpoint, save_checkpoint
from dreamfusion3d.utils.errors import UserError

TINY = TextPriorArchitecture(resolution=16, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4)


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder.from_pretrained()


def test_bundled_encoder_loads_offline_and_knows_paraphrases(encoder):
    v = encoder.encode(["a red sphere", "a crimson ball", "a blue cube", ""])
    assert v.shape == (4, 384)
    assert torch.allclose(v.norm(dim=-1), torch.ones(4), atol=1e-5)
    sim = v @ v.T
    # a paraphrase is closer to its meaning than to another object
    assert sim[0, 1] > sim[1, 2]
    # cached: the same string gives the same vector
    assert torch.equal(encoder.encode(["a red sphere"])[0], v[0])


def test_encoder_missing_folder_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        SentenceEncoder.from_pretrained(str(tmp_path / "nope"))


def test_save_and_load_round_trip(tmp_path, encoder):
    model = TextPriorModel.from_architecture(TINY).eval()
    model.save_pretrained(tmp_path / "prior")
    assert (tmp_path / "prior" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = TextPriorModel.from_pretrained(tmp_path / "prior")
    x = torch.randn(2, 3, 16, 16)
    t = torch.tensor([10, 900])
    emb = encoder.encode(["a red cube", "a blue sphere"])
    with torch.no_grad():
        assert torch.allclose(model(x, t, emb), loaded(x, t, emb), atol=1e-6)
    assert loaded.resolution == 16
    # the text embedding actually changes the prediction
    with torch.no_grad():
        assert not torch.allclose(loaded(x, t, emb), loaded(x, t, emb.flip(0)))


def test_not_a_prior_folder_fails_cleanly(tmp_path):
    with pytest.raises(UserError, match="not a text-prior folder"):
        TextPriorModel.from_pretrained(tmp_path)


def test_training_steps_reduce_loss_on_a_fixed_batch(encoder):
    torch.manual_seed(0)
    model = TextPriorModel.from_architecture(TINY)
    x0 = torch.rand(8, 3, 16, 16) * 2 - 1
    emb = encoder.encode(["a red cube"] * 4 + ["a blue sphere"] * 4)
    t = torch.randint(0, 1000, (8,))
    noise = torch.randn_like(x0)
    x_t = model.scheduler.add_noise(x0, noise, t)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.mse_loss(model(x_t, t, emb), noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_checkpoint_round_trip_restores_optimizer_and_rng(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    gen = torch.Generator().manual_seed(3)
    torch.rand(5, generator=gen)
    save_checkpoint(tmp_path / "ck", {"m": model}, opt, {"g": gen}, {"step": 7})
    expected_next = torch.rand(3, generator=gen)

    model2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-2)
    gen2 = torch.Generator()
    state = load_checkpoint(tmp_path / "ck", {"m": model2}, opt2, {"g": gen2})
    assert state == {"step": 7}
    assert torch.equal(model.weight, model2.weight)
    for p1, p2 in zip(opt.state.values(), opt2.state.values()):
        assert torch.equal(p1["exp_avg"], p2["exp_avg"]) and torch.equal(p1["exp_avg_sq"], p2["exp_avg_sq"])
    assert torch.equal(torch.rand(3, generator=gen2), expected_next)


def test_corrupt_checkpoint_is_one_clear_error(tmp_path):
    folder = tmp_path / "ck"
    save_checkpoint(folder, {"m": torch.nn.Linear(2, 2)})
    (folder / "tensors.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="corrupt"):
        load_checkpoint(folder, {"m": torch.nn.Linear(2, 2)})
