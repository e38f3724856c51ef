import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from guidance_tiny_models import (  # noqa: E402
    build_tiny_bundled,
    build_tiny_if,
    build_tiny_sd,
    build_tiny_sentence_encoder,
)


@pytest.fixture(scope="session")
def tiny_sd_folder(tmp_path_factory) -> Path:
    """A Stable-Diffusion-shaped checkpoint folder (diffusers layout), built offline."""
    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd"))


@pytest.fixture(scope="session")
def tiny_if_folder(tmp_path_factory) -> Path:
    """A DeepFloyd-IF-stage-I-shaped checkpoint folder (6-channel UNet, T5 encoder)."""
    return build_tiny_if(tmp_path_factory.mktemp("tiny_if"))


@pytest.fixture(scope="session")
def tiny_bundled_folder(tmp_path_factory) -> Path:
    """A TextPriorModel folder whose sentence encoder is a 1-layer BERT in another folder."""
    encoder = build_tiny_sentence_encoder(tmp_path_factory.mktemp("tiny_encoder"))
    return build_tiny_bundled(tmp_path_factory.mktemp("tiny_bundled"), encoder)
