"""Tiny models and presets for the evaluate / bench tests (built offline, no hub)."""

import json
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_generate_preset(tmp_path_factory, tiny_prior) -> Path:
    """A generate preset that runs in a couple of seconds (16 px, 6 steps, small grids)."""
    from dreamfusion3d.generate.config import GenerateConfig
    from dreamfusion3d.utils.config import save_config

    cfg = GenerateConfig(steps=6, batch_size=1, resolution=16, seed=3)
    cfg.prior.model = str(tiny_prior)
    cfg.field.dense_resolution, cfg.field.dense_features = 24, 4
    cfg.renderer.num_steps, cfg.renderer.occupancy_resolution = 32, 16
    cfg.renderer.occupancy_update_every, cfg.renderer.occupancy_warmup_steps = 2, 4
    cfg.output.mesh_resolution, cfg.output.video_frames, cfg.output.video_resolution = 32, 3, 16
    cfg.output.texture_size = 64
    cfg.output.preview_every, cfg.output.checkpoint_every, cfg.output.gif = 0, 2, False
    cfg.shading.albedo_only_steps = 2
    path = tmp_path_factory.mktemp("presets") / "tiny_generate.yaml"
    save_config(cfg, path, command="generate")
    return path


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """A 1-layer CLIPModel with a character-level tokenizer and a 32 px image processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder = tmp_path_factory.mktemp("clip") / "tiny"
    folder.mkdir()
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789-,":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=64)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 64, "bos_token_id": 0, "eos_token_id": 1,
                     "pad_token_id": 1},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    return folder
