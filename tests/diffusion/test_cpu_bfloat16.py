"""The bfloat16 CPU stand-ins of ``diffusion.cpu_bfloat16``: the compiled channels-last GroupNorm
against a float64 reference (within bfloat16 rounding, also where the mean dwarfs the spread), with
SiLU fused in against torch's layers; diffusers' ResNet block with the fused kernel against its own
forward; the float32 Linear against torch's; each falls back to torch's own layer wherever it does
not apply; and a bfloat16 UNet loaded from a folder gets them without its prediction moving."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dreamfusion3d import kernels
from dreamfusion3d.diffusion import cpu_bfloat16
from dreamfusion3d.diffusion.cpu_bfloat16 import Conv2dCL, Float32Linear, GroupNormCL, ResnetBlock2DCL

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


@needs_kernel
@pytest.mark.parametrize("shape", [(4, 64, 16, 16), (3, 32, 9, 9), (2, 96, 32, 32)])
def test_silu_fused_into_the_kernel_matches_torchs_group_norm_then_silu(shape):
    gn, fast = group_norm(8, shape[1])
    x = (torch.randn(shape) * 3).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y = cpu_bfloat16._group_norm_cl(fast, x, silu=True)
        ref = F.silu(fast(x).double())  # the kernel's own norm, rounded, then an exact SiLU
    assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=torch.channels_last)
    err = (y.double() - ref).abs()
    assert bool((err <= BF16_ULP / 2 * ref.abs() + 1e-30).all()), float(err.max())  # one rounding of the exact SiLU
    assert float(ref.min()) < -0.2 and float(ref.max()) > 2  # both branches of SiLU were met
    # against torch's layers (its GroupNorm rounds its own way: within an ulp or two)
    torch_ref = F.silu(gn(x)).double()
    assert bool(((y.double() - torch_ref).abs() <= 2 * BF16_ULP * torch_ref.abs() + 1e-2).all())


def resnet_block(time_embedding_norm, seed=0):
    from diffusers.models.resnet import ResnetBlock2D

    torch.manual_seed(seed)
    block = ResnetBlock2D(in_channels=32, out_channels=64, temb_channels=16, groups=8,
                          time_embedding_norm=time_embedding_norm).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.1 * torch.randn_like(p))
    block = block.to(torch.bfloat16).to(memory_format=torch.channels_last)
    fast = copy.deepcopy(block)
    assert cpu_bfloat16.speed_up(fast) >= 4 and type(fast) is ResnetBlock2DCL
    return block, fast


@needs_kernel
@pytest.mark.parametrize("time_embedding_norm", ["default", "scale_shift"])
def test_resnet_block_with_the_fused_kernel_computes_what_diffusers_block_does(time_embedding_norm, monkeypatch):
    block, fast = resnet_block(time_embedding_norm)
    x = torch.randn(3, 32, 12, 12).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    temb = torch.randn(3, 16).to(torch.bfloat16)
    calls = []
    kernel = cpu_bfloat16._group_norm_cl
    monkeypatch.setattr(cpu_bfloat16, "_group_norm_cl", lambda *a, **k: calls.append(k.get("silu")) or kernel(*a, **k))
    with torch.no_grad():
        got, want = fast(x, temb), block(x, temb)
    assert calls == ([True, True] if time_embedding_norm == "default" else [True, None])  # the fused path ran
    assert got.shape == (3, 64, 12, 12) and got.is_contiguous(memory_format=torch.channels_last)
    # torch's GroupNorm and the kernel's round differently now and then; nothing else differs
    rel = float((got.float() - want.float()).norm() / want.float().norm())
    assert rel < 0.01, rel
    with torch.no_grad():  # the fused SiLU alone: the same block with the kernel's norm but torch's SiLU
        monkeypatch.setattr(cpu_bfloat16, "_group_norm_cl", lambda norm, t, silu=False: (
            F.silu(kernel(norm, t)) if silu else kernel(norm, t)))
        unfused = fast(x, temb).float()
    # one rounding apart at most here and there, carried through conv2
    assert float((got.float() - unfused).norm() / unfused.norm()) < 2e-3


def test_resnet_block_falls_back_to_diffusers_forward_where_the_kernel_does_not_apply():
    block, fast = resnet_block("default")
    x = torch.randn(2, 32, 8, 8)
    temb = torch.randn(2, 16)
    with torch.no_grad():  # float32
        assert torch.equal(fast.float()(x, temb), block.float()(x, temb))
    xr = x.clone().requires_grad_(True)  # with gradients: diffusers' own ops, differentiable
    fast(xr, temb).square().sum().backward()
    assert xr.grad is not None and xr.grad.abs().sum() > 0


def conv_pair(cin, cout, kernel, stride, padding, seed=0):
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding).to(torch.bfloat16)
    fast = copy.deepcopy(conv)
    fast.__class__ = Conv2dCL
    return conv, fast


@pytest.mark.parametrize("cin, cout, kernel, stride, padding, size", [(32, 32, 3, 1, 1, 16), (64, 32, 1, 1, 0, 8),
                                                                      (32, 64, 3, 2, 1, 16), (3, 32, 3, 1, 1, 9)])
def test_conv_with_a_prepacked_weight_gives_torchs_numbers_bit_for_bit(cin, cout, kernel, stride, padding, size):
    conv, fast = conv_pair(cin, cout, kernel, stride, padding)
    x = torch.randn(3, cin, size, size).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = conv(x)
        got, again = fast(x), fast(x)  # the second call reuses the packed weight
    if not fast.__dict__.get("_packed_weights") or None in fast._packed_weights.values():
        pytest.skip("this torch build has no oneDNN weight packing")
    assert torch.equal(got, want) and torch.equal(again, want)
    assert got.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():  # another input size, and a changed weight: packed anew
        x2 = torch.randn(2, cin, size + 2, size + 2).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        assert torch.equal(fast(x2), conv(x2))
        conv.weight.mul_(-1)
        fast.weight.mul_(-1)
        assert torch.equal(fast(x), conv(x))


def test_bench_counts_the_prepacked_convolution_like_torchs():
    from dreamfusion3d.evaluation.bench import count_flops

    conv, fast = conv_pair(32, 64, 3, 2, 1)
    x = torch.randn(4, 32, 16, 16).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = count_flops(lambda: conv(x))
        assert want == 2 * 4 * 64 * 8 * 8 * 32 * 9  # 2 × batch × out channels × out pixels × (in channels × 3 × 3)
        assert count_flops(lambda: fast(x)) == want


@pytest.mark.parametrize("case", ["contiguous", "float32", "needs grad"])
def test_conv_falls_back_to_torch(case):
    conv, fast = conv_pair(8, 8, 3, 1, 1)
    x = torch.randn(2, 8, 6, 6).to(torch.bfloat16)
    if case != "contiguous":
        x = x.contiguous(memory_format=torch.channels_last)
    if case == "float32":
        conv, fast, x = conv.float(), fast.float(), x.float()
    if case == "needs grad":
        x.requires_grad_(True)
    out = fast(x)
    assert "_packed_weights" not in fast.__dict__  # torch's own convolution ran
    assert torch.equal(out, conv(x))
    if case == "needs grad":
        out.sum().backward()
        assert x.grad is not None


def test_float32_copies_of_the_weights_follow_an_update():
    torch.manual_seed(0)
    fast = nn.Linear(16, 8).to(torch.bfloat16)
    fast.__class__ = Float32Linear
    x = torch.randn(2, 16).to(torch.bfloat16)
    with torch.no_grad():
        before = fast(x)
        fast.weight.mul_(2)  # in place: the cached float32 copy is stale now
        after = fast(x)
        assert torch.equal(after, F.linear(x.float(), fast.weight.float(), fast.bias.float()).to(torch.bfloat16))
        assert not torch.equal(before, after)
        fast.load_state_dict({"weight": torch.zeros(8, 16), "bias": torch.zeros(8)})
        assert torch.equal(fast(x), torch.zeros(2, 8, dtype=torch.bfloat16))


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
    from diffusers.models.resnet import ResnetBlock2D

    from dreamfusion3d.diffusion.unet_io import load_unet_parts, save_unet_folder

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=16, in_channels=3, out_channels=3, block_out_channels=(32, 64),
                                down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                                layers_per_block=1, norm_num_groups=8, cross_attention_dim=8, attention_head_dim=8)
    save_unet_folder(tmp_path, unet, DDPMScheduler(), "meta.json", {})
    fast, _ = load_unet_parts(tmp_path, "test", torch.bfloat16)
    plain, _ = load_unet_parts(tmp_path, "test", torch.float32)
    kinds = {type(m) for m in fast.modules()}
    assert {GroupNormCL, Float32Linear, Conv2dCL, ResnetBlock2DCL} <= kinds
    assert not kinds & {nn.GroupNorm, nn.Linear, nn.Conv2d, ResnetBlock2D}
    assert not {type(m) for m in plain.modules()} & {GroupNormCL, Float32Linear, Conv2dCL, ResnetBlock2DCL}  # float32: untouched
    assert fast.state_dict().keys() == plain.state_dict().keys()
    reference = plain.to(torch.bfloat16).to(memory_format=torch.channels_last)  # torch's layers, same weights
    x, t, states = torch.randn(2, 3, 16, 16), torch.tensor([10, 500]), torch.zeros(2, 1, 8)
    with torch.no_grad():
        a = fast(x.to(torch.bfloat16), t, encoder_hidden_states=states.to(torch.bfloat16)).sample.float()
        b = reference(x.to(torch.bfloat16), t, encoder_hidden_states=states.to(torch.bfloat16)).sample.float()
    # the same network up to bfloat16 rounding of a few intermediate values
    assert float((a - b).norm() / b.norm()) < 0.02
    assert cpu_bfloat16.speed_up(fast) == 0  # already swapped: nothing left to change
