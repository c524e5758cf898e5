"""The verified re-rank: candidates ordered by how well their models agree with a label-free reference.

MMD^2 ranks learnwares by how well their training distribution matches the user's, which rewards
matching class proportions more than covering the user's data; the best model is often not first
(digits: hit@1 0.37). Verification looks at what the models *do* on the user's data, with no labels:

1. The best :data:`~lwdock.search.engine.POOL` candidates by MMD^2 (at least ``k``) that can run
   (checked ``usable``, the same task and output size as most of them, their environment already
   built: a search never builds one) each run on up to :data:`ROWS` of the user's rows (seeded;
   a table search from a spec file uses the spec's own points, weighted by beta). One worker per
   candidate, all rows in one batch, through :func:`lwdock.reuse.execute.open_predictors`.
2. A reference answer per row: the candidates' outputs weighted by ``w_i f_i(x)^16`` and
   normalised, ``w`` the mixture weights of the candidates (simplex QP) and ``f_i`` candidate
   i's kernel density at the row under the dock's kernel sharpened 16x (gamma x 16): each row is
   answered mostly by the learnwares whose training data lie closest to it.
3. Each candidate's score is its agreement with that answer: classification, the mean
   probability it gives the reference label (labels count as one-hot, scores are softmaxed);
   regression, ``1 - MSE / Var`` of the reference, clipped to [0, 1], averaged over outputs.

Candidates are ordered by score (ties: MMD^2); the ones that could not run follow, by match, with
no score and a note saying why. Measured (docs/search.md): hit@1 0.37 -> 0.83 (digits), 0.10 ->
0.80 (segments), 0.67 -> 1.00 (text), 0.40 -> 0.87 (images), and better on three hold-out scenarios.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..check.envs import MARKER, env_key, normalise_requirements
from ..errors import DockError, LwdockError
from ..records import USABLE, Entry
from ..reuse.base import CLASSIFICATION, REGRESSION, normalise_output
from ..reuse.execute import open_predictors, run_learnwares
from ..spec.qp import solve_simplex_qp
from ..spec.rkme_image import RKMEImageSpec
from ..spec.rkme_text import RKMETextSpec
from .engine import Candidates
from .user import UserSpec

logger = logging.getLogger("lwdock")

ROWS = 100
SHARPEN = 16.0
ALL_EQUAL = 0.02  # verified scores of the top 5 within this: the learnwares are interchangeable
MAX_WORKERS = 8


@dataclass(frozen=True)
class VerifyOptions:
    rows: int = ROWS
    sharpen: float = SHARPEN
    trusted: bool = False  # run the models in this process (learnwares you trust; benchmarks)
    timeout: float = 120.0  # one worker's batch round trip
    seed: int = 0


@dataclass
class Probe:
    """What the models run on (``inputs``), the same rows in the kernel's units, and their weights."""

    inputs: Any
    points: np.ndarray
    weights: np.ndarray
    source: str  # "rows" or "spec"


@dataclass
class Verification:
    order: np.ndarray  # candidate positions: verified best first, then the rest by match
    scores: dict[int, float]  # position -> agreement (verified candidates only)
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    source: str = ""
    runs: int = 0
    rows: int = 0

    def describe(self) -> dict[str, Any]:
        return {"rows": self.rows, "source": self.source, "models_run": self.runs, "verified": len(self.scores),
                "seconds": round(self.seconds, 3)}


def probe(user: UserSpec, backend: Any, opts: VerifyOptions) -> Probe | None:
    """The rows the candidates' models run on, or None when there are none (an image or text spec)."""
    rng = np.random.default_rng(opts.seed)
    rows = user.rows
    if rows is None:
        if user.kind != "table":
            return None  # image and text spec points are not model inputs
        w = np.clip(user.beta, 0.0, None)
        w = w / w.sum() if w.sum() > 0 else np.full(w.size, 1.0 / w.size)
        # a copy: the models get arrays of their own (a parsed spec file's are shared and read-only)
        return Probe(np.array(user.z, dtype=np.float64), backend.map(user.z), w, "spec")
    n = len(rows)
    pick = np.sort(rng.choice(n, size=opts.rows, replace=False)) if n > opts.rows else np.arange(n)
    weights = np.full(pick.size, 1.0 / pick.size)
    if user.kind == "table":
        X = np.asarray(rows[pick], dtype=np.float64)
        bad = ~np.isfinite(X)
        if bad.any():  # the models get what the spec fit saw: column means for NaN/Inf
            with np.errstate(all="ignore"):
                fill = np.nan_to_num(np.nanmean(np.where(bad, np.nan, X), axis=0))
            X = np.where(bad, fill, X)
        return Probe(X, backend.map(X), weights, "rows")
    if user.kind == "text":
        texts = [rows[int(i)] for i in pick]
        emb = RKMETextSpec(embedder=user.embedder or RKMETextSpec().embedder).embed(texts)
        return Probe(texts, backend.map(emb), weights, "rows")
    images = np.asarray(rows[pick])
    return Probe(images, backend.map(RKMEImageSpec().transform(images)), weights, "rows")


def env_ready(dock: Any, lw_id: str) -> bool:
    """Is the learnware's environment built? (Looked up, never built: a search does not install.)"""
    reqs = normalise_requirements(list(dock.package(lw_id).requirements or []))
    path = Path(dock.layout.envs) / env_key(reqs)
    return (path / MARKER).is_file() and (path / "bin" / "python").exists()


def _not_ready(dock: Any, lw_id: str) -> str | None:
    """Why the learnware cannot run in a sandbox now (None: it can). A learnware whose stored
    files are missing is left unverified, not the whole search failed: `doctor` reports it."""
    try:
        ready = env_ready(dock, lw_id)
    except DockError:
        return "stored files missing (`lwdock doctor` reports them)"
    return None if ready else "environment not built (`lwdock recheck` builds it)"


def _runnable(dock: Any, cands: Candidates, pool: int, entries: dict[str, Entry], opts: VerifyOptions
              ) -> tuple[list[int], str | None, int | None, list[str]]:
    """The candidates (of the best ``pool`` by MMD^2) that can run, their common task and output
    size, and notes on the others."""
    why: Counter[str] = Counter()
    ok: list[tuple[int, str, int | None]] = []
    for pos, lw_id in enumerate(cands.ids[:pool]):
        e = entries.get(lw_id)
        task = (e.semantic.task or "").strip().lower() if e is not None else ""
        if e is None or e.status != USABLE:
            why["not checked as usable"] += 1
        elif task not in (CLASSIFICATION, REGRESSION):
            why[f"task {e.semantic.task or 'missing'}"] += 1
        elif task == CLASSIFICATION and not e.semantic.output_dim:
            why["no output dimension"] += 1
        elif not opts.trusted and (problem := _not_ready(dock, lw_id)):
            why[problem] += 1
        else:
            ok.append((pos, task, e.semantic.output_dim))
    groups = Counter((t, d) for _, t, d in ok)
    if not groups:
        return [], None, None, _why(why)
    (task, dim), _ = max(groups.items(), key=lambda kv: (kv[1], -min(p for p, t, d in ok if (t, d) == kv[0])))
    keep = [p for p, t, d in ok if (t, d) == (task, dim)]
    if len(keep) < len(ok):
        why["another task or output size than most candidates (filter with --task)"] += len(ok) - len(keep)
    return keep, task, dim, _why(why)


def _why(why: Counter[str]) -> list[str]:
    return [f"{n} not verified: {reason}" for reason, n in why.items()]


def _outputs(dock: Any, ids: list[str], inputs: Any, task: str, n_classes: int | None, opts: VerifyOptions
             ) -> dict[int, np.ndarray | str]:
    """Each model's normalised output on ``inputs`` (probabilities or values), or why it failed."""
    n = len(inputs)

    def one(i: int) -> np.ndarray | str:
        try:
            with open_predictors(dock, [ids[i]], trusted=opts.trusted, timeout=opts.timeout) as handles:
                raw = run_learnwares(handles, inputs)[0]
            out, kind = normalise_output(raw, n, task, n_classes, name=f"learnware {ids[i][:12]}")
        except LwdockError as exc:
            return str(exc)
        return _as_answer(out, kind, n_classes)

    workers = 1 if opts.trusted else max(1, min(MAX_WORKERS, len(ids)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(enumerate(pool.map(one, range(len(ids)))))


def _as_answer(out: np.ndarray, kind: str, n_classes: int | None) -> np.ndarray:
    """Class probabilities (n, C) for classification, values (n, k) for regression."""
    if kind == "value":
        return np.asarray(out, dtype=np.float64)
    if kind == "label":
        c = int(n_classes or out.max() + 1)
        P = np.zeros((out.size, c))
        P[np.arange(out.size), out.astype(np.int64)] = 1.0
        return P
    if kind == "score":
        e = np.exp(out - out.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return np.asarray(out, dtype=np.float64)


def agreement(outs: list[np.ndarray], R: np.ndarray, w: np.ndarray, task: str) -> np.ndarray:
    """Each output's agreement with the reference ``sum_i R[:, i] outs[i]`` (rows weighted by ``w``)."""
    ref = sum(R[:, [i]] * o for i, o in enumerate(outs))
    if task == CLASSIFICATION:
        label = np.argmax(ref, axis=1)
        return np.array([float(w @ o[np.arange(len(label)), label]) for o in outs])
    mean = w @ ref
    var = w @ ((ref - mean) ** 2)  # per output column
    scores = []
    for o in outs:
        mse = w @ ((o - ref) ** 2)
        r2 = np.where(var > 0, 1.0 - mse / np.where(var > 0, var, 1.0), np.where(mse > 0, 0.0, 1.0))
        scores.append(float(np.clip(r2, 0.0, 1.0).mean()))
    return np.array(scores)


def responsibilities(dens: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per row, ``w_i f_i(x)`` normalised over the candidates (the weights alone where every density is 0)."""
    weighted = dens * w[None, :]
    tot = weighted.sum(axis=1, keepdims=True)
    return np.where(tot > 0, weighted / np.where(tot > 0, tot, 1.0), w[None, :])


def verify(dock: Any, cands: Candidates, pool: int, entries: dict[str, Entry], user: UserSpec, opts: VerifyOptions
           ) -> Verification:
    """Re-rank the best ``pool`` of ``cands`` by verified agreement (``scores`` is empty, with
    notes saying why, when fewer than two of them can be verified)."""
    t0 = time.perf_counter()
    pr = probe(user, cands.backend, opts)
    if pr is None:
        return Verification(_tail(cands, []), {}, notes=[f"not verified: a {user.kind} specification without your "
                                                          "data (verify with --data)"])
    runnable, task, n_classes, notes = _runnable(dock, cands, pool, entries, opts)
    if len(runnable) < 2 or task is None:
        return Verification(_tail(cands, []), {}, notes=[*notes, "not verified: fewer than 2 candidates can run"],
                            seconds=time.perf_counter() - t0, source=pr.source)
    got = _outputs(dock, [cands.ids[p] for p in runnable], pr.inputs, task, n_classes, opts)
    notes += [f"not verified: {o}" for o in got.values() if isinstance(o, str)]
    ran = [(runnable[i], o) for i, o in got.items() if not isinstance(o, str)]
    if len(ran) < 2:
        return Verification(_tail(cands, []), {}, notes=notes, seconds=time.perf_counter() - t0, source=pr.source,
                            runs=len(runnable))
    pos = np.array([p for p, _ in ran])
    G = cands.gram().sub(pos.tolist())
    w, _ = solve_simplex_qp(G, cands.cross[pos])
    R = responsibilities(cands.density(pr.points, opts.sharpen, which=pos), np.asarray(w))
    scores = agreement([o for _, o in ran], R, pr.weights, task)
    best = sorted(range(pos.size), key=lambda i: (-scores[i], cands.mmd2[pos[i]], pos[i]))
    order = [int(pos[i]) for i in best]
    flags = []
    top = sorted(scores, reverse=True)[:5]
    if len(top) == 5 and top[0] - top[-1] < ALL_EQUAL:
        flags.append("all_equal")
        notes.append(f"the top 5 learnwares are interchangeable for your data (verified scores within {ALL_EQUAL})")
    return Verification(_tail(cands, order), {int(pos[i]): float(scores[i]) for i in range(pos.size)}, flags,
                        notes, time.perf_counter() - t0, pr.source, len(runnable), len(pr.weights))


def _tail(cands: Candidates, order: list[int]) -> np.ndarray:
    """``order`` followed by every other candidate, by match."""
    done = set(order)
    rest = sorted((p for p in range(cands.size) if p not in done), key=lambda p: (-cands.match[p], cands.mmd2[p], p))
    return np.array(order + rest, dtype=np.int64)
