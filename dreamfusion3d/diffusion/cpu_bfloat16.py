"""Two layers of a small bfloat16 UNet that run slowly on a CPU at 32 px, and their faster stand-ins.

The project's own UNets (bundled text prior, novel-view model) run in bfloat16 and channels-last on
a CPU with AMX (:mod:`.unet_io`), where oneDNN's convolutions are fast. Two other layers are not
(``bench --profile``; docs/RESULTS.md, Speed):

- ``GroupNorm`` on a channels-last bfloat16 tensor — the layout the convolutions hand out — takes
  2–4× its time on a contiguous one (244 vs 54 µs at ``[4, 64, 16, 16]``). :class:`GroupNormCL`
  runs the compiled kernel ``kernels/group_norm.c`` instead when it applies (CPU, bfloat16,
  channels-last, nothing to differentiate).
- ``Linear`` on the few rows of the time embedding: oneDNN's bfloat16 GEMM takes ~136 µs for
  ``[4, 128] × [128, 64]``. :class:`Float32Linear` multiplies in float32 and rounds back — the
  same numbers (bfloat16 inputs are exact in float32, both accumulate in float32), in a few µs.

:func:`speed_up` swaps the classes of a model's modules in place: parameters, state dict and
every other path (GPU, float32, training with gradients) stay as they were.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import kernels

_FEW_ROWS = 64  # Linear inputs up to this many rows go through float32


class GroupNormCL(nn.GroupNorm):
    """``nn.GroupNorm`` with the compiled channels-last bfloat16 kernel where it applies."""

    def forward(self, x: Tensor) -> Tensor:
        lib = None
        if (x.device.type == "cpu" and x.dtype == torch.bfloat16 and x.dim() == 4 and self.affine
                and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
                and not (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad))):
            lib = kernels.load("group_norm")
        if lib is None:
            return super().forward(x)
        b, c, h, w = x.shape
        y = torch.empty_like(x)  # channels-last like x
        weight, bias = self.weight.float().contiguous(), self.bias.float().contiguous()
        lib.group_norm_channels_last_bf16(x.data_ptr(), b, h * w, c, self.num_groups, weight.data_ptr(),
                                          bias.data_ptr(), self.eps, y.data_ptr(), kernels.threads_for(b, 1))  # a task per image
        return y


class Float32Linear(nn.Linear):
    """``nn.Linear`` that multiplies a few bfloat16 rows on a CPU in float32."""

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or x.dtype != torch.bfloat16 or x.numel() > _FEW_ROWS * self.in_features:
            return super().forward(x)
        bias = None if self.bias is None else self.bias.float()
        return F.linear(x.float(), self.weight.float(), bias).to(x.dtype)


def speed_up(model: nn.Module) -> int:
    """Give ``model``'s ``GroupNorm`` and ``Linear`` modules the classes above (in place); returns
    how many were changed."""
    swapped = 0
    for module in model.modules():
        for plain, fast in ((nn.GroupNorm, GroupNormCL), (nn.Linear, Float32Linear)):
            if type(module) is plain:
                module.__class__ = fast
                swapped += 1
    return swapped
