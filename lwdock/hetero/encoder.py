"""The trained map: a small table encoder that puts a row of any named table on one unit sphere.

Row -> one token per cell -> pooled row embedding (DeepSets):

* a cell's name is its column's frozen MiniLM name embedding (the dock's name table; nothing
  is downloaded or learnt from scratch, unlike the reference's BERT tokenizer and word table);
* its value is the cell standardised by its own column's moments (unit-free);
* token = LayerNorm(P(name) + value * Q(name) + V(value)), then a token MLP, a masked mean
  over the row's cells, an output MLP, and L2 normalisation.

Training (``train``): every row of every eligible learnware's reduced set (no grouping by
dimension, no dropped rows), two random column-subset views of each row (each column kept with
probability ``keep``, at least one; small value noise), and a symmetric InfoNCE loss between
the views on L2-normalised projections with temperature ``tau`` (the reference normalises
nothing and uses T = 10). Adam, cosine schedule, a fixed number of steps (cost flat in the dock
size), one CPU thread, a fixed seed, deterministic algorithms: the same dock gives the same map.

The map ranks candidates as an extra term (MMD between embedded reduced sets); the name-based
damage score stays the primary ranking (docs/heterogeneous.md has the measurements).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

VALUE_CLIP = 6.0


@dataclass(frozen=True)
class MapConfig:
    h: int = 64
    steps: int = 1500
    batch: int = 256
    lr: float = 2e-3
    tau: float = 0.1
    keep: float = 0.5
    noise: float = 0.05
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class TableEncoder(nn.Module):
    def __init__(self, name_dim: int, h: int) -> None:
        super().__init__()
        self.P = nn.Linear(name_dim, h)
        self.Q = nn.Linear(name_dim, h)
        self.V = nn.Sequential(nn.Linear(1, h), nn.GELU(), nn.Linear(h, h))
        self.norm = nn.LayerNorm(h)
        self.tok_mlp = nn.Sequential(nn.Linear(h, 2 * h), nn.GELU(), nn.Linear(2 * h, h))
        self.out_mlp = nn.Sequential(nn.Linear(h, 2 * h), nn.GELU(), nn.Linear(2 * h, h))
        self.head = nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.Linear(h, h))  # training only

    def forward(self, table: torch.Tensor, idx: torch.Tensor, vals: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``table``: T x E name embeddings; ``idx``, ``vals``, ``mask``: B x D -> B x h unit vectors.
        The name projections are computed once per distinct name, not once per cell."""
        v = vals.unsqueeze(-1)
        tok = self.norm(self.P(table)[idx] + v * self.Q(table)[idx] + self.V(v))
        t = self.tok_mlp(tok) * mask.unsqueeze(-1)
        pooled = self.out_mlp(t.sum(1) / mask.sum(1, keepdim=True).clamp(min=1))
        return nn.functional.normalize(pooled, dim=-1)


@contextmanager
def _reproducible(seed: int) -> Iterator[None]:
    """One thread, deterministic kernels, seeded: restored afterwards."""
    threads = torch.get_num_threads()
    was_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_det)
        torch.set_num_threads(threads)


def _bank(sets: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every reduced-set row as padded (name index, value, present) arrays."""
    D = max(z.shape[1] for z, _ in sets)
    n = sum(z.shape[0] for z, _ in sets)
    idx = np.zeros((n, D), dtype=np.int64)
    val = np.zeros((n, D), dtype=np.float32)
    mask = np.zeros((n, D), dtype=bool)
    row = 0
    for z, names in sets:
        k, d = z.shape
        idx[row:row + k, :d] = names
        val[row:row + k, :d] = np.clip(z, -VALUE_CLIP, VALUE_CLIP)
        mask[row:row + k, :d] = True
        row += k
    return idx, val, mask


def _view(mask: np.ndarray, keep: float, rng: np.random.Generator) -> np.ndarray:
    m = mask & (rng.random(mask.shape) < keep)
    for i in np.flatnonzero(~m.any(axis=1)):  # keep one present column
        m[i, rng.choice(np.flatnonzero(mask[i]))] = True
    return m


def train(sets: Sequence[tuple[np.ndarray, np.ndarray]], name_table: np.ndarray,
          cfg: MapConfig = MapConfig()) -> tuple[dict[str, np.ndarray], dict]:
    """Train on ``sets`` ((standardised reduced set K x d, name indices d) per learnware, in a
    fixed order) with ``name_table`` (T x 384). Returns (weights as arrays, training info)."""
    rng = np.random.default_rng(cfg.seed)
    idx, val, mask = _bank(sets)
    with _reproducible(cfg.seed):
        table = torch.from_numpy(np.asarray(name_table, dtype=np.float32))
        model = TableEncoder(table.shape[1], cfg.h)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(cfg.steps, 1))
        n = idx.shape[0]
        losses = []
        t0 = time.perf_counter()
        for _ in range(cfg.steps):
            rows = rng.choice(n, size=min(cfg.batch, n), replace=False)
            outs = []
            for _view_no in range(2):
                m = _view(mask[rows], cfg.keep, rng)
                v = (val[rows] + cfg.noise * rng.standard_normal(m.shape).astype(np.float32)) * m
                emb = model(table, torch.from_numpy(idx[rows]), torch.from_numpy(v), torch.from_numpy(m))
                outs.append(nn.functional.normalize(model.head(emb), dim=-1))
            logits = outs[0] @ outs[1].T / cfg.tau
            target = torch.arange(logits.shape[0])
            loss = 0.5 * (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        seconds = time.perf_counter() - t0
    weights = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    head = max(1, min(20, len(losses)))
    info = {"rows": int(idx.shape[0]), "names": int(table.shape[0]), "steps": cfg.steps, "train_seconds": seconds,
            "params": int(sum(p.numel() for p in model.parameters())),
            "loss_start": float(np.mean(losses[:head])) if losses else None,
            "loss_end": float(np.mean(losses[-head:])) if losses else None}
    return weights, info


class TrainedMap:
    """A trained encoder, loaded from its arrays, that embeds reduced sets."""

    def __init__(self, weights: dict[str, np.ndarray], cfg: MapConfig) -> None:
        name_dim = int(weights["P.weight"].shape[1])
        self.cfg = cfg
        self.model = TableEncoder(name_dim, cfg.h)
        self.model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
        self.model.eval()

    @torch.no_grad()
    def embed(self, z: np.ndarray, name_vectors: np.ndarray) -> np.ndarray:
        """K x h unit vectors for a standardised reduced set whose columns have ``name_vectors``."""
        k, d = z.shape
        table = torch.from_numpy(np.asarray(name_vectors, dtype=np.float32))
        vals = torch.from_numpy(np.clip(z, -VALUE_CLIP, VALUE_CLIP).astype(np.float32))
        idx = torch.arange(d).unsqueeze(0).expand(k, -1)
        return self.model(table, idx, vals, torch.ones(k, d, dtype=torch.bool)).numpy().astype(np.float32)
