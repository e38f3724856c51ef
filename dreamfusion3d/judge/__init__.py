"""The judge: a small shape/colour classifier trained on world renders (:mod:`.model`), its
training command ``train-classifier`` (:mod:`.train`), the views it judges (:mod:`.views`) and its verdict on generate runs
(:mod:`.generations`). ``evaluate-prior`` and ``evaluate`` use it to score samples and objects."""

from .model import SHIPPED_CLASSIFIER, ClassifierConfig, ShapeColorClassifier

__all__ = ["SHIPPED_CLASSIFIER", "ClassifierConfig", "ShapeColorClassifier"]
