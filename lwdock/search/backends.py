"""Kernel backends: everything the engine computes, for one kernel, on stacked learnwares.

Learnwares are stored *stacked* (see :mod:`lwdock.search.bulk`): rows ``z`` (M x p, each point
flattened, in the group kernel's units), weights ``beta`` (M,), ``offsets`` (N+1,). A backend
gives, for one group of the store (one :class:`~lwdock.search.space.Profile` and its kernel):

* ``cross(z, beta, offsets, uz, ub)``: ``<user, R_i>`` for every stacked learnware;
* ``map``: raw points into the kernel's units (RBF: live columns over their scale);
* ``self_products`` / ``self_product``: ``<R_i, R_i>`` and the own-density quantile coverage
  needs (stored once), and the user's ``<u, u>``;
* ``densities``: each learnware's kernel density at given points (coverage, verification);
* ``gram_row(Z, B, offsets, i)``: one row of the mixture candidates' Gram matrix;
* ``sketches`` / ``user_sketch`` / ``approx``: the pre-filter's fixed-size sketches and its
  approximate MMD^2 ranking, with ``budget`` (:class:`~lwdock.search.prefilter.Budget`);
* ``prepare``: a spec's raw points as the store takes them (flattened; near-zero weights pruned
  where the backend prunes), ``storage_dtype``.

:class:`RBFBackend` (table and text specs) runs the float32 blocked GEMM of ``bulk.py`` and the
random-Fourier-feature pre-filter; :class:`NNGPBackend` (image specs) runs the analytic NNGP
kernel (:mod:`lwdock.spec.nngp`) and its random-CNN-feature pre-filter.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..spec import nngp
from ..spec.kernels import rbf, weighted_inner
from . import bulk, prefilter
from .kernel import RBFKernel
from .prefilter import Budget
from .space import NNGP_DEPTH, Profile

# coverage (docs/search.md): each learnware's weighted 10 % quantile of its own density under k^4
COVERAGE_POWER = 4.0
COVERAGE_QUANTILE = 0.1


class RBFBackend:
    """``k(a, b) = exp(-gamma |a - b|^2)`` on points already mapped into the group kernel's units
    (:meth:`RBFKernel.map`: live columns divided by their scale)."""

    budget = Budget(auto_above=20_000, floor=1_000, per_result=50, fraction=0.02, most=2_000, bounded_from=250)
    prune = 0.0  # keep every point: the table path is exact to float64 rounding with float64 storage

    def __init__(self, profile: Profile, kernel: RBFKernel, frequencies: int = prefilter.DEFAULT_FREQUENCIES) -> None:
        self.profile = profile
        self.kernel = kernel
        self.gamma = float(kernel.gamma)
        self.n_frequencies = int(frequencies)  # the group's sketch width (its manifest entry says)

    @staticmethod
    def prepare(z: Any, beta: Any) -> tuple[np.ndarray, np.ndarray]:
        """A spec's raw points as the store takes them: (K, d) float64, weights (K,)."""
        z = np.asarray(z, dtype=np.float64)
        return z.reshape(z.shape[0], -1), np.asarray(beta, dtype=np.float64).ravel()

    def map(self, z: np.ndarray) -> np.ndarray:
        return self.kernel.map(z)

    def storage_dtype(self, setting: str) -> str:
        return setting

    # -- exact ------------------------------------------------------------------------------
    def self_product(self, z: np.ndarray, beta: np.ndarray) -> float:
        return weighted_inner(z, beta, z, beta, self.gamma)

    def self_products(self, z: np.ndarray, beta: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``<R_i, R_i>`` and each learnware's own-density quantile (coverage), in one pass."""
        return bulk.self_products(z, beta, offsets, self.gamma, quantile=(COVERAGE_POWER, COVERAGE_QUANTILE))

    def cross(self, z: np.ndarray, beta: np.ndarray, offsets: np.ndarray, uz: np.ndarray, ub: np.ndarray) -> np.ndarray:
        return bulk.cross_products(z, beta, offsets, uz, ub, self.gamma)

    def gram_row(self, Z: np.ndarray, B: np.ndarray, offsets: np.ndarray, i: int) -> np.ndarray:
        """``<R_i, R_b>`` for every stacked b: the ranking's own arithmetic (float32 kernel values
        for float32 storage, float64 sums), so the mixture and the MMD^2 it is compared with agree."""
        s, e = int(offsets[i]), int(offsets[i + 1])
        return self.cross(Z, B, offsets, Z[s:e], B[s:e])

    def gram(self, Z: np.ndarray, B: np.ndarray, offsets: np.ndarray, diag: np.ndarray | None = None) -> np.ndarray:
        """The whole Gram matrix of a few stacked learnwares in one pass (the same arithmetic;
        ``diag``: their known self products)."""
        return bulk.gram_matrix(Z, B, offsets, self.gamma, diag)

    def densities(self, points: np.ndarray, Z: np.ndarray, B: np.ndarray, offsets: np.ndarray,
                  power: float, coarse: bool = False) -> np.ndarray:
        """``f_i(x) = sum_j B_ij k(Z_ij, x)^power`` (gamma x power) at every point, for each stacked
        learnware; float64 kernel values, or float32 with ``coarse`` (:func:`bulk.coarse_densities`)."""
        if coarse:
            return bulk.coarse_densities(points, Z, B, offsets, self.gamma * power)
        K = rbf(np.asarray(points, dtype=np.float64), np.asarray(Z, dtype=np.float64), self.gamma * power)
        return np.add.reduceat(K * np.asarray(B, dtype=np.float64)[None, :], np.asarray(offsets[:-1], np.int64), axis=1)

    # -- pre-filter -------------------------------------------------------------------------
    @property
    def frequencies(self) -> np.ndarray:
        """The group's random Fourier frequencies (seeded: the same kernel always gives the same ones)."""
        key = (self.kernel.n_live, self.gamma, self.n_frequencies)
        kept = _RFF.get(key)
        if kept is None:
            # float32: every product with them is float32 (sketches and the user's alike)
            kept = prefilter.frequencies(self.kernel.n_live, self.gamma, self.n_frequencies).astype(np.float32)
            kept.setflags(write=False)
            _RFF.clear()  # one group's worth at a time is what a process uses
            _RFF[key] = kept
        return kept

    def sketches(self, z: np.ndarray, beta: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return prefilter.sketches(z, beta, offsets, self.frequencies)

    def user_sketch(self, uz: np.ndarray, ub: np.ndarray) -> np.ndarray:
        return prefilter.user_sketch(uz, ub, self.frequencies)

    def approx(self, selfs: np.ndarray, sketches: np.ndarray, us: np.ndarray) -> np.ndarray:
        # exact self products, sketched cross term only: less noise than |s_u - s_R|^2
        return selfs - 2.0 * (np.asarray(sketches) @ us)

    def approx_bounded(self, sketches: np.ndarray, sq: np.ndarray, us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sketched ``<u, R>`` and its standard error (the bounded pre-filter's; ``sq``:
        :func:`lwdock.search.prefilter.squares` of the sketches)."""
        return prefilter.cross_estimate(sketches, sq, us)


_RFF: dict[tuple[int, float, int], np.ndarray] = {}


_FEATURES: dict[tuple[int, int, int], nngp.RandomFeatures] = {}


class NNGPBackend:
    """The analytic CNN-GP kernel on (C, 32, 32) images (float32 kernel maps, float64 sums)."""

    budget = Budget(auto_above=200, floor=50, per_result=5, fraction=0.05)
    prune = 1e-9  # the simplex QP leaves many weights at ~0; each skipped point saves ~2,000 kernel pairs
    threads = max(1, min(2, os.cpu_count() or 1))

    def __init__(self, profile: Profile, kernel: object = None) -> None:
        self.profile = profile
        self.depth = NNGP_DEPTH
        self.shape = tuple(int(s) for s in dict(profile.attrs)["shape"])

    def storage_dtype(self, setting: str) -> str:
        return "float32"  # the kernel maps are float32 whatever the storage

    @classmethod
    def prepare(cls, z: Any, beta: Any) -> tuple[np.ndarray, np.ndarray]:
        z = np.asarray(z, dtype=np.float32)
        beta = np.asarray(beta, dtype=np.float64).ravel()
        keep = np.abs(beta) > cls.prune * max(float(np.abs(beta).max(initial=0.0)), 1e-300)
        return np.ascontiguousarray(z.reshape(z.shape[0], -1)[keep]), beta[keep]

    def map(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float32)
        return np.ascontiguousarray(z.reshape(z.shape[0], -1))

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

    def self_products(self, z: np.ndarray, beta: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``<R_i, R_i>``; no own-density quantiles (coverage does not apply to this kernel: NaN)."""
        selfs = np.array([self.self_product(z[s:e], beta[s:e]) for s, e in zip(offsets[:-1], offsets[1:])])
        return selfs, np.full(selfs.size, np.nan)

    def cross(self, z: np.ndarray, beta: np.ndarray, offsets: np.ndarray, uz: np.ndarray, ub: np.ndarray) -> np.ndarray:
        return nngp.weighted_inner_stacked(self._images(uz), ub, self._images(z), beta, offsets, depth=self.depth,
                                           n_threads=self.threads, prune=self.prune)

    def gram_row(self, Z: np.ndarray, B: np.ndarray, offsets: np.ndarray, i: int) -> np.ndarray:
        s, e = int(offsets[i]), int(offsets[i + 1])
        return self.cross(Z, B, offsets, Z[s:e], B[s:e])

    def gram(self, Z: np.ndarray, B: np.ndarray, offsets: np.ndarray, diag: np.ndarray | None = None) -> np.ndarray:
        return np.array([self.gram_row(Z, B, offsets, i) for i in range(len(offsets) - 1)])

    def densities(self, points: np.ndarray, Z: np.ndarray, B: np.ndarray, offsets: np.ndarray,
                  power: float, coarse: bool = False) -> np.ndarray:
        """``f_i(x) = sum_j B_ij max(k(Z_ij, x), 0)^power`` at every point, for each stacked learnware
        (float32 kernel maps whatever ``coarse`` says)."""
        K = nngp.nngp_kernel(self._images(points), self._images(Z), depth=self.depth, n_threads=self.threads)
        K = np.maximum(np.asarray(K, dtype=np.float64), 0.0) ** power
        return np.add.reduceat(K * np.asarray(B, dtype=np.float64)[None, :], np.asarray(offsets[:-1], np.int64), axis=1)

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


def prepare(profile: Profile, z: Any, beta: Any) -> tuple[np.ndarray, np.ndarray]:
    """A spec's points as the store takes them (flattened; near-zero image weights pruned)."""
    return BACKENDS[profile.kernel].prepare(z, beta)


def backend_for(profile: Profile, kernel: RBFKernel | None = None,
                frequencies: int = prefilter.DEFAULT_FREQUENCIES) -> Backend:
    """The backend of a group: RBF needs the group's kernel (and its sketch width), NNGP has no
    parameter to choose."""
    if profile.kernel == "rbf":
        if kernel is None:
            raise ValueError("an RBF group needs its kernel")
        return RBFBackend(profile, kernel, frequencies)
    return NNGPBackend(profile)
