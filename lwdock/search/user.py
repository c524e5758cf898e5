"""The user's side of a search: their specification as arrays, with its feature space.

A :class:`UserSpec` comes from a fitted spec of any registered type, a spec file, a plain
``{"z", "beta"}`` dict (a table RKME; a ``gamma`` there is accepted and not needed), or the
user's data file, fitted locally with no kernel parameter (:func:`user_spec_from_data`). Only
``(z, beta)`` is searched: the dock compares it under its own kernel for that feature space.
With a data file the rows stay in memory for the verified re-rank (:mod:`lwdock.search.verify`)
and go nowhere else.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputDataError
from ..spec.base import RKMESpec
from ..spec.data import load_images, load_texts, table_in_learnware_order
from ..spec.embedders import DEFAULT_EMBEDDER
from ..spec.registry import TABLE, by_name
from ..spec.rkme_image import RKMEImageSpec
from ..spec.rkme_table import RKMETableSpec
from ..spec.rkme_text import RKMETextSpec
from ..spec.specfile import parse_dict, read_bytes, spec_from_dict
from .backends import prepare
from .space import Profile, profile_of


@dataclass
class UserSpec:
    """The user's RKME as raw arrays: points (K, p), weights, and the feature space it belongs to.

    ``rows``: the user's data when the spec was fitted from a data file (table rows, a list of
    texts, or images), kept in memory for verification; ``embedder``: a text spec's embedder."""

    profile: Profile
    z: np.ndarray
    beta: np.ndarray
    num_points: int | None = None
    rows: Any = None
    embedder: str | None = None

    @property
    def kind(self) -> str:
        return self.profile.kind

    @property
    def type(self) -> str:
        return self.profile.spec_type.name

    @property
    def key(self) -> str:
        return self.profile.key

    def describe(self) -> dict[str, Any]:
        """The ``query.user_spec`` block of the search JSON."""
        return {"type": self.type, "K": int(self.z.shape[0]), "num_points": self.num_points,
                "from_data": self.rows is not None, **self.profile.values()}


def _from_spec(spec: RKMESpec, source: str) -> UserSpec:
    spec._check_fitted()
    profile = profile_of(spec)
    z, beta = prepare(profile, spec.z_, spec.beta_)
    if beta.size == 0 or beta.size != z.shape[0]:
        raise InputDataError(f"{source}: beta has {beta.size} weights but z has {z.shape[0]} rows")
    if not (np.all(np.isfinite(z)) and np.all(np.isfinite(beta))):
        raise InputDataError(f"{source}: z or beta is not finite")
    if not math.isfinite(float(np.abs(beta).sum()) ** 2):
        raise InputDataError(f"{source}: the weights are too large to compare")
    if not float(beta.sum()) > 0:  # as lwdock.spec.specfile refuses in a file: every score would be 0
        raise InputDataError(f"{source}: the weights beta must have a positive sum (they sum to {float(beta.sum()):.6g})")
    n = getattr(spec, "num_points_", None)
    embedder = getattr(spec, "embedder_", None) if profile.kind == "text" else None
    return UserSpec(profile, z, beta, int(n) if n else None, embedder=embedder)


def _table_from_mapping(data: Mapping[str, Any], source: str) -> RKMETableSpec:
    """A bare ``{"z", "beta"}`` (``gamma``, ``num_points`` optional) as a fitted table spec."""
    z, beta = data.get("z", data.get("z_")), data.get("beta", data.get("beta_"))
    gamma = data.get("gamma")
    if z is None or beta is None:
        raise InputDataError(f"{source}: not a fitted RKME (needs z and beta)")
    try:
        z = np.asarray(z, dtype=np.float64)
        beta = np.asarray(beta, dtype=np.float64).ravel()
        gamma = None if gamma is None else float(gamma)
    except (TypeError, ValueError):
        raise InputDataError(f"{source}: z, beta and gamma must be numeric") from None
    if z.ndim < 2 or z.shape[0] == 0:
        raise InputDataError(f"{source}: z must be a non-empty K x d array, got shape {z.shape}")
    if not (np.all(np.isfinite(z)) and np.all(np.isfinite(beta)) and (gamma is None or (math.isfinite(gamma)
                                                                                         and gamma > 0))):
        raise InputDataError(f"{source}: z, beta or gamma is not finite (or gamma <= 0)")
    spec = RKMETableSpec(gamma=gamma)
    spec.z_, spec.beta_ = z.reshape(z.shape[0], -1), beta
    n = data.get("num_points", data.get("num_points_"))
    spec.num_points_ = int(n) if n is not None else 0
    return spec


def as_user_spec(spec: Any, source: str = "user specification") -> UserSpec:
    """A fitted spec (any type), a spec file path, a spec dict, or a :class:`UserSpec`."""
    if isinstance(spec, UserSpec):
        return spec
    if isinstance(spec, (str, Path)):
        return _from_file(spec)
    if isinstance(spec, Mapping):
        lenient = spec.get("type") is None or by_name(spec.get("type")) is TABLE
        spec = _table_from_mapping(spec, source) if lenient else spec_from_dict(dict(spec), source)
    if not isinstance(spec, RKMESpec):
        raise InputDataError(f"{source}: not a specification ({type(spec).__name__})")
    return _from_spec(spec, source)


PARSED_FILES = 8  # spec files whose parsed form a process keeps, newest used last
PARSED_FILE_BYTES = 16 << 20  # and the largest file kept (a K = 100 table spec is ~70 KB)
_parsed: OrderedDict[bytes, UserSpec] = OrderedDict()
_parsed_guard = threading.Lock()


def _from_file(path: str | Path) -> UserSpec:
    """A spec file as a :class:`UserSpec`, parsed once per content. A process that searches with
    one file again and again (a loop over filters or docks, a service) still reads it every time,
    but decodes its JSON, checks its checksum and prepares its arrays once: that was a tenth of a
    warm search at 1,000 learnwares. Keyed by a hash of the bytes, so an edited file is parsed
    again; the kept arrays are read-only and each caller gets its own record."""
    raw = read_bytes(path)
    key = hashlib.sha256(raw).digest()
    with _parsed_guard:
        user = _parsed.get(key)
        if user is not None:
            _parsed.move_to_end(key)
    if user is None:
        source = str(path)
        user = _from_spec(spec_from_dict(parse_dict(raw, source), source), source)
        if len(raw) > PARSED_FILE_BYTES:
            return user
        user.z.setflags(write=False)
        user.beta.setflags(write=False)
        with _parsed_guard:
            _parsed[key] = user
            while len(_parsed) > PARSED_FILES:
                _parsed.popitem(last=False)
    return replace(user)


def data_kind(path: str | Path, data_type: list[str]) -> str:
    """table, image or text: from --data-type when it names one kind, else from the file."""
    kinds = {t.lower() for t in data_type} & {"table", "image", "text"}
    if len(kinds) == 1:
        return kinds.pop()
    suffix = Path(path).suffix.lower()
    if suffix in (".txt", ".jsonl"):
        return "text"
    if suffix == ".npy":
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError):
            return "table"  # the table loader reports what is wrong with the file
        return "image" if len(shape) == 4 else "table"
    return "table"


def user_spec_from_data(path: str | Path, kind: str, *, gamma: float | None = None, embedder: str = DEFAULT_EMBEDDER,
                        text_field: str | None = None, random_state: int = 0,
                        column_orders: Callable[[], Iterable[Sequence[str] | None]] = tuple) -> UserSpec:
    """Fit the user's spec locally from a data file: a table (automatic fit; ``gamma`` only for
    experts), images (N x C x H x W) or texts (``embedder``). The spec is what is searched; the
    rows stay in memory (``UserSpec.rows``) for the verified re-rank and are never stored. A
    table's named columns are put in the order the learnwares take them (``column_orders``: the
    learnwares' column names, asked for only when the table has names)."""
    rows: Any
    if kind == "table":
        rows = table_in_learnware_order(path, column_orders, what=str(path))
        spec: RKMESpec = RKMETableSpec(gamma=gamma, K=100, random_state=random_state).fit(rows)
    elif kind == "image":
        rows = load_images(path)
        spec = RKMEImageSpec(K=50, random_state=random_state).fit(rows)
    elif kind == "text":
        rows = load_texts(path, field=text_field, column=text_field)
        spec = RKMETextSpec(K=100, random_state=random_state, embedder=embedder).fit(rows)
    else:
        raise InputDataError(f"unknown data kind {kind!r}; use table, image or text")
    user = as_user_spec(spec, source=str(path))
    user.rows = rows
    return user
