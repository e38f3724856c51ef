"""Where generate's lights are: jittered around each camera (DreamFusion) or the world's headlight."""

from types import SimpleNamespace

import torch

from dreamfusion3d.generate.config import GenerateConfig
from dreamfusion3d.generate.loop import Generation
from dreamfusion3d.world.render import headlight_positions


def _lights(light: str, positions: torch.Tensor) -> torch.Tensor:
    cfg = GenerateConfig()
    cfg.shading.light = light
    fake = SimpleNamespace(cfg=cfg, generator=torch.Generator().manual_seed(0))
    return Generation._lights(fake, positions)


def test_headlight_mode_uses_the_world_headlight_and_jitter_mode_stays_near_the_camera():
    positions = torch.tensor([[2.5, 0.0, 0.3], [0.0, -2.2, 1.5], [-1.0, 1.0, 2.0]])
    assert torch.equal(_lights("headlight", positions), headlight_positions(positions))
    jittered = _lights("jitter", positions)
    lo, hi = GenerateConfig().shading.light_distance_range
    assert ((jittered.norm(dim=-1) >= lo) & (jittered.norm(dim=-1) <= hi)).all()
    cos = torch.nn.functional.cosine_similarity(jittered, positions, dim=-1)
    assert (cos > 0.5).all() and not torch.allclose(jittered, headlight_positions(positions))
