"""The learning-rate schedule of the SDS loop: warm-up, then constant or cosine decay."""

import math

import pytest

from dreamfusion3d.generate.config import OptimConfig
from dreamfusion3d.generate.loop import lr_factor


def test_constant_after_warm_up():
    o = OptimConfig(warmup_steps=10)
    assert [lr_factor(o, s, 100) for s in (0, 4, 9, 10, 99)] == pytest.approx([0.1, 0.5, 1.0, 1.0, 1.0])


def test_cosine_decay_reaches_the_final_fraction_at_the_last_step():
    o = OptimConfig(warmup_steps=10, decay="cosine", final_lr_fraction=0.1)
    steps = 111  # decay over steps 10 … 110: 100 intervals
    f = [lr_factor(o, s, steps) for s in range(steps)]
    assert f[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])  # warm-up unchanged
    assert f[10] == pytest.approx(1.0) and f[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))  # never rises again
    # halfway through the decay: the cosine's midpoint, (1 + 0.1) / 2
    assert f[10 + 50] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(o, steps + 50, steps) == pytest.approx(0.1)  # past the end (e.g. --steps raised on resume)
