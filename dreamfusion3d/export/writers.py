"""Mesh files other tools open: GLB, OBJ (+MTL/PNG), PLY — through trimesh's exporters, written
atomically.

Axis convention. Our world is +Z up with the object's front facing +X (see
:mod:`dreamfusion3d.cameras`). glTF 2.0 is +Y up with the asset's front facing +Z, so GLB files
are always rotated by the cyclic permutation ``(x, y, z)_world -> (y, z, x)_file``: up +Z -> +Y,
front +X -> +Z, and the object's left (+Y) -> +X. It is a proper rotation (det +1), so winding
and outward normals survive. OBJ and PLY carry no axis convention; most viewers (Blender's OBJ
importer, three.js, MeshLab's default camera) assume Y-up, so they get the same rotation by
default (``up_axis="y"``) and keep the world frame with ``up_axis="z"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import trimesh

from ..utils.errors import UserError
from ..utils.io import atomic_path

Format = Literal["glb", "obj", "ply"]
FORMATS: tuple[str, ...] = ("glb", "obj", "ply")
UpAxis = Literal["y", "z"]

# world (+Z up, front +X) -> glTF (+Y up, front +Z): (x, y, z) -> (y, z, x)
Z_UP_TO_Y_UP = np.array(
    [[0.0, 1.0, 0.0, 0.0],
     [0.0, 0.0, 1.0, 0.0],
     [1.0, 0.0, 0.0, 0.0],
     [0.0, 0.0, 0.0, 1.0]]
)


def to_file_axes(mesh: trimesh.Trimesh, up_axis: UpAxis = "y") -> trimesh.Trimesh:
    """A copy of ``mesh`` in the file's frame (Y-up rotation, or unchanged for ``"z"``)."""
    if up_axis not in ("y", "z"):
        raise UserError(f"up_axis must be 'y' or 'z', got {up_axis!r}")
    out = mesh.copy()
    if up_axis == "y":
        out.apply_transform(Z_UP_TO_Y_UP)
    return out


def mesh_files(mesh: trimesh.Trimesh, fmt: str, name: str = "mesh", up_axis: UpAxis = "y") -> dict[str, bytes]:
    """Encode ``mesh`` (world frame) as ``fmt``: ``{file name: bytes}``, the main file first.

    GLB: vertex colours as ``COLOR_0`` or a ``baseColorTexture`` (always Y-up, per the glTF
    spec); PLY: binary with vertex colours; OBJ: ``v x y z r g b`` vertex colours, or
    ``NAME.mtl`` + ``NAME.png`` when the mesh is textured.
    """
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise UserError(f"unknown mesh format {fmt!r}; choose from {', '.join(FORMATS)}")
    textured = isinstance(mesh.visual, trimesh.visual.TextureVisuals)
    if fmt == "glb":
        data = trimesh.exchange.gltf.export_glb(to_file_axes(mesh, "y"), include_normals=True)
        return {f"{name}.glb": data}
    local = to_file_axes(mesh, up_axis)
    if fmt == "ply":
        if textured:  # PLY has no standard texture slot: sample the texture into vertex colours
            local.visual = local.visual.to_color()
        return {f"{name}.ply": trimesh.exchange.ply.export_ply(local, encoding="binary", vertex_normal=True)}
    if textured:
        # full-white Kd so that viewers multiplying Kd by map_Kd show the baked albedo unchanged
        material = trimesh.visual.material.SimpleMaterial(
            image=_base_image(local.visual.material), diffuse=(255, 255, 255, 255),
            ambient=(255, 255, 255, 255), specular=(0, 0, 0, 255), glossiness=1.0, name=name,  # names NAME.png
        )
        local.visual = trimesh.visual.TextureVisuals(uv=local.visual.uv, material=material)
        text, extra = trimesh.exchange.obj.export_obj(
            local, include_normals=True, include_texture=True, return_texture=True, mtl_name=f"{name}.mtl"
        )
        return {f"{name}.obj": text.encode(), **{k: bytes(v) for k, v in extra.items()}}
    text = trimesh.exchange.obj.export_obj(local, include_normals=True, include_color=True, include_texture=False)
    return {f"{name}.obj": text.encode()}


def _base_image(material):
    image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
    if image is None:
        raise UserError("textured mesh has no texture image to export")
    return image


def write_files(files: dict[str, bytes], out_dir: str | Path) -> list[Path]:
    """Write encoded files atomically; side files (MTL, PNG) before the main file that names them."""
    out_dir = Path(out_dir)
    paths = []
    for fname in list(files)[1:] + list(files)[:1]:
        with atomic_path(out_dir / fname) as tmp:
            tmp.write_bytes(files[fname])
        paths.append(out_dir / fname)
    return paths[-1:] + paths[:-1]


def export_mesh(mesh: trimesh.Trimesh, path: str | Path, up_axis: UpAxis = "y") -> list[Path]:
    """Write ``mesh`` (world frame) to ``path``; the format comes from the suffix (.glb/.obj/.ply).
    Returns the written paths (main file first)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    return write_files(mesh_files(mesh, fmt, name=path.stem, up_axis=up_axis), path.parent)


def export_all(
    mesh: trimesh.Trimesh, out_dir: str | Path, formats: Iterable[str], name: str = "mesh", up_axis: UpAxis = "y"
) -> list[Path]:
    """Encode every format first, then write: an encoding error leaves no file touched."""
    encoded = [mesh_files(mesh, fmt, name=name, up_axis=up_axis) for fmt in dict.fromkeys(formats)]
    return [p for files in encoded for p in write_files(files, out_dir)]
