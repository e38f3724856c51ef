"""Mesh export: isosurface of any field (NeRF density or SDF) -> trimesh -> GLB/OBJ/PLY, with
a baked UV texture (default) or vertex colours. World frame +Z up; GLB is written +Y up."""

from .extract import (
    AUTO_OPACITY, EmptyFieldError, auto_density_threshold, evaluate_grid, extract_mesh, keep_largest_component,
    vertex_colors,
)
from .command import ExportConfig
from .texture import TEXTURE_MODES, apply_texture, bake_texture, check_texture_options, uv_unwrap
from .writers import FORMATS, Z_UP_TO_Y_UP, export_all, export_mesh, mesh_files, to_file_axes, write_files

__all__ = [
    "AUTO_OPACITY", "EmptyFieldError", "ExportConfig", "FORMATS", "Z_UP_TO_Y_UP", "auto_density_threshold", "evaluate_grid",
    "export_all", "export_mesh", "extract_mesh", "keep_largest_component", "mesh_files", "to_file_axes",
    "uv_unwrap", "vertex_colors", "write_files", "bake_texture", "apply_texture", "check_texture_options",
    "TEXTURE_MODES",
]

