"""Neural fields over the scene box [-1, 1]^3: spatial encodings, MLP heads, the NeRF density field."""

from .encoding import DenseGridEncoding, HashGridEncoding
from .field import FieldConfig, FieldOutput, NeRFField, build_encoding, build_field, mlp, trunc_exp

__all__ = ["DenseGridEncoding", "FieldConfig", "FieldOutput", "HashGridEncoding", "NeRFField", "build_encoding",
           "build_field", "mlp", "trunc_exp"]
