"""Model wrapper written by `lwdock pack`: a pickled or joblib scikit-learn style model (estimator or Pipeline).

Inputs: a table (``input_shape`` (d,)), images (``input_shape`` (C, H, W): the wrapper flattens each
image to a row, as the model was trained) or texts (``input_shape`` None: ``predict`` takes a
list of strings).

Classifiers: the learnware's classes are ``classes`` (the semantic Output.Description, in order);
the model's own ``classes_`` (strings, or numbers in any range) are placed at their positions, so
``predict`` returns positions ``0..C-1`` (``output_shape`` (1,)) or C probability columns
(``output_shape`` (C,)). Without ``classes`` the model's classes must be the numbers 0..C-1.

It runs inside the learnware's sandboxed environment, never in the dock process, and does not
need lwdock.
"""

import math
import os
import pickle

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))


def _canonical(value):
    """One spelling per label (the same rule as lwdock.format.labels.canonical)."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, (float, np.floating)):
        text = str(value).strip()
        try:
            value = float(text)
        except ValueError:
            return text
        if not math.isfinite(value):
            return text
    f = float(value)
    if math.isfinite(f) and f.is_integer():
        return str(int(f))
    return repr(f)


def _load(path):
    if path.endswith(".joblib"):
        import joblib

        return joblib.load(path)
    with open(path, "rb") as fh:
        return pickle.load(fh)


class Model:
    def __init__(self, task, output_dim, model_file="model.pkl", output="auto", input_dim=None, input_shape=None,
                 classes=None):
        self._model = _load(os.path.join(_HERE, model_file))
        self._task = task
        self._n_out = int(output_dim)
        if input_shape is None and input_dim is not None:
            input_shape = [input_dim]
        self.input_shape = tuple(int(s) for s in input_shape) if input_shape is not None else None
        self._proba = task == "Classification" and output != "labels" and hasattr(self._model, "predict_proba")
        if task == "Classification":
            self.output_shape = (self._n_out,) if self._proba else (1,)
            self._positions = self._class_positions(classes)
        else:
            self.output_shape = (self._n_out,)
            self._positions = None

    def _class_positions(self, classes):
        """{model class spelling: learnware position} for each of the model's classes, or None."""
        own = getattr(self._model, "classes_", None)
        if own is None:
            return None
        keys = [_canonical(c) for c in np.asarray(own).reshape(-1)]
        if classes is None:
            bad = [k for k in keys if not (k.lstrip("-").isdigit() and 0 <= int(k) < self._n_out)]
            if bad:
                raise ValueError(f"the model's classes {keys[:10]} are not the numbers 0..{self._n_out - 1}; "
                                 "declare the learnware's classes (lwdock pack --column or --classes)")
            return {k: int(k) for k in keys}
        declared = {_canonical(c): i for i, c in enumerate(classes)}
        unknown = [k for k in keys if k not in declared]
        if unknown:
            raise ValueError(f"the model predicts classes {unknown[:10]} that the learnware does not declare "
                             f"({list(classes)[:10]})")
        return {k: declared[k] for k in keys}

    def _rows(self, X):
        if self.input_shape is None:
            return [str(x) for x in (X.tolist() if hasattr(X, "tolist") else X)]
        X = np.asarray(X, dtype=np.float64)
        return X.reshape(X.shape[0], -1)

    def predict(self, X):
        X = self._rows(X)
        n = len(X)
        if self._proba:
            proba = np.asarray(self._model.predict_proba(X), dtype=np.float64)
            if self._positions is None:
                return proba
            out = np.zeros((n, self._n_out), dtype=np.float64)
            out[:, list(self._positions.values())] = proba
            return out
        y = np.asarray(self._model.predict(X))
        if self._task != "Classification":
            return y.astype(np.float64)
        if self._positions is None:
            return y.astype(np.int64)
        values, inverse = np.unique(y, return_inverse=True)
        return np.asarray([self._positions[_canonical(v)] for v in values], dtype=np.int64)[inverse.reshape(-1)]
