"""When the pre-filter has re-ranked enough: a per-query check that widens the exact pass.

The pre-filter keeps the ``count`` learnwares with the smallest approximate MMD^2 and computes
their exact values. A learnware it dropped could still belong in the results if its sketch
over-estimated its MMD^2 by more than the gap between the cut (the smallest dropped approximate
value) and the ``needed``-th best exact value. How large sketch errors are depends on the
market and the query (near-identical learnwares leave gaps far smaller than the error), so no
fixed budget is safe everywhere. The error is measured instead, on this query: a seeded random
sample of the dropped learnwares is computed exactly too (an unbiased view of the error; the
kept ones are biased, being chosen for low approximations). Taking the error as normal (mean of
the sample, spread of every measured error), the expected number of left-out learnwares whose
exact MMD^2 would beat the ``needed``-th best exact value is

    sum over left-out j of P(error > approx_j - threshold)

and the pass is widened to the size that brings it below :data:`EXPECTED_MISSES` under the
measured error (or to every learnware, once that is more than half of them), and checked again. On well-separated markets the first, small pass passes the check;
on a market of near-identical learnwares it widens to the exact pass over everything, which
is what the ranking then needs (docs/search.md, "Pre-filter").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EXPECTED_MISSES = 0.05  # allowed expected count of left-out learnwares that belong in the results
SAMPLE = 32  # dropped learnwares computed exactly per pass to measure the error


@dataclass(frozen=True)
class Selection:
    """Positions (into the approximate values) to compute exactly: the best ``count`` and a sample
    of the rest; ``cut`` is the smallest approximate value left out (inf when none is)."""

    keep: np.ndarray  # sorted
    sampled: np.ndarray  # sorted, a subset of keep
    cut: float


def select(approx: np.ndarray, count: int, seed: int = 0) -> Selection:
    n = approx.size
    if count >= n:
        everything = np.arange(n)
        return Selection(everything, everything[:0], float("inf"))
    best = np.argpartition(approx, count - 1)[:count]
    rest = np.ones(n, bool)
    rest[best] = False
    others = np.nonzero(rest)[0]
    cut = float(approx[others].min())
    sampled = np.sort(np.random.default_rng(seed).choice(others, size=min(SAMPLE, others.size), replace=False))
    return Selection(np.sort(np.concatenate([best, sampled])), sampled, cut)


def more_needed(approx: np.ndarray, sel: Selection, exact: np.ndarray, needed: int) -> int:
    """``exact``: the exact MMD^2 of ``sel.keep``, in that order. How many of the left-out
    learnwares (the best by approximation first) must still be computed exactly for the expected
    number of left-out ones that belong among the best ``needed`` to fall below
    :data:`EXPECTED_MISSES` (0: enough). The sketch error is taken as normal, centred on the
    sample's mean error, with the spread of every measured error (kept and sampled)."""
    if not np.isfinite(sel.cut):
        return 0
    threshold = float(np.partition(exact, min(needed, exact.size) - 1)[min(needed, exact.size) - 1])
    error = approx[sel.keep] - exact  # over-estimates are positive
    sample_error = error[np.searchsorted(sel.keep, sel.sampled)]
    centre = float(sample_error.mean()) if sample_error.size else 0.0
    scale = max(float(error.std()), 1e-12)
    left_out = np.ones(approx.size, bool)
    left_out[sel.keep] = False
    z = np.sort((approx[left_out] - threshold - centre) / scale)  # deviations each would need
    z = z[z < 9.0]  # beyond 9 deviations the chance is below 1e-19
    p = np.array([0.5 * math.erfc(v / math.sqrt(2.0)) for v in z.tolist()])
    tail = np.cumsum(p[::-1])[::-1]  # tail[i]: expected misses once the first i of them are computed too
    return int(np.argmax(tail < EXPECTED_MISSES)) if (tail < EXPECTED_MISSES).any() else int(z.size)


def next_count(count: int, more: int, n: int) -> int:
    """The next pass's size: what :func:`more_needed` asks for with a quarter to spare, and every
    learnware once that is more than half of them (a partial pass would save little)."""
    wanted = count + int(math.ceil(1.25 * more)) + SAMPLE
    return n if 2 * wanted > n else wanted
