"""How strongly the shipped EM model's correction depends on the input's normalised amplitude, on a real map.

The robust per-map normalisation (:mod:`densharp.normalisation`) divides the map by the RMS inside its molecule, so
the network always sees a molecule of unit RMS. This diagnostic multiplies that scale by ``--factors`` (a factor
below 1 shows the network a stronger map, above 1 a weaker one), runs the default ``sharpen_map`` path otherwise
unchanged, and prints the masked RSCC to the case's restore target (the fitted model's sharp density at the map's
resolution, as ``bench_real.py`` scores). It changes a private function for the run only; nothing shipped uses a
factor other than 1.

Run: PYTHONPATH=src python benchmarks/bench_norm_scale.py REALDATA/em_emd0093_hcn4 --factors 0.5,0.7,1,1.4,2
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    import densharp.normalisation as norm
    from densharp.errors import InputError
    from densharp.evaluate.realdata import em_restore_reference, read_case
    from densharp.metrics.rscc import rscc
    from densharp.sharpening import sharpen_map

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("case", help="a real cryo-EM case folder with a fitted model")
    ap.add_argument("--factors", default="0.5,0.7,1,1.4,2", help="comma-separated factors on the normalisation scale")
    args = ap.parse_args(argv)
    try:
        factors = [float(f) for f in args.factors.split(",")]
        if not all(f > 0 for f in factors):
            raise ValueError
    except ValueError:
        print(f"error: --factors {args.factors!r}: give positive numbers separated by commas", file=sys.stderr)
        return 2
    try:
        case = read_case(args.case)
        inp, target, mask = em_restore_reference(case)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    d = float(case.resolution_A)  # type: ignore[arg-type]
    print(f"{case.name}: d {d:g} Å; masked RSCC to the restore target, input {rscc(inp, target, mask):.4f}")
    original = norm._robust_stats
    try:
        for k in factors:

            def scaled(x, v, a=None, k=k):  # type: ignore[no-untyped-def]
                s = original(x, v, a)
                return norm.NormStats(s.offset, s.scale * k)

            norm._robust_stats = scaled  # type: ignore[assignment]
            out = sharpen_map(inp, d)
            print(f"scale x{k:g}: default output {rscc(out.map, target, mask):.4f}")
    finally:
        norm._robust_stats = original  # type: ignore[assignment]
    return 0


if __name__ == "__main__":
    sys.exit(main())
