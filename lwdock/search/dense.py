"""Statistical search for image and text specifications ("dense" specs).

``stat_search_dense(dock, user_spec, entries, k=, max_mixture=, method=)`` ranks the entries'
compatible learnwares by squared MMD to the user's spec and finds the best mixture, like the
table path (:func:`lwdock.search.stat.rank`), and returns a :class:`DenseStatResult` with the
same fields as :class:`~lwdock.search.stat.StatResult` (plus ``explanation`` and ``user``).

* **Compatible** -- image: same spec type, same ``shape`` (C, 32, 32) and NNGP depth. Text: same
  spec type, same ``embedder_``, embedding dimension and gamma. Mismatches are explained in words.
* **Kernels** -- image: the analytic NNGP kernel; every cross term ``<user, R_i>`` in one bulk
  pass (:func:`lwdock.spec.nngp.weighted_inner_many`). Text: the RBF kernel on the embeddings,
  one GEMM over all stacked reduced sets.
* **Pre-filter (image)** -- above ``IMAGE_PREFILTER_AUTO`` compatible learnwares (or when forced),
  learnwares are scored by ``|s_u - s_R|^2`` with random-feature sketches ``s`` of the NNGP kernel
  (:class:`lwdock.spec.nngp.RandomFeatures`), the best
  :func:`rerank_count` are re-ranked with the exact kernel, and the mixture is searched among the
  exact top candidates. Every reported MMD^2 is exact; only membership can differ.
* **Cache** -- ``<dock>/search/dense-<kind>.json`` (manifest) and ``dense-<kind>-<token>.npz``
  (the stacked reduced sets, points of ~zero weight pruned; for images also one sketch row per
  learnware) hold each learnware's arrays, metadata and self product ``<R, R>``, keyed by learnware id. An id is the SHA-256 of the learnware's zip,
  so a cached row can never describe other content: ids that left the dock are ignored and pruned
  on the next write, new ids are computed at first use (under the dock lock), and a generation
  change triggers that comparison with ``dock.entries()``. Files, not folders: the table cache's
  garbage collector removes every folder under ``search/`` that its manifest does not name.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import write_atomic
from ..errors import InputDataError
from . import mixture as _mixture
from .cache import entry_dicts
from .stat import StatResult

logger = logging.getLogger("lwdock")

FORMAT = 2  # 2: image items carry a random-feature sketch (format-1 caches are rebuilt)
IMAGE_TYPE = "RKMEImageSpecification"
TEXT_TYPE = "RKMETextSpecification"
KINDS = {IMAGE_TYPE: "image", TEXT_TYPE: "text"}
PRUNE = 1e-9  # points whose weight is below PRUNE x the spec's largest weight are not stored
# image pre-filter (see docs/search.md): on by default above this many compatible learnwares
IMAGE_PREFILTER_AUTO = 200
RERANK_MIN = 50
RERANK_FRACTION = 0.05


# -- the user's side ---------------------------------------------------------------------------
@dataclass
class DenseUser:
    """The user's image or text RKME as arrays; quacks like :class:`~lwdock.search.stat.UserSpec`
    where the API needs it (``type``, ``self_product``, ``describe()``)."""

    kind: str  # "image" | "text"
    z: np.ndarray  # image: (K, C, 32, 32) float32; text: (K, d) float64
    beta: np.ndarray
    meta: dict[str, Any]  # image: shape, depth; text: embedder, dim, gamma
    num_points: int | None = None
    _self: float | None = field(default=None, repr=False)

    @property
    def type(self) -> str:
        return IMAGE_TYPE if self.kind == "image" else TEXT_TYPE

    @property
    def key(self) -> str:
        return compat_key(self.kind, self.meta)

    @property
    def self_product(self) -> float:
        if self._self is None:
            self._self = float(_cross(self.kind, self.meta, self.z, self.beta, [(self.z, self.beta)], same=True)[0])
        return self._self

    def describe(self) -> dict[str, Any]:
        d = {"type": self.type, "K": int(self.z.shape[0]), "num_points": self.num_points}
        d.update(self.meta)
        return d


def is_dense(spec: Any) -> bool:
    """True for an image/text spec object (or a :class:`DenseUser`)."""
    return isinstance(spec, DenseUser) or str(getattr(spec, "type", "")) in KINDS


def _meta_of(spec: Any) -> tuple[str, dict[str, Any]]:
    kind = KINDS.get(str(getattr(spec, "type", "")))
    if kind is None:
        raise InputDataError(f"not an image or text specification: {type(spec).__name__}")
    if kind == "image":
        return kind, {"shape": [int(s) for s in spec.shape], "depth": int(spec.depth)}
    return kind, {"embedder": str(getattr(spec, "embedder_", None) or getattr(spec, "embedder", "")),
                  "dim": int(spec.dim), "gamma": float(spec.gamma)}


def _arrays(spec: Any, kind: str) -> tuple[np.ndarray, np.ndarray]:
    beta = np.asarray(spec.beta_, dtype=np.float64).ravel()
    z = np.asarray(spec.z_, dtype=np.float32 if kind == "image" else np.float64)
    if kind == "text":
        z = z.reshape(z.shape[0], -1)
    if beta.size != z.shape[0] or not np.all(np.isfinite(beta)) or not np.all(np.isfinite(z)):
        raise InputDataError("the specification's z/beta are inconsistent or not finite")
    keep = np.abs(beta) > PRUNE * max(float(np.abs(beta).max()), 1e-300)
    return np.ascontiguousarray(z[keep]), beta[keep]


def as_dense_user(spec: Any, source: str = "user specification") -> DenseUser:
    """A fitted :class:`RKMEImageSpec` / :class:`RKMETextSpec` (or a path to its file) as a DenseUser."""
    if isinstance(spec, DenseUser):
        return spec
    if isinstance(spec, (str, Path)):
        from ..spec.specfile import load_spec

        source, spec = str(spec), load_spec(spec)
    if not hasattr(spec, "z_"):
        raise InputDataError(f"{source}: not a fitted image or text specification")
    kind, meta = _meta_of(spec)
    z, beta = _arrays(spec, kind)
    n = getattr(spec, "num_points_", None)
    user = DenseUser(kind, z, beta, meta, int(n) if n is not None else None)
    if not math.isfinite(user.self_product):
        raise InputDataError(f"{source}: its self inner product is not finite")
    return user


def compat_key(kind: str, meta: dict[str, Any]) -> str:
    if kind == "image":
        return "image-" + "x".join(str(s) for s in meta["shape"]) + f"-depth{int(meta['depth'])}"
    return f"text-{meta['embedder']}-d{int(meta['dim'])}-g{float(meta['gamma'])!r}"


# -- kernels -----------------------------------------------------------------------------------
def _cross(kind: str, meta: dict[str, Any], Za: np.ndarray, ba: np.ndarray, specs: list[tuple[np.ndarray, np.ndarray]],
           same: bool = False) -> np.ndarray:
    """``[<(Za, ba), (Z, b)> for (Z, b) in specs]`` in one bulk pass."""
    if not specs:
        return np.zeros(0)
    if kind == "image":
        from ..spec.nngp import nngp_kernel, weighted_inner_many

        if same:  # the symmetric path (exact diagonal), as RKMEImageSpec._self does
            K = nngp_kernel(Za, depth=int(meta["depth"]), n_threads=_threads())
            return np.array([float(ba @ K @ ba)])
        return weighted_inner_many(Za, ba, specs, depth=int(meta["depth"]), n_threads=_threads())
    return _rbf_many(Za, ba, specs, float(meta["gamma"]))


def _rbf_many(Za: np.ndarray, ba: np.ndarray, specs: list[tuple[np.ndarray, np.ndarray]], gamma: float) -> np.ndarray:
    from ..spec.kernels import rbf_kernel

    Zb = np.concatenate([np.asarray(z, dtype=np.float64) for z, _ in specs])
    wb = np.concatenate([np.asarray(b, dtype=np.float64) for _, b in specs])
    own = np.repeat(np.arange(len(specs)), [len(b) for _, b in specs])
    acc = np.empty(Zb.shape[0])
    step = max(1, (1 << 22) // max(1, Za.shape[0]))  # ~32 MB of kernel values at a time
    for j in range(0, Zb.shape[0], step):
        acc[j:j + step] = np.asarray(ba, dtype=np.float64) @ rbf_kernel(Za, Zb[j:j + step], gamma)
    return np.bincount(own, weights=acc * wb, minlength=len(specs))


_RF: dict[tuple[int, int, int], Any] = {}


def _random_features(meta: dict[str, Any]) -> Any:
    from ..spec.nngp import RandomFeatures

    C, H, _ = (int(v) for v in meta["shape"])
    key = (C, H, int(meta["depth"]))
    if key not in _RF:
        _RF[key] = RandomFeatures(C, size=H, depth=int(meta["depth"]))
    return _RF[key]


def image_sketch(z: np.ndarray, beta: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """``sum_j beta_j phi(z_j)`` under the NNGP random features of ``meta``'s shape and depth (float32)."""
    from ..spec.nngp import sketch

    return sketch(z, beta, _random_features(meta), n_threads=1).astype(np.float32)


def rerank_count(k: int, max_mixture: int, n: int) -> int:
    """Learnwares re-ranked exactly after the image pre-filter: the most of ``RERANK_MIN`` (50),
    ``5 k``, ``max_mixture^2`` and ``RERANK_FRACTION`` (5 %) of the ``n`` candidates."""
    return min(n, max(RERANK_MIN, 5 * int(k), int(max_mixture) ** 2, math.ceil(RERANK_FRACTION * n)))


def _threads() -> int:
    return max(1, min(2, os.cpu_count() or 1))


# -- the on-disk cache -------------------------------------------------------------------------
def cache_paths(dock: Any, kind: str) -> tuple[Path, Path]:
    """(search directory, manifest path) of ``kind``'s dense cache."""
    layout = getattr(dock, "layout", None)
    d = Path(layout.search) if layout is not None and hasattr(layout, "search") else Path(dock.path) / "search"
    return d, d / f"dense-{kind}.json"


def spec_kind(entry: dict[str, Any]) -> str | None:
    """'image' / 'text' when the entry carries such a spec (and is not invalid), else None."""
    if entry.get("status") == "invalid":
        return None
    for s in entry.get("specs") or []:
        if s.get("kind") in ("image", "text"):
            return str(s["kind"])
    return None


class DenseCache:
    """One kind's cache: per-id metadata and self products (JSON), stacked arrays (one .npz)."""

    def __init__(self, dock: Any, kind: str) -> None:
        self.dock = dock
        self.kind = kind
        self.directory, self.manifest_path = cache_paths(dock, kind)
        self.manifest = self._read()
        self._arrays: dict[str, np.ndarray] | None = None

    def _read(self) -> dict[str, Any]:
        empty = {"format": FORMAT, "kind": self.kind, "generation": None, "token": None, "items": {}, "unreadable": {}}
        try:
            m = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return empty
        if not isinstance(m, dict) or m.get("format") != FORMAT or m.get("kind") != self.kind:
            return empty
        if m.get("token") and not self._npz(m["token"]).is_file():
            return empty
        return m

    def _npz(self, token: str) -> Path:
        return self.directory / f"dense-{self.kind}-{token}.npz"

    @property
    def items(self) -> dict[str, dict[str, Any]]:
        return self.manifest["items"]

    def arrays(self, ids: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        self._load()
        z, b = self._arrays["z"], self._arrays["beta"]
        return [(z[self.items[i]["start"]:self.items[i]["stop"]], b[self.items[i]["start"]:self.items[i]["stop"]])
                for i in ids]

    def _load(self) -> None:
        if self._arrays is None:
            with np.load(self._npz(self.manifest["token"]), allow_pickle=False) as f:
                self._arrays = {k: f[k] for k in f.files}

    def sketches(self, ids: list[str]) -> np.ndarray:
        """(len(ids), dim) float64 sketches of image learnwares (same compat key, so same dim)."""
        self._load()
        S = self._arrays["sketch"]
        rows = [self.items[i]["srow"] for i in ids]
        dim = int(self.items[ids[0]]["sdim"]) if ids else 0
        return S[rows, :dim].astype(np.float64)

    def update(self, wanted: list[dict[str, Any]]) -> None:
        """Make sure every entry in ``wanted`` is cached (or recorded as unreadable); prune ids
        that left the dock. Call under the dock lock."""
        gen = self.dock.generation()
        missing = [e for e in wanted if e["id"] not in self.items and e["id"] not in self.manifest["unreadable"]]
        live: set[str] | None = None
        if self.manifest.get("generation") != gen:
            live = {e.id for e in self.dock.entries()}  # house branch: the Dock returns Entry records
        stale = [i for i in self.items if live is not None and i not in live]
        if not missing and not stale:
            if self.manifest.get("generation") != gen:
                self.manifest["generation"] = gen
                self._write_manifest()
            return
        keep = [i for i in self.items if i not in set(stale)]
        old = self.arrays(keep) if keep else []
        zs = [z for z, _ in old]
        bs = [b for _, b in old]
        sks = [self._arrays["sketch"][self.items[i]["srow"], : self.items[i]["sdim"]] for i in keep] \
            if self.kind == "image" and keep else []
        items: dict[str, dict[str, Any]] = {}
        row = 0
        for n, (i, (z, _)) in enumerate(zip(keep, old)):
            items[i] = dict(self.items[i], start=row, stop=row + len(z))
            if self.kind == "image":
                items[i]["srow"] = n
            row += len(z)
        unreadable = {i: r for i, r in self.manifest["unreadable"].items() if live is None or i in live}
        from ..progress import track

        for e in track(missing, len(missing), "dense search cache") if len(missing) > 20 else missing:
            try:
                spec = _load_entry_spec(self.dock, e, self.kind)
                kind, meta = _meta_of(spec)
                z, beta = _arrays(spec, kind)
                self_ = float(spec.inner_prod(spec))
                if not math.isfinite(self_):
                    raise InputDataError("its self inner product is not finite")
                sk = image_sketch(z, beta, meta) if kind == "image" else None
            except Exception as exc:  # noqa: BLE001 - one bad spec must not break every search
                logger.warning("dense search cache: skipping %s (%s)", e["id"][:12], exc)
                unreadable[e["id"]] = str(exc)[:300]
                continue
            items[e["id"]] = {"key": compat_key(kind, meta), "meta": meta, "self": self_, "start": row,
                              "stop": row + len(z), "num_points": getattr(spec, "num_points_", None)}
            if sk is not None:
                items[e["id"]].update(srow=len(sks), sdim=int(sk.size))
                sks.append(sk)
            zs.append(z)
            bs.append(beta)
            row += len(z)
        token = uuid.uuid4().hex[:12]
        self.directory.mkdir(parents=True, exist_ok=True)
        if zs:
            shapes = {z.shape[1:] for z in zs}
            if len(shapes) > 1:  # mixed shapes/dims: stack flattened, padded to the widest
                width = max(int(np.prod(s)) for s in shapes)
                zs = [np.pad(z.reshape(len(z), -1), ((0, 0), (0, width - int(np.prod(z.shape[1:]))))) for z in zs]
            Z, B = np.concatenate(zs), np.concatenate(bs)
        else:
            Z, B = np.zeros((0, 1), np.float32), np.zeros(0)
        extra = {}
        if self.kind == "image":
            S = np.zeros((len(sks), max([s.size for s in sks], default=1)), dtype=np.float32)
            for r, sk in enumerate(sks):
                S[r, : sk.size] = sk
            extra["sketch"] = S
        tmp = self.directory / f".dense-{self.kind}-{token}.npz.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, z=Z, beta=B, **extra)
        os.replace(tmp, self._npz(token))
        self.manifest = {"format": FORMAT, "kind": self.kind, "generation": gen, "token": token, "items": items,
                         "unreadable": unreadable}
        self._write_manifest()
        self._arrays = {"z": Z, "beta": B, **extra}
        for p in self.directory.glob(f"dense-{self.kind}-*.npz"):
            if p.name != self._npz(token).name:  # older tokens: no manifest names them now
                p.unlink(missing_ok=True)

    def _write_manifest(self) -> None:
        write_atomic(self.manifest_path, json.dumps(self.manifest).encode())

    def get(self, i: str) -> tuple[np.ndarray, np.ndarray]:
        """One learnware's (z, beta), reshaped to its own shape."""
        (z, b), = self.arrays([i])
        meta = self.items[i]["meta"]
        if self.kind == "image":
            n = int(np.prod(meta["shape"]))
            return z.reshape(len(z), -1)[:, :n].reshape(len(z), *meta["shape"]), b
        return z.reshape(len(z), -1)[:, : int(meta["dim"])], b


def _load_entry_spec(dock: Any, entry: dict[str, Any], kind: str) -> Any:
    from ..spec.specfile import load_spec

    layout = getattr(dock, "layout", None)
    for s in entry.get("specs") or []:
        if s.get("kind") == kind and layout is not None and s.get("file_name"):
            path = Path(layout.unpacked_dir(entry["id"])) / s["file_name"]
            if path.is_file():
                return load_spec(path)
    return load_spec(dock.spec_path(entry["id"], kind=kind))


# -- the search ------------------------------------------------------------------------------
@dataclass
class DenseStatResult(StatResult):
    """:class:`StatResult` plus, when nothing could be ranked, a plain-language ``explanation``."""

    explanation: str | None = None
    user_self: float = 0.0


def _fmt_counts(values: list[Any]) -> str:
    return ", ".join(f"{v} ({n})" for v, n in collections.Counter(values).most_common(5))


def _explain(kind: str, user: DenseUser, n_kept: int, of_kind: list[str], cache: DenseCache) -> str:
    if not of_kind:
        return f"0 of {n_kept} matching learnwares have an {kind} specification" if kind == "image" else \
            f"0 of {n_kept} matching learnwares have a {kind} specification"
    readable = [i for i in of_kind if i in cache.items]
    if not readable:
        return f"the {kind} specifications of the {len(of_kind)} matching learnwares could not be read; run `lwdock doctor`"
    metas = [cache.items[i]["meta"] for i in readable]
    n = len(readable)
    if kind == "image":
        shape = "x".join(map(str, user.meta["shape"]))
        same = [m for m in metas if m["shape"] == user.meta["shape"]]
        if not same:
            shapes = _fmt_counts(["x".join(map(str, m["shape"])) for m in metas])
            return f"0 of {n} image learnwares have image shape {shape} (shapes in the dock: {shapes})"
        depths = _fmt_counts([m["depth"] for m in same])
        return f"0 of {len(same)} image learnwares with shape {shape} use NNGP depth {user.meta['depth']} (they use: {depths})"
    emb = user.meta["embedder"]
    same = [m for m in metas if m["embedder"] == emb]
    if not same:
        embs = _fmt_counts([m["embedder"] for m in metas])
        return (f"0 of {n} text learnwares were made with embedder {emb} (they use: {embs}); "
                f"rebuild your spec with that embedder (lwdock spec text --embedder NAME)")
    same_dim = [m for m in same if int(m["dim"]) == int(user.meta["dim"])]
    if not same_dim:
        return f"0 of {len(same)} text learnwares made with {emb} have embedding dimension {user.meta['dim']}"
    gammas = _fmt_counts([m["gamma"] for m in same_dim])
    return (f"0 of {len(same_dim)} text learnwares made with embedder {emb} use gamma {user.meta['gamma']} "
            f"(they use: {gammas}); fit your spec with their gamma")


def stat_search_dense(
    dock: Any, user_spec: Any, entries: list[dict[str, Any]], *, k: int = 10, max_mixture: int = 5,
    method: str = "greedy", prefilter: bool | None = None, rerank: int | None = None,
) -> DenseStatResult:
    """Rank the image/text learnwares among ``entries`` (already semantically filtered) by MMD^2
    to ``user_spec`` and find the mixture; see the module doc.

    ``prefilter`` (images only): True/False forces the random-feature pre-filter on/off; None turns
    it on above ``IMAGE_PREFILTER_AUTO`` compatible learnwares. ``rerank`` overrides
    :func:`rerank_count` (the number re-ranked exactly). ``result.prefiltered`` says whether it ran."""
    user = as_dense_user(user_spec)
    entries = entry_dicts(entries)  # house branch shim
    of_kind = [e for e in entries if spec_kind(e) == user.kind]
    cache = DenseCache(dock, user.kind)
    with dock.lock():
        cache.update(of_kind)
    ids = of_kind_ids(of_kind, cache, user)
    uu = user.self_product
    if not ids:
        res = DenseStatResult([], np.zeros(0), np.zeros(0), 0, False, user_self=uu)
        res.explanation = _explain(user.kind, user, len(entries), [e["id"] for e in of_kind], cache)
        return res
    use = user.kind == "image" and (len(ids) > IMAGE_PREFILTER_AUTO if prefilter is None else bool(prefilter))
    if use:
        count = min(len(ids), int(rerank)) if rerank else rerank_count(k, max_mixture, len(ids))
        if count < len(ids):
            res = _rank(cache, user, _prefilter(cache, user, ids, max(count, 1)), k, max_mixture, method)
            res.prefiltered, res.considered = True, len(ids)
            return res
    return _rank(cache, user, ids, k, max_mixture, method)


def of_kind_ids(of_kind: list[dict[str, Any]], cache: DenseCache, user: DenseUser) -> list[str]:
    return [e["id"] for e in of_kind if e["id"] in cache.items and cache.items[e["id"]]["key"] == user.key]


def approx_mmd2(cache: DenseCache, user: DenseUser, ids: list[str]) -> np.ndarray:
    """``|s_u - s_R|^2`` for every id: the MMD^2 under the random-feature kernel. (Exact self
    products with sketched cross terms ranked far worse: the cross term's error, ~10 % of ~0.3,
    dwarfs the MMD^2 gaps; in the all-sketch form the errors of the three terms largely cancel.)"""
    su = image_sketch(user.z, user.beta, user.meta).astype(np.float64)
    return ((cache.sketches(ids) - su) ** 2).sum(1)


def _prefilter(cache: DenseCache, user: DenseUser, ids: list[str], count: int) -> list[str]:
    approx = approx_mmd2(cache, user, ids)
    keep = np.argpartition(approx, count - 1)[:count] if count < len(ids) else np.arange(len(ids))
    return [ids[j] for j in np.sort(keep)]  # dock order, so ties break as without the pre-filter


def _rank(cache: DenseCache, user: DenseUser, ids: list[str], k: int, max_mixture: int, method: str) -> DenseStatResult:
    uu = user.self_product
    specs = [cache.get(i) for i in ids]
    cross = _cross(user.kind, user.meta, user.z, user.beta, specs)
    selfs = np.array([cache.items[i]["self"] for i in ids], dtype=np.float64)
    d = np.maximum(selfs - 2.0 * cross + uu, 0.0)
    finite = np.isfinite(d)
    if not finite.all():
        logger.warning("%d learnwares have a non-finite distance and are left out", int((~finite).sum()))
    order = np.flatnonzero(finite)[np.argsort(d[finite], kind="stable")]
    top = order[:k]
    res = DenseStatResult([ids[j] for j in top], d[top], selfs[top], len(ids), False, user_self=uu)
    n_cand = max(2, max_mixture * max_mixture) if max_mixture >= 2 else 0
    cand = order[:n_cand]
    if max_mixture >= 2 and cand.size >= 2 and d[cand[0]] > 0:
        cspecs = [specs[j] for j in cand]

        def row(i: int) -> np.ndarray:
            return _cross(user.kind, user.meta, cspecs[i][0], cspecs[i][1], cspecs)

        gram = _mixture.Gram(selfs[cand], row)
        mix = _mixture.find(gram, cross[cand], uu, max_mixture, method)
        if mix is not None:
            sub = gram.sub(mix.members)
            res.mixture_ids = [ids[int(cand[m])] for m in mix.members]
            res.mixture_weights = mix.weights
            res.mixture_mmd2 = mix.mmd2
            res.mixture_self = float(mix.weights @ sub @ mix.weights)
    return res


def user_spec_from_data(path: str | Path, kind: str, *, embedder: str = "all-MiniLM-L6-v2", K: int | None = None,
                        random_state: int = 0, text_field: str | None = None) -> DenseUser:
    """Fit the user's image (N x C x H x W .npy/.npz) or text (.txt/.jsonl/.csv) spec locally."""
    if kind == "image":
        from ..spec.data import load_images
        from ..spec.rkme_image import RKMEImageSpec

        spec = RKMEImageSpec(K=K or 50, random_state=random_state).fit(load_images(path))
    elif kind == "text":
        from ..spec.data import load_texts
        from ..spec.rkme_text import RKMETextSpec

        texts = load_texts(path, field=text_field, column=text_field)
        spec = RKMETextSpec(K=K or 100, random_state=random_state, embedder=embedder).fit(texts)
    else:
        raise InputDataError(f"unknown data kind {kind!r}; use image or text")
    return as_dense_user(spec, source=str(path))
