"""How often the bounded pre-filter's candidates differ from the exact pass's, over many seeds.

Markets of tests/test_search_bounded.py (300, 900 or 2,000 learnwares of 8 points in 4 dimensions,
centres spread 1.0, 0.3 or 0.05), 3 users near a learnware each, three segments per store; per
user, the bounded default against ``prefilter=False``: whether the best 10 by MMD^2 or by match
differ, whether the whole candidate list (pool of 20 by MMD^2 and 10 by match) differs, and the
share of learnwares computed exactly. Not part of ``make bench`` (a check, not a timing).

Run: ``python benchmarks/bounded_agreement.py [first_seed] [last_seed]`` (default 0 200).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_search_bounded import market, user_near  # noqa: E402
from test_search_shards import chunked  # noqa: E402

from lwdock.search import store  # noqa: E402
from lwdock.search.engine import RankOptions, rank  # noqa: E402


def best(result, key) -> set[str]:  # type: ignore[no-untyped-def]
    return set(np.array(result.candidates.ids)[np.argsort(key(result.candidates), kind="stable")[:10]])


def main(first: int, last: int) -> None:
    top = pool = total = 0
    shares = []
    for seed in range(first, last):
        rng = np.random.default_rng(seed)
        n, spread = int(rng.choice([300, 900, 2000])), float(rng.choice([1.0, 0.3, 0.05]))
        centres, z, beta, ids = market(seed, n, spread)
        with tempfile.TemporaryDirectory() as tmp:
            st = store.bulk_load_chunks(tmp, chunked(ids, z, beta, n // 3 + 1), "float32")
            g = st.group(st.keys()[0])
            for _ in range(3):
                user = user_near(centres, rng, int(rng.integers(n)))
                b, e = rank(g, user, None, RankOptions(k=10)), rank(g, user, None, RankOptions(k=10, prefilter=False))
                total += 1
                top += any(best(b, f) != best(e, f) for f in (lambda c: c.mmd2, lambda c: -c.match))
                pool += b.candidates.ids != e.candidates.ids
                shares.append(b.exact / b.considered)
    print(f"{total} checks: best 10 differ {top}, candidate list differs {pool}, "
          f"mean share computed exactly {np.mean(shares):.3f}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*(args or [0, 200]))
