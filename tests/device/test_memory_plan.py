"""--vram-gb: the memory planner's estimates and choices for the sd / if presets."""

import re
from pathlib import Path

import pytest

from dreamfusion3d.generate.config import GenerateConfig
from dreamfusion3d.generate.memory import HEADROOM, TIERS, apply_memory_plan, estimate_peak_gb, plan_memory
from dreamfusion3d.utils.config import load_preset
from dreamfusion3d.utils.errors import UserError

README = Path(__file__).resolve().parents[2] / "README.md"
KINDS = ("stable-diffusion", "deepfloyd-if")


@pytest.mark.parametrize("kind", KINDS)
def test_estimates_move_the_right_way(kind):
    def peak(part="peak", **kw):
        args = {"batch_size": 1, "resolution": 64, "attention_slicing": False, "cpu_offload": False, **kw}
        parts = estimate_peak_gb(kind, **args)
        return parts["step"] + parts["nerf"] if part == "step" else parts[part]

    assert peak("step", batch_size=4) > peak("step", batch_size=2) > peak("step")
    assert peak(batch_size=4) >= peak(batch_size=2) >= peak()  # IF: caching the prompt can be the peak
    assert peak("step", resolution=128) > peak("step")
    assert peak(cpu_offload=True) <= peak()
    assert kind == "deepfloyd-if" or peak(cpu_offload=True) < peak()
    assert peak("step", attention_slicing=True) < peak("step")
    parts = estimate_peak_gb(kind, 2, 64)
    assert parts["peak"] >= parts["context"] + parts["step"] + parts["nerf"]


@pytest.mark.parametrize("kind", KINDS)
def test_more_memory_never_plans_a_cheaper_setting(kind):
    tiers = [(p[0], p[1], p[2], p[3]) for p in TIERS[kind]]
    last = len(tiers)
    for gb in [x / 2 for x in range(2, 200)]:
        try:
            plan = plan_memory(kind, gb)
        except UserError as exc:
            assert "even at batch 1 with attention slicing (estimated)" in str(exc)
            assert last == len(tiers)  # no plan below the smallest one
            continue
        assert plan.peak_gb <= HEADROOM * gb
        index = tiers.index((plan.batch_size, plan.resolution, plan.attention_slicing, plan.cpu_offload))
        assert index <= last
        last = index
    assert last == 0  # 99.5 GB takes the best tier


def test_known_choices():
    assert plan_memory("stable-diffusion", 8).batch_size == 1
    assert plan_memory("stable-diffusion", 4).cpu_offload
    assert not plan_memory("stable-diffusion", 24).cpu_offload
    assert plan_memory("deepfloyd-if", 16).batch_size == 2  # the UNet steps aside for T5: no offload needed
    assert plan_memory("deepfloyd-if", 12).attention_slicing
    assert plan_memory("deepfloyd-if", 40).batch_size == 8
    with pytest.raises(UserError, match="--vram-gb 6: the deepfloyd-if prior needs about"):
        plan_memory("deepfloyd-if", 6)
    with pytest.raises(UserError, match="must be positive"):
        plan_memory("stable-diffusion", 0)


def test_apply_sets_the_config(capsys):
    cfg = load_preset(GenerateConfig, "sd", command="generate")
    cfg.vram_gb = 12.0
    apply_memory_plan(cfg)
    plan = plan_memory("stable-diffusion", 12.0)
    assert (cfg.batch_size, cfg.resolution, cfg.prior.attention_slicing, cfg.prior.cpu_offload) == (
        plan.batch_size, plan.resolution, plan.attention_slicing, plan.cpu_offload)
    assert f"memory plan for 12 GB: batch {plan.batch_size}" in capsys.readouterr().err
    bundled = GenerateConfig(vram_gb=8.0)
    apply_memory_plan(bundled)
    assert bundled.batch_size == GenerateConfig().batch_size
    assert "ignored for the bundled prior" in capsys.readouterr().err


@pytest.mark.parametrize("preset, kind", [("sd", "stable-diffusion"), ("if", "deepfloyd-if")])
def test_readme_states_each_presets_estimated_peak(preset, kind):
    cfg = load_preset(GenerateConfig, preset, command="generate")
    peak = estimate_peak_gb(kind, cfg.batch_size, cfg.resolution, cfg.prior.attention_slicing, cfg.prior.cpu_offload,
                            cfg.prior.vae_resolution)["peak"]
    line = next(ln for ln in README.read_text().splitlines() if ln.startswith(f"- `--config {preset}`"))
    assert re.search(rf"≈ {peak:.1f} GB", line) and "estimated" in line, line
