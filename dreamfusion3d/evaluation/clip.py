"""CLIP R-precision (DreamFusion §4): rank every prompt of the list by CLIP similarity with each
rendered view; a view is a hit when its own prompt ranks first.

Any transformers ``CLIPModel`` folder or hub id with its processor (tokenizer + image
processor) works, e.g. openai/clip-vit-base-patch32. DreamFusion reports 75.1 / 77.5 / 79.7 %
with B/32, B/16, L/14 on 153 COCO prompts; figures are only comparable with a real image prior.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..utils.errors import UserError


class ClipScorer:
    def __init__(self, model: str, device: str | torch.device = "cpu"):
        from transformers import CLIPModel, CLIPProcessor

        from ..utils.validate import check_model_folder

        local = Path(model).expanduser()
        source = str(check_model_folder(local, "CLIP model folder")) if local.exists() else model
        try:  # safetensors only: a pickled checkpoint is never unpickled
            self.model = CLIPModel.from_pretrained(source, use_safetensors=True, local_files_only=local.exists())
            self.model = self.model.to(device).eval()
            self.processor = CLIPProcessor.from_pretrained(source, local_files_only=local.exists())
        except Exception as exc:  # transformers raises many types for a bad folder
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserError(f"cannot load CLIP model {model!r}: {first}") from exc
        self.device = torch.device(device)

    @torch.no_grad()
    def text_features(self, texts: list[str]) -> Tensor:  # [T, D], unit
        tok = self.processor(text=texts, return_tensors="pt", padding=True, truncation=True).to(self.device)
        f = self.model.get_text_features(input_ids=tok["input_ids"], attention_mask=tok.get("attention_mask"))
        f = getattr(f, "pooler_output", f)
        return torch.nn.functional.normalize(f.float(), dim=-1)

    @torch.no_grad()
    def image_features(self, images: Tensor) -> Tensor:  # [N, 3, H, W] in [0, 1] -> [N, D], unit
        pix = self.processor(images=list(images.cpu()), return_tensors="pt", do_rescale=False)["pixel_values"]
        f = self.model.get_image_features(pixel_values=pix.to(self.device))
        f = getattr(f, "pooler_output", f)
        return torch.nn.functional.normalize(f.float(), dim=-1)

    def scores(self, images: Tensor, texts: list[str]) -> Tensor:  # [N, T] cosine similarities
        return self.image_features(images) @ self.text_features(texts).T
