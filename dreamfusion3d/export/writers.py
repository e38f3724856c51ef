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
    out = mesh.copy(include_cache=True)  # keeps given vertex normals (rotated with the mesh)
    if up_axis == "y":
        out.apply_transform(Z_UP_TO_Y_UP)
    return out


def srgb_to_linear(rgba: np.ndarray) -> np.ndarray:
    """uint8 sRGB(A) -> uint8 linear RGB(A) (IEC 61966-2-1 transfer function; alpha unchanged).
    glTF's ``COLOR_0`` is linear while our colours, like PNG textures, are sRGB."""
    c = np.asarray(rgba, dtype=np.float64) / 255.0
    rgb = c[..., :3]
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return np.round(np.concatenate([lin, c[..., 3:]], axis=-1) * 255.0).astype(np.uint8)


def linear_to_srgb(rgba: np.ndarray) -> np.ndarray:
    """The inverse of :func:`srgb_to_linear` (for reading ``COLOR_0`` back as display colours)."""
    c = np.asarray(rgba, dtype=np.float64) / 255.0
    rgb = c[..., :3]
    srgb = np.where(rgb <= 0.0031308, rgb * 12.92, 1.055 * rgb ** (1 / 2.4) - 0.055)
    return np.round(np.concatenate([srgb, c[..., 3:]], axis=-1) * 255.0).astype(np.uint8)


def gltf_vertex_colors(path: str | Path, n_vertices: int) -> np.ndarray | None:
    """sRGB uint8 RGBA vertex colours of a single-mesh glTF/GLB whose primitive has a material
    and ``COLOR_0`` (trimesh's ``force="mesh"`` loading drops them), or None."""
    scene = trimesh.load(path, process=False)
    geometries = list(scene.geometry.values()) if isinstance(scene, trimesh.Scene) else [scene]
    if len(geometries) != 1 or not hasattr(geometries[0].visual, "vertex_attributes"):
        return None
    colors = geometries[0].visual.vertex_attributes.get("color")
    if colors is None or len(colors) != n_vertices:
        return None
    return linear_to_srgb(colors)


def _glb_ready(local: trimesh.Trimesh) -> trimesh.Trimesh:
    """Give the GLB the matte material of :func:`~.texture.matte_material`: a textured mesh
    keeps its texture (and drops the PLY helper colours, which glTF would multiply in); a
    vertex-coloured one gets a white material and linear ``COLOR_0``."""
    from .texture import matte_material

    if isinstance(local.visual, trimesh.visual.TextureVisuals):
        if "color" in local.visual.vertex_attributes:
            local.visual.vertex_attributes.pop("color")
        return local
    colors = local.visual.vertex_colors if local.visual.kind == "vertex" else None
    local.visual = trimesh.visual.TextureVisuals(material=matte_material(None))
    if colors is not None:
        local.visual.vertex_attributes["color"] = srgb_to_linear(colors)
    return local


def _merged_vertex_colors(local: trimesh.Trimesh, colors: np.ndarray | None) -> trimesh.Trimesh:
    """A textured mesh as a vertex-coloured one with its UV seams merged back (PLY has no
    standard texture slot); ``colors``: per-vertex colours if known, else sampled from the texture."""
    if colors is None:
        colors = local.visual.to_color().vertex_colors
    # seam copies have bit-identical positions: merge exactly those (no tolerance, every face kept)
    _, first, inverse = np.unique(np.asarray(local.vertices), axis=0, return_index=True, return_inverse=True)
    faces = inverse.reshape(-1)[local.faces]
    normals = np.asarray(local.vertex_normals)[first]
    return trimesh.Trimesh(local.vertices[first], faces, vertex_normals=normals,
                           vertex_colors=np.asarray(colors)[first], process=False)


def unit_vertex_normals(mesh: trimesh.Trimesh) -> np.ndarray:
    """``mesh.vertex_normals`` with every vector of unit length: where the faces around a vertex
    cancel out (a fold left by decimation) or the vertex is unused, the normal of its largest
    face (or +Z) stands in. glTF requires unit normals (the validator flags zero ones as errors)."""
    n = np.array(mesh.vertex_normals, dtype=np.float64)
    bad = ~(np.linalg.norm(n, axis=1) > 1e-6)
    if bad.any():
        vf = np.asarray(mesh.vertex_faces)[bad]  # [B, k] incident faces, padded with -1
        area = np.where(vf >= 0, mesh.area_faces[vf.clip(min=0)], -1.0)
        best = vf[np.arange(len(vf)), area.argmax(1)] if vf.shape[1] else np.full(len(vf), -1)
        fallback = np.where((best >= 0)[:, None], mesh.face_normals[best.clip(min=0)], 0.0)
        n[bad] = fallback
        still = ~(np.linalg.norm(n, axis=1) > 1e-6)
        n[still] = (0.0, 0.0, 1.0)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def mesh_files(mesh: trimesh.Trimesh, fmt: str, name: str = "mesh", up_axis: UpAxis = "y") -> dict[str, bytes]:
    """Encode ``mesh`` (world frame) as ``fmt``: ``{file name: bytes}``, the main file first.

    GLB (always +Y up, per the glTF spec): a matte PBR material with the ``baseColorTexture``
    of a textured mesh, or white with linear ``COLOR_0`` vertex colours; PLY: binary with sRGB
    vertex colours (a textured mesh's seams merged back); OBJ: ``v x y z r g b`` vertex colours,
    or ``NAME.mtl`` + ``NAME.png`` when the mesh is textured. Every format carries vertex normals.
    """
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise UserError(f"unknown mesh format {fmt!r}; choose from {', '.join(FORMATS)}")
    textured = isinstance(mesh.visual, trimesh.visual.TextureVisuals) and mesh.visual.uv is not None
    local = to_file_axes(mesh, "y" if fmt == "glb" else up_axis)
    if fmt == "ply" and textured:  # the bake's vertex colours (trimesh's copy does not keep vertex_attributes)
        local = _merged_vertex_colors(local, mesh.visual.vertex_attributes.get("color"))
    local.vertex_normals = unit_vertex_normals(local)
    if fmt == "glb":
        data = trimesh.exchange.gltf.export_glb(_glb_ready(local), include_normals=True)
        return {f"{name}.glb": data}
    if fmt == "ply":
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
