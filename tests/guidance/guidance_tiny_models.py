"""Tiny, randomly initialised models with the real architectures' shapes, saved the way hub
checkpoints are laid out, so that the production loading code runs offline in tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch

WORDS = "a an the red blue green yellow cube sphere cone torus ball , front side back overhead view of".split()


def build_tiny_sd(root: Path, cross_dim: int = 32) -> Path:
    """unet/ vae/ text_encoder/ tokenizer/ scheduler/ like runwayml/stable-diffusion-v1-5, ~4 MB."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = Path(root)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_dim, attention_head_dim=8, norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1, norm_num_groups=8, sample_size=32,
    )
    # A character-level CLIP BPE vocabulary (no merges) written as the real files are.
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in sorted(set("".join(WORDS))):
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    tok_dir = root / "tokenizer"
    tok_dir.mkdir(parents=True, exist_ok=True)
    (tok_dir / "vocab.json").write_text(json.dumps(vocab))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=32)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=cross_dim, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=32, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                              beta_end=0.012)
    unet.save_pretrained(root / "unet")
    vae.save_pretrained(root / "vae")
    text_encoder.save_pretrained(root / "text_encoder")
    tokenizer.save_pretrained(tok_dir)
    scheduler.save_pretrained(root / "scheduler")
    return root


def word_level_tokenizer(extra_tokens: list[str], unk: str = "<unk>"):
    """A PreTrainedTokenizerFast over a WordLevel model of the test vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(extra_tokens + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()])
    return tok, vocab


def build_tiny_if(root: Path, t5_dim: int = 32) -> Path:
    """unet/ (6 output channels) text_encoder/ (T5 encoder) tokenizer/ scheduler/ like IF-I-XL."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    root = Path(root)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=3, out_channels=6, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", cross_attention_dim=32, attention_head_dim=8,
        encoder_hid_dim=t5_dim, encoder_hid_dim_type="text_proj", addition_embed_type="text",
        addition_embed_type_num_heads=4,
        resnet_time_scale_shift="scale_shift", norm_num_groups=8,
    )
    raw, vocab = word_level_tokenizer(["<pad>", "</s>", "<unk>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=len(vocab), d_model=t5_dim, d_kv=8, d_ff=64, num_layers=2, num_heads=4, pad_token_id=0,
        eos_token_id=1, decoder_start_token_id=0,
    ))
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", variance_type="learned_range",
        thresholding=True, sample_max_value=1.5, dynamic_thresholding_ratio=0.95, clip_sample=True,
    )
    unet.save_pretrained(root / "unet")
    text_encoder.save_pretrained(root / "text_encoder")
    tokenizer.save_pretrained(root / "tokenizer")
    scheduler.save_pretrained(root / "scheduler")
    return root


def build_tiny_sentence_encoder(root: Path, dim: int = 32) -> Path:
    """A 1-layer BERT with a WordPiece vocabulary file, loadable by AutoModel/AutoTokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    (root / "vocab.txt").write_text("\n".join(tokens) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(root / "vocab.txt"))
    model = BertModel(BertConfig(vocab_size=len(tokens), hidden_size=dim, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=64, max_position_embeddings=64))
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


def build_tiny_bundled(root: Path, encoder_dir: Path, dim: int = 32) -> Path:
    """A TextPriorModel folder (unet/ scheduler/ prior.json) pointing at ``encoder_dir``."""
    from dreamfusion3d.text_prior import TextPriorArchitecture, TextPriorModel

    torch.manual_seed(0)
    arch = TextPriorArchitecture(resolution=32, block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8,
                                 text_dim=dim)
    model = TextPriorModel.from_architecture(arch, text_encoder_id=str(encoder_dir))
    model.save_pretrained(root)
    return Path(root)


def build_tiny_zero123(root: Path, embed_dim: int = 32) -> Path:
    """vae/ image_encoder/ unet/ (8 input channels) cc_projection/ scheduler/ feature_extractor/ in the
    layout of the diffusers community Zero1to3 pipeline (e.g. kxic/zero123-xl), ~3 MB."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    root = Path(root)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=8, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=embed_dim, attention_head_dim=8, norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1, norm_num_groups=8, sample_size=32,
    )
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32,
        patch_size=8, projection_dim=embed_dim,
    ))
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    projection = torch.nn.Linear(embed_dim + 4, embed_dim)
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                              beta_end=0.012, clip_sample=False, set_alpha_to_one=False)
    unet.save_pretrained(root / "unet")
    vae.save_pretrained(root / "vae")
    encoder.save_pretrained(root / "image_encoder")
    processor.save_pretrained(root / "feature_extractor")
    scheduler.save_pretrained(root / "scheduler")
    (root / "cc_projection").mkdir(parents=True, exist_ok=True)
    save_file({"projection.weight": projection.weight.detach().contiguous(),
               "projection.bias": projection.bias.detach().contiguous()},
              str(root / "cc_projection" / "diffusion_pytorch_model.safetensors"))
    (root / "cc_projection" / "config.json").write_text(json.dumps(
        {"_class_name": "CCProjection", "in_channel": embed_dim + 4, "out_channel": embed_dim}))
    return root
