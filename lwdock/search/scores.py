"""The unverified score, ``match``: how much two kernel mean embeddings overlap, in [0, 1].

    match(user, R) = 2 <user,R> / (<user,user> + <R,R>) = 1 - MMD^2(user, R) / (<user,user> + <R,R>)

With non-negative weights and a positive kernel every inner product is >= 0 and
``<u,R> <= sqrt(<u,u><R,R>) <= (<u,u>+<R,R>)/2``, so it lies in [0, 1]: 1 exactly when the two
embeddings coincide, 0 when none of the user's points is near any of the learnware's. It uses
no constants and no other candidate, so it compares across queries under one kernel (the dock's
kernel for the feature space). An unverified search is *ordered* by it, so scores fall with the
rank. Values are clipped to [0, 1] in case a spec carries negative weights.
"""

from __future__ import annotations

import numpy as np


def match_score(cross, uu: float, selfs):  # type: ignore[no-untyped-def]
    """Vectorised: ``cross`` (<u,R>) and ``selfs`` (<R,R>) may be arrays of the same shape."""
    cross, selfs = np.asarray(cross, dtype=np.float64), np.asarray(selfs, dtype=np.float64)
    denom = uu + selfs
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(denom > 0, 2.0 * cross / np.where(denom > 0, denom, 1.0), 0.0)
    return np.clip(s, 0.0, 1.0)
