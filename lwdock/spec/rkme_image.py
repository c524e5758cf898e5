"""Image RKME: a weighted set of K synthetic 32x32 images whose kernel mean embedding matches the data's.

Fitting follows the reference's recipe (random-CNN surrogate features, AdaBelief steps on Z, the
simplex QP for the weights), seeded and without its shuffled loader: here row j of the features is
always image j, so ``beta_[j]`` is the weight of ``z_[j]``. Comparison uses the analytic NNGP kernel
(:mod:`lwdock.spec.nngp`). Everything lives in the *normalised* space: per-channel standardised
(and ZCA-whitened when C > 1 and ``whitening``) images of the data the spec was built from.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..errors import InputDataError
from ..progress import bar
from . import _image, specfile
from ._torch import check_device
from .base import RKMESpec
from .nngp import DEPTH, nngp_kernel, torch_threads, weighted_inner_many
from .qp import solve_simplex_qp

logger = logging.getLogger("lwdock")

PROGRESS_IMAGES = 500  # show a progress bar from this many images up


class RKMEImageSpec(RKMESpec):
    """RKME image specification (estimator style).

    Parameters
    ----------
    K: number of synthetic images (reference 50). Z starts as seeded N(0, 1) noise, not data,
        so K > N is allowed and no training image is ever published.
    steps: outer rounds (fresh random networks, ``inner_steps`` AdaBelief steps on Z, a weight solve).
        The reference uses 100 on a GPU; 30 is the CPU-friendly default (see docs/spec.md).
    step_size: AdaBelief learning rate on Z (reference 0.01; 0.05 here because there are fewer steps).
    whitening: ZCA-whiten multi-channel images after standardisation (reference default True).
    random_state: seed for the subsample, the networks, the batches and the initial Z.
    device: "cpu", or "cuda" / "cuda:N" when available (UsageError otherwise).
    n_models: random networks per round (reference 16).
    net_width: channels of each random network (reference 256 = k * net_width = 2 * 128).
    sample_size: fit on a seeded subsample of at most this many images (reference 5000).
    batch_size: images whose mean features are recomputed per round (all when fewer).
    inner_steps: AdaBelief steps per round (reference 3).
    init_std: Z starts as seeded N(0, init_std^2) noise (reference 1.0).
    n_threads: torch threads while fitting and comparing (None: 1; see docs/spec.md).
    """

    codec = specfile.IMAGE
    type = "RKMEImageSpecification"
    VERSION = 1  # RKME_IMAGE_VERSION in files

    def __init__(
        self,
        K: int = 50,
        steps: int = 30,
        step_size: float = 0.05,
        whitening: bool = True,
        random_state: int | None = 0,
        device: str = "cpu",
        n_models: int = 4,
        net_width: int = 32,
        sample_size: int = 5000,
        batch_size: int = 512,
        inner_steps: int = 3,
        init_std: float = 1.0,
        n_threads: int | None = None,
    ) -> None:
        self.K = K
        self.steps = steps
        self.step_size = step_size
        self.whitening = whitening
        self.random_state = random_state
        self.device = device
        self.n_models = n_models
        self.net_width = net_width
        self.sample_size = sample_size
        self.batch_size = batch_size
        self.inner_steps = inner_steps
        self.init_std = init_std
        self.n_threads = n_threads

    # -- fitting ---------------------------------------------------------------
    def _check_params(self) -> None:
        for name in ("K", "n_models", "net_width", "sample_size", "batch_size"):
            self._require(int(getattr(self, name)) >= 1, f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("steps", "inner_steps"):
            self._require(int(getattr(self, name)) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        self._require(float(self.step_size) > 0, f"step_size must be positive, got {self.step_size}")

    def _torch_device(self):  # type: ignore[no-untyped-def]
        return check_device(str(self.device or "cpu"))

    def fit(self, X) -> RKMEImageSpec:  # type: ignore[no-untyped-def]
        """Fit to images ``X`` (N x C x H x W, any numeric dtype). ``X`` is never modified."""
        self._check_params()
        X = _image.as_images(X)
        dev = self._torch_device()
        with torch_threads(self.n_threads or 1):
            self._fit(X, dev)
        return self

    def _fit(self, X: np.ndarray, dev) -> None:  # type: ignore[no-untyped-def]
        import torch  # heavy: imported only when an image spec is fitted

        seed = 0 if self.random_state is None else int(self.random_state)
        pick = np.random.default_rng(seed)
        n_all = X.shape[0]
        idx = np.arange(n_all)
        if n_all > int(self.sample_size):
            idx = np.sort(pick.choice(n_all, size=int(self.sample_size), replace=False))
        T, info = _image.prepare(X, idx, whitening=bool(self.whitening))
        T = T.to(dev)
        n, C = T.shape[0], T.shape[1]
        stream = np.random.RandomState(seed)  # networks and the initial Z, in a fixed order
        width, models = int(self.net_width), int(self.n_models)

        def new_round():  # type: ignore[no-untyped-def]
            nets = _image.RandomConvNets(stream, C, width, models, DEPTH, dev)
            rows = T if n <= int(self.batch_size) else T[torch.as_tensor(
                np.sort(pick.choice(n, size=int(self.batch_size), replace=False)), device=dev)]
            return nets, nets.mean_features(rows)

        nets, phi_x = new_round()
        Z = torch.as_tensor(float(self.init_std) * stream.standard_normal((int(self.K), C, _image.SIZE, _image.SIZE)),
                            dtype=torch.float32, device=dev)
        beta = self._weights(nets, Z, phi_x)
        opt = _image.AdaBelief(float(self.step_size))
        with bar(int(self.steps) if n >= PROGRESS_IMAGES else None, "fitting image RKME") as progress:
            for _ in range(int(self.steps)):
                nets, phi_x = new_round()
                b = torch.as_tensor(beta, dtype=torch.float32, device=dev)
                phi32 = phi_x.float()
                for _ in range(int(self.inner_steps)):
                    Zv = Z.detach().requires_grad_(True)
                    F = nets(Zv)
                    # beta'(FF' + c)beta - 2 beta'(F phi + c): the constants only shift the objective
                    Fb = b @ F
                    loss = Fb @ Fb - 2.0 * (Fb @ phi32)
                    (grad,) = torch.autograd.grad(loss, Zv)
                    opt.step(Z, grad)
                beta = self._weights(nets, Z, phi_x)
                progress.advance(1)
        self.z_ = Z.cpu().numpy().astype(np.float32)
        self.beta_ = beta
        self.num_points_ = int(n_all)
        self.preprocess_ = info
        self._self_inner = None

    def _weights(self, nets, Z, phi_x) -> np.ndarray:  # type: ignore[no-untyped-def]
        import torch  # heavy: see _fit

        with torch.no_grad():
            F = nets(Z).double()
        Kzz = (F @ F.T).cpu().numpy() + _image.KERNEL_CONST
        c = (F @ phi_x).cpu().numpy() + _image.KERNEL_CONST
        beta, _ = solve_simplex_qp(Kzz, c)
        return beta

    # -- properties and operations -------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, 32, 32): the shape of one synthetic image."""
        self._check_fitted()
        return tuple(int(s) for s in self.z_.shape[1:])  # type: ignore[return-value]

    @property
    def dim(self) -> int:
        """C * 32 * 32, the flattened size of one synthetic image (``shape`` has the axes)."""
        return int(np.prod(self.shape))

    def _compare_device(self) -> str:
        return str(self._torch_device()) if self.device not in (None, "cpu") else "cpu"

    def _self(self) -> float:
        if getattr(self, "_self_inner", None) is None:
            K = nngp_kernel(self.z_, depth=self.depth, device=self._compare_device(), n_threads=self.n_threads or 1)
            self._self_inner = float(self.beta_ @ K @ self.beta_)
        return self._self_inner

    def transform(self, X) -> np.ndarray:  # type: ignore[no-untyped-def]
        """Images (N x C x H x W) in the space a spec fitted on them lives in: resized to 32x32,
        standardised per channel (and whitened) with their own statistics, float32 (N, C, 32, 32)."""
        X = _image.as_images(X)
        T, _ = _image.prepare(X, np.arange(len(X)), whitening=bool(self.whitening))
        return T.cpu().numpy().astype(np.float32)

    @property
    def depth(self) -> int:
        return int(getattr(self, "model_config_", {}).get("net_depth", DEPTH))

    def search_space(self) -> dict[str, Any]:
        return {"shape": list(self.shape)}

    def _check_other(self, other: Any) -> None:
        self._check_fitted()
        if not isinstance(other, RKMEImageSpec):
            raise InputDataError(f"cannot compare an image specification with {type(other).__name__}")
        other._check_fitted()
        if other.shape != self.shape:
            raise InputDataError(f"image specification shapes differ: {self.shape} vs {other.shape}")

    def inner_prod(self, other: RKMEImageSpec) -> float:
        """``<mu_self, mu_other>`` under the NNGP kernel (this spec's depth)."""
        self._check_other(other)
        if other is self:
            return self._self()
        return float(weighted_inner_many(self.z_, self.beta_, [(other.z_, other.beta_)], depth=self.depth,
                                         device=self._compare_device(), n_threads=self.n_threads or 1)[0])

    def inner_prod_many(self, others: list[RKMEImageSpec]) -> np.ndarray:
        """``[<mu_self, mu_o> for o in others]`` in one bulk pass (what a search needs)."""
        for o in others:
            self._check_other(o)
        return weighted_inner_many(self.z_, self.beta_, [(o.z_, o.beta_) for o in others], depth=self.depth,
                                   device=self._compare_device(), n_threads=self.n_threads or 1)

    def herding(self, T: int, random_state: int | None = None, noise_std: float = 0.01) -> np.ndarray:
        """The reference's image "herding": ``T`` draws of z by weight plus N(0, 0.01^2) noise.

        Not greedy kernel herding. The images are in the normalised (standardised, possibly
        whitened) space of the spec's data, not in pixel space.
        """
        return self.sample(int(T), random_state=random_state, noise_std=noise_std)

    def __repr__(self) -> str:
        state = f"K={self.z_.shape[0]}, shape={self.shape}" if hasattr(self, "z_") else "unfitted"
        return f"RKMEImageSpec({state})"
