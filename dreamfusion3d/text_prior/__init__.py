"""The bundled text prior: its network (:mod:`.model`, :mod:`.text_encoder`), training data
(:mod:`.data`), sampling (:mod:`.sampling`), training (:mod:`.train`, ``train-prior``) and
evaluation (:mod:`.evaluate`, ``evaluate-prior``)."""

from .text_encoder import BUNDLED_ENCODER, SentenceEncoder
from .model import SHIPPED_PRIOR, TextPriorArchitecture, TextPriorModel

__all__ = ["BUNDLED_ENCODER", "SentenceEncoder", "SHIPPED_PRIOR", "TextPriorArchitecture", "TextPriorModel"]
