"""``dreamfusion3d export``: a trained 3D representation (or a procedural world object) -> GLB / OBJ / PLY."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import trimesh
import tyro

from ..utils.config import save_config
from ..utils.device import resolve_device
from ..utils.errors import UserError
from ..utils.io import write_json_atomic
from ..utils.logging import info
from ..utils.outdir import check_output_folder, output_folder
from .extract import ColorFn, FieldFn, FieldType, _parse_threshold, extract_mesh
from .texture import DEFAULT_TEXTURE_SIZE, apply_texture, check_texture_options
from .writers import FORMATS, mesh_files, write_files


@dataclass
class ExportConfig:
    """Export a mesh that other tools open (GLB with a PBR material and a baked albedo texture,
    OBJ + MTL + PNG, PLY with vertex colours) from a trained run/checkpoint (NeRF or SDF), or
    from a procedural world object (--world-shape)."""

    source: tyro.conf.Positional[Path | None] = None
    """A run folder (uses checkpoints/final, else checkpoints/latest) or a checkpoint folder."""
    out: Path = Path("outputs/export")
    """Output folder: NAME.glb/.obj/.ply (+ .mtl/.png when textured), export.json, config.yaml."""
    overwrite: bool = False
    """Replace a non-empty --out folder (the new files are swapped in only when all are written)."""
    name: str = "mesh"
    """Base name of the mesh files."""
    format: tuple[Literal["glb", "obj", "ply"], ...] = ("glb", "obj", "ply")
    """File formats to write."""
    resolution: int = 128
    """Grid vertices per side for marching cubes."""
    threshold: str = "auto"
    """Iso level: 'auto' (density: the level whose silhouettes match the rendered field's 50%-opacity
    silhouettes; SDF: 0) or a number."""
    bound: float = 1.0
    """Half size of the box to mesh, [-bound, bound]^3 (the scene box is [-1, 1]^3)."""
    largest_component: bool = True
    """Keep only the largest connected piece (drops floaters)."""
    decimate_to: int = 50000
    """Face budget: quadric decimation to this many faces (generate's --output.mesh-faces default,
    which keeps the texture bake to seconds); 0 keeps every marching-cubes face."""
    texture: Literal["albedo", "none"] = "albedo"
    """'albedo': UV-unwrap (xatlas) and bake the albedo into NAME.png (GLB baseColorTexture,
    OBJ+MTL+PNG); 'none': vertex colours only (the GLB still gets a material that shows them)."""
    texture_size: int = DEFAULT_TEXTURE_SIZE
    """Texture width and height in pixels (16 to 8192)."""
    up_axis: Literal["y", "z"] = "y"
    """Up axis of OBJ/PLY files (GLB is always +Y up as glTF requires; our world is +Z up)."""
    chunk_size: int = 131072
    """Points per field evaluation (bounds memory)."""
    device: str = "auto"
    """Torch device for field evaluation: auto (cuda:LOCAL_RANK if CUDA is available, else cpu), cpu, cuda, cuda:N, mps."""
    world_shape: str | None = None
    """Export a procedural world object of this shape instead of a run (e.g. sphere, cube, torus)."""
    world_color: str = "red"
    """Colour name of the world object."""
    world_seed: int = 0
    """Seed of the world object's random parameters."""


def _run_source(path: Path, device: str) -> tuple[FieldFn, ColorFn, FieldType, dict]:
    from ..representations import load_representation

    rep, extra = load_representation(path, device=device)
    rep.eval()
    f = rep.export_fields()
    return f.field_fn, f.color_fn, f.field_type, {"source": str(path), "geometry": rep.kind, "run_extra": extra}


def _world_source(shape: str, color: str, seed: int) -> tuple[FieldFn, ColorFn, FieldType, dict]:
    from ..world import ALL_SHAPES, COLORS, primitive_scene

    if shape not in ALL_SHAPES:
        raise UserError(f"unknown world shape {shape!r}; choose from {', '.join(ALL_SHAPES)}")
    if color not in COLORS:
        raise UserError(f"unknown world colour {color!r}; choose from {', '.join(COLORS)}")
    scene = primitive_scene(shape, color, seed=seed)
    return scene.sdf, scene.albedo, "sdf", {"world": scene.metadata()}


def check_config(config: ExportConfig) -> None:
    """Every check that needs no loading: bad values fail before anything is read or written."""
    if (config.source is None) == (config.world_shape is None):
        raise UserError("give either a run/checkpoint folder or --world-shape (exactly one)")
    if not config.format:
        raise UserError("--format needs at least one of glb, obj, ply")
    for fmt in config.format:
        if fmt not in FORMATS:
            raise UserError(f"unknown mesh format {fmt!r}; choose from {', '.join(FORMATS)}")
    if not (config.bound > 0 and math.isfinite(config.bound)):
        raise UserError(f"--bound must be a positive number, got {config.bound}")
    if config.resolution < 3:
        raise UserError(f"--resolution must be at least 3, got {config.resolution}")
    if config.decimate_to < 0 or 0 < config.decimate_to < 4:
        raise UserError(f"--decimate-to must be 0 (keep every face) or at least 4 faces, got {config.decimate_to}")
    if config.chunk_size < 1:
        raise UserError(f"--chunk-size must be positive, got {config.chunk_size}")
    if not config.name or Path(config.name).name != config.name:
        raise UserError(f"--name must be a plain file name, got {config.name!r}")
    _parse_threshold(config.threshold)
    check_texture_options(config.texture, config.texture_size)
    if config.source is not None and not config.source.exists():
        raise UserError(f"{config.source} does not exist (give a NeRF run folder or a checkpoint folder)")


def build_mesh(config: ExportConfig) -> tuple[trimesh.Trimesh, dict]:
    """The mesh (world frame; textured unless --texture none) and a JSON-able description of
    where it came from, texture figures included."""
    check_config(config)
    if config.world_shape is not None:
        field_fn, color_fn, field_type, about = _world_source(config.world_shape, config.world_color, config.world_seed)
    else:
        field_fn, color_fn, field_type, about = _run_source(config.source, config.device)
    info(f"extracting a {field_type} isosurface on a {config.resolution}^3 grid")
    mesh = extract_mesh(
        field_fn, -config.bound, config.bound, config.resolution, config.threshold, color_fn,
        field_type=field_type, chunk_size=config.chunk_size, largest_component=config.largest_component,
        decimate_to=config.decimate_to or None, device=config.device,
    )
    mesh, texture_stats = apply_texture(mesh, color_fn, config.texture, config.texture_size, config.chunk_size, config.device)
    return mesh, {**about, **texture_stats}


@torch.no_grad()
def run(config: ExportConfig) -> None:
    start = time.perf_counter()
    config.device = str(resolve_device(config.device))
    check_output_folder(config.out, overwrite=config.overwrite)
    if config.source is not None and Path(config.out).resolve() in (config.source.resolve(), *config.source.resolve().parents):
        raise UserError(f"--out {config.out} holds the source {config.source}: choose another --out")
    mesh, about = build_mesh(config)
    # encode everything before writing anything: an error leaves earlier outputs untouched
    encoded = [mesh_files(mesh, fmt, name=config.name, up_axis=config.up_axis) for fmt in dict.fromkeys(config.format)]
    with output_folder(config.out, overwrite=config.overwrite, staged=True) as out:
        _write_export(config, mesh, about, encoded, out, start)


def _write_export(config: ExportConfig, mesh: trimesh.Trimesh, about: dict, encoded: list, out: Path,
                  start: float) -> None:
    paths = [p for files in encoded for p in write_files(files, out)]
    geometry = trimesh.Trimesh(mesh.vertices, mesh.faces, process=True)  # UV seams merged back
    stats = {
        **about,
        "files": [p.name for p in paths],
        "vertices": int(len(geometry.vertices)),
        "faces": int(len(mesh.faces)),
        "watertight": bool(geometry.is_watertight),
        "volume": float(geometry.volume) if geometry.is_watertight else None,
        "area": float(geometry.area),
        "threshold": mesh.metadata.get("threshold"),
        "field_type": mesh.metadata.get("field_type"),
        "axes": {"world": "+Z up, front +X", "glb": "+Y up, front +Z, metres",
                 "obj_ply": f"+{config.up_axis.upper()} up" + (", front +Z" if config.up_axis == "y" else ", front +X")},
        "seconds": round(time.perf_counter() - start, 3),
    }
    write_json_atomic(out / "export.json", stats)
    save_config(config, out / "config.yaml", command="export")
    info(
        f"wrote {', '.join(str(config.out / p.name) for p in paths)} ({stats['vertices']} vertices, {stats['faces']} faces, "
        f"threshold {stats['threshold']:.4g}, {stats['seconds']:.1f} s)"
    )
