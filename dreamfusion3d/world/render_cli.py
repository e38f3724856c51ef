"""``dreamfusion3d render``: procedural scenes or mesh files to PNGs, a contact sheet and a GIF."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..cameras import Cameras, orbit_cameras
from ..utils.config import save_config
from ..utils.errors import UserError
from ..utils.logging import info, progress
from ..utils.outdir import check_output_folder, output_folder
from .captions import PARA_COLORS, PARA_SHAPES, PARA_SIZES, caption, vocabulary
from ..utils.images import contact_sheet, save_png, save_video, to_uint8
from .mesh import load_mesh_asset, render_mesh
from .render import render_scene
from .recipes import primitive_scene
from .scene import ALL_SHAPES, COLORS, COMPOSITIONS, SHAPES, Scene


@dataclass
class RenderConfig:
    """Render procedural scenes (by shape/colour/seed or caption-like specs) or mesh files from a
    turntable or given angles to PNGs, one contact sheet (rows = objects) and optional GIFs."""

    out: Path = Path("outputs/render")
    """Output folder (must be empty or absent unless --overwrite)."""
    shape: str = "cube"
    """Shape of the procedural scene (used when no --spec and no --mesh is given)."""
    color: str = "red"
    """Main colour of the procedural scene."""
    seed: int = 0
    """Seed of the procedural scene (proportions, rotation, colour jitter)."""
    spec: tuple[str, ...] = ()
    """Caption-like descriptions, e.g. "a small blue sphere" "a red sphere on a yellow cube"."""
    mesh: tuple[Path, ...] = ()
    """Mesh files (OBJ/PLY/GLB) to render instead of procedural scenes (combinable with --spec)."""
    up_axis: str = "auto"
    """Up axis of the mesh files: auto, z, y, -y, x, -z."""
    views: int = 8
    """Turntable views (evenly spaced azimuths from the front) when --azimuths is empty."""
    azimuths: tuple[float, ...] = ()
    """Explicit azimuths in degrees (0 = front, +X); paired with --elevations (or one elevation for all)."""
    elevations: tuple[float, ...] = (15.0,)
    """Elevations in degrees."""
    radius: float = 3.0
    """Camera distance from the origin."""
    fov_deg: float = 40.0
    """Vertical field of view in degrees."""
    resolution: int = 128
    """Image size in pixels."""
    supersample: int = 2
    """Anti-aliasing factor (1 = none)."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Background colour (RGB in [0, 1])."""
    gif: bool = False
    """Also write a turntable GIF per object."""
    fps: float = 8.0
    """GIF frame rate."""
    threads: int = 1
    """torch CPU threads (1 is fastest for these small kernels, and robust on a shared CPU)."""
    overwrite: bool = False
    """Replace a non-empty --out folder (the new renders are swapped in only when all are done)."""


_COLOR_WORDS = {**{c: c for c in COLORS}, **{w: c for c, ws in PARA_COLORS.items() for w in ws}}
_SHAPE_WORDS = {**{s: s for s in SHAPES}, **{w: s for s, ws in PARA_SHAPES.items() for w in ws if " " not in w},
                "hat": "cone"}
_SIZE_SCALE = {"small": 0.72, "large": 0.97, **{w: {"small": 0.72, "large": 0.97}[s]
                                                for s, ws in PARA_SIZES.items() for w in ws}}


def parse_spec(spec: str, seed: int = 0) -> Scene:
    """A scene from a caption-like description (training or paraphrase words):
    "a small blue sphere", "a red sphere on a yellow cube", "a blue sphere with a red nose",
    "a green cube with a white front face". View words are ignored."""
    words = re.findall(r"[a-z]+", spec.lower())
    colors = [_COLOR_WORDS[w] for w in words if w in _COLOR_WORDS]
    shapes = [_SHAPE_WORDS[w] for w in words if w in _SHAPE_WORDS]
    sizes = [_SIZE_SCALE[w] for w in words if w in _SIZE_SCALE]
    if not colors or not shapes:
        raise UserError(f"cannot read {spec!r}: name a colour ({', '.join(COLORS)}) and a shape ({', '.join(SHAPES)})")
    params = {"scale": sizes[0]} if sizes else {}
    second = colors[1] if len(colors) > 1 else None
    vocab = vocabulary(spec)
    if vocab & {"nose", "beak", "snout"}:
        shape = "sphere_with_nose"
    elif "front" in vocab and "face" in vocab or vocab & {"facade", "panel"}:
        shape = "cube_with_front_face"
    elif len(shapes) >= 2:
        shape = f"{shapes[0]}_on_{shapes[1]}"
        if shape not in COMPOSITIONS:
            raise UserError(f"cannot build {spec!r}: stacks are {', '.join(COMPOSITIONS)}")
        params = {}
    else:
        shape = shapes[0]
    if shape not in SHAPES and second is not None:
        params["second_color"] = second
    return primitive_scene(shape, colors[0], seed=seed, **params)


def _cameras(config: RenderConfig) -> Cameras:
    if config.azimuths:
        el = list(config.elevations)
        if len(el) not in (1, len(config.azimuths)):
            raise UserError("--elevations needs one value or as many values as --azimuths")
        az = list(config.azimuths)
        el = el * len(az) if len(el) == 1 else el
    else:
        if config.views < 1:
            raise UserError("--views must be >= 1")
        az = [i * 360.0 / config.views for i in range(config.views)]
        el = [config.elevations[0] if config.elevations else 15.0] * len(az)
    return orbit_cameras(az, el, config.radius, config.fov_deg, config.resolution)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "object"


def run(config: RenderConfig) -> None:
    """``dreamfusion3d render``."""
    torch.set_num_threads(max(1, config.threads))
    check_output_folder(config.out, overwrite=config.overwrite)
    if not 8 <= config.resolution <= 2048 or config.supersample < 1:
        raise UserError("--resolution must be in [8, 2048] and --supersample >= 1")
    cams = _cameras(config)
    objects: list[tuple[str, object]] = []  # (name, Scene | MeshAsset), all validated before rendering
    for spec in config.spec:
        objects.append((spec, parse_spec(spec, config.seed)))
    for path in config.mesh:
        asset = load_mesh_asset(path, up_axis=config.up_axis)
        objects.append((asset.name, asset))
    if not objects:
        if config.shape not in ALL_SHAPES:
            raise UserError(f"unknown shape {config.shape!r}; choose from {', '.join(ALL_SHAPES)}")
        scene = primitive_scene(config.shape, config.color, seed=config.seed)
        objects.append((caption(scene), scene))

    with output_folder(config.out, overwrite=config.overwrite, staged=True) as out:
        rows = []
        for name, obj in progress(objects, desc="objects", unit="obj"):
            render = render_scene if isinstance(obj, Scene) else render_mesh
            rgb = render(obj, cams, background=config.background, supersample=config.supersample)["rgb"]
            folder = out / _slug(name)
            for i in range(rgb.shape[0]):
                save_png(folder / f"view_{i:03d}.png", rgb[i])
            if config.gif:
                save_video(out / f"{_slug(name)}.gif", to_uint8(rgb), config.fps)
            rows.append(rgb)
        save_png(out / "contact_sheet.png", contact_sheet(rows))
        save_config(config, out / "config.yaml", command="render")
        az, el, _ = cams.spherical()
        info(f"rendered {len(objects)} object(s) × {cams.batch_size} views to {config.out} "
             f"(azimuths {np.round(az.numpy(), 1).tolist()}, contact_sheet.png)")
