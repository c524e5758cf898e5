"""Hostile or broken archives are refused with one line, a non-zero exit code, and an unchanged dock."""

from __future__ import annotations

import stat
import zipfile

import pytest
from typer.testing import CliRunner

from _factory import learnware_files, write_zip
from lwdock.cli import app
from lwdock.errors import ExitCode, NotFoundError, PackageError
from lwdock.format.archive import Limits
from lwdock import Dock


def _assert_unchanged(dock: Dock) -> None:
    assert dock.entries() == []
    assert list(dock.layout.objects.glob("*/*")) == []
    assert list(dock.layout.unpacked.iterdir()) == []
    assert list(dock.layout.tmp.iterdir()) == []


def _with(changes):
    files = learnware_files()
    for k, v in changes.items():
        if v is None:
            files.pop(k, None)
        else:
            files[k] = v
    return files


def _symlink_zip(path):
    files = learnware_files()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        info = zipfile.ZipInfo("link.py")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    return path


def _corrupt_deflate_zip(path):
    write_zip(path, learnware_files())
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("__init__.py")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 2, start + 12):  # inside the deflate stream, past its block header
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def _raw_names_zip(path, names):
    # zipfile.writestr normalises nothing, so these names reach the reader as written
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in {**learnware_files(), **names}.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


CASES = {
    "dotdot": (lambda p: write_zip(p, {**learnware_files(), "../evil.py": "x"}), "escapes the package"),
    "absolute": (lambda p: write_zip(p, {**learnware_files(), "/tmp/evil.py": "x"}), "absolute path"),
    "symlink": (_symlink_zip, "symlink"),
    "bad_yaml": (lambda p: write_zip(p, _with({"learnware.yaml": "model: [unclosed\n"})), "not valid safe YAML"),
    "non_utf8_yaml": (lambda p: write_zip(p, _with({"learnware.yaml": b"model: \xff\xfe\n"})), "not UTF-8"),
    "python_tag": (
        lambda p: write_zip(p, _with({"learnware.yaml": "model: !!python/object/apply:os.system ['echo hi']\n"})),
        "not valid safe YAML",
    ),
    "module_outside": (
        lambda p: write_zip(p, _with({"learnware.yaml": "model:\n  module_path: ../outside.py\n"})),
        "points outside the package",
    ),
    "spec_outside": (
        lambda p: write_zip(
            p,
            _with(
                {
                    "learnware.yaml": "stat_specifications:\n  - class_name: RKMETableSpecification\n"
                    "    file_name: /etc/passwd\n"
                }
            ),
        ),
        "points outside the package",
    ),
    "missing_module": (lambda p: write_zip(p, _with({"__init__.py": None})), "missing from the package"),
    "missing_spec": (lambda p: write_zip(p, _with({"stat.json": None})), "missing from the package"),
    "unknown_spec_module": (
        lambda p: write_zip(
            p,
            _with(
                {
                    "learnware.yaml": "stat_specifications:\n  - module_path: evil.py\n"
                    "    class_name: RKMETableSpecification\n    file_name: stat.json\n"
                }
            ),
        ),
        "not allowed",
    ),
    "no_yaml": (lambda p: write_zip(p, _with({"learnware.yaml": None})), "no learnware.yaml"),
    "not_a_zip": (lambda p: (p.write_text("hello, not a zip"), p)[1], "not a zip file"),
    "empty_file": (lambda p: (p.write_bytes(b""), p)[1], "is empty"),
    "corrupt_deflate": (_corrupt_deflate_zip, "cannot read zip member '__init__.py'"),
    "file_and_folder": (lambda p: _raw_names_zip(p, {"x": "1", "x/y": "2"}), "'x' is both a file and a folder"),
    "member_named_dot": (lambda p: _raw_names_zip(p, {".": "x"}), "names no file"),
    "member_named_dot_slash": (lambda p: _raw_names_zip(p, {"./": ""}), "names no file"),
    "huge_name": (lambda p: _raw_names_zip(p, {"a" * 300 + ".py": "x"}), "longer than 255 bytes"),
    "yaml_alias": (lambda p: write_zip(p, _with({"learnware.yaml": "a: &x [1]\nb: *x\n"})), "anchors"),
    "yaml_too_deep": (lambda p: write_zip(p, _with({"learnware.yaml": "a: " + "[" * 200 + "]" * 200})),
                      "nested more than"),
    "yaml_huge_int": (lambda p: write_zip(p, _with({"learnware.yaml": "a: " + "9" * 5000})), "not valid safe YAML"),
    "kwargs_not_json": (lambda p: write_zip(p, _with({"learnware.yaml": "model:\n  kwargs: {a: !!binary aGk=}\n"})),
                        "model.kwargs must hold only"),
    "deep_semantic_json": (lambda p: write_zip(p, _with({"semantic_specification.json": "[" * 100000})),
                           "not valid UTF-8 JSON"),
    "requirements_not_text": (lambda p: write_zip(p, _with({"requirements.txt": b"\xff\xfe\x00\xd8"})),
                              "neither UTF-8 nor UTF-16"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_archive_is_refused(dock, tmp_path, case):
    build, message = CASES[case]
    z = build(tmp_path / f"{case}.zip")
    with pytest.raises(PackageError, match=message):
        dock.submit(z, run_model=False)
    _assert_unchanged(dock)


@pytest.mark.parametrize("case", ["dotdot", "symlink", "not_a_zip", "python_tag", "corrupt_deflate",
                                  "file_and_folder", "member_named_dot", "yaml_alias"])
def test_hostile_archive_cli_one_line_and_exit_code(dock, tmp_path, case):
    build, message = CASES[case]
    z = build(tmp_path / f"{case}.zip")
    result = CliRunner().invoke(app, ["--dock", str(dock.path), "submit", str(z), "--no-run"])
    assert result.exit_code == ExitCode.BAD_PACKAGE
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in result.output
    _assert_unchanged(dock)


def test_too_many_members(tmp_path):
    dock = Dock.init(tmp_path / "d", limits=Limits(max_members=5, max_unpacked_bytes=10**9))
    files = learnware_files()
    files.update({f"extra{i}.txt": "x" for i in range(5)})
    with pytest.raises(PackageError, match="more than the limit of 5"):
        dock.submit(write_zip(tmp_path / "many.zip", files), run_model=False)
    _assert_unchanged(dock)


def test_too_many_bytes(tmp_path):
    dock = Dock.init(tmp_path / "d", limits=Limits(max_members=100, max_unpacked_bytes=100_000))
    files = {**learnware_files(), "blob.bin": b"\0" * 200_000}  # compresses to almost nothing
    with pytest.raises(PackageError, match="more than 100000 bytes"):
        dock.submit(write_zip(tmp_path / "bomb.zip", files), run_model=False)
    _assert_unchanged(dock)


def test_limits_come_from_environment(monkeypatch):
    monkeypatch.setenv("LWDOCK_MAX_MEMBERS", "7")
    monkeypatch.setenv("LWDOCK_MAX_UNPACKED_MB", "3")
    assert Limits.from_settings() == Limits(max_members=7, max_unpacked_bytes=3 * 1024 * 1024)


def test_missing_file_is_not_found(dock, tmp_path):
    with pytest.raises(NotFoundError):
        dock.submit(tmp_path / "nope.zip", run_model=False)


def test_reference_tuple_tag_is_read_as_a_list(dock, tmp_path):
    yaml = learnware_files()["learnware.yaml"].replace("kwargs: {dim: 2, n_classes: 2}",
                                                       "kwargs: {dim: 2, n_classes: 2, shape: !!python/tuple [2, 3]}")
    entry = dock.submit(write_zip(tmp_path / "tuple.zip", _with({"learnware.yaml": yaml})), run_model=False)
    assert dock.package(entry.id).model_kwargs["shape"] == [2, 3]


def test_single_top_folder_is_flattened(dock, tmp_path):
    files = {f"my_learnware/{k}": v for k, v in learnware_files().items()}
    entry = dock.submit(write_zip(tmp_path / "nested.zip", files), run_model=False)
    assert (dock.unpacked_dir(entry.id) / "learnware.yaml").is_file()


def test_deeply_nested_spec_json_fails_its_check_not_lwdock(dock, tmp_path):
    from lwdock.errors import CheckFailedError

    z = write_zip(tmp_path / "deep.zip", _with({"stat.json": "[" * 100_000}))
    with pytest.raises(CheckFailedError, match="nested too deeply"):
        dock.submit(z, run_model=False)
    _assert_unchanged(dock)
