"""The job selector's herding (issue 16: "it does not need 15 s"): the buffered single-thread loop
of ``greedy_herding`` picks bit for bit what the straightforward loop it replaced picks."""

from __future__ import annotations

import time

import numpy as np
import pytest

from lwdock.spec.kernels import rbf, rbf_kernel
from lwdock.spec.rkme_table import RKMETableSpec, greedy_herding


def herding_reference(spec: RKMETableSpec, T: int, random_state=None, noise_std: float = 0.25, per_point: int = 100):
    """RKMETableSpec.herding as it was (162bc56): one rbf() call per pick."""
    gamma = spec.kernel_gamma()
    cand = spec.sample(per_point * T, random_state=random_state, noise_std=noise_std)
    f = rbf_kernel(cand, spec.z_, gamma) @ spec._positive_weights()
    c_sq = np.einsum("ij,ij->i", cand, cand)
    acc = np.zeros(cand.shape[0])
    picks = np.empty(T, dtype=np.int64)
    for t in range(T):
        j = int(np.argmax((t + 1) * f - acc))
        picks[t] = j
        acc += rbf(cand, cand[j : j + 1], gamma, B_sq=c_sq[j : j + 1], A_sq=c_sq)[:, 0]
    return cand[picks]


def _spec(d: int, seed: int, gamma=None) -> RKMETableSpec:
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(c, 1.0, size=(400, d)) for c in rng.normal(0, 3, size=(3, d))])
    return RKMETableSpec(K=40, gamma=gamma, random_state=seed).fit(X)


@pytest.mark.parametrize("d,T,seed,noise,per_point,gamma", [
    (20, 120, 0, 0.25, 100, None),   # the table default
    (3, 200, 1, 0.25, 100, 0.5),     # a narrow kernel: picks spread out
    (8, 60, 2, 0.02, 10, None),      # the text settings (embeddings: small noise, 10 per point)
    (1, 50, 3, 0.0, 7, 2.0),         # no noise: many identical candidates, ties go to the first
])
def test_herding_picks_exactly_what_the_straightforward_loop_picks(d, T, seed, noise, per_point, gamma):
    spec = _spec(d, seed, gamma)
    new = spec.herding(T, random_state=seed + 10, noise_std=noise, per_point=per_point)
    old = herding_reference(spec, T, random_state=seed + 10, noise_std=noise, per_point=per_point)
    assert new.shape == (T, d)
    np.testing.assert_array_equal(new, old)


def test_greedy_herding_on_a_hand_computed_case():
    cand = np.array([[0.0], [0.1], [5.0], [5.05], [10.0]])
    f = np.array([0.9, 1.0, 0.8, 0.7, 0.1])
    picks = greedy_herding(cand, f, gamma=1.0, T=3)
    assert picks[0] == 1  # the highest density first
    assert picks[1] == 2  # then the best point far from it, not its neighbour 0
    # third: 3 f - acc = [2.7-0.990, 3.0-1.0, 2.4-1.0, 2.1-0.998, 0.3-0] -> point 1 again (a pick may repeat)
    assert picks.tolist() == [1, 2, 1]


def _measure() -> None:
    """Before/after in one run: ``.venv/bin/python tests/test_batch_herding.py`` (figures in docs/batch.md)."""
    from test_reuse_market import Market

    from lwdock.reuse.job_selector import JobSelectorReuser

    rng = np.random.default_rng(0)
    spec = RKMETableSpec(random_state=0).fit(rng.normal(size=(3000, 20)))
    for T in (200, 1000):
        t0 = time.perf_counter()
        old = herding_reference(spec, T, random_state=1)
        a = time.perf_counter() - t0
        t0 = time.perf_counter()
        new = spec.herding(T, random_state=1)
        b = time.perf_counter() - t0
        print(f"herding({T}), d=20, K={spec.z_.shape[0]}: before {a:.2f} s, after {b:.2f} s, {a / b:.1f}x, "
              f"identical={np.array_equal(old, new)}")
    market = Market(seed=0, n_learnwares=5)
    specs = [RKMETableSpec(random_state=i).fit(X) for i, X in enumerate(market.train)]
    new_herding = RKMETableSpec.herding
    for weights, label in ((None, "uniform weights"), ([0.96, 0.01, 0.01, 0.01, 0.01], "one weighing 0.96")):
        runs = []
        for herd in (herding_reference, new_herding):
            RKMETableSpec.herding = herd
            t0 = time.perf_counter()
            r = JobSelectorReuser(market.predictors(), specs, n_classes=10, weights=weights).fit()
            runs.append((time.perf_counter() - t0, r.herded_))
        RKMETableSpec.herding = new_herding
        print(f"job selector fit, no data, 5 learnwares, {label}: before {runs[0][0]:.2f} s, after {runs[1][0]:.2f} s, "
              f"{runs[0][0] / runs[1][0]:.1f}x, identical={np.array_equal(runs[0][1], runs[1][1])}")


if __name__ == "__main__":
    _measure()
