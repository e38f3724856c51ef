"""NeRF fields: density + albedo over the scene box [-1, 1]^3."""

from .encoding import DenseGridEncoding, HashGridEncoding
from .field import FieldConfig, FieldOutput, NeRFField, build_field, trunc_exp

__all__ = ["DenseGridEncoding", "FieldConfig", "FieldOutput", "HashGridEncoding", "NeRFField", "build_field", "trunc_exp"]
