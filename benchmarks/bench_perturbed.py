"""Perturbed-input benchmark: shipped methods on held-out structures under real-map post-processing.

The set `densharp train` validates on at every evaluation (:func:`densharp.evaluate.perturbed.make_perturbed_set`:
``--cases`` whole 64³ boxes of ``--split`` structures, case k from resolution bin k % 3, each under every
perturbation — none, unfiltered to Nyquist, flattened, over-sharpened, weak low resolution, solvent masked flat,
anisotropic, voxels resampled to 0.6 and 1.6 Å), here for the *shipped* models, each through the user's path
(:func:`densharp.sharpening.sharpen_map`, do-no-harm and fallback included). Per method it prints the table of
:func:`~densharp.evaluate.perturbed.format_perturbed` (masked RSCC against the target beside identity and the
global-filter oracle, the largest drop of a perturbation from its case's unperturbed score, the boxes below
identity) and writes ``bench_perturbed.json`` to ``--out``.

Run: DENSHARP_CORPUS=CORPUS OMP_NUM_THREADS=2 python benchmarks/bench_perturbed.py --methods default,unet,vae
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

METHODS = {"default": None, "autob": "autob", "unet": "unet", "vae": "vae"}


def main(argv: list[str] | None = None) -> int:
    from densharp.errors import InputError
    from densharp.evaluate.perturbed import format_perturbed, make_perturbed_set, score_perturbed
    from densharp.io.atomic import write_json_atomic
    from densharp.sharpening import sharpen_map
    from densharp.simulate.corpus_pairs import corpus_root

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=None, help="corpus folder (default: $DENSHARP_CORPUS)")
    ap.add_argument("--split", default="val", help="corpus split (%(default)s: the set training validates on)")
    ap.add_argument("--cases", type=int, default=3, help="boxes, each under every perturbation (%(default)s)")
    ap.add_argument("--methods", default="default,autob,unet,vae", help=f"comma-separated, from {','.join(METHODS)}")
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--out", type=Path, default=Path("bench_perturbed_out"), help="output folder (%(default)s)")
    args = ap.parse_args(argv)
    try:
        corpus = corpus_root(args.corpus)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    methods = [m for m in args.methods.split(",") if m]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        print(f"error: unknown method(s) {bad}; choose from {','.join(METHODS)}", file=sys.stderr)
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    items = make_perturbed_set(corpus, n=args.cases, split=args.split)
    print(f"{len(items)} boxes ({args.cases} {args.split} cases x {len(items) // max(args.cases, 1)} perturbations), "
          f"{time.perf_counter() - t0:.0f} s to simulate", flush=True)  # fmt: skip
    record: dict[str, object] = {"split": args.split, "cases": args.cases, "methods": {}}
    for name in methods:
        t1 = time.perf_counter()
        used: Counter[str] = Counter()

        def sharpen(m, d, name=name, used=used):  # type: ignore[no-untyped-def]
            try:
                res = sharpen_map(m, d, method=METHODS[name])
            except InputError as exc:  # what a user asking for this method gets is an error: scored as the input
                used[f"error, scored as the input ({str(exc).split(';')[0][:60]})"] += 1
                return m
            used[str(res.record["method"]) + (" (fallback)" if "fallback" in res.record else "")] += 1
            return res.map

        res = score_perturbed(items, sharpen)
        res["methods_used"] = dict(used)
        res["runtime_s"] = round(time.perf_counter() - t1, 1)
        print(f"\n=== {name} (ran: {dict(used)}; {res['runtime_s']:.0f} s)\n{format_perturbed(res)}", flush=True)
        record["methods"][name] = res  # type: ignore[index]
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "bench_perturbed.json", record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
