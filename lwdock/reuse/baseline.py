"""Baseline: a model trained on the user's labelled rows alone.

It is the same linear head as feature augmentation (logistic regression or
ridge on standardised features) without any learnware output, so the two
are directly comparable. lwdock reports it next to every reuser trained or
scored on labels, so a user can see whether reuse helps at all.
"""

from __future__ import annotations

from .augment import DEFAULT_ALPHAS, FeatureAugmentReuser
from .base import CLASSIFICATION


class BaselineModel(FeatureAugmentReuser):
    """User-only model: ``FeatureAugmentReuser`` with no learnwares."""

    method = "baseline"
    learnwares = ()
    include_X = True

    def __init__(self, task: str = CLASSIFICATION, n_classes: int | None = None, C: float = 1.0, alphas=DEFAULT_ALPHAS):
        self.task = task
        self.n_classes = n_classes
        self.C = C
        self.alphas = alphas

    def _set_classes(self, outs, kinds, y=None):  # the classes come from the labels and n_classes only
        super()._set_classes([], [], y)
