"""Evaluation of generated objects (``dreamfusion3d evaluate``) and the SDS-step benchmark
(``dreamfusion3d bench``). Metrics are pure functions in :mod:`.metrics`."""

from .metrics import (
    box_iou, chamfer_distance, normalisation, normalise_points, r_precision, retrieval_hits, volumetric_iou,
)

__all__ = ["box_iou", "chamfer_distance", "normalisation", "normalise_points", "r_precision", "retrieval_hits",
           "volumetric_iou"]
