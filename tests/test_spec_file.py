"""Spec files: round trip, reference-format files, damaged files; user data files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwdock.errors import InputDataError, NotFoundError, SpecFileError
from lwdock.spec.data import load_data
from lwdock.spec.rkme_table import RKMETableSpec
from lwdock.spec.specfile import load_spec


def fitted(seed: int = 0, n: int = 40, d: int = 3) -> RKMETableSpec:
    return RKMETableSpec(K=8, steps=2, random_state=seed).fit(np.random.default_rng(seed).standard_normal((n, d)))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), d=st.integers(1, 6))
def test_round_trip_gives_identical_numbers(tmp_path: Path, seed: int, d: int) -> None:
    s = fitted(seed, d=d)
    path = tmp_path / f"s{seed}_{d}.json"
    s.save(path)
    for back in (RKMETableSpec.load(path), load_spec(path), RKMETableSpec.from_dict(s.to_dict())):
        assert np.array_equal(back.z_, s.z_) and np.array_equal(back.beta_, s.beta_)
        assert back.gamma == s.gamma and back.num_points_ == s.num_points_
        assert back.dist(s) == pytest.approx(0.0, abs=1e-12)


def test_file_keeps_reference_keys_plus_ours(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    fitted().save(path)
    data = json.loads(path.read_text())
    assert list(data)[:5] == ["z", "beta", "gamma", "num_points", "type"]
    assert data["type"] == "RKMETableSpecification"
    assert data["schema_version"] == 1 and data["dtype"] == "float64"
    assert data["params"]["K"] == 8 and data["checksum"].startswith("sha256:")


def test_reads_reference_written_file(tmp_path: Path) -> None:
    # the documented reference format: compact JSON, five keys, no version or checksum
    rng = np.random.default_rng(3)
    z, beta = rng.standard_normal((4, 2)), np.full(4, 0.25)
    ref = {"z": z.tolist(), "beta": beta.tolist(), "gamma": 0.1, "num_points": 50, "type": "RKMETableSpecification"}
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(ref, separators=(",", ":")))
    s = load_spec(path)
    assert isinstance(s, RKMETableSpec)
    assert np.array_equal(s.z_, z) and np.array_equal(s.beta_, beta) and s.num_points_ == 50
    # multi-dimensional z ([K][a][b]) is flattened like the reference does
    ref["z"] = rng.standard_normal((4, 1, 2)).tolist()
    path.write_text(json.dumps(ref))
    assert load_spec(path).z_.shape == (4, 2)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.update(beta=d["beta"][:-1]), "beta"),
        (lambda d: d.update(type="RKMEImageSpecification"), "type|unknown"),
        (lambda d: d.pop("z"), "missing"),
        (lambda d: d.update(gamma=-1.0, checksum=None) or d.pop("checksum"), "gamma"),
        (lambda d: d.update(num_points=0) or d.pop("checksum"), "num_points"),
        (lambda d: d.update(schema_version=99), "schema_version"),
        (lambda d: d["z"][0].__setitem__(0, 123.0), "checksum"),
        (lambda d: d.update(z="abc") or d.pop("checksum"), "z"),
    ],
)
def test_mismatched_files_are_clear_errors(tmp_path: Path, mutate, match: str) -> None:  # type: ignore[no-untyped-def]
    data = fitted().to_dict()
    mutate(data)
    path = _write(tmp_path / "bad.json", json.dumps(data))
    with pytest.raises(SpecFileError, match=match):
        load_spec(path)


def test_truncated_empty_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    fitted().save(path)
    text = path.read_text()
    with pytest.raises(SpecFileError, match="JSON"):
        load_spec(_write(tmp_path / "t.json", text[: len(text) // 2]))
    with pytest.raises(SpecFileError, match="empty"):
        load_spec(_write(tmp_path / "e.json", ""))
    with pytest.raises(SpecFileError, match="object"):
        load_spec(_write(tmp_path / "l.json", "[1, 2]"))
    (tmp_path / "b.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SpecFileError):
        load_spec(tmp_path / "b.json")
    with pytest.raises(NotFoundError):
        load_spec(tmp_path / "nope.json")
    # a spec error is a bad-input error for the CLI's exit code
    assert issubclass(SpecFileError, InputDataError)


# -- user data files ---------------------------------------------------------------
def test_load_npy_npz_csv(tmp_path: Path) -> None:
    X = np.random.default_rng(0).standard_normal((6, 3))
    np.save(tmp_path / "a.npy", X.astype(np.float32))
    np.savez(tmp_path / "one.npz", anything=X)
    np.savez(tmp_path / "many.npz", X=X, y=np.arange(6))
    np.savetxt(tmp_path / "plain.csv", X, delimiter=",")
    (tmp_path / "head.csv").write_text("f1,f2,f3\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in X) + "\n")
    (tmp_path / "missing.csv").write_text("a;b\n1;\n3;4\n")
    assert load_data(tmp_path / "a.npy").dtype == np.float64
    assert np.allclose(load_data(tmp_path / "a.npy"), X, atol=1e-6)
    for name in ("one.npz", "many.npz", "head.csv"):
        assert np.array_equal(load_data(tmp_path / name), X), name
    assert np.allclose(load_data(tmp_path / "plain.csv"), X)
    m = load_data(tmp_path / "missing.csv")
    assert m.shape == (2, 2) and np.isnan(m[0, 1])
    np.save(tmp_path / "vec.npy", np.arange(4.0))
    assert load_data(tmp_path / "vec.npy").shape == (4, 1)


def test_bad_data_files(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "two.npz", a=np.ones(2), b=np.ones(2))
    (tmp_path / "ragged.csv").write_text("1,2\n3\n")
    (tmp_path / "text.csv").write_text("a,b\n1,x\n")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    (tmp_path / "x.parquet").write_bytes(b"")
    for name, match in [("obj.npy", "npy"), ("two.npz", "several"), ("ragged.csv", "fields"),
                        ("text.csv", "non-numeric"), ("junk.npy", "npy"), ("x.parquet", "unsupported")]:
        with pytest.raises(InputDataError, match=match):
            load_data(tmp_path / name)
    with pytest.raises(NotFoundError):
        load_data(tmp_path / "absent.npy")
