"""The data pass on a torch device (CUDA). Imported only when ``device`` is not ``"cpu"``."""

from __future__ import annotations

import numpy as np

from ..errors import UsageError


def check_device(device: str):  # type: ignore[no-untyped-def]
    """Return a ``torch.device`` for ``device``, or raise ``UsageError`` when it is unavailable."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UsageError(f"unknown device {device!r}", hint="use 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} was asked for but CUDA is not available", hint="use --device cpu")
    return dev


def kernel_stats_torch(
    X: np.ndarray, Z: np.ndarray, gamma: float, dev, fill: np.ndarray | None = None, rows: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Same as :func:`lwdock.spec.kernels.kernel_stats`, with the arithmetic on ``dev`` in float64."""
    import torch

    n = X.shape[0]
    Zt = torch.as_tensor(np.asarray(Z, dtype=np.float64), device=dev)
    z_sq = (Zt * Zt).sum(1)
    c = torch.zeros(Zt.shape[0], dtype=torch.float64, device=dev)
    m = torch.zeros_like(Zt)
    ft = None if fill is None else torch.as_tensor(fill, dtype=torch.float64, device=dev)
    for start in range(0, n, rows):
        B = torch.as_tensor(np.ascontiguousarray(X[start : start + rows]), device=dev).to(torch.float64)
        if ft is not None:
            B = torch.where(torch.isfinite(B), B, ft)
        D = (B * B).sum(1)[:, None] - 2.0 * (B @ Zt.T) + z_sq[None, :]
        Kb = torch.exp(-gamma * D.clamp_min_(0.0))
        c += Kb.sum(0)
        m += Kb.T @ B
    return (c / n).cpu().numpy(), (m / n).cpu().numpy()
