"""The code that runs INSIDE the worker subprocess (``python -I -B lwdock/runner.py --job FILE``).

It reads its job file (model module, class, kwargs, limits), sets its own
limits again (the sandbox set them before the interpreter started; in weak
mode without ``prlimit`` this is the only place), imports the learnware's
model module by path, instantiates the class once, then serves requests until
told to stop or until its parent goes away.

Protocol (binary pipes; stdin from the parent, a private dup of stdout back):
each message is one JSON line, optionally followed by ``nbytes`` bytes of one
array in ``.npy`` format. Arrays are written and read with ``allow_pickle=False``,
so an object array never crosses. fd 1 itself is pointed at ``stdout.log``, so
whatever the model prints (from Python or C) cannot corrupt the protocol. Model
code runs in this process and so *can* write to the protocol descriptor: the
parent therefore validates every reply against its request (see
``lwdock.check.runner``) instead of trusting it.

Requests: ``{"op": "info"}``, ``{"op": "predict", "nbytes": N}`` + array,
``{"op": "shutdown"}``. Replies: ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import io
import json
import os
import shutil
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any, BinaryIO

MAX_LINE = 1 << 20
COMPAT_DIR = Path(__file__).resolve().parent / "compat"


# -- framing (shared with the client) ---------------------------------------------


def encode_parts(arr: Any) -> list[Any]:
    """``arr`` as .npy bytes, in parts (header, data) so the data is not copied."""
    import numpy as np
    from numpy.lib import format as npy

    arr = np.asarray(arr)
    if arr.dtype.hasobject:
        raise TypeError("object arrays are never sent")
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    head = io.BytesIO()
    npy.write_array_header_1_0(head, npy.header_data_from_array_1_0(arr))
    return [head.getvalue(), memoryview(arr.reshape(-1)).cast("B") if arr.size else b""]


def encode_array(arr: Any) -> bytes:
    return b"".join(bytes(p) for p in encode_parts(arr))


def decode_array(data: bytes | bytearray | memoryview) -> Any:
    """Read .npy bytes without copying them; object arrays are refused (no pickle, ever)."""
    import numpy as np
    from numpy.lib import format as npy

    bio = io.BytesIO(data)
    version = npy.read_magic(bio)
    if version == (1, 0):
        shape, fortran, dtype = npy.read_array_header_1_0(bio)
    elif version == (2, 0):
        shape, fortran, dtype = npy.read_array_header_2_0(bio)
    else:
        raise ValueError(f"unsupported .npy version {version}")
    if dtype.hasobject:
        raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
    count = 1
    for n in shape:
        count *= n
    if len(data) - bio.tell() != count * dtype.itemsize:
        raise ValueError("array data size does not match its header")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=bio.tell())
    return arr.reshape(shape, order="F" if fortran else "C")


# -- model loading -----------------------------------------------------------------


def _load_package(name: str, root: Path) -> types.ModuleType:
    init = root / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(root)])
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {init}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod
    mod = types.ModuleType(name)  # a bare package so relative imports still work
    mod.__path__ = [str(root)]
    mod.__file__ = None
    sys.modules[name] = mod
    return mod


def load_model(root: str, module: str, class_name: str, kwargs: dict) -> Any:
    """Import ``module`` (a path relative to ``root``) and return ``class_name(**kwargs)``."""
    root_p = Path(root).resolve()
    pkg = "_lwdock_learnware_" + hashlib.sha1(str(root_p).encode()).hexdigest()[:10]
    rel = module.replace(os.sep, "/").strip("/")
    parent = _load_package(pkg, root_p)
    if rel in ("", "__init__.py"):
        mod = parent
    else:
        if not rel.endswith(".py"):
            raise ImportError(f"model module {module!r} is not a .py file")
        dotted = rel[:-3]
        if dotted.endswith("/__init__"):
            dotted = dotted[: -len("/__init__")]
        mod = importlib.import_module(pkg + "." + dotted.replace("/", "."))
    try:
        cls = getattr(mod, class_name)
    except AttributeError:
        raise ImportError(f"model module {module!r} has no class {class_name!r}") from None
    # pickled models often refer to __main__.<Class> (the reference does the same)
    setattr(sys.modules["__main__"], class_name, cls)
    return cls(**kwargs)


def _shape(value: Any) -> Any:
    """A JSON shape: None, a list of ints, or a string when it is not a shape."""
    if value is None:
        return None
    try:
        items = list(value)
        if all(int(v) == v and not isinstance(v, bool) for v in items):
            return [int(v) for v in items]
    except (TypeError, ValueError):
        pass
    return repr(value)[:200]


def _as_array(out: Any) -> Any:
    import numpy as np

    if hasattr(out, "detach") and hasattr(out, "cpu"):  # a torch tensor, without importing torch
        out = out.detach().cpu().numpy()
    arr = np.asarray(out)
    if arr.dtype.hasobject:
        raise TypeError("model returned an object array; only numeric, bool or string arrays are accepted")
    return arr


# -- serving -----------------------------------------------------------------------


class _Server:
    def __init__(self, rfile: BinaryIO, wfile: BinaryIO) -> None:
        self.rfile = rfile
        self.wfile = wfile

    def send(self, msg: dict, parts: list[Any] | None = None) -> None:
        n = sum(len(p) for p in parts or ())
        if n:
            msg = dict(msg, nbytes=n)
        self.wfile.write(json.dumps(msg).encode() + b"\n")
        for p in parts or ():
            self.wfile.write(p)
        self.wfile.flush()

    def recv(self) -> tuple[dict | None, bytes | bytearray]:
        line = self.rfile.readline(MAX_LINE)
        if not line:
            return None, b""
        msg = json.loads(line)
        n = int(msg.get("nbytes", 0))
        payload = bytearray(n)  # writable: a model may change its input in place
        if n and self.rfile.readinto(payload) != n:
            return None, b""
        return msg, payload


def _error(exc: BaseException) -> dict:
    text = str(exc) or ("memory limit hit" if isinstance(exc, MemoryError) else "")
    return {"ok": False, "error": f"{type(exc).__name__}: {' '.join(text.split())}"[:2000], "kind": type(exc).__name__}


def apply_limits(rlimits: dict[str, int]) -> None:
    """Set each ``RLIMIT_<name>`` to ``value`` with soft == hard, so the model cannot raise it again."""
    import resource

    for name, value in rlimits.items():
        which = getattr(resource, f"RLIMIT_{name}", None)
        if which is None:
            continue
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(int(value), hard)
        resource.setrlimit(which, (int(value), int(value)))


def _watch_parent(workdir: str) -> None:
    # weak mode: the worker must not outlive lwdock, even if lwdock is killed
    # (in kernel mode bwrap --die-with-parent and the PID namespace see to that)
    ppid = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != ppid:
            shutil.rmtree(workdir, ignore_errors=True)
            os._exit(3)


def _parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m lwdock.runner", description="lwdock model worker (internal)")
    ap.add_argument("--job", required=True, help="JSON job file: root, module, class_name, kwargs, rlimits, ...")
    return ap.parse_args(argv)


def take_protocol_fds(stdout_fd: int) -> tuple[BinaryIO, BinaryIO]:
    """Private copies of fds 0 and 1 for the protocol; the model gets /dev/null and its log."""
    rfile = os.fdopen(os.dup(0), "rb", buffering=1 << 16)  # os.dup: not inherited by children
    wfile = os.fdopen(os.dup(1), "wb", buffering=1 << 16)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(stdout_fd, 1)
    if stdout_fd not in (0, 1, 2):
        os.close(stdout_fd)
    keep = {0, 1, 2, rfile.fileno(), wfile.fileno()}
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
        fd = int(name)
        if fd not in keep:  # nothing else crosses into model code (the listing's own fd is gone already)
            try:
                os.close(fd)
            except OSError:
                pass
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), line_buffering=True)
    return rfile, wfile


def main(argv: list[str] | None = None) -> int:
    """A fresh worker interpreter: read the job file, then serve (see :func:`run_job`)."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    with open(args.job, "rb") as fh:
        job = json.loads(fh.read(1 << 24))
    rfile, wfile = take_protocol_fds(int(job["stdout_fd"]))
    return run_job(job, rfile, wfile)


def run_job(job: dict, rfile: BinaryIO, wfile: BinaryIO) -> int:
    """Load the job's model and serve requests on the protocol files until told to stop.

    Used by a fresh worker (:func:`main`) and by a worker forked from the fork server
    (``lwdock.check.zygote``), once its own sandbox, uid and limits are in place.
    """
    workdir = job["workdir"]
    os.chdir(workdir)
    server = _Server(rfile, wfile)
    if job.get("watch_parent"):
        threading.Thread(target=_watch_parent, args=(workdir,), daemon=True).start()

    apply_limits(job.get("rlimits") or {})
    import numpy  # noqa: F401 - before untrusted code

    sys.dont_write_bytecode = True
    if str(COMPAT_DIR) not in sys.path:
        sys.path.append(str(COMPAT_DIR))  # `learnware` shim, last so a real install wins

    try:
        model = load_model(job["root"], job["module"], job["class_name"], job.get("kwargs") or {})
        info = {
            "input_shape": _shape(getattr(model, "input_shape", None)),
            "output_shape": _shape(getattr(model, "output_shape", None)),
            "class": type(model).__name__,
            "has_predict": callable(getattr(model, "predict", None)),
        }
        server.send({"ok": True, "event": "ready", "info": info})
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the parent
        server.send(dict(_error(exc), event="ready"))
        return 2

    while True:
        try:
            msg, payload = server.recv()
        except (ValueError, OSError):
            return 4
        if msg is None or msg.get("op") == "shutdown":
            try:
                sys.stdout.flush()
            except OSError:
                pass
            os._exit(0)  # skip interpreter teardown: nothing of the model's needs finalising
        op = msg.get("op")
        try:
            if op == "info":
                server.send({"ok": True, "info": info})
            elif op == "predict":
                X = decode_array(payload)
                if X.dtype.kind in "US":  # text probes: the model sees a list of str
                    X = X.tolist()
                t0 = time.perf_counter()
                raw = model.predict(X)
                took = time.perf_counter() - t0
                out = _as_array(raw)
                pytype = f"{type(raw).__module__}.{type(raw).__qualname__}"
                server.send({"ok": True, "shape": list(out.shape), "dtype": out.dtype.str, "pytype": pytype,
                             "predict_s": took}, encode_parts(out))
            else:
                server.send({"ok": False, "error": f"unknown op {op!r}"})
        except BrokenPipeError:
            return 5
        except BaseException as exc:  # noqa: BLE001 - the model's failure goes back as a reply
            try:
                server.send(_error(exc))
            except OSError:
                return 5
