"""Image RKME helpers: preprocessing, seeded random CNN features, and the AdaBelief step.

Nothing here keeps a reference to the caller's array: every step works on new tensors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputDataError

SIZE = 32
ZCA_REG = 0.1  # the reference's regulariser: r = 0.1 * tr(Sigma) / D
BIAS_STD = 0.1
KERNEL_CONST = 0.01  # the surrogate kernel is phi(x).phi(y) + 0.01, as in the reference


def as_images(X: Any) -> np.ndarray:
    """A numeric (N, C, H, W) array view of ``X`` (no copy for ndarrays)."""
    if hasattr(X, "detach") and hasattr(X, "cpu"):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise InputDataError(f"images must be numeric, got dtype {X.dtype}")
    if X.ndim != 4:
        raise InputDataError(f"images must be an N x C x H x W array, got shape {X.shape}",
                             hint="add a channel axis for grey images: X[:, None]")
    if min(X.shape) == 0:
        raise InputDataError(f"the image array is empty (shape {X.shape})")
    return X


def prepare(X: np.ndarray, idx: np.ndarray, *, whitening: bool, chunk: int = 1024):  # type: ignore[no-untyped-def]
    """Rows ``idx`` of ``X`` as float32 (n, C, 32, 32): NaN/Inf filled, resized, standardised, whitened.

    Returns ``(tensor, info)``; ``info`` holds the per-channel mean/std and whether ZCA was applied.
    """
    import torch
    import torch.nn.functional as F

    parts = []
    for start in range(0, idx.size, chunk):
        block = torch.from_numpy(np.array(X[idx[start:start + chunk]], dtype=np.float32))  # a copy
        block = _fill_nonfinite(block, int(idx[start]))
        if block.shape[-2:] != (SIZE, SIZE):
            block = F.interpolate(block, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)
        parts.append(block)
    T = torch.cat(parts)
    mean = T.double().mean((0, 2, 3))
    std = T.double().std((0, 2, 3)) if T.shape[0] * SIZE * SIZE > 1 else torch.ones_like(mean)
    std = torch.where(std > 1e-12, std, torch.ones_like(std))  # a constant channel stays 0, not NaN
    T = ((T - mean.float()[None, :, None, None]) / std.float()[None, :, None, None]).contiguous()
    zca = bool(whitening) and T.shape[1] > 1
    if zca:
        T = _zca(T)
    info = {"channel_mean": mean.tolist(), "channel_std": std.tolist(), "whitened": zca}
    return T, info


def _fill_nonfinite(block, first: int):  # type: ignore[no-untyped-def]
    """The reference's rule: each image's NaN/Inf pixels become that image's mean over finite pixels."""
    import torch

    ok = torch.isfinite(block)
    if bool(ok.all()):
        return block
    flat_ok = ok.reshape(block.shape[0], -1)
    count = flat_ok.sum(1)
    if bool((count == 0).any()):
        bad = int(torch.nonzero(count == 0)[0, 0]) + first
        raise InputDataError(f"image {bad + 1} (counting from 1) has no finite pixel (all NaN or Inf)")
    total = torch.where(flat_ok, block.reshape(block.shape[0], -1).double(), 0.0).sum(1)
    fill = (total / count).float()[:, None, None, None].expand_as(block)
    return torch.where(ok, block, fill)


def _zca(T):  # type: ignore[no-untyped-def]
    """ZCA with the reference's regulariser: ``X (Sigma + r I)^(-1/2)``, ``Sigma = X'X / n`` (no re-centring)."""
    import torch

    n = T.shape[0]
    flat = T.reshape(n, -1).double()
    D = flat.shape[1]
    if n >= D:
        cov = flat.T @ flat / n
        reg = ZCA_REG * torch.trace(cov) / D
        evals, evecs = torch.linalg.eigh(cov + reg * torch.eye(D, dtype=cov.dtype))
        out = flat @ ((evecs * evals.clamp_min(1e-12).rsqrt()[None, :]) @ evecs.T)
    else:
        # rank <= n: with X = U S V', Sigma + rI has eigenvalues s^2/n + r on V and r elsewhere,
        # so X W = X V diag((s^2/n + r)^-1/2) V' + r^-1/2 (X - X V V'), at O(n^2 D) cost
        _, S, Vh = torch.linalg.svd(flat, full_matrices=False)
        lam = S * S / n
        reg = ZCA_REG * lam.sum() / D
        XV = flat @ Vh.T
        out = (XV * (lam + reg).rsqrt()[None, :]) @ Vh + (flat - XV @ Vh) * reg.rsqrt()
    return out.float().reshape(T.shape).contiguous()


class RandomConvNets:
    """``n_models`` random CNNs (3 x [3x3 conv, ReLU, 2x2 avg pool]) drawn from a numpy stream.

    Weights ~ N(0, 2 / (9 C_in)) (He), biases ~ N(0, 0.1^2). Features of all nets are concatenated
    and scaled so that ``phi(x).phi(y)`` averages over nets and channels.
    """

    def __init__(self, rng: np.random.RandomState, channels: int, width: int, n_models: int, depth: int,
                 device: Any) -> None:
        import torch

        self.layers = []
        for _ in range(n_models):
            net = []
            c_in = channels
            for _ in range(depth):
                w = rng.standard_normal((width, c_in, 3, 3)) * math.sqrt(2.0 / (9 * c_in))
                b = rng.standard_normal(width) * BIAS_STD
                net.append((torch.as_tensor(w, dtype=torch.float32, device=device),
                            torch.as_tensor(b, dtype=torch.float32, device=device)))
                c_in = width
            self.layers.append(net)
        side = SIZE >> depth
        self.scale = 1.0 / math.sqrt(n_models * width * side * side)

    def __call__(self, X):  # type: ignore[no-untyped-def]
        import torch
        import torch.nn.functional as F

        outs = []
        for net in self.layers:
            h = X
            for w, b in net:
                h = F.avg_pool2d(F.relu(F.conv2d(h, w, b, padding=1)), 2)
            outs.append(h.flatten(1))
        return torch.cat(outs, 1) * self.scale

    def mean_features(self, X, batch: int = 512):  # type: ignore[no-untyped-def]
        import torch

        with torch.no_grad():
            total = None
            for start in range(0, X.shape[0], batch):
                f = self(X[start:start + batch]).double().sum(0)
                total = f if total is None else total + f
        return total / X.shape[0]


class AdaBelief:
    """AdaBelief (Zhuang et al. 2020) for one tensor: Adam whose second moment tracks (g - m)^2."""

    def __init__(self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-16) -> None:
        self.lr, self.b1, self.b2, self.eps = lr, betas[0], betas[1], eps
        self.t = 0
        self.m = None
        self.s = None

    def step(self, p, g) -> None:  # type: ignore[no-untyped-def]
        import torch

        if self.m is None:
            self.m = torch.zeros_like(p)
            self.s = torch.zeros_like(p)
        self.t += 1
        self.m.mul_(self.b1).add_(g, alpha=1 - self.b1)
        d = g - self.m
        self.s.mul_(self.b2).addcmul_(d, d, value=1 - self.b2).add_(self.eps)
        m_hat = self.m / (1 - self.b1 ** self.t)
        s_hat = self.s / (1 - self.b2 ** self.t)
        p.sub_(self.lr * m_hat / (s_hat.sqrt() + self.eps))
