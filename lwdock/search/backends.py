"""Kernel backends: everything the engine computes, for one kernel, on stacked learnwares.

Learnwares are stored *stacked* (see :mod:`lwdock.search.bulk`): rows ``z`` (M x p, each point
flattened), weights ``beta`` (M,), ``offsets`` (N+1,). A backend gives, for one group of the
store (one :class:`~lwdock.search.space.Profile`):

* ``cross(z, beta, offsets, uz, ub)``: ``<user, R_i>`` for every stacked learnware;
* ``self_products`` / ``self_product``: ``<R_i, R_i>`` (stored once) and the user's ``<u, u>``;
* ``gram_row(Z, B, offsets, i)``: one row of the mixture candidates' Gram matrix;
* ``sketches`` / ``user_sketch`` / ``approx``: the pre-filter's fixed-size sketches and its
  approximate MMD^2 ranking, with ``budget`` (:class:`~lwdock.search.prefilter.Budget`);
* ``prepare``: a spec's points as the store keeps them (flattened; near-zero weights pruned
  where the backend prunes), ``storage_dtype``.

:class:`RBFBackend` (table and text specs) runs the float32 blocked GEMM of ``bulk.py`` and the
random-Fourier-feature pre-filter; :class:`NNGPBackend` (image specs) runs the analytic NNGP
kernel (:mod:`lwdock.spec.nngp`) and its random-CNN-feature pre-filter.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..spec import nngp
from ..spec.kernels import weighted_inner
from . import bulk, prefilter
from .prefilter import Budget
from .space import Profile


def _save(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())


class RBFBackend:
    """``k(a, b) = exp(-gamma |a - b|^2)`` on points in R^d."""

    budget = Budget(auto_above=20_000, floor=1_000, per_result=50, fraction=0.02)
    prune = 0.0  # keep every point: the table path is exact to float64 rounding with float64 storage

    def __init__(self, profile: Profile, state_dir: Path | None = None) -> None:
        self.gamma = float(dict(profile.params)["gamma"])
        self.dim = int(dict(profile.attrs)["dim"])
        self.state_dir = state_dir
        self._rff: np.ndarray | None = None

    def storage_dtype(self, setting: str) -> str:
        return setting

    def prepare(self, z: Any, beta: Any) -> tuple[np.ndarray, np.ndarray]:
        z = np.asarray(z, dtype=np.float64)
        return z.reshape(z.shape[0], -1), np.asarray(beta, dtype=np.float64).ravel()

    # -- exact ------------------------------------------------------------------------------
    def self_product(self, z: np.ndarray, beta: np.ndarray) -> float:
        return weighted_inner(z, beta, z, beta, self.gamma)

    def self_products(self, z: np.ndarray, beta: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return bulk.self_products(z, beta, offsets, self.gamma)

    def cross(self, z: np.ndarray, beta: np.ndarray, offsets: np.ndarray, uz: np.ndarray, ub: np.ndarray) -> np.ndarray:
        return bulk.cross_products(z, beta, offsets, uz, ub, self.gamma)

    def gram_row(self, Z: np.ndarray, B: np.ndarray, offsets: np.ndarray, i: int) -> np.ndarray:
        return bulk.gram_row(Z, B, offsets, i, self.gamma)

    # -- pre-filter -------------------------------------------------------------------------
    @property
    def frequencies(self) -> np.ndarray:
        """The group's random Fourier frequencies, kept beside its segments (``rff.npy``)."""
        if self._rff is None:
            path = self.state_dir / "rff.npy" if self.state_dir is not None else None
            if path is not None and path.is_file():
                self._rff = np.load(path, allow_pickle=False)
            else:
                self._rff = prefilter.frequencies(self.dim, self.gamma)
                if path is not None:
                    _save(path, self._rff)
        return self._rff

    def sketches(self, z: np.ndarray, beta: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return prefilter.sketches(z, beta, offsets, self.frequencies)

    def user_sketch(self, uz: np.ndarray, ub: np.ndarray) -> np.ndarray:
        return prefilter.user_sketch(uz, ub, self.frequencies)

    def approx(self, selfs: np.ndarray, sketches: np.ndarray, us: np.ndarray) -> np.ndarray:
        # exact self products, sketched cross term only: less noise than |s_u - s_R|^2
        return selfs - 2.0 * (np.asarray(sketches) @ us)


_FEATURES: dict[tuple[int, int, int], nngp.RandomFeatures] = {}


class NNGPBackend:
    """The analytic CNN-GP kernel on (C, 32, 32) images (float32 kernel maps, float64 sums)."""

    budget = Budget(auto_above=200, floor=50, per_result=5, fraction=0.05)
    prune = 1e-9  # the simplex QP leaves many weights at ~0; each skipped point saves ~2,000 kernel pairs
    threads = max(1, min(2, os.cpu_count() or 1))

    def __init__(self, profile: Profile, state_dir: Path | None = None) -> None:
        self.depth = int(dict(profile.params)["depth"])
        self.shape = tuple(int(s) for s in dict(profile.attrs)["shape"])

    def storage_dtype(self, setting: str) -> str:
        return "float32"  # the kernel maps are float32 whatever the storage

    def prepare(self, z: Any, beta: Any) -> tuple[np.ndarray, np.ndarray]:
        z = np.asarray(z, dtype=np.float32)
        beta = np.asarray(beta, dtype=np.float64).ravel()
        keep = np.abs(beta) > self.prune * max(float(np.abs(beta).max(initial=0.0)), 1e-300)
        return np.ascontiguousarray(z.reshape(z.shape[0], -1)[keep]), beta[keep]

    def _images(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z)
        if not z.flags.writeable:  # a read-only memory map: torch wants memory it may own (~4 KB per image)
            z = np.array(z)
        return z.reshape(-1, *self.shape)

    # -- exact ------------------------------------------------------------------------------
    def self_product(self, z: np.ndarray, beta: np.ndarray) -> float:
        # the symmetric path: an exact diagonal, as RKMEImageSpec._self computes it; one thread, as
        # there (switching torch to 2 threads costs more than a few hundred pairs take)
        K = nngp.nngp_kernel(self._images(z), depth=self.depth, n_threads=1)
        b = np.asarray(beta, dtype=np.float64)
        return float(b @ K @ b)

    def self_products(self, z: np.ndarray, beta: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return np.array([self.self_product(z[s:e], beta[s:e]) for s, e in zip(offsets[:-1], offsets[1:])])

    def cross(self, z: np.ndarray, beta: np.ndarray, offsets: np.ndarray, uz: np.ndarray, ub: np.ndarray) -> np.ndarray:
        return nngp.weighted_inner_stacked(self._images(uz), ub, self._images(z), beta, offsets, depth=self.depth,
                                           n_threads=self.threads, prune=self.prune)

    def gram_row(self, Z: np.ndarray, B: np.ndarray, offsets: np.ndarray, i: int) -> np.ndarray:
        s, e = int(offsets[i]), int(offsets[i + 1])
        return self.cross(Z, B, offsets, Z[s:e], B[s:e])

    # -- pre-filter -------------------------------------------------------------------------
    @property
    def features(self) -> nngp.RandomFeatures:
        key = (self.shape[0], self.shape[1], self.depth)
        if key not in _FEATURES:
            _FEATURES[key] = nngp.RandomFeatures(self.shape[0], size=self.shape[1], depth=self.depth)
        return _FEATURES[key]

    def sketches(self, z: np.ndarray, beta: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        out = np.empty((len(offsets) - 1, self.features.dim), dtype=np.float32)
        for i, (s, e) in enumerate(zip(offsets[:-1], offsets[1:])):
            out[i] = self.user_sketch(z[s:e], beta[s:e])
        return out

    def user_sketch(self, uz: np.ndarray, ub: np.ndarray) -> np.ndarray:
        return nngp.sketch(self._images(uz), ub, self.features, n_threads=1).astype(np.float32)

    def approx(self, selfs: np.ndarray, sketches: np.ndarray, us: np.ndarray) -> np.ndarray:
        # |s_u - s_R|^2, the MMD^2 under the random-feature kernel (exact self products with a
        # sketched cross term ranked far worse here: the cross term's ~10 % error dwarfs the gaps)
        diff = np.asarray(sketches, dtype=np.float64) - np.asarray(us, dtype=np.float64)
        return np.einsum("ij,ij->i", diff, diff)


BACKENDS: dict[str, type[RBFBackend] | type[NNGPBackend]] = {"rbf": RBFBackend, "nngp": NNGPBackend}
Backend = RBFBackend | NNGPBackend


def backend_for(profile: Profile, state_dir: Path | None = None) -> Backend:
    return BACKENDS[profile.kernel](profile, state_dir)
