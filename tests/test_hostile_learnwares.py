"""Hostile learnwares against a real dock (issue 11's audit, rebuilt here).

Each attack is a learnware whose ``predict`` tries to do harm and then reports
what each step got (as the error of its predict call, so the submit fails and
stores nothing). Every test asserts the *harm* did not happen, checked from
outside: a witness folder outside the dock stays empty, every file of the dock
is byte-identical before and after, no process carrying the attack's marker
survives, the host's listening sockets see nothing. The weak-mode controls at
the end run some of the same attacks without kernel isolation and see the harm
happen, so these assertions can fail.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import socket
import sys
import threading
import time
import tracemalloc
import uuid
from pathlib import Path

import numpy as np
import pytest
from _factory import learnware_files, write_zip
from _procs import processes_with
from conftest import require_kernel_sandbox

from typer.testing import CliRunner

from lwdock.check._bwrap import python_paths
from lwdock.check.runner import ModelWorker
from lwdock.cli import app
from lwdock.errors import CheckFailedError, ExitCode, ModelRuntimeError, PackageError
from lwdock.store.dock import Dock

MODEL = '''
import glob, json, os, shutil, sys, time
import numpy as np

DOCK, WITNESS, VICTIM, MARKER = @CONSTANTS@


def attack():
    results = {}

    def step(name, fn):  # short results: the report keeps 1000 characters of a reason
        try:
            results[name] = "ok: " + repr(fn())[:150]
        except BaseException as e:  # every step is tried; the results say what each got
            results[name] = type(e).__name__ + (f" {e.errno}" if getattr(e, "errno", None) else "")

@BODY@
    return results


class Model:
    def __init__(self):
        self.input_shape = (2,)
        self.output_shape = (2,)

    def predict(self, X):
        raise RuntimeError("ATTACK-RESULT " + json.dumps(attack()))
'''


class Listeners:
    """A TCP, a Unix-path and an abstract Unix socket on the host; records whatever reaches them."""

    def __init__(self, base: Path) -> None:
        self.events: list[str] = []
        self.tcp = socket.socket()
        self.tcp.bind(("0.0.0.0", 0))
        self.port = self.tcp.getsockname()[1]
        self.unix_path = str(base / "host.sock")
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(self.unix_path)
        self.abstract_name = f"lwdock-test-{uuid.uuid4().hex}"
        self.abstract = socket.socket(socket.AF_UNIX)
        self.abstract.bind("\0" + self.abstract_name)
        for s in (self.tcp, self.unix, self.abstract):
            s.listen(16)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s: socket.socket) -> None:
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            self.events.append(f"connection on {s.family.name}")
            conn.settimeout(2)
            try:
                self.events.append(repr(conn.recv(100)))
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        for s in (self.tcp, self.unix, self.abstract):
            s.close()


def snapshot(root: Path) -> dict[str, str]:
    """Every path under the dock with its content hash (scratch and env use-times aside)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith("tmp/") or p.name == ".last-used":
            continue
        if p.is_symlink():
            out[rel] = "link " + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


class Target:
    """A dock with one stored (victim) learnware, a witness folder and host sockets."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.dock = Dock.init(base / "dock")
        self.victim = self.dock.submit(write_zip(base / "victim.zip", learnware_files(name="victim")))
        self.victim_init = self.dock.layout.unpacked_dir(self.victim.id) / "__init__.py"
        self.witness = base / "witness"
        self.witness.mkdir()
        self.listen = Listeners(base)

    def model(self, body: str, marker: str) -> str:
        consts = repr((str(self.dock.path), str(self.witness), str(self.victim_init), marker))
        return MODEL.replace("@CONSTANTS@", consts).replace("@BODY@", body)

    def attack(self, body: str) -> dict[str, str]:
        """Submit a learnware running ``body``; assert the dock, the witness and the process table are untouched."""
        marker = self.last_marker = f"lwdock-hostile-{uuid.uuid4().hex}"
        files = {**learnware_files(name="attacker"), "__init__.py": self.model(body, marker)}
        files["learnware.yaml"] = files["learnware.yaml"].replace("  kwargs: {dim: 2, n_classes: 2}\n", "")
        z = write_zip(self.base / f"{marker}.zip", files)
        before = snapshot(self.dock.path)
        with pytest.raises(CheckFailedError) as err:
            self.dock.submit(z)
        reason = next(c["reason"] for c in err.value.report["checks"] if c["name"] == "predict")
        assert "ATTACK-RESULT" in reason, f"the attack did not run: {reason}"
        results = json.loads(reason.split("ATTACK-RESULT ", 1)[1])
        assert snapshot(self.dock.path) == before, "a file of the dock changed"
        assert list(self.dock.layout.tmp.iterdir()) == [], "scratch left in <dock>/tmp"
        assert list(self.witness.iterdir()) == [], f"the witness folder outside the dock was written: {results}"
        assert processes_with(marker) == [], "a process started by the learnware survived"
        assert self.listen.events == [], f"a host socket was reached: {self.listen.events}"
        return results


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    require_kernel_sandbox()
    t = Target(tmp_path_factory.mktemp("hostile"))
    yield t
    t.listen.close()


def failed(results: dict[str, str], *names: str) -> None:
    for n in names:
        assert not results[n].startswith("ok"), f"{n} succeeded inside the sandbox: {results[n]}"


def test_dir_fd_open_mkdir_remove_utime_link(target):
    r = target.attack('''
    root = os.open("/", os.O_RDONLY)
    rel = lambda p: p.lstrip("/")
    step("open_dirfd", lambda: os.open("pwned", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=os.open(WITNESS, os.O_RDONLY)))
    step("open_rootfd", lambda: os.open(rel(WITNESS) + "/pwned", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=root))
    step("mkdir", lambda: os.mkdir(rel(WITNESS) + "/dir", dir_fd=root))
    step("remove", lambda: os.remove(rel(DOCK) + "/dock.json", dir_fd=root))
    step("utime", lambda: os.utime(rel(DOCK) + "/dock.json", (0, 0), dir_fd=root))
    step("link", lambda: os.link(rel(DOCK) + "/dock.json", rel(WITNESS) + "/linked", src_dir_fd=root, dst_dir_fd=root))
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            step(f"proc_root_{pid}", lambda: open(f"/proc/{pid}/root{WITNESS}/via-proc", "w"))
''')
    failed(r, "open_dirfd", "open_rootfd", "mkdir", "remove", "utime", "link")
    failed(r, *[k for k in r if k.startswith("proc_root_")])


def test_sqlite_and_ctypes_writes(target):
    r = target.attack('''
    import ctypes, sqlite3
    step("sqlite_witness", lambda: sqlite3.connect(WITNESS + "/x.db").execute("create table t(x)"))
    step("sqlite_dock", lambda: sqlite3.connect(DOCK + "/index/x.db").execute("create table t(x)"))
    libc = ctypes.CDLL(None, use_errno=True)

    def cwrite(path):
        fd = libc.open(path.encode(), os.O_CREAT | os.O_WRONLY, 0o644)
        if fd < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        return libc.write(fd, b"pwned", 5)
    step("ctypes_witness", lambda: cwrite(WITNESS + "/ctypes"))
    step("ctypes_index", lambda: cwrite(DOCK + "/index/meta.json"))
''')
    failed(r, "sqlite_witness", "sqlite_dock", "ctypes_witness", "ctypes_index")


def test_detached_children_from_fork_exec_with_setsid_die(target):
    r = target.attack('''
    import _posixsubprocess

    def spawn(i):
        rd, wr = os.pipe()
        script = f"sleep 3; echo late > {WITNESS}/late{i}; sleep 60"
        return _posixsubprocess.fork_exec(
            [b"/bin/sh", b"-c", script.encode(), MARKER.encode()], [b"/bin/sh"], True, (wr,), None, None,
            -1, -1, -1, -1, -1, -1, rd, wr, True, True, -1, None, None, None, -1, None, False)
    step("fork_exec", lambda: [spawn(i) for i in range(20)])
''')
    assert r["fork_exec"].startswith("ok"), r  # 20 children did start, detached, in their own sessions
    time.sleep(4)  # each would write the witness 3 s after it started
    assert list(target.witness.iterdir()) == []
    assert processes_with(target.last_marker, wait=0) == []


def test_no_network_of_any_kind(target):
    port, path, abstract = target.listen.port, target.listen.unix_path, target.listen.abstract_name
    r = target.attack(f'''
    import ctypes, socket, struct
    step("tcp_loopback", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
    step("tcp_outside", lambda: socket.create_connection(("1.1.1.1", 53), timeout=2))
    step("dns", lambda: socket.getaddrinfo("pypi.org", 443))
    libc = ctypes.CDLL(None, use_errno=True)

    def cconnect(family, addr):
        s = libc.socket(family, socket.SOCK_STREAM, 0)
        if s < 0:
            raise OSError(ctypes.get_errno(), "socket: " + os.strerror(ctypes.get_errno()))
        buf = ctypes.create_string_buffer(addr, len(addr))
        if libc.connect(s, buf, len(addr)) != 0:
            raise OSError(ctypes.get_errno(), "connect: " + os.strerror(ctypes.get_errno()))
        return libc.send(s, b"pwned", 5, 0)
    inet = struct.pack("=H", socket.AF_INET) + struct.pack("!H", {port}) + bytes([127, 0, 0, 1]) + bytes(8)
    step("ctypes_inet", lambda: cconnect(socket.AF_INET, inet))
    step("ctypes_unix_path", lambda: cconnect(socket.AF_UNIX, struct.pack("=H", socket.AF_UNIX) + {path!r}.encode() + b"\\0"))
    step("ctypes_unix_abstract", lambda: cconnect(socket.AF_UNIX, struct.pack("=H", socket.AF_UNIX) + b"\\0" + {abstract!r}.encode()))
''')
    failed(r, "tcp_loopback", "tcp_outside", "dns", "ctypes_inet", "ctypes_unix_path", "ctypes_unix_abstract")


def test_reading_the_dock_and_the_host(target):
    home = Path.home()
    r = target.attack(f'''
    step("read_index", lambda: open(DOCK + "/index/meta.json").read())
    step("list_index", lambda: os.listdir(DOCK + "/index"))
    step("list_dock", lambda: sorted(os.listdir(DOCK)))
    step("blobs", lambda: glob.glob(DOCK + "/objects/sha256/*/*.zip") or 1 / 0)
    step("victim", lambda: open(VICTIM).read())
    step("next_to_dock", lambda: open(os.path.dirname(WITNESS) + "/victim.zip", "rb").read(10))
    step("home", lambda: sorted(os.listdir({str(home)!r})))
    step("run", lambda: os.listdir("/run"))
    step("passwd", lambda: open("/etc/passwd").read())
''')
    failed(r, "read_index", "list_index", "blobs", "victim", "next_to_dock", "run", "passwd")
    assert r["list_dock"] == "ok: ['envs']"  # only the path down to its own env, mounted read-only
    # of the home directory, only the path down to the interpreter (a pyenv or conda install) shows
    needed = {Path(p).relative_to(home).parts[0] for p in python_paths(sys.executable) if Path(p).is_relative_to(home)}
    assert not r["home"].startswith("ok") or set(ast.literal_eval(r["home"][4:])) <= needed, r["home"]


def test_truncating_the_index_and_deleting_blobs(target):
    r = target.attack('''
    step("truncate_index", lambda: open(DOCK + "/index/meta.json", "w").close())
    step("delete_blobs", lambda: [os.remove(p) for p in glob.glob(DOCK + "/objects/sha256/*/*")] or 1 / 0)
    step("rmtree_dock", lambda: shutil.rmtree(DOCK))
    step("poison_own_env", lambda: open(os.path.join(sys.prefix, "poison.pth"), "w").write("import os"))
    import lwdock
    step("poison_lwdock", lambda: open(os.path.join(os.path.dirname(lwdock.__file__), "evil.py"), "w"))
''')
    failed(r, "truncate_index", "delete_blobs", "rmtree_dock", "poison_own_env", "poison_lwdock")
    import lwdock

    assert not (Path(lwdock.__file__).parent / "evil.py").exists()
    assert [e.id for e in target.dock.list()] == [target.victim.id]
    assert target.dock.doctor(repair=False).ok


def test_rewriting_another_learnwares_files_with_restored_mtime(target):
    r = target.attack('''
    def rewrite():
        st = os.stat(VICTIM)
        data = open(VICTIM, "rb").read()
        with open(VICTIM, "r+b") as f:
            f.write(data.replace(b"return out", b"return 0*out"))
        os.utime(VICTIM, ns=(st.st_atime_ns, st.st_mtime_ns))
    step("rewrite", rewrite)
''')
    failed(r, "rewrite")
    assert target.dock.recheck(target.victim.id).status == "usable"


def test_process_count_is_limited_and_all_die(target):
    r = target.attack('''
    def forks():
        n = 0
        try:
            while n < 5000:
                if os.fork() == 0:
                    os.execv("/bin/sh", ["sh", "-c", "sleep 60", MARKER])
                n += 1
        except OSError as e:
            return n, e.errno
        return n, None
    step("forks", forks)
''')
    n, errno_ = ast.literal_eval(r["forks"][4:])
    assert 10 < n < 256 and errno_ is not None, r["forks"]  # RLIMIT_NPROC (256 tasks, threads included)


def test_rlimits_cannot_be_raised(target):
    r = target.attack('''
    import resource
    names = ("AS", "CPU", "FSIZE", "NPROC", "CORE")
    step("limits", lambda: {n: resource.getrlimit(getattr(resource, "RLIMIT_" + n)) for n in names})
    for n in names:
        which = getattr(resource, "RLIMIT_" + n)
        step("raise_" + n, lambda: resource.setrlimit(which, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)))
        step("raise_soft_" + n, lambda: resource.setrlimit(which, (resource.getrlimit(which)[1] + 1,) * 2))
    step("alloc_past_limit", lambda: len(bytearray(6 << 30)))
''')
    failed(r, *[k for k in r if k.startswith("raise_")], "alloc_past_limit")
    limits = ast.literal_eval(r["limits"][4:])
    assert all(soft == hard for soft, hard in limits.values()), limits
    assert limits["AS"][0] == 4096 << 20 and limits["CORE"] == (0, 0) and limits["NPROC"][0] == 256


# -- controls: without kernel isolation the same attacks do harm -----------------------------


@pytest.fixture
def weak_target(tmp_path, monkeypatch):
    t = Target(tmp_path)
    monkeypatch.setenv("LWDOCK_SANDBOX", "weak")
    yield t
    t.listen.close()


def test_control_weak_mode_lets_the_attacks_through(weak_target):
    with pytest.raises(AssertionError, match="witness folder outside the dock was written"):
        weak_target.attack('''
    step("open", lambda: open(WITNESS + "/pwned", "w").write("x"))
''')
    with pytest.raises(AssertionError, match="a file of the dock changed"):
        weak_target.attack('''
    step("truncate_index", lambda: open(DOCK + "/index/meta.json", "w").close())
''')


# -- the protocol and the lwdock process ------------------------------------------------------

FORGER = '''
import os, stat, time
import numpy as np


class Model:
    input_shape, output_shape = (2,), (1,)

    def predict(self, X):
        for name in os.listdir("/proc/self/fd"):
            try:
                if stat.S_ISFIFO(os.fstat(int(name)).st_mode):
                    os.write(int(name), @REPLY@)
            except OSError:
                pass
        time.sleep(@SLEEP@)
        return np.zeros(len(X))
'''


def _forger(tmp_path: Path, reply: bytes, sleep: float = 30) -> ModelWorker:
    root = tmp_path / "forger"
    root.mkdir()
    (root / "__init__.py").write_text(FORGER.replace("@REPLY@", repr(reply)).replace("@SLEEP@", repr(sleep)))
    return ModelWorker(root, timeout=4, workdir_base=tmp_path / "work")


def _peak_during(fn) -> tuple[int, BaseException | None]:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    err = None
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - returned to the test
        err = exc
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, err


def test_forged_reply_claiming_2gb_is_refused_before_any_allocation(tmp_path):
    with _forger(tmp_path, b'{"ok": true, "nbytes": 2000000000}\n') as w:
        t0 = time.monotonic()
        peak, err = _peak_during(lambda: w.predict(np.zeros((10, 2))))
        took = time.monotonic() - t0
    assert isinstance(err, ModelRuntimeError) and "broke the protocol" in str(err), err
    assert took < 3 and peak < 32 << 20, (took, peak)  # no wait for the timeout, no 2 GB buffer


def test_forged_reply_within_the_cap_that_never_comes_costs_nothing(tmp_path):
    # 10 rows may answer with up to 160 MiB; a header that claims 150 MB and sends nothing
    with _forger(tmp_path, b'{"ok": true, "nbytes": 150000000}\n') as w:
        peak, err = _peak_during(lambda: w.predict(np.zeros((10, 2))))
    assert isinstance(err, ModelRuntimeError) and "timed out" in str(err), err
    assert peak < 40 << 20, peak  # the buffer grows only as bytes arrive


def test_forged_reply_with_other_rows_is_refused(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.zeros(3))
    forged = b'{"ok": true, "nbytes": %d}\n' % len(buf.getvalue()) + buf.getvalue()
    with _forger(tmp_path, forged, sleep=0) as w:
        with pytest.raises(ModelRuntimeError, match="on 10 rows returned 3 rows"):
            w.predict(np.zeros((10, 2)))


def test_private_tmp_and_shm_are_size_capped(tmp_path, kernel_sandbox):
    root = tmp_path / "filler"
    root.mkdir()
    (root / "__init__.py").write_text('''
import os
import numpy as np


class Model:
    input_shape, output_shape = (2,), (1,)

    def predict(self, X):
        out = []
        for where in ("/tmp", "/dev/shm", "/"):
            n = 0
            try:
                for i in range(1000):
                    with open(f"{where}/fill{i}", "wb") as f:
                        for _ in range(8):
                            f.write(bytes(1 << 20))
                            n += 1
            except OSError:
                pass
            out.append(n)
        return np.array(out)
''')
    with ModelWorker(root, scratch_mb=32, workdir_base=tmp_path / "work") as w:
        tmp_mb, shm_mb, root_mb = w.predict(np.zeros((3, 2))).tolist()
    assert 16 <= tmp_mb <= 33 and 16 <= shm_mb <= 65 and root_mb == 0, (tmp_mb, shm_mb, root_mb)


def test_yaml_alias_bomb_is_refused_fast_with_bounded_memory(dock, tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefghi", "bcdefghij"))
    bomb += "model:\n  class_name: Model\n  kwargs: {x: *j}\n"
    z = write_zip(tmp_path / "bomb.zip", {**learnware_files(), "learnware.yaml": bomb})
    t0 = time.monotonic()
    peak, err = _peak_during(lambda: dock.submit(z))
    assert isinstance(err, PackageError) and "not allowed" in str(err), err
    assert time.monotonic() - t0 < 5 and peak < 16 << 20
    res = CliRunner().invoke(app, ["--dock", str(dock.path), "submit", str(z)])
    assert res.exit_code == ExitCode.BAD_PACKAGE
    assert [ln for ln in res.stderr.splitlines() if ln.startswith("error:")] == [
        "error: learnware.yaml: anchors (&name) are not allowed (line 1)"]
    assert dock.entries() == [] and list(dock.layout.tmp.iterdir()) == []
