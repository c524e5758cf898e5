"""The analytic CNN-GP (NNGP) kernel that compares image specifications, in bulk.

The architecture is the reference's (Garriga-Alonso et al., ICLR'19 style): ``depth`` blocks of
[3x3 "same" conv (var_w = sqrt(2), var_b = 0.1) -> ReLU -> 2x2 stride-2 average pool], then an
average over the remaining 4x4 positions. Per pixel the kernel propagates three maps: ``xx`` and
``yy`` (each image against itself) and ``xy`` (the pair). A conv sums a map over the 3x3
neighbourhood (zero padded) times ``var_w / 9`` and adds ``var_b``; the ReLU maps
``xy -> (sqrt(xx yy - xy^2) + (pi - acos(rho)) xy) / (2 pi)`` with ``rho = xy / sqrt(xx yy)``
and ``xx -> xx / 2``.

The ``xx`` maps depend on one image only, so :func:`self_maps` computes them once per image;
the pair work is then a few elementwise passes per pair, batched over chunks of pairs.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any

VAR_W = math.sqrt(2.0)  # the reference's value (sqrt 2, not 2)
VAR_B = 0.1
DEPTH = 3
PAIR_BUDGET = 8192  # pairs per chunk: ~32 MB per float32 temporary at 32x32


@contextmanager
def torch_threads(n: int | None):  # type: ignore[no-untyped-def]
    """Run with ``n`` intra-op torch threads (None: leave as is), restoring the old count."""
    import torch

    if not n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _as_tensor(A: Any, device: Any, dtype: Any):  # type: ignore[no-untyped-def]
    import numpy as np
    import torch

    if isinstance(A, torch.Tensor):
        return A.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(A), device=device).to(dtype)


def _conv(m):  # type: ignore[no-untyped-def]
    """3x3 zero-padded box sum of (N, h, w) maps times var_w/9, plus var_b (separable shifted adds)."""
    import torch.nn.functional as F

    p = F.pad(m, (1, 1, 1, 1))
    v = p[:, :-2] + p[:, 1:-1]
    v += p[:, 2:]
    out = v[..., :-2] + v[..., 1:-1]
    out += v[..., 2:]
    return out.mul_(VAR_W / 9.0).add_(VAR_B)


def _pool(m):  # type: ignore[no-untyped-def]
    """2x2 stride-2 average of (N, h, w) maps (strided views: faster than avg_pool2d on one channel)."""
    a = m[:, 0::2] + m[:, 1::2]
    return (a[:, :, 0::2] + a[:, :, 1::2]).mul_(0.25)


def self_maps(A, depth: int = DEPTH):  # type: ignore[no-untyped-def]
    """Per-image pieces: ``(sqrt(xx) before each ReLU, k(x, x))`` for a (n, C, H, W) tensor."""
    xx = (A * A).mean(1)
    roots = []
    for _ in range(depth):
        xx = _conv(xx)
        roots.append(xx.sqrt())
        xx = _pool(xx.mul_(0.5))
    return roots, xx.mean((1, 2))


def self_kernel(A, *, depth: int = DEPTH, device: str = "cpu", dtype: str = "float32"):  # type: ignore[no-untyped-def]
    """``k(a_i, a_i)`` for every image: cheap (no pairs). Returns a float64 numpy vector."""
    import torch

    At = _as_tensor(A, device, getattr(torch, dtype))
    with torch.no_grad():
        return self_maps(At, depth)[1].double().cpu().numpy()


def _pair_block(A, B, rA, rB, depth: int):  # type: ignore[no-untyped-def]
    """Kernel values for every (a, b) pair of two small blocks: (n, m)."""
    import torch

    n, m = A.shape[0], B.shape[0]
    h, w = A.shape[-2:]
    xy = A[:, None, 0] * B[None, :, 0]
    for c in range(1, A.shape[1]):
        xy.addcmul_(A[:, None, c], B[None, :, c])
    xy = xy.reshape(n * m, h, w).mul_(1.0 / A.shape[1])
    inv_2pi = 1.0 / (2.0 * math.pi)
    for layer in range(depth):
        xy = _conv(xy)
        hh, ww = xy.shape[-2:]
        denom = (rA[layer][:, None] * rB[layer][None]).reshape(n * m, hh, ww)
        rho = torch.div(xy, denom).clamp_(-1.0, 1.0)
        theta = torch.acos(rho)
        # (pi - theta) * xy + denom * sqrt(1 - rho^2), all over 2 pi
        out = theta.neg_().add_(math.pi).mul_(xy)
        sin = rho.mul_(rho).neg_().add_(1.0).clamp_min_(0.0).sqrt_().mul_(denom)
        xy = _pool(out.add_(sin).mul_(inv_2pi))
    return xy.mean((1, 2)).reshape(n, m)


def _prep(A, depth: int, device: Any, dtype: Any):  # type: ignore[no-untyped-def]
    At = _as_tensor(A, device, dtype)
    if At.ndim != 4:
        raise ValueError(f"images must be (n, C, H, W), got shape {tuple(At.shape)}")
    roots, diag = self_maps(At, depth)
    return At, roots, diag


def nngp_kernel(A, B=None, *, depth: int = DEPTH, device: str = "cpu", dtype: str = "float32",
                pair_budget: int = PAIR_BUDGET, n_threads: int | None = None):  # type: ignore[no-untyped-def]
    """The (n, m) NNGP kernel matrix between images ``A`` (n, C, 32, 32) and ``B`` (m, C, 32, 32).

    ``B=None`` means ``B = A``: the matrix is then exactly symmetric and its diagonal is the
    per-image self-kernel. Work is chunked to ``pair_budget`` pairs at a time. Returns float64 numpy.
    """
    import torch

    tdtype = getattr(torch, dtype)
    with torch.no_grad(), torch_threads(n_threads):
        At, rA, dA = _prep(A, depth, device, tdtype)
        same = B is None
        Bt, rB, dB = (At, rA, dA) if same else _prep(B, depth, device, tdtype)
        if At.shape[1:] != Bt.shape[1:]:
            raise ValueError(f"image shapes differ: {tuple(At.shape[1:])} vs {tuple(Bt.shape[1:])}")
        n, m = At.shape[0], Bt.shape[0]
        out = torch.empty(n, m, dtype=torch.float64, device=At.device)
        rows = max(1, min(n, int(math.sqrt(pair_budget))))
        cols = max(1, pair_budget // rows)
        for i in range(0, n, rows):
            for j in range(0, m, cols):
                if same and j + cols <= i:
                    continue  # lower blocks come from the upper ones
                blk = _pair_block(At[i:i + rows], Bt[j:j + cols], [r[i:i + rows] for r in rA],
                                  [r[j:j + cols] for r in rB], depth)
                out[i:i + rows, j:j + cols] = blk.double()
        if same:
            upper = torch.triu(out, 1)
            out = upper + upper.T
            out.diagonal().copy_(dA.double())
        return out.cpu().numpy()


def weighted_inner_many(Za, ba, specs: list[tuple[Any, Any]], *, depth: int = DEPTH, device: str = "cpu",
                        dtype: str = "float32", pair_budget: int = PAIR_BUDGET, n_threads: int | None = None,
                        prune: float = 1e-9):  # type: ignore[no-untyped-def]
    """``[sum_ij ba_i b_j k(za_i, z_j) for (Z, b) in specs]`` in one bulk pass (float64 numpy vector).

    All reduced sets are stacked and cut into chunks of pairs, so 1,000 specs cost a few large
    batched passes, not 1,000 small ones. Points whose weight is below ``prune`` times the largest
    weight of their spec are skipped: they add at most that fraction to the result (the simplex
    QP leaves many weights at ~0).
    """
    import numpy as np
    import torch

    tdtype = getattr(torch, dtype)
    ba = np.asarray(ba, dtype=np.float64)
    keep_a = ba > prune * max(float(np.abs(ba).max()), 1e-300)
    zs, ws, owner = [], [], []
    for s, (Z, b) in enumerate(specs):
        b = np.asarray(b, dtype=np.float64)
        keep = np.abs(b) > prune * max(float(np.abs(b).max()), 1e-300)
        zs.append(np.asarray(Z)[keep])
        ws.append(b[keep])
        owner.append(np.full(int(keep.sum()), s))
    if not specs:
        return np.zeros(0)
    Zb = np.concatenate(zs)
    wb = np.concatenate(ws)
    own = np.concatenate(owner)
    with torch.no_grad(), torch_threads(n_threads):
        At, rA, _ = _prep(np.asarray(Za)[keep_a], depth, device, tdtype)
        ba_t = torch.as_tensor(ba[keep_a], device=At.device)
        n = At.shape[0]
        cols = max(1, pair_budget // max(n, 1))
        acc = torch.empty(Zb.shape[0], dtype=torch.float64, device=At.device)
        for j in range(0, Zb.shape[0], cols):
            Bt, rB, _ = _prep(Zb[j:j + cols], depth, At.device, tdtype)
            acc[j:j + cols] = ba_t @ _pair_block(At, Bt, rA, rB, depth).double()
        contrib = acc.cpu().numpy() * wb
    return np.bincount(own, weights=contrib, minlength=len(specs))
