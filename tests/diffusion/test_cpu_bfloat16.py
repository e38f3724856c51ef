"""The bfloat16 CPU stand-ins of ``diffusion.cpu_bfloat16``: the compiled channels-last GroupNorm
against a float64 reference (within bfloat16 rounding, also where the mean dwarfs the spread), the
float32 Linear against torch's; each falls back to torch's own layer wherever it does not apply;
and a bfloat16 UNet loaded from a folder gets them without its prediction moving."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dreamfusion3d import kernels
from dreamfusion3d.diffusion import cpu_bfloat16
from dreamfusion3d.diffusion.cpu_bfloat16 import Float32Linear, GroupNormCL

needs_kernel = pytest.mark.skipif(kernels.load("group_norm") is None, reason="no C compiler here")
BF16_ULP = 2.0**-7  # relative spacing of bfloat16 numbers (8 significant bits)


def group_norm(groups, channels, seed=0):
    torch.manual_seed(seed)
    gn = nn.GroupNorm(groups, channels).to(torch.bfloat16)
    with torch.no_grad():
        gn.weight.normal_()
        gn.bias.normal_()
    fast = nn.GroupNorm(groups, channels).to(torch.bfloat16)
    fast.load_state_dict(gn.state_dict())
    fast.__class__ = GroupNormCL
    return gn, fast


@needs_kernel
@pytest.mark.parametrize("shape, groups, mean, std", [((4, 64, 16, 16), 8, 0.0, 1.0), ((3, 32, 9, 9), 8, 1.0, 3.0),
                                                     ((2, 96, 32, 32), 8, 0.0, 1.0), ((2, 32, 16, 16), 4, 100.0, 2.0)])
def test_channels_last_kernel_matches_a_float64_reference(shape, groups, mean, std):
    gn, fast = group_norm(groups, shape[1])
    x = (torch.randn(shape) * std + mean).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y = fast(x)
        ref = F.group_norm(x.double(), groups, gn.weight.double(), gn.bias.double(), gn.eps)
    assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=torch.channels_last)
    # within one rounding of the exact result (plus float32 arithmetic on the way)
    err = (y.double() - ref).abs()
    assert bool((err <= BF16_ULP * ref.abs() + 1e-4).all()), float(err.max())


@pytest.mark.parametrize("case", ["contiguous", "float32", "needs grad", "no kernel"])
def test_group_norm_falls_back_to_torch(case, monkeypatch):
    gn, fast = group_norm(8, 32)
    x = torch.randn(2, 32, 8, 8).to(torch.bfloat16)
    if case != "contiguous":
        x = x.contiguous(memory_format=torch.channels_last)
    if case == "float32":
        gn, fast, x = gn.float(), fast.float(), x.float()
    if case == "needs grad":
        x.requires_grad_(True)
    if case == "no kernel":
        monkeypatch.setattr(kernels, "load", lambda name: None)
    calls = []
    monkeypatch.setattr(nn.GroupNorm, "forward", lambda self, inp: calls.append(1) or F.group_norm(
        inp, self.num_groups, self.weight, self.bias, self.eps))
    out = fast(x)
    assert calls == [1]
    assert torch.equal(out, F.group_norm(x, 8, gn.weight, gn.bias, gn.eps))


def test_float32_linear_rounds_like_torch_and_falls_back_for_many_rows():
    torch.manual_seed(0)
    lin = nn.Linear(128, 64).to(torch.bfloat16)
    fast = nn.Linear(128, 64).to(torch.bfloat16)
    fast.load_state_dict(lin.state_dict())
    fast.__class__ = Float32Linear
    x = torch.randn(4, 128).to(torch.bfloat16)
    with torch.no_grad():
        exact = F.linear(x.double(), lin.weight.double(), lin.bias.double())
        y = fast(x)
        assert y.dtype == torch.bfloat16
        assert bool(((y.double() - exact).abs() <= BF16_ULP * exact.abs() + 1e-6).all())
        big = torch.randn(1000, 128).to(torch.bfloat16)  # many rows: torch's own GEMM
        assert torch.equal(fast(big), lin(big))
        assert torch.equal(fast.float()(x.float()), lin.float()(x.float()))  # float32: torch's


def test_a_bfloat16_unet_from_a_folder_gets_them_and_predicts_the_same(tmp_path):
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from dreamfusion3d.diffusion.unet_io import load_unet_parts, save_unet_folder

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=16, in_channels=3, out_channels=3, block_out_channels=(32, 64),
                                down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                                layers_per_block=1, norm_num_groups=8, cross_attention_dim=8, attention_head_dim=8)
    save_unet_folder(tmp_path, unet, DDPMScheduler(), "meta.json", {})
    fast, _ = load_unet_parts(tmp_path, "test", torch.bfloat16)
    plain, _ = load_unet_parts(tmp_path, "test", torch.float32)
    kinds = {type(m) for m in fast.modules()}
    assert GroupNormCL in kinds and Float32Linear in kinds
    assert not kinds & {nn.GroupNorm, nn.Linear}
    assert not {type(m) for m in plain.modules()} & {GroupNormCL, Float32Linear}  # float32: untouched
    assert fast.state_dict().keys() == plain.state_dict().keys()
    reference = plain.to(torch.bfloat16).to(memory_format=torch.channels_last)  # torch's layers, same weights
    x, t, states = torch.randn(2, 3, 16, 16), torch.tensor([10, 500]), torch.zeros(2, 1, 8)
    with torch.no_grad():
        a = fast(x.to(torch.bfloat16), t, encoder_hidden_states=states.to(torch.bfloat16)).sample.float()
        b = reference(x.to(torch.bfloat16), t, encoder_hidden_states=states.to(torch.bfloat16)).sample.float()
    # the same network up to bfloat16 rounding of a few intermediate values
    assert float((a - b).norm() / b.norm()) < 0.02
    assert cpu_bfloat16.speed_up(fast) == 0  # already swapped: nothing left to change
