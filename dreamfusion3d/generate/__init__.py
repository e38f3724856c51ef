"""Text to 3D: the DreamFusion optimisation loop and what it writes."""

from .config import GenerateConfig, LossConfig, OptimConfig, OutputConfig, Ramp, ShadingConfig

__all__ = ["GenerateConfig", "LossConfig", "OptimConfig", "OutputConfig", "Ramp", "ShadingConfig"]
