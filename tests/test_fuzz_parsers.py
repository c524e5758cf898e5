"""Property-based fuzz of the readers that see hostile bytes in the lwdock process: zips and YAML.

The property: whatever the input, the reader returns a result or raises the
documented PackageError (exit code 6); never any other exception, never a
file outside the destination. The budget is fixed (``max_examples``) so
``make test`` stays bounded.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import pytest
from _factory import learnware_files, write_zip
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwdock.errors import PackageError
from lwdock.format import safeyaml
from lwdock.format.archive import Limits, extract
from lwdock.format.package import open_package

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMITS = Limits(max_members=50, max_unpacked_bytes=1 << 20)


def _valid_zip() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        return write_zip(Path(d) / "v.zip", learnware_files()).read_bytes()


VALID = _valid_zip()


def _open(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        z = Path(d) / "in.zip"
        z.write_bytes(data)
        dest = Path(d) / "out" / "pkg"
        try:
            open_package(z, dest, limits=LIMITS)
        except PackageError:
            pass
        # nothing was written outside the destination
        outside = {p.name for p in Path(d).iterdir()} - {"in.zip", "out"}
        assert not outside, outside
        if (Path(d) / "out").exists():
            assert {p.name for p in (Path(d) / "out").iterdir()} <= {"pkg"}


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=12))
def test_mutated_zip_bytes(flips):
    data = bytearray(VALID)
    for pos, value in flips:
        data[pos] = value
    _open(bytes(data))


@FUZZ
@given(st.integers(0, len(VALID)))
def test_truncated_zip(n):
    _open(VALID[:n])


_NAMES = st.text(alphabet="ab./\\:-_ \x00\u00e9", min_size=0, max_size=10)


@pytest.mark.filterwarnings("ignore:Duplicate name")
@FUZZ
@given(st.lists(st.tuples(_NAMES, st.binary(max_size=40)), max_size=6), st.booleans())
def test_hostile_member_names(members, deflate):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as zf:
        for name, data in [*learnware_files().items(), *members]:
            try:
                zf.writestr(zipfile.ZipInfo(name), data)
            except (ValueError, UnicodeError):  # names the zip writer itself refuses
                continue
    _open(buf.getvalue())


def _tree_inside(root: Path) -> bool:
    real = os.path.realpath(root)
    return all(os.path.realpath(os.path.join(d, f)).startswith(real + os.sep)
               for d, _dirs, files in os.walk(root) for f in files)


@FUZZ
@given(st.lists(st.sampled_from(["x", "x/y", "x/", ".", "./x", "a/../b", "a//b", "/abs", "learnware.yaml", "t/",
                                 "t/learnware.yaml", "t/x"]), max_size=6, unique=True))
def test_extract_keeps_every_file_inside(names):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in names:
            zf.writestr(zipfile.ZipInfo(name), b"" if name.endswith("/") else b"data")
    with tempfile.TemporaryDirectory() as d:
        z = Path(d) / "in.zip"
        z.write_bytes(buf.getvalue())
        try:
            hashes = extract(z, Path(d) / "out", LIMITS)
        except PackageError:
            return
        out = Path(d) / "out"
        assert _tree_inside(out)
        on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
        assert on_disk == set(hashes)


_YAML = st.text(alphabet="&*!:-[]{}|>'\"#%@`,? \n\tab01.e+~<=", max_size=120)


@FUZZ
@given(_YAML)
def test_yaml_reader_returns_or_raises_package_error(text):
    try:
        safeyaml.load(text.encode(), "learnware.yaml")
    except PackageError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
                    lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=3), kids,
                                                                                        max_size=3)), max_leaves=20))
def test_yaml_reader_round_trips_plain_data(value):
    import yaml

    assert safeyaml.load(yaml.safe_dump({"v": value}).encode(), "f.yaml") == {"v": value}
