"""Novel views from one image: a pose-conditioned image-to-image diffusion model (3DiM, Watson et
al. 2022), its training on multi-view world renders, stochastic-conditioning sampling and
evaluation."""

from .model import SHIPPED_MODEL, CameraPrior, NovelViewArchitecture, NovelViewModel, drop_condition
from .pose import POSE_FEATURES, pose_features, relative_pose, spherical_of
from .sampling import generation_order, sample_views

__all__ = [
    "SHIPPED_MODEL", "CameraPrior", "NovelViewArchitecture", "NovelViewModel", "drop_condition",
    "POSE_FEATURES", "pose_features", "relative_pose", "spherical_of", "generation_order", "sample_views",
]
