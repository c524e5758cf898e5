"""The sample market, defined once: which data each sample learnware is trained on.

Used by ``build.py`` (to make the zips) and by ``examples/demo.py`` (to make a
user task from the held-out rows). Everything comes from scikit-learn's bundled
datasets and fixed seeds, so it rebuilds byte-for-byte on the same versions.
"""

from __future__ import annotations

import numpy as np

SEED = 0
# The dock's kernel gamma for this market: the median heuristic on digits pixels
# (1 / median squared distance between rows is about 1/2300), rounded.
GAMMA = 0.0005
# digits learnwares: the two main classes get 40% each, two minor classes 10% each
DIGITS_CLASS_SETS = [(0, 1, 2, 3), (2, 3, 4, 5), (4, 5, 6, 7), (6, 7, 8, 9), (8, 9, 0, 1), (1, 3, 5, 7)]
DIGITS_RATIOS = (0.4, 0.4, 0.1, 0.1)
DIGITS_PER_LEARNWARE = 300


def digits_split():
    """Train/test rows of load_digits (train: the market; test: users)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.4, random_state=SEED, stratify=y)


def skewed_sample(X, y, classes, ratios, n, rng):
    """Rows of X with the given class mix (sampled with replacement only if a class runs short)."""
    idx = []
    for c, r in zip(classes, ratios):
        pool = np.flatnonzero(y == c)
        k = int(round(r * n))
        idx.append(rng.choice(pool, size=k, replace=k > len(pool)))
    idx = np.concatenate(idx)
    rng.shuffle(idx)
    return X[idx], y[idx]


def digits_learnware_data():
    """[(name, classes, X, y)] for the digits learnwares."""
    Xtr, _, ytr, _ = digits_split()
    rng = np.random.default_rng(SEED)
    out = []
    for classes in DIGITS_CLASS_SETS:
        X, y = skewed_sample(Xtr, ytr, classes, DIGITS_RATIOS, DIGITS_PER_LEARNWARE, rng)
        name = "digits-" + "".join(str(c) for c in classes)
        out.append((name, classes, X, y))
    return out


def digits_user(classes=(2, 3, 4, 5, 0, 1), ratios=(0.3, 0.3, 0.1, 0.1, 0.1, 0.1), n=400, seed=1):
    """A user task from held-out digits rows: 6 classes, two of them dominant."""
    _, Xte, _, yte = digits_split()
    return skewed_sample(Xte, yte, classes, ratios, n, np.random.default_rng(seed))
