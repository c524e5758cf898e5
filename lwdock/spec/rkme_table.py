"""Table RKME: a weighted reduced set ``{(z_j, beta_j)}`` whose kernel mean embedding
``sum_j beta_j k(z_j, .)`` approximates that of the data, ``mean_i k(x_i, .)``.

Fitting minimises the squared MMD ``F(Z, b) = b'K_zz b - 2 b'c(Z) + const`` with
``c_j = mean_i k(z_j, x_i)``: seeded k-means init, then ``steps`` rounds of
(weights by the simplex QP, one exact-gradient step on Z with a monotone line
search), then the raw-row guard, then a last weight solve. See ``docs/spec.md``.
"""

from __future__ import annotations

import logging
import numbers
from typing import Any, ClassVar

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import InputDataError
from ..progress import bar
from . import _fit, specfile
from ._torch import check_device, kernel_stats_torch
from .base import RKMESpec
from .kernels import kernel_stats, rbf_kernel, weighted_inner
from .leak import median_nn_distance, push_away
from .qp import solve_simplex_qp

logger = logging.getLogger("lwdock")

PROGRESS_ROWS = 50_000  # show a progress bar from this many rows up


class RKMETableSpec(RKMESpec):
    """RKME table specification (estimator style).

    Parameters
    ----------
    gamma: None (the default: no kernel knowledge needed) or an RBF kernel parameter for experts.
        None: the columns are standardised with the data's own mean and standard deviation,
        gamma is the median heuristic there (1 / median squared distance of at most 1,000
        standardised rows), and the fitted points are mapped back to raw units (a constant column
        keeps its constant). The fit is then the same, up to the units of ``z_``, whatever the
        units of each column. A number: ``k(a, b) = exp(-gamma |a - b|^2)`` on the raw columns
        (the reference's behaviour; its default was 0.1). Either way the dock searches with its
        own kernel (docs/search.md): a spec is compared as the weighted point set it is.
    K: reduced-set size (reference rules apply: K*d capped at 1310720, K >= n -> max(1, 2n//3)).
    steps: optimisation rounds (one Z step and one weight solve each).
    step_size: initial step of the preconditioned Z step (1.0 = a full mean-shift-like step);
        the line search halves or grows it.
    nonnegative_beta: weights on the simplex (QP); False uses the reference's ridge solve.
    random_state: seed for every random choice (k-means, subsampling, guard directions).
    device: "cpu" (numpy) or "cuda" / "cuda:N" (torch for the data passes).
    max_samples: fit on a seeded subsample of at most this many rows (None: all rows).
    kmeans_samples: rows used for the k-means initialisation.
    kmeans_iter: Lloyd iterations.
    min_dist: raw-row guard radius as a fraction of the median nearest-neighbour distance
        between raw rows; no published point is closer than this to a raw row (0 disables).
    n_threads: BLAS threads during fit (None: 1). One thread is the default because a
        multi-threaded BLAS collapses when another process holds a core (measured 0.17 s idle
        -> 0.78 s busy with 2 threads, 0.16 s busy with 1 thread, for 10,000 x 64).
    """

    codec = specfile.TABLE
    type = "RKMETableSpecification"
    # gamma=None standardises the columns first (tables mix units); text embeddings do not
    auto_standardise: ClassVar[bool] = True

    def __init__(
        self,
        gamma: float | None = None,
        K: int = 100,
        steps: int = 5,
        step_size: float = 1.0,
        nonnegative_beta: bool = True,
        random_state: int | None = 0,
        device: str = "cpu",
        max_samples: int | None = None,
        kmeans_samples: int = 5_000,
        kmeans_iter: int = 10,
        min_dist: float = 0.05,
        n_threads: int | None = None,
    ) -> None:
        self.gamma = gamma
        self.K = K
        self.steps = steps
        self.step_size = step_size
        self.nonnegative_beta = nonnegative_beta
        self.random_state = random_state
        self.device = device
        self.max_samples = max_samples
        self.kmeans_samples = kmeans_samples
        self.kmeans_iter = kmeans_iter
        self.min_dist = min_dist
        self.n_threads = n_threads

    # -- fitting ---------------------------------------------------------------
    def _check_params(self) -> None:
        g = self.gamma
        self._require(g is None or (isinstance(g, numbers.Real) and not isinstance(g, bool) and bool(np.isfinite(g))
                                    and g > 0), f"gamma must be a positive number (or None: automatic), got {g!r}")
        self._require(int(self.K) >= 1, f"K must be at least 1, got {self.K}")
        self._require(int(self.steps) >= 0, f"steps must be >= 0, got {self.steps}")
        self._require(self.step_size > 0, f"step_size must be positive, got {self.step_size}")
        self._require(self.max_samples is None or int(self.max_samples) >= 1,
                      f"max_samples must be at least 1, got {self.max_samples}")
        self._require(self.min_dist >= 0, f"min_dist must be >= 0, got {self.min_dist}")

    def fit(self, X) -> RKMETableSpec:  # type: ignore[no-untyped-def]
        """Fit to the rows of ``X`` (n x d, or n x ... flattened). ``X`` is never modified."""
        self._check_params()
        X = _fit.as_table(X)
        # BLAS and OpenMP (scikit-learn's k-means) both get n_threads: see the class docstring
        with threadpool_limits(limits=int(self.n_threads or 1)):
            self._fit(X)
        return self

    def _fit(self, X: np.ndarray) -> None:
        rng = np.random.default_rng(self.random_state)
        n_all, d = X.shape
        if self.max_samples is not None and n_all > int(self.max_samples):
            X = X[np.sort(rng.choice(n_all, size=int(self.max_samples), replace=False))]
        n = X.shape[0]
        fill = _fit.fill_values(X)
        sample = _subsample(n, 1000, rng)
        raw_rows = _fit.take_rows(X, sample, fill)
        self.median_sq_dist_ = _fit.median_sq_distance(raw_rows)
        if self.gamma is None and self.auto_standardise:
            # no kernel knowledge: fit on the data's own standardised columns (docs/spec.md)
            mean, sd = _fit.column_moments(X, fill)
            dead = _fit.constant_columns(sd, mean)
            scale = np.where(dead, 1.0, sd)
            Xf, f_fill = _fit.standardise(X, mean, scale, fill), None
            gamma = _fit.median_gamma(Xf[sample])
            self.suggested_gamma_ = None
            self.fit_scale_: np.ndarray | None = scale
            self.gamma_ = _fit.median_gamma(raw_rows)  # its raw-unit kernel: inner_prod, herding, the file
        else:
            explicit = self.gamma is not None
            gamma = float(self.gamma) if explicit else _fit.median_gamma(raw_rows)
            Xf, f_fill, mean, scale = X, fill, None, None
            self.suggested_gamma_ = _fit.check_gamma(gamma, self.median_sq_dist_) if explicit else None
            self.fit_scale_ = None
            self.gamma_ = gamma
        self.fit_gamma_ = gamma
        Z, beta, Kzz, c, moved = self._optimise(Xf, f_fill, gamma, _fit.effective_k(int(self.K), n, d), rng,
                                                X, fill, mean, scale)
        if scale is not None:
            Z = Z * scale + mean
            # a constant column keeps its constant exactly (float round-off aside), unless the
            # privacy guard moved the point there (one row: every column is constant)
            near = np.isclose(Z[:, dead], mean[dead], rtol=1e-12, atol=0.0)
            Z[:, dead] = np.where(near, mean[dead], Z[:, dead])
        self.z_ = Z
        self.beta_ = beta
        self.num_points_ = int(n_all)
        self.guard_moved_ = int(moved)
        # F = MMD^2 - mean k(x, x'), in the fit's units: the part of MMD^2 that depends on the spec
        self.objective_ = float(beta @ Kzz @ beta - 2.0 * beta @ c)
        self._self_inner = None

    def _optimise(self, X, fill, gamma, K, rng, X_raw, raw_fill, mean, scale):  # type: ignore[no-untyped-def]
        """k-means init, ``steps`` rounds of (weights, Z step), the raw-row guard, last weights;
        ``X`` in fit units, ``X_raw`` in raw units (the guard's units; the same array for an explicit gamma)."""
        pass_fn = self._data_pass()
        total = 2 * int(self.steps) + 3
        with bar(total if X.shape[0] >= PROGRESS_ROWS else None, "fitting RKME") as progress:
            init_rows = _fit.take_rows(X, _subsample(X.shape[0], int(self.kmeans_samples), rng), fill)
            Z = _fit.kmeans(init_rows, K, rng, max_iter=int(self.kmeans_iter))
            c, m = pass_fn(X, Z, gamma, fill)
            Kzz = rbf_kernel(Z, Z, gamma)
            beta = self._weights(Kzz, c)
            progress.advance(1)
            eta = float(self.step_size)
            for _ in range(int(self.steps)):
                Z, c, m, Kzz, eta = self._z_step(X, fill, Z, beta, c, m, Kzz, eta, pass_fn, gamma)
                beta = self._weights(Kzz, c)
                progress.advance(2)
            # the guard works in raw units: the leak figure (lwdock spec show --data) is measured there
            raw = Z if scale is None else Z * scale + mean
            raw, moved = self._guard(X_raw, raw_fill, raw, rng)
            if moved:
                Z = raw if scale is None else (raw - mean) / scale
                c, _ = pass_fn(X, Z, gamma, fill, with_moments=False)
                Kzz = rbf_kernel(Z, Z, gamma)
                beta = self._weights(Kzz, c)
            progress.advance(2)
        return Z, beta, Kzz, c, moved

    def _data_pass(self):  # type: ignore[no-untyped-def]
        if self.device in (None, "cpu"):
            return kernel_stats
        dev = check_device(str(self.device))
        if dev.type == "cpu":
            return kernel_stats

        def run(X, Z, gamma, fill, with_moments=True):  # type: ignore[no-untyped-def]
            return kernel_stats_torch(X, Z, gamma, dev, fill)

        return run

    def _weights(self, Kzz: np.ndarray, c: np.ndarray) -> np.ndarray:
        beta, _ = solve_simplex_qp(Kzz, c, nonnegative=bool(self.nonnegative_beta))
        return beta

    def _z_step(self, X, fill, Z, beta, c, m, Kzz, eta, pass_fn, gamma):  # type: ignore[no-untyped-def]
        """One exact-gradient step on Z, preconditioned per point, with a monotone line search.

        The gradient of F w.r.t. z_j is ``-4 gamma beta_j (A_j - B_j)`` with
        ``A_j = sum_l beta_l k_jl (z_j - z_l)`` and ``B_j = c_j z_j - m_j``. Dividing by
        ``4 gamma beta_j (s_j + c_j)`` (``s_j = sum_l beta_l k_jl``) gives a step that is
        scale-free: with no Z-Z term it is exactly a mean-shift step towards the data.
        """
        s = Kzz @ beta
        A = Z * s[:, None] - Kzz @ (beta[:, None] * Z)
        B = Z * c[:, None] - m
        direction = (A - B) / np.maximum(s + c, 1e-300)[:, None]
        f_old = float(beta @ Kzz @ beta - 2.0 * beta @ c)
        for _ in range(4):
            Z_new = Z + eta * direction
            c_new, m_new = pass_fn(X, Z_new, gamma, fill)
            K_new = rbf_kernel(Z_new, Z_new, gamma)
            f_new = float(beta @ K_new @ beta - 2.0 * beta @ c_new)
            if f_new <= f_old:
                return Z_new, c_new, m_new, K_new, min(2.0 * eta, 4.0)
            eta *= 0.25
        return Z, c, m, Kzz, eta

    def _guard(self, X, fill, Z, rng):  # type: ignore[no-untyped-def]
        if not self.min_dist:
            self.guard_radius_ = 0.0
            return Z, 0
        med = median_nn_distance(X, fill, random_state=0 if self.random_state is None else int(self.random_state))
        if med is None or med <= 0:
            # one row, or duplicates everywhere: fall back to the kernel length scale
            med = 1.0 / np.sqrt(float(self.gamma_))
        self.guard_radius_ = float(self.min_dist) * med
        return push_away(Z, X, self.guard_radius_, rng, fill)

    # -- properties and operations -------------------------------------------
    @property
    def dim(self) -> int:
        self._check_fitted()
        return int(self.z_.shape[1])

    def search_space(self) -> dict[str, Any]:
        return {"dim": self.dim}

    def kernel_gamma(self) -> float:
        """The gamma of this spec's own raw-unit RBF kernel (``inner_prod``, ``dist``, ``herding``, and
        the ``gamma`` of its file): the given gamma, or for an automatic fit the median heuristic on
        the raw rows. Search does not use it: the dock compares specs under its own kernel."""
        g = getattr(self, "gamma_", None)
        if g is None:
            g = self.gamma
        if g is None:
            self._check_fitted()
            raise InputDataError("this specification has no kernel gamma")
        return float(g)

    def _self(self) -> float:
        # <mu, mu> under our own gamma, cached (fitted state is not changed after fit/load)
        gamma = self.kernel_gamma()
        cached = getattr(self, "_self_inner", None)
        if cached is None or cached[0] != gamma:
            cached = (gamma, weighted_inner(self.z_, self.beta_, self.z_, self.beta_, gamma))
            self._self_inner = cached
        return cached[1]

    def pair_gamma(self, other: RKMETableSpec) -> float:
        """The gamma two specs are compared with: the geometric mean of their kernel gammas (their
        common gamma when they share one; symmetric, so ``a.dist(b) == b.dist(a)``). The dock does
        not use it: it compares every spec of a feature space under its own kernel (docs/search.md)."""
        if other is self:
            return self.kernel_gamma()
        return float(np.sqrt(self.kernel_gamma() * other.kernel_gamma()))

    def inner_prod(self, other: RKMETableSpec) -> float:
        """``<mu_self, mu_other>`` under :meth:`pair_gamma`."""
        self._check_fitted()
        other._check_fitted()
        if other.dim != self.dim:
            raise InputDataError(f"specification dimensions differ: {self.dim} vs {other.dim}")
        if other is self:
            return self._self()
        return weighted_inner(self.z_, self.beta_, other.z_, other.beta_, self.pair_gamma(other))

    def dist(self, other: RKMETableSpec) -> float:
        """Squared MMD between the two specs, every term under :meth:`pair_gamma`, clamped at 0."""
        if other is self:
            return 0.0
        g = self.pair_gamma(other)
        if g == self.kernel_gamma() == other.kernel_gamma():
            return super().dist(other)
        aa = weighted_inner(self.z_, self.beta_, self.z_, self.beta_, g)
        bb = weighted_inner(other.z_, other.beta_, other.z_, other.beta_, g)
        return max(float(aa - 2.0 * self.inner_prod(other) + bb), 0.0)

    def herding(self, T: int, random_state: int | None = None, noise_std: float = 0.25, per_point: int = 100) -> np.ndarray:
        """``T`` points chosen by greedy kernel herding from ``per_point * T`` noisy candidates.

        Candidates are reduced-set points (drawn by weight) plus N(0, noise_std^2 I), as in the
        reference. Each pick maximises ``(t+1) f(x) - sum_{s<t} k(x_s, x)``; see :func:`greedy_herding`.
        """
        self._check_fitted()
        T = int(T)
        if T < 1:
            return np.empty((0, self.dim))
        gamma = self.kernel_gamma()
        cand = self.sample(per_point * T, random_state=random_state, noise_std=noise_std)
        f = rbf_kernel(cand, self.z_, gamma) @ self._positive_weights()
        return cand[greedy_herding(np.ascontiguousarray(cand, dtype=np.float64), f, gamma, T)]

    def __repr__(self) -> str:
        state = f"K={self.z_.shape[0]}, d={self.z_.shape[1]}" if hasattr(self, "z_") else "unfitted"
        return f"RKMETableSpec(gamma={self.gamma}, {state})"


def greedy_herding(cand: np.ndarray, f: np.ndarray, gamma: float, T: int) -> np.ndarray:
    """The indices of ``T`` greedy herding picks among the rows of ``cand`` (``f``: the RKME at each).

    Pick ``t`` maximises ``(t+1) f(x) - acc(x)``, ``acc`` the sum of the kernel columns of the
    picks so far. The loop is sequential by nature (each pick depends on the last), so each step
    is one matrix-vector product and a few in-place passes over preallocated buffers, on one BLAS
    thread: a 100,000 x d product gains nothing from threads, and on a busy machine they made it
    ~10x slower. The operations and their order are those of :func:`lwdock.spec.kernels.rbf`, so
    the picks are bit for bit those of the straightforward loop (tested against it).
    """
    n = cand.shape[0]
    c_sq = np.einsum("ij,ij->i", cand, cand)
    acc = np.zeros(n)
    score = np.empty(n)
    col2 = np.empty((n, 1))
    col = col2[:, 0]
    picks = np.empty(T, dtype=np.int64)
    with threadpool_limits(limits=1, user_api="blas"):
        for t in range(T):
            np.multiply(f, t + 1, out=score)
            score -= acc
            j = int(np.argmax(score))
            picks[t] = j
            np.matmul(cand, cand[j : j + 1].T, out=col2)  # exp(-gamma * max(|c|^2 - 2 c.x_j + |x_j|^2, 0))
            col *= -2.0
            col += c_sq
            col += c_sq[j]
            np.maximum(col, 0.0, out=col)
            col *= -gamma
            np.exp(col, out=col)
            acc += col
    return picks


def _subsample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))

