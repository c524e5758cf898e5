"""Can the search tell learnwares apart for this user, and did any learnware see data like theirs?

Three signals, each computed from the ranking (docs/search.md, "When search cannot discriminate";
thresholds measured on the paper-style scenarios with seen and unseen users):

* ``coverage`` (RBF kernels: tables, text): the share of the user's mass lying where at least one
  of the best :data:`COVERAGE_POOL` learnwares by MMD^2 has at least the density of its own
  sparsest 10 %, with the kernel raised to the 4th power (sharper than the search kernel, which
  is too smooth for a support test)::

      coverage = sum_l b_l max_i min(1, f_i(u_l) / q10_i),   f_i(x) = sum_j beta_ij k(z_ij, x)^4

  Measured: >= 0.89 for every user drawn from seen distributions, <= 0.42 for unseen ones
  (inverted or transposed digits, noise, shifted segments, new text topics). Below
  :data:`NO_MATCH_COVERAGE` (0.5) with a best ``match`` below :data:`NO_MATCH_RBF` (0.85; seen
  users measured >= 0.88, unseen <= 0.73): ``no_match``; otherwise below :data:`PARTLY_COVERED`
  (0.7; users of seen distributions fitted from 100 rows measured 0.80-0.96): an informational ``partly_covered``. Coverage alone misfires in high dimensions (hashed
  text embeddings: a user of two seen topics covered 45 %, best match 0.95).
* best ``match`` (the NNGP image kernel, where coverage does not separate): below
  :data:`NO_MATCH_IMAGE` (0.93, provisional: 15 seen and 8 unseen users): ``no_match``.
* ``spread`` = (median - min) / median of MMD^2 over every candidate: below :data:`BLIND_SPREAD`
  (0.01) the kernel cannot tell learnwares apart (``blind``; measured 0.0016 and 1e-10 for gamma 0.1
  on raw pixels and on features in the thousands, >= 0.12 for every user under the dock's kernel).

* ``expected_misses`` (above 20,000 learnwares, where a fixed re-rank budget computes only some
  exactly: :func:`lwdock.search.prefilter.expected_misses`): at or above :data:`PREFILTER_MISSES`
  (0.5) the flag ``prefilter_uncertain`` and a note: the best 10 may lack learnwares the sketches
  could not order (near-identical learnwares), ``--no-prefilter`` gives the exact ranking.
  Informational: what was returned is exact and good.

``blind`` or ``no_match`` make the search *unable to discriminate*: the human output says so,
``--json`` has ``cannot_discriminate: true`` and ``--fail-if-empty`` exits 9. ``all_equal``
(:mod:`lwdock.search.verify`: the verified scores of the top 5 within 0.02) is informational:
those learnwares are interchangeable for the user's data, and all of them are good.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .backends import COVERAGE_POWER
from .engine import Candidates, StatResult

COVERAGE_POOL = 20
NO_MATCH_COVERAGE = 0.5
PARTLY_COVERED = 0.7
NO_MATCH_IMAGE = 0.93
NO_MATCH_RBF = 0.85  # and, with RBF kernels, a best match below this (seen users: >= 0.88)
BLIND_SPREAD = 0.01
PREFILTER_MISSES = 0.5
CANNOT_DISCRIMINATE = ("blind", "no_match")


@dataclass
class Signals:
    coverage: float | None = None
    spread: float | None = None
    best_match: float | None = None
    expected_misses: float | None = None
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # one line each, for people (stderr) and --json

    @property
    def cannot_discriminate(self) -> bool:
        return any(f in self.flags for f in CANNOT_DISCRIMINATE)

    def to_dict(self) -> dict[str, object]:
        return {"cannot_discriminate": self.cannot_discriminate, "flags": list(self.flags), "coverage": self.coverage,
                "spread": self.spread, "best_match": self.best_match, "expected_misses": self.expected_misses,
                "notes": list(self.notes)}


def coverage(c: Candidates, pool: int = COVERAGE_POOL) -> float | None:
    """See the module docstring; None where it does not apply (no own-density levels: NNGP)."""
    top = np.arange(min(pool, c.size))  # candidates come best MMD^2 first
    q = c.q10[top]
    if top.size == 0 or not np.all(np.isfinite(q)):
        return None
    # (user points, candidates); float32 kernel values and sums: each is compared with a learnware's
    # own 10 % density level, so what float32 rounds or underflows to 0 counts as uncovered anyway
    f = c.density(c.user.z, COVERAGE_POWER, which=top, coarse=True)
    covered = np.minimum(1.0, f / np.maximum(q, 1e-300)[None, :]).max(axis=1)
    w = np.clip(np.asarray(c.user.beta, dtype=np.float64), 0.0, None)
    w = w / w.sum() if w.sum() > 0 else np.full(w.size, 1.0 / w.size)
    return float(w @ covered)


def assess(stat: StatResult) -> Signals:
    """Coverage, spread and best match of one ranking, and the flags they raise."""
    c = stat.candidates
    sig = Signals(coverage=coverage(c), spread=stat.spread, best_match=float(c.match.max()) if c.size else None,
                  expected_misses=stat.expected_misses)
    if sig.spread is not None and sig.spread < BLIND_SPREAD:
        sig.flags.append("blind")
        sig.notes.append(f"the search kernel cannot tell these learnwares apart (MMD^2 spread {sig.spread:.2g}); "
                         "the ranking is arbitrary")
    if sig.coverage is not None:
        if sig.coverage < NO_MATCH_COVERAGE and (sig.best_match is None or sig.best_match < NO_MATCH_RBF):
            sig.flags.append("no_match")
            sig.notes.append(f"no learnware saw data like yours: the best cover {sig.coverage:.0%} of it")
        elif sig.coverage < PARTLY_COVERED:
            sig.flags.append("partly_covered")
            sig.notes.append(f"your data is only partly covered by the learnwares' data ({sig.coverage:.0%})")
    elif sig.best_match is not None and sig.best_match < NO_MATCH_IMAGE:
        sig.flags.append("no_match")
        sig.notes.append(f"no learnware saw data like yours (best match {sig.best_match:.2f})")
    if sig.expected_misses is not None and sig.expected_misses >= PREFILTER_MISSES:
        sig.flags.append("prefilter_uncertain")
        sig.notes.append(f"the pre-filter computed {stat.exact:,} of {stat.considered:,} learnwares exactly and may have "
                         f"left out about {sig.expected_misses:.1f} of the best; --no-prefilter gives the exact ranking")
    return sig


def unverified_order(c: Candidates) -> np.ndarray:
    """Candidates by match, descending (ties: smaller MMD^2, then MMD^2 order)."""
    return np.lexsort((np.arange(c.size), c.mmd2, -c.match))  # exact: the reported score is monotone
