"""Squared MMD -> score in [0, 1], independent of the other candidates.

    score(user, R) = 1 - MMD^2(user, R) / (<user,user> + <R,R>)
                   = 2 <user,R> / (<user,user> + <R,R>)

With non-negative weights and the RBF kernel every inner product is >= 0 and
``<u,R> <= sqrt(<u,u><R,R>) <= (<u,u>+<R,R>)/2``, so the score lies in [0, 1];
it is 1 exactly when the two embeddings coincide and does not depend on the
scale of the kernel values (a "kernel cosine" with an arithmetic mean). Unlike
the reference's heuristic it uses no constants and no other candidate, so
scores are comparable across queries. Values are clipped to [0, 1] in case a
spec carries negative weights.
"""

from __future__ import annotations

import numpy as np


def mmd2_to_score(mmd2, self_user: float, self_other):  # type: ignore[no-untyped-def]
    """Vectorised: ``mmd2`` and ``self_other`` may be arrays of the same shape."""
    mmd2 = np.asarray(mmd2, dtype=np.float64)
    denom = self_user + np.asarray(self_other, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(denom > 0, 1.0 - mmd2 / denom, 0.0)
    return np.clip(s, 0.0, 1.0)
