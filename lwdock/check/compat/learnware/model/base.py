"""The reference model contract: shapes in ``__init__``, ``predict`` required, ``fit``/``finetune`` optional."""

from __future__ import annotations


class BaseModel:
    def __init__(self, input_shape, output_shape):  # type: ignore[no-untyped-def]
        self.input_shape = input_shape
        self.output_shape = output_shape

    def predict(self, X):  # type: ignore[no-untyped-def]
        raise NotImplementedError("a learnware model must implement predict(X)")

    def fit(self, X, y):  # type: ignore[no-untyped-def]
        """Optional; does nothing by default."""

    def finetune(self, X, y):  # type: ignore[no-untyped-def]
        """Optional; does nothing by default."""
