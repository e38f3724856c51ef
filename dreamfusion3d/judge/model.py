"""The evaluation classifier: a small CNN that names the shape and colour of a 32 px image of a
world object. It is the judge for the bundled prior's samples and for text-to-3D results, so it is
trained on its own seed, with held-out objects, and with augmentations (blur, noise, shifts,
exposure) that cover the softer look of diffusion samples and NeRF renders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ..utils.errors import UserError
from ..utils.io import atomic_path, write_json_atomic

SHIPPED_CLASSIFIER = Path(__file__).resolve().parents[1] / "assets" / "classifier"


@dataclass
class ClassifierConfig:
    shapes: tuple[str, ...]
    colors: tuple[str, ...]
    resolution: int = 32
    width: int = 32


class ShapeColorClassifier(nn.Module):
    """Conv net with two heads: ``forward(images [B,3,H,W] in [0,1]) -> (shape_logits, color_logits)``."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        w = config.width

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            )

        self.features = nn.Sequential(
            block(3, w), nn.MaxPool2d(2), block(w, 2 * w), nn.MaxPool2d(2), block(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.shape_head = nn.Linear(4 * w, len(config.shapes))
        self.color_head = nn.Linear(4 * w, len(config.colors))

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if images.shape[-1] != self.config.resolution:
            images = F.interpolate(images, size=self.config.resolution, mode="bilinear", antialias=True, align_corners=False)
        h = self.features(images * 2.0 - 1.0)
        return self.shape_head(h), self.color_head(h)

    @torch.no_grad()
    def predict(self, images: Tensor) -> tuple[list[str], list[str]]:
        self.eval()
        s, c = self(images)
        return [self.config.shapes[i] for i in s.argmax(-1)], [self.config.colors[i] for i in c.argmax(-1)]

    def save_pretrained(self, folder: str | Path, info: dict | None = None) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "model.safetensors") as tmp:
            save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(tmp))
        cfg = {"shapes": list(self.config.shapes), "colors": list(self.config.colors),
               "resolution": self.config.resolution, "width": self.config.width, **(info or {})}
        write_json_atomic(folder / "config.json", cfg)

    @classmethod
    def from_pretrained(cls, folder: str | Path | None = None, device: str | torch.device = "cpu") -> "ShapeColorClassifier":
        folder = Path(folder) if folder is not None else SHIPPED_CLASSIFIER
        try:
            meta = json.loads((folder / "config.json").read_text())
            state = load_file(str(folder / "model.safetensors"))
        except FileNotFoundError as exc:
            raise UserError(f"{folder} is not a classifier folder (needs config.json and model.safetensors)") from exc
        except (json.JSONDecodeError, SafetensorError, OSError) as exc:
            raise UserError(f"cannot load the classifier from {folder}: {str(exc).splitlines()[0]}") from exc
        model = cls(ClassifierConfig(tuple(meta["shapes"]), tuple(meta["colors"]), meta["resolution"], meta["width"]))
        model.load_state_dict(state)
        return model.to(device).eval()


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random shift, exposure, blur and noise: ``[B,3,H,W]`` in [0,1] -> same."""
    b, _, h, w = images.shape
    shift = torch.randint(-2, 3, (2,), generator=generator).tolist()
    images = torch.roll(images, shifts=shift, dims=(2, 3))
    images = images * (0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=generator))
    if torch.rand(1, generator=generator).item() < 0.5:
        kernel = torch.tensor([1.0, 2.0, 1.0])
        kernel = (kernel[:, None] * kernel[None, :]) / 16.0
        images = F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernel.expand(3, 1, 3, 3), groups=3)
    images = images + 0.05 * torch.rand(b, 1, 1, 1, generator=generator) * torch.randn(images.shape, generator=generator)
    return images.clamp(0, 1)
