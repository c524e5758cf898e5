"""Issue 14, models people have: a TorchScript file, torch weights with the module defining the
network, and a developer's own wrapper module with a file it needs, each packed, checked in its
sandboxed environment and applied through the console script, predicting what it predicts in-process."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

from lwdock.errors import ExitCode  # noqa: E402

LWDOCK = str(Path(sys.executable).parent / "lwdock")
CLASSES = ("ant", "bee", "cat")  # sorted, as pack orders labels

NET = textwrap.dedent('''
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self, d_in=4, hidden=16, n_out=3):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))

        def forward(self, x):
            return self.body(x)
''')

WRAPPER = textwrap.dedent('''
    import os

    import numpy as np

    HERE = os.path.dirname(os.path.abspath(__file__))


    class Model:
        """A nearest-centroid classifier whose centroids ship as a file next to this module."""

        def __init__(self, temperature=1.0):
            self.centroids = np.load(os.path.join(HERE, "centroids.npy"))
            self.temperature = float(temperature)
            self.input_shape = (self.centroids.shape[1],)
            self.output_shape = (self.centroids.shape[0],)

        def predict(self, X):
            d = ((np.asarray(X, dtype=np.float64)[:, None, :] - self.centroids[None]) ** 2).sum(-1)
            logits = -d / self.temperature
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
''')


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class World:
    def __init__(self, root: Path):
        self.root = root
        rng = np.random.default_rng(0)
        centres = np.array([[0, 0, 0, 0], [3, 0, 3, 0], [0, 3, 0, 3]], dtype=np.float64)
        yi = rng.integers(0, 3, 300)
        X = centres[yi] + rng.normal(size=(300, 4))
        self.X_train, self.y_train = X[:240], np.array([CLASSES[i] for i in yi[:240]])
        self.X_test = X[240:]
        self.cols = ["width", "height", "depth", "mass"]
        with open(root / "train.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(self.cols + ["kind"])
            w.writerows([*map(repr, row), lab] for row, lab in zip(self.X_train.tolist(), self.y_train))
        with open(root / "test.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(self.cols[::-1])  # the user's file has the columns the other way round
            w.writerows([repr(v) for v in row[::-1]] for row in self.X_test.tolist())
        (root / "net.py").write_text(NET)
        (root / "wrap.py").write_text(WRAPPER)
        sys.path.insert(0, str(root))
        try:
            from net import Net  # the developer's module, in the developer's process
        finally:
            sys.path.remove(str(root))
        torch.manual_seed(0)
        self.net = Net(hidden=24)
        target = torch.tensor([CLASSES.index(c) for c in self.y_train])
        opt = torch.optim.Adam(self.net.parameters(), lr=0.02)
        for _ in range(200):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(self.net(torch.tensor(self.X_train, dtype=torch.float32)), target).backward()
            opt.step()
        self.net.eval()
        torch.jit.save(torch.jit.script(self.net), root / "net_ts.pt")
        torch.save(self.net.state_dict(), root / "net_state.pt")
        self.centroids = np.stack([self.X_train[self.y_train == c].mean(0) for c in CLASSES])
        np.save(root / "centroids.npy", self.centroids)
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("LWDOCK_")},
                    "XDG_CACHE_HOME": str(root / "cache"), "LWDOCK_NO_PROGRESS": "1", "LWDOCK_HOME": str(root / "dock")}
        if os.environ.get("LWDOCK_SANDBOX"):
            self.env["LWDOCK_SANDBOX"] = os.environ["LWDOCK_SANDBOX"]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([LWDOCK, *args], capture_output=True, text=True, timeout=600, env=self.env, cwd=self.root)

    def in_process(self, kind: str) -> np.ndarray:
        if kind == "wrapper":
            d = ((self.X_test[:, None, :] - self.centroids[None]) ** 2).sum(-1)
            return _softmax(-d / 2.0)
        with torch.no_grad():
            out = self.net(torch.tensor(self.X_test, dtype=torch.float32)).double().numpy()
        return _softmax(out)


PACK_ARGS = {
    "torchscript": ["--model", "net_ts.pt"],
    "state": ["--model", "net_state.pt", "--module", "net.py", "--model-kwargs", '{"hidden": 24}'],
    "wrapper": ["--module", "wrap.py", "--include", "centroids.npy", "--model-kwargs", '{"temperature": 2.0}'],
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("models"))
    assert w.run("init").returncode == 0
    return w


@pytest.mark.parametrize("kind", list(PACK_ARGS))
def test_model_kind_packs_checks_and_predicts_as_in_process(world, kind):
    res = world.run("pack", *PACK_ARGS[kind], "--data", "train.csv", "--label-column", "kind", "--task", "Classification",
                    "-o", f"{kind}.zip", "--json")
    assert res.returncode == 0, res.stderr
    packed = json.loads(res.stdout)
    assert packed["classes"] == list(CLASSES) and packed["columns"] == world.cols
    assert packed["model_kind"] == {"torchscript": "torchscript", "state": "torch-state", "wrapper": "module"}[kind]
    with zipfile.ZipFile(world.root / f"{kind}.zip") as zf:
        names = set(zf.namelist())
        reqs = zf.read("requirements.txt").decode()
    assert ("centroids.npy" in names and "wrap.py" in names) if kind == "wrapper" else "model.pt" in names
    assert ("numpy==" in reqs) if kind == "wrapper" else reqs.startswith("torch==")
    res = world.run("check", f"{kind}.zip", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["status"] == "usable"
    res = world.run("submit", f"{kind}.zip", "-q")
    assert res.returncode == 0, res.stderr
    lw = res.stdout.strip()
    assert world.run("reuse", "--ids", lw, "-o", f"{kind}.lwe").returncode == 0
    res = world.run("predict", f"{kind}.lwe", "test.csv", "--proba", "-o", f"{kind}.csv")
    assert res.returncode == 0, res.stderr
    with open(world.root / f"{kind}.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["prediction"] + [f"proba_{c}" for c in CLASSES]
    proba = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    expected = world.in_process(kind)
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    assert [r[0] for r in rows[1:]] == [CLASSES[i] for i in expected.argmax(1)]


def test_torch_weights_without_their_module_are_refused_with_a_hint(world):
    res = world.run("pack", "--model", "net_state.pt", "--data", "train.csv", "--label-column", "kind",
                    "--task", "Classification", "-o", "x.zip")
    assert res.returncode == ExitCode.USAGE
    assert res.stderr.startswith("error: net_state.pt holds torch weights") and "--module" in res.stderr
    assert not (world.root / "x.zip").exists()


def test_a_module_without_a_model_class_is_refused(world):
    (world.root / "empty.py").write_text("def helper():\n    return 1\n")
    res = world.run("pack", "--module", "empty.py", "--data", "train.csv", "--label-column", "kind",
                    "--task", "Classification", "-o", "y.zip")
    assert res.returncode == ExitCode.USAGE and "defines no model class with a predict method" in res.stderr
    res = world.run("pack", *PACK_ARGS["wrapper"][:2], "--include", "missing.npy", "--data", "train.csv",
                    "--label-column", "kind", "--task", "Classification", "-o", "y.zip")
    assert res.returncode == ExitCode.NOT_FOUND and "missing.npy" in res.stderr
