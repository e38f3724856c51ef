"""Layers of a small bfloat16 UNet that run slowly on a CPU at 32 px, and their faster stand-ins.

The project's own UNets (bundled text prior, novel-view model) run in bfloat16 and channels-last on
a CPU with AMX (:mod:`.unet_io`), where oneDNN's convolutions are fast. Other layers are not
(``bench --profile``; docs/RESULTS.md, Speed):

- ``GroupNorm`` on a channels-last bfloat16 tensor — the layout the convolutions hand out — takes
  2–4× its time on a contiguous one (244 vs 54 µs at ``[4, 64, 16, 16]``). :class:`GroupNormCL`
  runs the compiled kernel ``kernels/group_norm.c`` instead when it applies (CPU, bfloat16,
  channels-last, nothing to differentiate).
- ``Conv2d``: torch's eager oneDNN convolution repacks its weight into oneDNN's blocked layout on
  every call (48 reorders per call of the bundled prior). :class:`Conv2dCL` keeps the packed weight
  and runs the same primitive, so the output is torch's bit for bit.
- The SiLU after most of those norms is a pass of its own over the tensor; in diffusers' ResNet
  block (:class:`ResnetBlock2DCL`) the kernel applies it on the way out, with torch's roundings.
- ``Linear`` on the few rows of the time embedding: oneDNN's bfloat16 GEMM takes ~136 µs for
  ``[4, 128] × [128, 64]``. :class:`Float32Linear` multiplies in float32 and rounds back — the
  same numbers (bfloat16 inputs are exact in float32, both accumulate in float32), in a few µs.

Float32 copies of the norms' and Linears' weights are kept between calls (until a weight changes).
:func:`speed_up` swaps the classes of a model's modules in place: parameters, state dict and
every other path (GPU, float32, training with gradients) stay as they were.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffusers.models.resnet import ResnetBlock2D

from .. import kernels

_FEW_ROWS = 64  # Linear inputs up to this many rows go through float32


def _float32(module: nn.Module, name: str) -> Tensor | None:
    """A float32 copy of ``module``'s parameter ``name``, kept until the parameter changes (its
    storage or its version: an in-place update or a load)."""
    param = getattr(module, name)
    if param is None:
        return None
    key = (param.data_ptr(), param._version, param.dtype, param.device)
    cache = module.__dict__.setdefault("_float32_copies", {})
    if name not in cache or cache[name][0] != key:
        cache[name] = (key, param.detach().float().contiguous())
    return cache[name][1]


def _kernel_applies(x: Tensor, norm: nn.GroupNorm) -> bool:
    return (x.device.type == "cpu" and x.dtype == torch.bfloat16 and x.dim() == 4 and norm.affine
            and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
            and not (torch.is_grad_enabled() and (x.requires_grad or norm.weight.requires_grad)))


def _group_norm_cl(norm: nn.GroupNorm, x: Tensor, silu: bool = False) -> Tensor | None:
    """``norm(x)`` (then SiLU with ``silu``) by the compiled kernel, rounded to bfloat16 where torch
    rounds; ``None`` where the kernel does not apply (see :class:`GroupNormCL`)."""
    lib = kernels.load("group_norm") if _kernel_applies(x, norm) else None
    if lib is None:
        return None
    b, c, h, w = x.shape
    y = torch.empty_like(x)  # channels-last like x
    lib.group_norm_channels_last_bf16(x.data_ptr(), b, h * w, c, norm.num_groups, _float32(norm, "weight").data_ptr(),
                                      _float32(norm, "bias").data_ptr(), norm.eps, int(silu), y.data_ptr(),
                                      kernels.threads_for(b, 1))  # a task per image
    return y


class GroupNormCL(nn.GroupNorm):
    """``nn.GroupNorm`` with the compiled channels-last bfloat16 kernel where it applies."""

    def forward(self, x: Tensor) -> Tensor:
        y = _group_norm_cl(self, x)
        return super().forward(x) if y is None else y


class Float32Linear(nn.Linear):
    """``nn.Linear`` that multiplies a few bfloat16 rows on a CPU in float32."""

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or x.dtype != torch.bfloat16 or x.numel() > _FEW_ROWS * self.in_features:
            return super().forward(x)
        return F.linear(x.float(), _float32(self, "weight"), _float32(self, "bias")).to(x.dtype)


def _packed_weight(conv: nn.Conv2d, x: Tensor) -> Tensor | None:
    """``conv``'s weight in oneDNN's blocked layout for inputs shaped like ``x`` — what each call of
    torch's convolution otherwise makes anew — kept until the weight changes; ``None`` where this
    torch build lacks the ops."""
    weight = conv.weight
    key = (weight.data_ptr(), weight._version, tuple(x.shape))
    cache = conv.__dict__.setdefault("_packed_weights", {})
    if key not in cache:
        try:
            packed = torch._C._nn.mkldnn_reorder_conv2d_weight(weight.detach().to_mkldnn(), list(conv.padding),
                                                              list(conv.stride), list(conv.dilation), conv.groups,
                                                              list(x.shape))
        except (AttributeError, RuntimeError, NotImplementedError):
            packed = None
        if len(cache) >= 8 or any(k[:2] != key[:2] for k in cache):  # a new weight, or many shapes: start over
            cache.clear()
        cache[key] = packed
    return cache[key]


class Conv2dCL(nn.Conv2d):
    """``nn.Conv2d`` that keeps its weight in oneDNN's blocked layout for channels-last bfloat16
    inputs on a CPU (the same primitive, so the same numbers) instead of reordering it every call."""

    def forward(self, x: Tensor) -> Tensor:
        if (x.device.type != "cpu" or x.dtype != torch.bfloat16 or x.dim() != 4 or self.padding_mode != "zeros"
                or isinstance(self.padding, str) or not x.is_contiguous(memory_format=torch.channels_last)
                or x.is_contiguous() or self.weight.dtype != torch.bfloat16
                or (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad))):
            return super().forward(x)
        packed = _packed_weight(self, x)
        if packed is None:
            return super().forward(x)
        return torch.ops.mkldnn._convolution_pointwise(x, packed, self.bias, list(self.padding), list(self.stride),
                                                       list(self.dilation), self.groups, "none", [], "")


class ResnetBlock2DCL(ResnetBlock2D):
    """diffusers' ``ResnetBlock2D`` with SiLU fused into the GroupNorm kernel where a norm is followed
    by it (``norm1 → SiLU``; ``+ temb → norm2 → SiLU``), and no division by a residual scale of 1.
    The kernel's SiLU is within half a bfloat16 ulp of the exact one, as torch's is (the shipped
    UNets' outputs came out equal to the bit); diffusers' forward runs wherever the kernel does not
    apply or the block uses a feature this does not cover."""

    def forward(self, input_tensor: Tensor, temb: Tensor | None, *args, **kwargs) -> Tensor:
        if (args or kwargs or self.upsample is not None or self.downsample is not None
                or not isinstance(self.nonlinearity, nn.SiLU) or self.time_embedding_norm not in ("default", "scale_shift")
                or (self.time_emb_proj is None) != (temb is None) or not _kernel_applies(input_tensor, self.norm1)):
            return super().forward(input_tensor, temb, *args, **kwargs)
        h = _group_norm_cl(self.norm1, input_tensor, silu=True)
        if h is None:  # no kernel
            return super().forward(input_tensor, temb)
        h = self.conv1(h)
        if temb is not None:
            temb = self.time_emb_proj(temb if self.skip_time_act else self.nonlinearity(temb))[:, :, None, None]
        if self.time_embedding_norm == "default":
            h = h if temb is None else h + temb
            fused = _group_norm_cl(self.norm2, h, silu=True)
            h = self.nonlinearity(self.norm2(h)) if fused is None else fused
        else:  # scale_shift
            scale, shift = torch.chunk(temb, 2, dim=1)
            h = self.nonlinearity(self.norm2(h) * (1 + scale) + shift)
        h = self.conv2(self.dropout(h))
        shortcut = input_tensor if self.conv_shortcut is None else self.conv_shortcut(input_tensor)
        out = shortcut + h
        return out if self.output_scale_factor == 1 else out / self.output_scale_factor


def speed_up(model: nn.Module) -> int:
    """Give ``model``'s ``GroupNorm``, ``Linear``, ``Conv2d`` and ``ResnetBlock2D`` modules the classes
    above (in place); returns how many were changed."""
    swapped = 0
    for module in model.modules():
        for plain, fast in ((nn.GroupNorm, GroupNormCL), (nn.Linear, Float32Linear), (nn.Conv2d, Conv2dCL),
                            (ResnetBlock2D, ResnetBlock2DCL)):
            if type(module) is plain:
                module.__class__ = fast
                swapped += 1
    return swapped
