"""Where in the spectrum a sharpened real cryo-EM map gains or loses against its fitted model.

For one real case (a folder of ``../shared/realdata/fetch_real.py``'s output) and one output map of
``densharp sharpen`` on that case's map, per resolution band inside the model mask: the output's amplitude and the
sharp model density's amplitude relative to the input's (each normalised to the 6-8 Å band), and the masked RSCC
to the restore target when that band of the output is replaced by the input's (above the output's own RSCC: the
band costs; below: the band helps). Targets, mask and RSCC are those of ``benchmarks/bench_real.py``
(:mod:`densharp.evaluate.realdata`).

Run::

    densharp sharpen REALDATA/em_emd0093_hcn4/MAP_m4A.mrc --resolution 3.4 -o OUT.mrc
    PYTHONPATH=src python benchmarks/bench_real_bands.py REALDATA/em_emd0093_hcn4 OUT.mrc
"""

from __future__ import annotations

import argparse
import itertools
import sys

BANDS_A = (1000.0, 20.0, 14.0, 10.0, 8.0, 6.0, 5.0, 4.4, 4.0, 3.7, 3.4, 3.1)


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from densharp.errors import InputError
    from densharp.evaluate.realdata import em_output_on_case
    from densharp.fourier import frequency_grid_invA, irfft_map, rfft_map
    from densharp.metrics.rscc import rscc

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("case", help="a real cryo-EM case folder with a fitted model")
    ap.add_argument("output", help="the sharpened map (on the case map's grid)")
    args = ap.parse_args(argv)
    try:
        case, inp, target, mask, out = em_output_on_case(args.case, args.output)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    d = float(case.resolution_A)  # type: ignore[arg-type]
    s = frequency_grid_invA(inp.shape_zyx, inp.voxel_size_xyz_A)
    f_in, f_out = rfft_map(inp.data_zyx), rfft_map(out.data_zyx)
    pw = {k: np.abs(rfft_map(m.data_zyx * mask)) ** 2 for k, m in (("in", inp), ("out", out), ("tgt", target))}
    edges = [b for b in BANDS_A if b > 0.9 * inp.nyquist_A]
    rows = []
    for lo, hi in itertools.pairwise(edges):
        sel = (s >= 1 / lo) & (s < 1 / hi)
        if not sel.any():
            continue
        swapped = f_out.copy()
        swapped[sel] = f_in[sel]
        r_swap = rscc(inp.with_data(irfft_map(swapped, inp.shape_zyx)), target, mask)
        ratio = {k: float(np.sqrt(pw[k][sel].mean() / pw["in"][sel].mean())) for k in ("out", "tgt")}
        rows.append((lo, hi, ratio, r_swap))
    band_6_8 = (s >= 1 / 8.0) & (s < 1 / 6.0)
    ref = {k: float(np.sqrt(pw[k][band_6_8].mean() / pw["in"][band_6_8].mean())) for k in ("out", "tgt")}
    print(f"{case.name}: d {d:g} Å; masked RSCC to the restore target: input {rscc(inp, target, mask):.4f}, "
          f"output {rscc(out, target, mask):.4f}")  # fmt: skip
    print(f"{'band (Å)':>14}  {'output/input':>12}  {'model/input':>11}  {'RSCC, band from input':>21}")
    for lo, hi, ratio, r_swap in rows:
        band = f"{lo:g}-{hi:g}"
        print(f"{band:>14}  {ratio['out'] / ref['out']:12.2f}  {ratio['tgt'] / ref['tgt']:11.2f}  {r_swap:21.4f}")
    print("ratios inside the model mask, each normalised to its 6-8 Å band")
    return 0


if __name__ == "__main__":
    sys.exit(main())
