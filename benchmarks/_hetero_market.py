"""A heterogeneous table market: one synthetic housing-like world seen through many named,
engineered column *views* (income in $10k or in dollars or as a log, distance to the coast in
km or miles, total rooms or rooms per household, ...). Learnwares and users each hold a few
quantities, each through one view; users' columns come in another order, and half the users
name them with paraphrases no learnware uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# quantity -> list of (name, paraphrase, transform of the base value)
VIEWS = {
    "income": [("median income ($10k)", "household income in tens of thousands of dollars", lambda v: v),
               ("median income (USD)", "income of the household in dollars", lambda v: v * 1e4),
               ("log median income", "logarithm of household income", lambda v: np.log(v))],
    "age": [("house age (years)", "age of the building in years", lambda v: v),
            ("house age (decades)", "building age in decades", lambda v: v / 10)],
    "rooms": [("rooms per household", "average number of rooms per home", lambda v: v),
              ("total rooms in block", "rooms in the block (total)", lambda v: v * 300)],
    "bedrooms": [("bedrooms per room", "fraction of rooms that are bedrooms", lambda v: v)],
    "population": [("block population", "number of residents in the block", lambda v: v),
                   ("log block population", "logarithm of the number of residents", lambda v: np.log(v))],
    "occupancy": [("persons per household", "mean household size (persons)", lambda v: v)],
    "latitude": [("latitude", "latitude (degrees north)", lambda v: v)],
    "longitude": [("longitude", "longitude (degrees east)", lambda v: v)],
    "coast": [("distance to the coast (km)", "km to the nearest coastline", lambda v: v),
              ("distance to the coast (miles)", "miles to the shore", lambda v: v / 1.609),
              ("log distance to the coast", "logarithm of the distance to the shore", lambda v: np.log(v))],
}
QUANTITIES = list(VIEWS)


@dataclass
class Region:
    income: float
    age: float
    lat: float
    lon: float
    coast: float
    premium: float


class HousingWorld:
    def __init__(self, n_regions: int = 8, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.regions = [Region(rng.uniform(2, 7), rng.uniform(10, 45), rng.uniform(33, 41), rng.uniform(-123, -115),
                               rng.uniform(2, 150), rng.normal(0, 0.4)) for _ in range(n_regions)]

    def sample(self, regions: list[int], ratios: list[float], n: int, rng: np.random.Generator):
        """Base quantities (n x 9, QUANTITIES order) and the target (median value, $100k)."""
        counts = rng.multinomial(n, np.asarray(ratios) / np.sum(ratios))
        rows, ys = [], []
        for r, c in zip(regions, counts):
            g = self.regions[r]
            income = np.clip(rng.lognormal(np.log(g.income), 0.35, c), 0.5, 15)
            age = np.clip(rng.normal(g.age, 8, c), 1, 52)
            rooms = np.clip(rng.normal(4.5 + 0.3 * income, 0.8, c), 2, 10)
            bedrooms = np.clip(rng.normal(0.22 - 0.01 * income, 0.03, c), 0.1, 0.4)
            population = np.clip(rng.lognormal(7, 0.5, c), 50, 20000)
            occupancy = np.clip(rng.normal(3 - 0.1 * income, 0.5, c), 1, 6)
            lat, lon = rng.normal(g.lat, 0.5, c), rng.normal(g.lon, 0.5, c)
            coast = np.clip(rng.lognormal(np.log(g.coast), 0.4, c), 0.5, 400)
            y = (0.45 * income + 0.6 * np.exp(-coast / 40) - 0.01 * age + 0.15 * rooms - 3 * bedrooms
                 - 0.05 * occupancy + 0.05 * np.log(population) + g.premium + rng.normal(0, 0.25, c))
            rows.append(np.column_stack([income, age, rooms, bedrooms, population, occupancy, lat, lon, coast]))
            ys.append(y)
        order = rng.permutation(n)
        return np.concatenate(rows)[order], np.concatenate(ys)[order]


def draw_views(rng: np.random.Generator, n_quantities: tuple[int, int]) -> list[tuple[str, int]]:
    """(quantity, view index) pairs for a table: a random subset of quantities, one view each."""
    k = int(rng.integers(n_quantities[0], n_quantities[1] + 1))
    qs = rng.choice(len(QUANTITIES), size=k, replace=False)
    return [(QUANTITIES[q], int(rng.integers(len(VIEWS[QUANTITIES[q]])))) for q in qs]


def render(base: np.ndarray, views: list[tuple[str, int]], paraphrase: bool = False) -> tuple[np.ndarray, list[str]]:
    """The table of ``views`` from base quantities, and its column names."""
    cols, names = [], []
    for q, v in views:
        name, alt, fn = VIEWS[q][v]
        cols.append(fn(base[:, QUANTITIES.index(q)]))
        names.append(alt if paraphrase else name)
    return np.column_stack(cols), names
