"""A tiny generate preset for the app's tests: the untrained tiny prior, few steps, small grids."""

from pathlib import Path

import pytest
import yaml


@pytest.fixture(scope="session")
def tiny_preset(tiny_prior, tmp_path_factory) -> Path:
    """A generate preset YAML (a few seconds per run) with a progress preview every 2 steps."""
    preset = {
        "command": "generate", "steps": 6, "batch_size": 1, "resolution": 16, "seed": 3,
        "prior": {"model": str(tiny_prior)},
        "field": {"kind": "dense", "dense_resolution": 24, "dense_features": 4},
        "renderer": {"num_steps": 32, "occupancy_resolution": 16, "occupancy_update_every": 2,
                     "occupancy_warmup_steps": 4},
        "shading": {"albedo_only_steps": 2},
        "output": {"mesh_resolution": 32, "video_frames": 3, "video_resolution": 16, "preview_every": 2,
                   "checkpoint_every": 2},
    }
    path = tmp_path_factory.mktemp("preset") / "tiny.yaml"
    path.write_text(yaml.safe_dump(preset))
    return path
