"""CLI: lwdock spec image / spec text / spec show, and lwdock pack --data-type Image|Text."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits
from typer.testing import CliRunner

from lwdock.cli import app
from lwdock.errors import ExitCode
from lwdock.spec.rkme_image import RKMEImageSpec
from lwdock.spec.rkme_text import RKMETextSpec
from lwdock.spec.specfile import load_spec

runner = CliRunner()
TEXTS = ["the team scored a goal", "stock prices fell again", "the gene encodes a protein"]


def _digits(tmp_path: Path, n: int = 120) -> Path:
    X, _ = load_digits(return_X_y=True)
    path = tmp_path / "digits.npy"
    np.save(path, X[:n].reshape(-1, 1, 8, 8))
    return path


def test_spec_image_then_show(tmp_path: Path) -> None:
    data = _digits(tmp_path)
    out = tmp_path / "img.json"
    r = runner.invoke(app, ["spec", "image", str(data), "-o", str(out), "--K", "5", "--steps", "2", "--seed", "1",
                            "--max-samples", "100", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["type"] == "RKMEImageSpecification" and res["K"] == 5 and res["shape"] == [1, 32, 32]
    assert res["num_points"] == 120
    spec = load_spec(out)
    assert isinstance(spec, RKMEImageSpec) and spec.get_params()["sample_size"] == 100
    r = runner.invoke(app, ["spec", "show", str(out)])
    assert r.exit_code == 0 and "NNGP" in r.stdout and "gamma" not in r.stdout


def test_spec_image_rejects_tables(tmp_path: Path) -> None:
    bad = tmp_path / "flat.npy"
    np.save(bad, np.zeros((10, 64)))
    r = runner.invoke(app, ["spec", "image", str(bad), "-o", str(tmp_path / "x.json")])
    assert r.exit_code == ExitCode.BAD_INPUT and "N x C x H x W" in r.output


def test_spec_text_formats(tmp_path: Path) -> None:
    txt = tmp_path / "t.txt"
    txt.write_text("\n".join(TEXTS * 5) + "\n\n")
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text("\n".join(json.dumps({"body": t, "id": i}) for i, t in enumerate(TEXTS * 5)))
    csv = tmp_path / "t.csv"
    csv.write_text("id,body\n" + "\n".join(f'{i},"{t}, really"' for i, t in enumerate(TEXTS * 5)))
    for src, extra in ((txt, []), (jsonl, ["--field", "body"]), (csv, ["--column", "body"])):
        out = tmp_path / f"{src.suffix[1:]}.json"
        r = runner.invoke(app, ["spec", "text", str(src), "-o", str(out), "--K", "4", "--embedder", "hashing-384",
                                "--json", *extra])
        assert r.exit_code == 0, r.output
        res = json.loads(r.stdout)
        assert res["embedder"] == "hashing-384" and res["embedding_dim"] == 384 and res["num_points"] == 15
        assert isinstance(load_spec(out), RKMETextSpec)
    r = runner.invoke(app, ["spec", "show", str(tmp_path / "txt.json")])
    assert r.exit_code == 0 and "hashing-384" in r.stdout
    r = runner.invoke(app, ["spec", "text", str(csv), "-o", str(tmp_path / "x.json"), "--embedder", "hashing-384"])
    assert r.exit_code == ExitCode.BAD_INPUT and "--column" in r.output
    r = runner.invoke(app, ["spec", "text", str(txt), "-o", str(tmp_path / "x.json"), "--embedder", "nope"])
    assert r.exit_code == ExitCode.USAGE and "unknown embedder" in r.output


def _zip_yaml(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return yaml.safe_load(zf.read("learnware.yaml"))


@pytest.mark.slow
def test_pack_image_and_text(tmp_path: Path) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline

    X, y = load_digits(return_X_y=True)
    data = _digits(tmp_path)
    model = tmp_path / "img.pkl"
    model.write_bytes(pickle.dumps(LogisticRegression(max_iter=50).fit(X[:120], y[:120])))
    out = tmp_path / "img.zip"
    r = runner.invoke(app, ["pack", "--model", str(model), "--data", str(data), "--data-type", "Image", "--name", "d",
                            "--task", "Classification", "--output-dim", "10", "-K", "5", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    meta = _zip_yaml(out)
    assert meta["stat_specifications"][0]["class_name"] == "RKMEImageSpecification"
    assert meta["model"]["kwargs"]["input_shape"] == [1, 8, 8]
    with zipfile.ZipFile(out) as zf:
        assert json.loads(zf.read("rkme.json"))["type"] == "RKMEImageSpecification"
        assert "flattens" in zf.read("__init__.py").decode()
        assert json.loads(zf.read("semantic_specification.json"))["Data"]["Values"] == ["Image"]

    texts = TEXTS * 10
    txt = tmp_path / "train.txt"
    txt.write_text("\n".join(texts))
    tmodel = tmp_path / "txt.pkl"
    tmodel.write_bytes(pickle.dumps(make_pipeline(TfidfVectorizer(), MultinomialNB()).fit(texts, [0, 1, 2] * 10)))
    out = tmp_path / "txt.zip"
    r = runner.invoke(app, ["pack", "--model", str(tmodel), "--data", str(txt), "--data-type", "Text", "--name", "t",
                            "--task", "Classification", "--output-dim", "3", "--embedder", "hashing-384", "-K", "5",
                            "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    meta = _zip_yaml(out)
    assert meta["stat_specifications"][0]["class_name"] == "RKMETextSpecification"
    assert "input_dim" not in meta["model"]["kwargs"]
    with zipfile.ZipFile(out) as zf:
        spec = json.loads(zf.read("rkme.json"))
        assert spec["embedder"] == "hashing-384" and spec["type"] == "RKMETextSpecification"
        assert "list of strings" in zf.read("__init__.py").decode()
