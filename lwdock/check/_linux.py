"""The Linux system calls the fork server needs and Python 3.10/3.11 lacks, through ctypes.

Namespaces (``unshare``), the mount API (``mount``, ``umount2``, ``pivot_root``, and the
file-descriptor based ``open_tree``/``move_mount``/``mount_setattr`` of Linux >= 5.12),
capabilities (``capset``, ``PR_CAPBSET_DROP``) and ``prctl``. Every call raises ``OSError``
with the kernel's errno on failure. Only standard library modules are imported: this runs in
the fork server, before and after it forks a sandboxed worker (see ``lwdock.check.zygote``).
"""

from __future__ import annotations

import ctypes
import os


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# namespaces (sched.h)
CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x02000000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000

# mount(2) flags
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2

# the fd-based mount API (linux/mount.h)
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC = 1, os.O_CLOEXEC
AT_FDCWD, AT_EMPTY_PATH, AT_RECURSIVE, AT_SYMLINK_NOFOLLOW = -100, 0x1000, 0x8000, 0x100
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 0x1, 0x2, 0x4
READ_ONLY = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV

# prctl
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
CAP_LAST = 63  # PR_CAPBSET_DROP of a cap the kernel does not know fails with EINVAL: ignored

# x86_64 and aarch64 share the numbers of the newer calls; the older ones differ
_NR = {"x86_64": {"pivot_root": 155, "capset": 126}, "aarch64": {"pivot_root": 41, "capset": 91}}
_NR_NEW = {"open_tree": 428, "move_mount": 429, "mount_setattr": 442}


def _nr(name: str) -> int:
    if name in _NR_NEW:
        return _NR_NEW[name]
    arch = _NR.get(os.uname().machine)
    if arch is None:
        raise OSError(38, f"{name}: unsupported architecture {os.uname().machine}")
    return arch[name]


def _check(res: int, what: str) -> int:
    if res < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return res


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)),
           f"mount {fstype or source or ''} on {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_nr("pivot_root"), _b(new_root), _b(put_old)), "pivot_root")


def open_tree(path: str, *, dirfd: int = AT_FDCWD, recursive: bool = True) -> int:
    """A detached clone of the mount tree at ``path`` (a bind mount not attached anywhere yet), as an fd."""
    flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    return _check(_libc.syscall(_nr("open_tree"), ctypes.c_int(dirfd), _b(path), ctypes.c_uint(flags)),
                  f"open_tree {path}")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(fd: int, attr_set: int, *, path: str = "", recursive: bool = True) -> None:
    """Set mount attributes (``MOUNT_ATTR_*``) of the mount at ``fd`` (and, recursively, below it)."""
    attr = _MountAttr(attr_set, 0, 0, 0)
    flags = (AT_EMPTY_PATH if not path else 0) | (AT_RECURSIVE if recursive else 0)
    _check(_libc.syscall(_nr("mount_setattr"), ctypes.c_int(fd), _b(path), ctypes.c_uint(flags),
                         ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr")


def move_mount(fd: int, target: str) -> None:
    """Attach the detached mount ``fd`` (from :func:`open_tree`) at ``target``."""
    _check(_libc.syscall(_nr("move_mount"), ctypes.c_int(fd), b"", ctypes.c_int(AT_FDCWD), _b(target),
                         ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)), f"move_mount to {target}")


def read_only_tree(path: str, *, dirfd: int = AT_FDCWD) -> int:
    """A detached, recursively read-only (nosuid, nodev) clone of ``path``: one bind, as an fd."""
    fd = open_tree(path, dirfd=dirfd)
    try:
        mount_setattr(fd, READ_ONLY)
    except BaseException:
        os.close(fd)
        raise
    return fd


def bind_read_only(source: str, target: str) -> None:
    """``mount --rbind -o ro,nosuid,nodev source target`` with the fd-based API (recursive read-only)."""
    fd = read_only_tree(source)
    try:
        move_mount(fd, target)
    finally:
        os.close(fd)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                              ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)), "prctl")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_all_capabilities() -> None:
    """Empty the bounding and ambient sets, then the effective, permitted and inheritable ones.

    The bounding set first (that needs CAP_SETPCAP, which the last step removes).
    """
    for cap in range(CAP_LAST + 1):
        try:
            prctl(PR_CAPBSET_DROP, cap)
        except OSError as exc:
            if exc.errno != 22:  # EINVAL: no such capability on this kernel
                raise
    try:
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError as exc:
        if exc.errno != 22:
            raise
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3: two 32-bit words
    data = (_CapData * 2)()
    _check(_libc.syscall(_nr("capset"), ctypes.byref(header), ctypes.byref(data)), "capset")
