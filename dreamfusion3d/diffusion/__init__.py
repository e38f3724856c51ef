"""Diffusion plumbing shared by every model of the project: the guided sampling loop
(:mod:`.sampling`), training helpers (:mod:`.training`) and pretrained-folder IO for the
project's own UNets (:mod:`.unet_io`)."""

from .sampling import SamplerKind, classifier_free_guidance, denoise, make_scheduler

__all__ = ["SamplerKind", "classifier_free_guidance", "denoise", "make_scheduler"]
