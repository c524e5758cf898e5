"""The verified copy: learnware code runs only from files whose content hashes match the blob."""

from __future__ import annotations

import json
import os

import pytest
from _factory import learnware_files, write_zip

from lwdock.errors import DockError
from lwdock.store import verify


def _submit(dock, tmp_path, name="victim", **kw):
    return dock.submit(write_zip(tmp_path / f"{name}.zip", learnware_files(name=name)), **kw)


def test_same_size_edit_with_restored_mtime_is_caught_and_undone(dock, tmp_path):
    e = _submit(dock, tmp_path)
    init = dock.layout.unpacked_dir(e.id) / "__init__.py"
    original = init.read_bytes()
    st = os.stat(init)
    evil = original.replace(b"        return out", b"        1 / 0     ")  # same length: predict now fails
    assert len(evil) == len(original) and evil != original
    init.write_bytes(evil)
    os.utime(init, ns=(st.st_atime_ns, st.st_mtime_ns))  # what the audit's backdoor did

    report = dock.doctor(repair=False)
    assert not report.ok
    assert any("modified" in p and "__init__.py" in p for p in report.problems), report
    assert init.read_bytes() == evil  # --dry-run changed nothing
    rechecked = dock.recheck(e.id, run_model=True)  # runs from the verified copy: the original code
    assert rechecked.status == "usable", rechecked.check
    assert init.read_bytes() == original
    assert dock.doctor(repair=False).ok


def test_doctor_repairs_a_modified_copy(dock, tmp_path):
    e = _submit(dock, tmp_path, run_model=False)
    root = dock.layout.unpacked_dir(e.id)
    (root / "stat.json").write_text("{}")
    (root / "planted.py").symlink_to("/etc/hostname")
    report = dock.doctor()
    assert report.repaired and dock.doctor(repair=False).ok
    assert not (root / "planted.py").exists() and json.loads((root / "stat.json").read_text())["z"]


@pytest.mark.parametrize("plant", ["symlink", "fifo"])
def test_special_files_in_the_copy_are_refused(dock, tmp_path, plant):
    e = _submit(dock, tmp_path, run_model=False)
    root = dock.layout.unpacked_dir(e.id)
    p = root / "odd"
    p.symlink_to("/etc/hostname") if plant == "symlink" else os.mkfifo(p)
    assert "not a regular file" in verify.mismatch(root, dock.layout.unpacked_stamp(e.id))
    assert not (dock.unpacked_dir(e.id) / "odd").exists()


def test_a_stamp_from_an_older_lwdock_is_replaced_quietly(dock, tmp_path, caplog):
    e = _submit(dock, tmp_path, run_model=False)
    stamp = dock.layout.unpacked_stamp(e.id)
    stamp.write_text(json.dumps({"__init__.py": [10, 0]}))  # the old size+mtime format
    report = dock.doctor(repair=False)
    assert report.ok and any("older lwdock" in p for p in report.leftovers)
    with caplog.at_level("WARNING", logger="lwdock"):
        dock.unpacked_dir(e.id)
    assert not caplog.records
    assert json.loads(stamp.read_text())["version"] == verify.STAMP_VERSION


def test_a_modified_blob_is_never_used_to_rebuild(dock, tmp_path):
    e = _submit(dock, tmp_path, run_model=False)
    blob = dock.layout.blob(e.id)
    os.chmod(blob, 0o644)
    blob.write_bytes(write_zip(tmp_path / "other.zip", learnware_files(name="other")).read_bytes())
    (dock.layout.unpacked_dir(e.id) / "__init__.py").write_text("# changed\n")
    with pytest.raises(DockError, match="does not match its hash"):
        dock.unpacked_dir(e.id)
    assert any("does not match its hash" in p for p in dock.doctor(repair=False).problems)
