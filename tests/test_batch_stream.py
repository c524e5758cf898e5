"""Streaming batch predict (issue 16): a table is read, predicted and written chunk by chunk, and
the result is the one-shot result byte for byte (column alignment by name and class names included)."""

from __future__ import annotations

import numpy as np
import pytest
from test_reuse_dock import learnware_zip
from test_reuse_market import DIM, N_CLASSES, Market
from typer.testing import CliRunner

from lwdock.cli import app
from lwdock.reuse import data as data_mod
from lwdock.reuse.align import LearnwareIO
from lwdock.reuse.api import load_ensemble, reuse
from lwdock.reuse.data import iter_input, write_predictions
from lwdock.spec.data import read_table

N_ROWS = 50_000
CHUNK = 7_000
NAMES = [f"c{k}" for k in range(N_CLASSES)]


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    from lwdock import Dock

    base = tmp_path_factory.mktemp("batch-stream")
    market = Market(seed=3, n_learnwares=3)
    dock = Dock.init(base / "dock")
    ids = [dock.submit(learnware_zip(base / f"lw{i}.zip", clf, X, f"lw{i}"), run_model=False).id
           for i, (clf, X) in enumerate(zip(market.models, market.train))]
    X, _ = market.user(300)
    with reuse(dock, ids, "average", data=X, trusted=True, columns=[f"f{j}" for j in range(DIM)]) as ens:
        plain = ens.save(base / "avg.lwe")
        assert ens.input_schema["columns"] == [f"f{j}" for j in range(DIM)]  # names to align by
        ens.classes = NAMES  # an ensemble (and learnwares) whose labels are names, not numbers
        ens.ios = [LearnwareIO(io.columns if io else None, NAMES) for io in (ens.ios or [None] * len(ids))]
        named = ens.save(base / "named.lwe")
    rng = np.random.default_rng(7)
    rows = market.means[rng.integers(0, N_CLASSES, N_ROWS)] + rng.normal(size=(N_ROWS, DIM))
    order = rng.permutation(DIM)  # the file's columns in another order than the ensemble's
    csv_path = base / "big.csv"
    np.savetxt(csv_path, rows[:, order], delimiter=",", header=",".join(f"f{j}" for j in order), comments="")
    npy_path = base / "big.npy"
    np.save(npy_path, rows)
    return dock, plain, named, csv_path, npy_path


def cli(dock, *args):
    r = CliRunner().invoke(app, ["--dock", str(dock.path), *[str(a) for a in args]])
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture
def chunk_spy(monkeypatch):
    sizes = []
    real = data_mod._csv_chunk
    monkeypatch.setattr(data_mod, "_csv_chunk", lambda path, block, *a: sizes.append(len(block)) or real(path, block, *a))
    monkeypatch.setattr(data_mod, "read_table", lambda *a, **k: pytest.fail("a CSV must not be read whole"))
    return sizes


@pytest.mark.parametrize("which,proba", [("plain", False), ("named", True)])
def test_chunked_predict_equals_one_shot_byte_for_byte(big, tmp_path, chunk_spy, which, proba):
    dock, plain, named, csv_path, _ = big
    lwe = plain if which == "plain" else named
    extra = ["--proba"] if proba else []
    cli(dock, "predict", lwe, csv_path, "-o", tmp_path / "one.csv", "--trusted", "--chunk-size", N_ROWS, *extra)
    assert chunk_spy == [N_ROWS]
    chunk_spy.clear()
    cli(dock, "predict", lwe, csv_path, "-o", tmp_path / "chunked.csv", "--trusted", "--chunk-size", CHUNK, *extra)
    assert chunk_spy == [CHUNK] * (N_ROWS // CHUNK) + [N_ROWS % CHUNK]  # read per chunk, never whole
    one, chunked = (tmp_path / "one.csv").read_bytes(), (tmp_path / "chunked.csv").read_bytes()
    assert chunked == one and one.count(b"\n") == N_ROWS + 1
    header, first = one.decode().splitlines()[:2]
    if proba:
        assert header == ",".join(["prediction"] + [f"proba_{c}" for c in NAMES]) and first.split(",")[0] in NAMES
    else:
        assert header == "prediction" and int(first) in range(N_CLASSES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked.csv", "one.csv"]  # no temp files left

    chunk_spy.clear()
    r = cli(dock, "predict", lwe, csv_path, "-o", "-", "--trusted", "--chunk-size", CHUNK, *extra)
    assert r.stdout.encode() == one and len(chunk_spy) == 8  # stdout: one header, every chunk's rows


def test_chunks_equal_the_whole_file_reader_and_npy_is_sliced(big, tmp_path):
    dock, plain, _, csv_path, npy_path = big
    whole = read_table(csv_path)
    parts = list(iter_input(csv_path, chunk_rows=CHUNK))
    assert all(p.columns == whole.columns for p in parts)  # the header, read once, names every chunk
    np.testing.assert_array_equal(np.concatenate([p.X for p in parts]), whole.X)
    sliced = list(iter_input(npy_path, chunk_rows=CHUNK))
    assert [len(p.X) for p in sliced] == [len(p.X) for p in parts]
    assert isinstance(sliced[0].X, np.memmap)  # memory-mapped: a chunk is read when it is used

    with load_ensemble(plain, dock, trusted=True) as ens:  # the reference: the whole file, predicted at once
        write_predictions(tmp_path / "ref.csv", ens.predict(whole), None, ens.classes)
    cli(dock, "predict", plain, csv_path, "-o", tmp_path / "csv.csv", "--trusted", "--chunk-size", CHUNK)
    cli(dock, "predict", plain, npy_path, "-o", tmp_path / "npy.csv", "--trusted", "--chunk-size", CHUNK)
    cli(dock, "predict", plain, npy_path, "-o", tmp_path / "npy.npy", "--trusted", "--chunk-size", CHUNK)
    ref = (tmp_path / "ref.csv").read_bytes()
    assert (tmp_path / "csv.csv").read_bytes() == ref == (tmp_path / "npy.csv").read_bytes()
    np.testing.assert_array_equal(np.load(tmp_path / "npy.npy"), np.loadtxt(tmp_path / "ref.csv", skiprows=1))


def test_a_bad_row_late_in_the_file_names_its_line_and_leaves_no_output(big, tmp_path):
    dock, plain, _, csv_path, _ = big
    lines = csv_path.read_text().splitlines()
    fields = lines[30_001].split(",")
    fields[2] = "oops"
    lines[30_001] = ",".join(fields)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    r = CliRunner().invoke(app, ["--dock", str(dock.path), "predict", str(plain), str(bad), "-o", str(out / "p.csv"),
                                 "--trusted", "--chunk-size", str(CHUNK)])
    assert r.exit_code != 0 and "line 30002" in r.stderr and "'oops'" in r.stderr, r.output
    assert list(out.iterdir()) == []  # the chunks written before the bad one went to a temp file, now removed
    (tmp_path / "head.csv").write_text(lines[0] + "\n")
    r = CliRunner().invoke(app, ["--dock", str(dock.path), "predict", str(plain), str(tmp_path / "head.csv"),
                                 "-o", str(out / "p.csv"), "--trusted"])
    assert r.exit_code != 0 and "has a header but no rows" in r.stderr
