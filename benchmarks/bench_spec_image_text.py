"""Image and text specifications: fit time, and search-style NNGP inner products in bulk.

* image spec: 5,000 random-but-structured 3x32x32 images (smooth blobs), default RKMEImageSpec, on
  the CPU with 1 and 2 torch threads, and on CUDA when available;
* text spec: 10,000 generated sentences, MiniLM when lwdock[text] is installed, else hashing-384;
* search-style: <user, spec_i> for 1,000 image specs of K=50 (one bulk pass), warm, with dense
  weights (every pair evaluated) and with the weight sparsity of fitted specs (zero weights skipped).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report  # noqa: E402


def blobs(n: int, seed: int = 0) -> np.ndarray:
    """Smooth random images: a few Gaussian blobs per channel (uint8), so ZCA and the kernel see structure."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    out = np.empty((n, 3, 32, 32), dtype=np.uint8)
    for i in range(n):
        img = np.zeros((3, 32, 32))
        for _ in range(3):
            cy, cx, s = rng.uniform(4, 28), rng.uniform(4, 28), rng.uniform(2, 8)
            img += rng.random((3, 1, 1)) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
        out[i] = np.clip(255 * img / max(img.max(), 1e-9), 0, 255)
    return out


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    words = ("goal match team score market price bank trade gene protein cell virus oven flour bake "
             "the a of is and to in was with for on that").split()
    return [" ".join(rng.choice(words, int(rng.integers(6, 16)))) for _ in range(n)]


def main() -> None:
    import torch

    from lwdock.spec.embedders import MiniLMEmbedder
    from lwdock.spec.nngp import weighted_inner_many
    from lwdock.spec.rkme_image import RKMEImageSpec
    from lwdock.spec.rkme_text import RKMETextSpec

    rows = []
    X = blobs(5000)
    devices = [("cpu", 1), ("cpu", 2)] + ([("cuda", None)] if torch.cuda.is_available() else [])
    fitted = None
    for dev, threads in devices:
        t0 = time.perf_counter()
        spec = RKMEImageSpec(device=dev, n_threads=threads).fit(X)
        secs = time.perf_counter() - t0
        fitted = fitted or spec
        rows.append({"case": f"image spec, 5,000 x 3x32x32, {dev}" + (f" {threads} thread(s)" if threads else ""),
                     "seconds": secs, "note": f"K=50, steps=30, {int((spec.beta_ > 1e-9).sum())} nonzero weights"})

    if MiniLMEmbedder.available():
        emb = "all-MiniLM-L6-v2"
        RKMETextSpec(K=5, embedder=emb).fit(["warm up the model"])  # model load is reported separately below
    else:
        emb = "hashing-384"
    texts = sentences(10_000)
    t0 = time.perf_counter()
    tspec = RKMETextSpec(embedder=emb).fit(texts)
    rows.append({"case": f"text spec, 10,000 sentences, {emb}", "seconds": time.perf_counter() - t0,
                 "note": f"K={tspec.z_.shape[0]}, d={tspec.dim}, model already loaded"})

    rng = np.random.default_rng(1)
    pool = blobs(2000, seed=2).astype(np.float32)
    pool = (pool - pool.mean((0, 2, 3), keepdims=True)) / pool.std((0, 2, 3), keepdims=True)
    user_z, user_b = fitted.z_, fitted.beta_
    nz = max(1, int((fitted.beta_ > 1e-9).sum()))
    # the dense case costs ~25 us per image pair, so it is timed on 100 specs and scaled to 1,000
    for label, sparse, n in (("dense weights (50 of 50 used)", False, 100), (f"fitted sparsity ({nz} of 50 used)", True, 1000)):
        specs = []
        for _ in range(n):
            z = pool[rng.choice(len(pool), 50, replace=False)]
            b = rng.random(50)
            if sparse:
                b[rng.permutation(50)[nz:]] = 0.0
            specs.append((z, b / b.sum()))
        ub = user_b if sparse else np.full(50, 1 / 50)
        for threads in (1, 2):
            weighted_inner_many(user_z, ub, specs[:5], n_threads=threads)  # warm
            t0 = time.perf_counter()
            weighted_inner_many(user_z, ub, specs, n_threads=threads)
            secs = (time.perf_counter() - t0) * (1000 / n)
            note = "one bulk pass, float32 maps, float64 sums" + ("" if n == 1000 else f"; measured on {n} specs, x{1000 // n}")
            rows.append({"case": f"NNGP <user, spec_i>, 1,000 image specs, {label}, {threads} thread(s)",
                         "seconds": secs, "note": note})

    notes = ("2 CPU cores shared with other jobs while measured; no GPU on this machine (no CUDA row). "
             "Search goal: <= 2 s warm on CPU for 1,000 image specs. Text embedder: " + emb + ".")
    report("spec_image_text", "Image and text specifications", rows, ["case", "seconds", "note"], notes)


if __name__ == "__main__":
    main()
