"""Headroom of X-ray extrapolation: what the *true* reflections beyond a truncation would add, per real crystal.

For each X-ray case of ``../shared/realdata`` with data at 2 Å or better (the cases `bench_real.py` truncates),
truncated to 3.0 and 3.5 Å: masked RSCC to the full-resolution data map of the unchanged truncated map and of the
truncated map plus the crystal's own measured reflections out to finer limits (1.15× and 1.3× the truncation in
1/d, and the model's default target, 2.2 Å on its 1.0 Å grid). A perfect extrapolation reaches these numbers; the
learned default's margins in ``docs/real/README.md`` are the part recovered. Grid, mask and reference are those of
``bench_real.py`` (:mod:`densharp.evaluate.realdata`), on the 1.0 Å grid the shipped `unet-xray` runs on.

Run: PYTHONPATH=src python benchmarks/bench_xray_ceiling.py --realdata REALDATA [--cases 2vtq,4hg7]
"""

from __future__ import annotations

import argparse
import sys

CUTS_A = (3.0, 3.5)
GRID_A = 1.0
DEFAULT_TARGET_A = 2.2


def main(argv: list[str] | None = None) -> int:
    from densharp.errors import InputError
    from densharp.evaluate.realdata import (
        _xray_columns,
        coefficient_map,
        coefficients_mtz,
        find_cases,
        grid_limit_A,
        model_mask,
        xray_mode,
    )
    from densharp.io.mtz import mtz_map, read_mtz
    from densharp.metrics.rscc import rscc
    from densharp.simulate.structure import load_structure

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--realdata", required=True, help="folder built by ../shared/realdata/fetch_real.py")
    ap.add_argument("--cases", default="", help="comma-separated parts of case names (default: every usable one)")
    args = ap.parse_args(argv)
    wanted = [w for w in args.cases.split(",") if w] or None
    try:
        found, _ = find_cases(args.realdata, kinds=("xray",), names=wanted)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cases = [c for c in found if xray_mode(c)[0] == "truncate"]
    if not cases:
        print(
            f"error: {args.realdata}: no X-ray case with data at 2 Å or better matches {args.cases!r}", file=sys.stderr
        )
        return 2
    print(f"{'case':<28} {'cut':>4}  {'input':>6}  {'+true to 1.15x':>14}  {'+true to 1.3x':>13}  "
          f"{'+true to 2.2 A':>14}")  # fmt: skip
    for case in cases:
        mtz = read_mtz(case.path("mtz"))  # type: ignore[arg-type]
        f, phi = _xray_columns(case, mtz)
        st = load_structure(case.path("model"))[0] if case.has_model else None  # type: ignore[arg-type]
        for cut in CUTS_A:
            trunc = coefficients_mtz(mtz, f, phi, cut)
            p1 = coefficients_mtz(trunc, "FWT", "PHWT")
            p1.expand_to_p1()  # P1 accepts any grid; the space group's own may refuse this one
            grid = mtz_map(p1, "FWT", "PHWT", GRID_A)
            d_fine = max(float(mtz.resolution_high()), grid_limit_A(grid))
            full = coefficient_map(mtz, grid, d_fine, f, phi)
            if st is not None:
                mask = model_mask(st, grid, periodic=True)
            else:
                from densharp.filters.masks import auto_molecule_mask

                mask = auto_molecule_mask(full)
            row = [rscc(coefficient_map(trunc, grid), full, mask)]
            for t in (cut / 1.15, cut / 1.3, DEFAULT_TARGET_A):
                row.append(rscc(coefficient_map(mtz, grid, max(t, d_fine), f, phi), full, mask))
            gains = "  ".join(f"{v:.3f} ({v - row[0]:+.3f})" for v in row[1:])
            print(f"{case.name:<28} {cut:4.1f}  {row[0]:6.3f}  {gains}")
    print("RSCC inside the model mask against the full-resolution data map (in brackets: gain over the input)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
