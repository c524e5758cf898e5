"""The torch paths on CUDA against CPU, same inputs: table and image spec fitting, the NNGP kernel.

Runs where ``torch.cuda.is_available()``; elsewhere it measures nothing and leaves the last
results in place (``make bench`` on a CPU machine).
Each row: the CPU time, the CUDA time (after one warm-up call, synchronised), their ratio, and how
far the results are apart (table: the spec's points; image: the RKMEs' MMD^2 under the NNGP
kernel relative to their self product; kernel: the largest entry difference). The device is
always explicit (``device="cuda"``); nothing falls back silently.

Run: ``python benchmarks/bench_cuda.py [--out DIR]`` (results to benchmarks/results/cuda.{json,md}).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import report  # noqa: E402

from lwdock.spec.nngp import nngp_kernel, weighted_inner_many  # noqa: E402
from lwdock.spec.rkme_image import RKMEImageSpec  # noqa: E402
from lwdock.spec.rkme_table import RKMETableSpec  # noqa: E402


def _timed(fn, sync) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    fn()  # warm-up: CUDA context, kernels, allocator
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t0, out


def _images(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(4, 3, 32, 32)).astype(np.float32)
    return base[rng.integers(4, size=n)] + 0.5 * rng.normal(size=(n, 3, 32, 32)).astype(np.float32)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="cuda")
    args = ap.parse_args()
    rows: list[dict] = []
    if not torch.cuda.is_available():  # keep the figures of the last machine that had one
        print("no CUDA device here: nothing measured; benchmarks/results/cuda.* left as they are")
        return

    def sync() -> None:
        torch.cuda.synchronize()

    def row(case: str, cpu: float, gpu: float, diff: float, what: str) -> None:
        rows.append({"case": case, "cpu_s": cpu, "cuda_s": gpu, "cpu/cuda": cpu / gpu, "difference": diff, "measure": what})
        print(rows[-1], flush=True)

    X = np.random.default_rng(0).normal(size=(50_000, 32)) @ np.random.default_rng(1).normal(size=(32, 32))
    cpu, a = _timed(lambda: RKMETableSpec(K=100, random_state=0, device="cpu").fit(X), lambda: None)
    gpu, b = _timed(lambda: RKMETableSpec(K=100, random_state=0, device="cuda").fit(X), sync)
    row("table spec fit, 50,000 x 32, K=100", cpu, gpu, float(np.abs(a.z_ - b.z_).max()), "max |z_cpu - z_cuda|")

    imgs = _images(2_000, 2)
    fast = dict(K=50, steps=100, n_models=4, net_width=32, batch_size=512, random_state=0)
    cpu, a = _timed(lambda: RKMEImageSpec(**fast, device="cpu").fit(imgs), lambda: None)
    gpu, b = _timed(lambda: RKMEImageSpec(**fast, device="cuda").fit(imgs), sync)
    za, ba, zb, bb = a.z_, a.beta_, b.z_, b.beta_
    aa, ab = weighted_inner_many(za, ba, [(za, ba), (zb, bb)])
    bbv = weighted_inner_many(zb, bb, [(zb, bb)])[0]
    row("image spec fit, 2,000 x 3x32x32, K=50, 100 steps", cpu, gpu, float((aa - 2 * ab + bbv) / aa),
        "MMD^2(cpu spec, cuda spec) / <cpu, cpu>")

    A = _images(400, 3)
    cpu, ka = _timed(lambda: nngp_kernel(A, device="cpu"), lambda: None)
    gpu, kb = _timed(lambda: nngp_kernel(A, device="cuda"), sync)
    row("NNGP kernel, 400 x 400 images", cpu, gpu, float(np.abs(np.asarray(ka) - np.asarray(kb)).max()),
        "max |K_cpu - K_cuda|")
    notes = (f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}; CPU side: torch with "
             f"{torch.get_num_threads()} threads and numpy on the same machine. One warm-up call each, then one "
             "timed call (synchronised).")
    report(args.name, "torch paths on CUDA vs CPU", rows, ["case", "cpu_s", "cuda_s", "cpu/cuda", "difference",
                                                          "measure"], notes)


if __name__ == "__main__":
    main()
