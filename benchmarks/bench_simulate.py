"""Pairs per second from densharp.simulate.make_pair for 64³ boxes: one core, then two worker processes.

Usage:
  OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_simulate.py [MODEL ...] [--n 60]

Without MODEL it uses a few corpus structures from $DENSHARP_CORPUS when present, else a
synthetic 400-residue helix bundle. Each process is pinned to one CPU (so scipy.fft uses one thread).
"""

from __future__ import annotations

import argparse
import glob
import multiprocessing as mp
import os
import sys
import time

import numpy as np

DEFAULT_NAMES = ("1a28", "1BD2", "3KPR", "19hc")


def _models(args: argparse.Namespace) -> list[str]:
    if args.models:
        return args.models
    root = os.environ.get("DENSHARP_CORPUS", "")
    found = []
    for n in DEFAULT_NAMES:
        found += glob.glob(os.path.join(root, "structures", "*", f"{n}.cif.gz"))
    return found


def _prepare(paths: list[str]):
    from densharp.simulate import load_structure
    from densharp.simulate.density import PreparedModel

    if not paths:
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "simulate"))
        from conftest import helix_structure  # synthetic fallback

        return [("synthetic-helix", PreparedModel(helix_structure(n_res=400)))]
    return [(os.path.basename(p), PreparedModel(load_structure(p)[0])) for p in paths]


def _worker(job: tuple[list[str], int, int, int]) -> float:
    paths, cpu, start, n = job
    os.sched_setaffinity(0, {cpu})
    from densharp.simulate.pairs import PairConfig, make_pair

    models = _prepare(paths)
    cfg = PairConfig(box_zyx=(64, 64, 64))
    make_pair(models[0][1], cfg, 0, 10**6)  # warm-up
    t = time.perf_counter()
    for i in range(start, start + n):
        make_pair(models[i % len(models)][1], cfg, 0, i)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*")
    ap.add_argument("--n", type=int, default=60, help="pairs per process")
    args = ap.parse_args()
    paths = _models(args)
    cpus = sorted(os.sched_getaffinity(0))
    from densharp.simulate.pairs import PairConfig, make_pair

    os.sched_setaffinity(0, {cpus[0]})
    models = _prepare(paths)
    cfg = PairConfig(box_zyx=(64, 64, 64))
    print(f"models: {', '.join(f'{n} ({m.n_atoms} atoms)' for n, m in models)}")
    for name, m in models:
        make_pair(m, cfg, 0, 10**6)
        t = time.perf_counter()
        k = max(5, args.n // len(models))
        for i in range(k):
            make_pair(m, cfg, 0, i)
        dt = time.perf_counter() - t
        print(f"  {name}: {k / dt:.1f} pairs/s (1 core)")
    t = time.perf_counter()
    for i in range(args.n):
        make_pair(models[i % len(models)][1], cfg, 0, i)
    dt1 = time.perf_counter() - t
    print(f"1 core: {args.n / dt1:.1f} pairs/s (64³ boxes, {args.n} pairs)")
    os.sched_setaffinity(0, set(cpus))
    nproc = min(2, len(cpus))
    ctx = mp.get_context("fork")
    with ctx.Pool(nproc) as pool:
        t = time.perf_counter()
        times = pool.map(_worker, [(paths, cpus[j % len(cpus)], j * args.n, args.n) for j in range(nproc)])
        wall = time.perf_counter() - t
    total = nproc * args.n
    print(
        f"{nproc} processes: {total / max(times):.1f} pairs/s steady state "
        f"({total / wall:.1f} incl. start-up and model loading; per-process {np.round([args.n / x for x in times], 1).tolist()})"
    )


if __name__ == "__main__":
    main()
