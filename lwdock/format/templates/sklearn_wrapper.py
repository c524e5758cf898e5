"""Model wrapper written by `lwdock pack`: a pickled scikit-learn style model.

It runs inside the learnware's sandboxed environment, never in the dock process.
"""

import os
import pickle

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))


class Model:
    def __init__(self, input_dim, task, output_dim, model_file="model.pkl", output="auto"):
        path = os.path.join(_HERE, model_file)
        if model_file.endswith(".joblib"):
            import joblib

            self._model = joblib.load(path)
        else:
            with open(path, "rb") as fh:
                self._model = pickle.load(fh)
        self._task = task
        self._n_out = int(output_dim)
        self.input_shape = (int(input_dim),)
        self._proba = task == "Classification" and output != "labels" and hasattr(self._model, "predict_proba")
        if task == "Classification":
            self.output_shape = (self._n_out,) if self._proba else (1,)
        else:
            self.output_shape = (self._n_out,)

    def predict(self, X):
        X = np.asarray(X, dtype=np.float64)
        if self._proba:
            # place the model's own classes into the full label space of the task
            proba = self._model.predict_proba(X)
            out = np.zeros((X.shape[0], self._n_out), dtype=np.float64)
            out[:, np.asarray(self._model.classes_, dtype=int)] = proba
            return out
        y = np.asarray(self._model.predict(X))
        if self._task == "Classification":
            return y.astype(np.int64)
        return y.astype(np.float64)
