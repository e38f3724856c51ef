"""The procedural 3D world: seeded scenes, captions, an analytic renderer, real meshes and
multi-view datasets in the NeRF-synthetic layout."""

from .captions import caption
from .dataset import MakeDatasetConfig, MultiViewData, list_objects, load_nerf_synthetic, write_dataset
from .mesh import MeshAsset, load_mesh_asset, render_mesh
from .render import render_scene
from .recipes import primitive_scene, random_scene
from .scene import ALL_SHAPES, COLORS, COMPOSITIONS, FRONT_SHAPES, SHAPES, Part, Scene

__all__ = [
    "ALL_SHAPES", "COLORS", "COMPOSITIONS", "FRONT_SHAPES", "SHAPES", "Part", "Scene",
    "caption", "primitive_scene", "random_scene", "render_scene",
    "MeshAsset", "load_mesh_asset", "render_mesh",
    "MakeDatasetConfig", "MultiViewData", "list_objects", "load_nerf_synthetic", "write_dataset",
]
