"""dreamfusion3d: text to 3D by score distillation, novel views from one image, mesh export."""

__version__ = "0.1.0"
