"""Networks this project trains itself: the bundled text prior and its evaluation classifier."""

from .text_encoder import BUNDLED_ENCODER, SentenceEncoder
from .text_prior import SHIPPED_PRIOR, TextPriorArchitecture, TextPriorModel

__all__ = ["BUNDLED_ENCODER", "SentenceEncoder", "SHIPPED_PRIOR", "TextPriorArchitecture", "TextPriorModel"]
