"""Metrics of ``dreamfusion3d evaluate``: retrieval precision and shape agreement.

Pure functions on tensors / arrays (no I/O), each checked against hand-computed cases in
``tests/evaluation/test_metrics.py``.

* :func:`r_precision` — DreamFusion's R-precision with R = 1 generalised to top-``r``: the share
  of queries whose true item ranks within the ``r`` best.
* :func:`chamfer_distance` — symmetric Chamfer distance between point sets: the *mean of the two
  directional means* of nearest-neighbour distances, Euclidean (not squared) unless ``squared``.
* :func:`volumetric_iou` — intersection over union of two boolean occupancy grids.
* :func:`box_iou` — IoU of two axis-aligned boxes (analytic; the reference for the grid IoU).
* :func:`normalise_points` — centre at the centroid and scale to unit volume-equivalent radius.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor


def retrieval_hits(scores: Tensor, targets: Tensor, r: int = 1) -> Tensor:  # [N, C], [N] -> [N] bool
    """Whether each query's target is among its ``r`` highest scores.

    Rank = number of candidates scoring *strictly* higher than the target, so ties count in the
    target's favour only if fewer than ``r`` items beat it (a constant score row is a hit at r=1)."""
    scores = torch.as_tensor(scores, dtype=torch.float64)
    targets = torch.as_tensor(targets, dtype=torch.long)
    if scores.ndim != 2 or targets.shape != scores.shape[:1]:
        raise ValueError(f"scores must be [N, C] and targets [N], got {tuple(scores.shape)} and {tuple(targets.shape)}")
    if r < 1:
        raise ValueError(f"r must be >= 1, got {r}")
    target_score = scores.gather(1, targets[:, None])  # [N, 1]
    rank = (scores > target_score).sum(1)  # [N]
    return rank < r


def r_precision(scores: Tensor, targets: Tensor, r: int = 1) -> float:
    """Share of queries (rows of ``scores [N, C]``) whose target column ``targets [N]`` ranks top-``r``."""
    hits = retrieval_hits(scores, targets, r)
    return float(hits.double().mean().item()) if len(hits) else float("nan")


def chamfer_distance(a: np.ndarray, b: np.ndarray, squared: bool = False) -> float:
    """Symmetric Chamfer distance of point sets ``a [N, 3]`` and ``b [M, 3]``:
    ``0.5 · (mean_a min_b d(a, b) + mean_b min_a d(b, a))`` with Euclidean d (squared if asked).

    Halving keeps the units of a distance: two copies offset by δ everywhere score δ."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise ValueError(f"need two non-empty [N, D] point sets, got {a.shape} and {b.shape}")
    d_ab, _ = cKDTree(b).query(a)
    d_ba, _ = cKDTree(a).query(b)
    if squared:
        d_ab, d_ba = d_ab**2, d_ba**2
    return float(0.5 * (d_ab.mean() + d_ba.mean()))


def volumetric_iou(occ_a: np.ndarray, occ_b: np.ndarray) -> float:
    """|A ∩ B| / |A ∪ B| of two boolean grids of the same shape (1.0 when both are empty)."""
    a, b = np.asarray(occ_a, dtype=bool), np.asarray(occ_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"occupancy grids differ in shape: {a.shape} vs {b.shape}")
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else float(np.count_nonzero(a & b) / union)


def box_iou(lo_a, hi_a, lo_b, hi_b) -> float:
    """IoU of two axis-aligned boxes given by their min / max corners (any dimension)."""
    lo_a, hi_a, lo_b, hi_b = (np.asarray(v, dtype=np.float64) for v in (lo_a, hi_a, lo_b, hi_b))
    inter = np.prod(np.clip(np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b), 0.0, None))
    union = np.prod(hi_a - lo_a) + np.prod(hi_b - lo_b) - inter
    return float(inter / union) if union > 0 else 0.0


def normalisation(points: np.ndarray, volume: float) -> tuple[np.ndarray, float]:
    """(centre [3], scale) that map a solid with interior samples ``points [N, 3]`` (e.g. occupied
    voxel centres) and volume ``volume`` to centroid 0 and unit *volume-equivalent radius*
    (the radius of the ball of the same volume). Volume-based scaling is robust to thin floaters
    that would inflate a bounding-sphere scale."""
    points = np.asarray(points, dtype=np.float64)
    if not len(points) or volume <= 0:
        raise ValueError("cannot normalise an empty solid")
    radius = (3.0 * volume / (4.0 * math.pi)) ** (1.0 / 3.0)
    return points.mean(0), radius


def normalise_points(points: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:  # [N, 3] -> [N, 3]
    return (np.asarray(points, dtype=np.float64) - centre) / radius


def rotation_z(deg: float) -> np.ndarray:  # [3, 3], a rotation about the up axis
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
