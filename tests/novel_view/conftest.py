from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A 6-object, 6-view, 16 px dataset written by the world's make-dataset code."""
    from dreamfusion3d.world.dataset import MakeDatasetConfig, write_dataset

    out = tmp_path_factory.mktemp("nv_data") / "ds"
    cfg = MakeDatasetConfig(out=out, num_objects=6, views=4, val_views=1, test_views=1, resolution=16,
                            val_fraction=0.17, test_fraction=0.17, supersample=1, seed=3)
    return write_dataset(cfg)
