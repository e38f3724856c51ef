"""3D representations g(θ) behind one protocol (:class:`Representation`), and their registry.

* ``nerf`` — density + albedo field, volume-rendered (DreamFusion's NeRF);
* ``sdf`` — a signed-distance field rendered volumetrically (VolSDF density), eikonal-regularised,
  meshed at its zero level set.

Adding one: a new sub-folder with a ``Representation`` subclass, plus one line in
``registry.REGISTRY``.
"""

from .base import ColorFn, ExportFields, FieldFn, Representation
from .nerf import NeRF, build_nerf
from .registry import (
    REGISTRY, build_representation, checkpoint_extra, is_checkpoint, load_representation, load_weights, representation_class, resolve_checkpoint,
    save_representation,
)
from .sdf import SDFConfig, SDFGeometry

__all__ = [
    "REGISTRY", "ColorFn", "ExportFields", "FieldFn", "NeRF", "build_nerf", "Representation", "SDFConfig", "SDFGeometry",
    "build_representation", "checkpoint_extra", "is_checkpoint", "load_representation", "load_weights", "representation_class", "resolve_checkpoint",
    "save_representation",
]
