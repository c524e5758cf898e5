"""Issue 14: a zip laid out as the reference package's ``LearnwareTemplate.generate_learnware_zipfile``
writes it (a pickle-loading ``__init__.py``, ``learnware.yaml`` dumped by PyYAML's default dumper, so
the shapes carry ``!!python/tuple``) is accepted unchanged, checked and applied through the console
script; any other python tag is refused."""

from __future__ import annotations

import csv
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from _factory import semantic_dict
from lwdock.errors import ExitCode
from lwdock.spec.rkme_table import RKMETableSpec

LWDOCK = str(Path(sys.executable).parent / "lwdock")

# The model module of a pickle template: it follows the reference's BaseModel contract and its
# predict_method kwarg (our own code, written for this test).
PICKLE_MODULE = '''
import os
import pickle

from learnware.model.base import BaseModel


class PickleLoadedModel(BaseModel):
    def __init__(self, input_shape, output_shape, predict_method="predict", fit_method="fit",
                 finetune_method="finetune", pickle_filename="model.pkl"):
        super().__init__(input_shape=input_shape, output_shape=output_shape)
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), pickle_filename), "rb") as fh:
            self.model = pickle.load(fh)
        self.predict_method = predict_method

    def predict(self, X):
        return getattr(self.model, self.predict_method)(X)
'''


def _template_yaml(n_features: int, n_classes: int) -> str:
    """``learnware.yaml`` as the template writes it: ``yaml.dump`` of the config (sorted keys, tuples tagged)."""
    config = {
        "model": {"class_name": "PickleLoadedModel", "kwargs": {
            "input_shape": (n_features,), "output_shape": (n_classes,), "predict_method": "predict_proba",
            "fit_method": "fit", "finetune_method": "finetune", "pickle_filename": "model.pkl"}},
        "stat_specifications": [{"module_path": "learnware.specification", "class_name": "RKMETableSpecification",
                                 "file_name": "stat_spec.json", "kwargs": {}}],
    }
    return yaml.dump(config)


def _zip_folder(folder: Path, out: Path) -> Path:
    """As the reference's convert_folder_to_zipfile: every file by its base name."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, p.name)
    return out


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LWDOCK_")},
           "XDG_CACHE_HOME": str(root / "cache"), "LWDOCK_NO_PROGRESS": "1", "LWDOCK_HOME": str(root / "dock")}
    if os.environ.get("LWDOCK_SANDBOX"):
        env["LWDOCK_SANDBOX"] = os.environ["LWDOCK_SANDBOX"]
    return subprocess.run([LWDOCK, *args], capture_output=True, text=True, timeout=600, env=env, cwd=root)


def _reference_zip(tmp_path: Path) -> tuple[Path, LogisticRegression, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    folder = tmp_path / "lw"
    folder.mkdir()
    (folder / "__init__.py").write_text(PICKLE_MODULE)
    (folder / "learnware.yaml").write_text(_template_yaml(4, 3))
    (folder / "requirements.txt").write_text("")
    (folder / "stat_spec.json").write_text(json.dumps(RKMETableSpec(gamma=0.1, K=20, random_state=0).fit(X).to_dict()))
    with open(folder / "model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    (tmp_path / "sem.json").write_text(json.dumps(semantic_dict(name="iris", d=4, out=3)))
    return _zip_folder(folder, tmp_path / "ref.zip"), model, X


def test_reference_template_zip_is_accepted_and_predicts(tmp_path):
    z, model, X = _reference_zip(tmp_path)
    with zipfile.ZipFile(z) as zf:
        assert "!!python/tuple" in zf.read("learnware.yaml").decode()
    assert _run(tmp_path, "init").returncode == 0
    res = _run(tmp_path, "check", str(z), "--semantic", "sem.json", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(res.stdout)
    assert report["status"] == "usable" and report["model"]["output_shape"] == [3]
    res = _run(tmp_path, "submit", str(z), "--semantic", "sem.json", "-q")
    assert res.returncode == 0, res.stderr
    lw = res.stdout.strip()
    assert _run(tmp_path, "reuse", "--ids", lw, "-o", "ens.lwe").returncode == 0
    np.savetxt(tmp_path / "rows.csv", X[::5], delimiter=",")
    res = _run(tmp_path, "predict", "ens.lwe", "rows.csv", "-o", "pred.csv")
    assert res.returncode == 0, res.stderr
    with open(tmp_path / "pred.csv") as fh:
        got = [int(r[0]) for r in list(csv.reader(fh))[1:]]
    assert got == model.predict(X[::5]).tolist()


def test_other_python_tags_are_refused(tmp_path):
    z, _, _ = _reference_zip(tmp_path)
    for tag in ("!!python/object/apply:os.system ['true']", "!!python/name:os.system", "!!python/object:builtins.dict {}"):
        bad = tmp_path / "bad.zip"
        with zipfile.ZipFile(z) as src, zipfile.ZipFile(bad, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                if info.filename == "learnware.yaml":
                    data = data.decode().replace("fit_method: fit", f"fit_method: {tag}").encode()
                dst.writestr(info.filename, data)
        res = _run(tmp_path, "check", str(bad), "--semantic", "sem.json")
        assert res.returncode == ExitCode.CHECK_FAILED, res.stdout + res.stderr
        assert "learnware.yaml is not valid safe YAML" in res.stdout + res.stderr


def test_pack_folder_zips_the_documented_layout(tmp_path):
    _reference_zip(tmp_path)  # leaves the learnware folder lw/ and sem.json
    folder = tmp_path / "lw"
    (folder / "helpers").mkdir()
    (folder / "helpers" / "scale.py").write_text("FACTOR = 1\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert _run(tmp_path, "init").returncode == 0
    res = _run(tmp_path, "pack", "lw", "-o", "a.zip", "--semantic", "sem.json", "--name", "iris folder", "--json")
    assert res.returncode == 0, res.stderr
    packed = json.loads(res.stdout)
    assert packed["model_kind"] == "folder" and packed["dim"] == 4 and packed["task"] == "Classification"
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        names = set(zf.namelist())
        semantic = json.loads(zf.read("semantic_specification.json"))
    assert "helpers/scale.py" in names and "model.pkl" in names and not any("__pycache__" in n for n in names)
    assert semantic["Name"]["Values"] == "iris folder" and semantic["License"]["Values"] == ["MIT"]  # the file's
    again = _run(tmp_path, "pack", "lw", "-o", "b.zip", "--semantic", "sem.json", "--name", "iris folder", "--json")
    assert json.loads(again.stdout)["id"] == packed["id"]  # the same folder, the same bytes
    res = _run(tmp_path, "check", "a.zip", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["status"] == "usable", res.stdout + res.stderr


def test_pack_folder_errors(tmp_path):
    _reference_zip(tmp_path)
    (tmp_path / "empty").mkdir()
    res = _run(tmp_path, "pack", "empty", "-o", "e.zip")
    assert res.returncode == ExitCode.BAD_PACKAGE and "has no learnware.yaml" in res.stderr
    res = _run(tmp_path, "pack", "lw", "--model", "lw/model.pkl", "-o", "e.zip")
    assert res.returncode == ExitCode.USAGE and "--model cannot be used with a folder" in res.stderr
    os.symlink("/etc/passwd", tmp_path / "lw" / "passwd")
    res = _run(tmp_path, "pack", "lw", "-o", "e.zip")
    assert res.returncode == ExitCode.USAGE and "symbolic link" in res.stderr
    assert not (tmp_path / "e.zip").exists()


def test_check_takes_the_semantic_flags_of_submit(tmp_path):
    z, _, _ = _reference_zip(tmp_path)
    assert _run(tmp_path, "init").returncode == 0
    flags = ["--name", "iris", "--data-type", "Table", "--task", "Classification", "--input-dim", "4",
             "--output-dim", "3"]
    res = _run(tmp_path, "check", str(z), *flags, "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["status"] == "usable", res.stdout + res.stderr
    res = _run(tmp_path, "check", str(z), "--semantic", "sem.json", "--task", "Regression", "--json")
    checks = {c["name"]: c for c in json.loads(res.stdout)["checks"]}
    assert "Regression" in checks["semantic_spec"]["reason"]  # the flag overrode the file's Task


def test_submit_takes_a_folder(tmp_path):
    _reference_zip(tmp_path)
    assert _run(tmp_path, "init").returncode == 0
    res = _run(tmp_path, "submit", "lw", "--semantic", "sem.json", "--json")
    assert res.returncode == 0, res.stderr
    stored = json.loads(res.stdout)
    packed = json.loads(_run(tmp_path, "pack", "lw", "-o", "same.zip", "--json").stdout)
    assert stored["id"] == packed["id"] and stored["status"] == "usable"  # the folder's zip, byte for byte
    assert "submitted lw as" in res.stderr
