"""Model wrapper written by `lwdock pack` for a torch network.

The network is a TorchScript file (``torch.jit.save``), or a ``state_dict`` (``torch.save``) loaded
into ``net_class(**net_kwargs)`` from the developer's module ``net_module``, shipped next to this file.
``predict`` feeds rows of ``input_shape`` (a table (d,), images (C, H, W)) as float32 on the CPU,
in evaluation mode and without gradients.

Classifiers: the network's output column j is the learnware's class j (the semantic
Output.Description). ``output`` "auto" and "proba" return probabilities (a softmax of the outputs
unless they already are probabilities), "labels" the position of the largest output.
Regressors return the outputs as they are.

It runs inside the learnware's sandboxed environment, never in the dock process, and does not
need lwdock.
"""

import importlib
import os

import numpy as np
import torch

_HERE = os.path.dirname(os.path.abspath(__file__))


def _network(path, net_module, net_class, net_kwargs):
    if net_module is None:
        return torch.jit.load(path, map_location="cpu")
    module = importlib.import_module(f"{__name__}.{os.path.splitext(net_module)[0].replace('/', '.')}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a whole pickled module, not a state_dict: this runs in the sandbox, so it may unpickle
        state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, torch.nn.Module):
        return state
    net = getattr(module, net_class)(**(net_kwargs or {}))
    net.load_state_dict(state)
    return net


class Model:
    def __init__(self, input_shape, task, output_dim, model_file="model.pt", output="auto", net_module=None,
                 net_class=None, net_kwargs=None):
        self._net = _network(os.path.join(_HERE, model_file), net_module, net_class, net_kwargs)
        self._net.eval()
        self._task = task
        self._n_out = int(output_dim)
        self._labels = task == "Classification" and output == "labels"
        self.input_shape = tuple(int(s) for s in input_shape)
        self.output_shape = (1,) if self._labels else (self._n_out,)

    def predict(self, X):
        X = np.asarray(X, dtype=np.float32).reshape((-1, *self.input_shape))
        with torch.no_grad():
            out = self._net(torch.from_numpy(np.ascontiguousarray(X)))
        if isinstance(out, (tuple, list)):
            out = out[0]
        out = out.detach().cpu().double().numpy()
        out = out.reshape(out.shape[0], -1)
        if self._task != "Classification":
            return out
        if out.shape[1] != self._n_out:
            raise ValueError(f"the network returns {out.shape[1]} columns for {self._n_out} classes")
        if self._labels:
            return np.argmax(out, axis=1).astype(np.int64)
        if np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-5):
            return out
        out = out - out.max(axis=1, keepdims=True)
        e = np.exp(out)
        return e / e.sum(axis=1, keepdims=True)
