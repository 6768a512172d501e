"""How much any global filter could gain on a real cryo-EM map, and what mixing the output with its input does.

For one real case (a folder of ``../shared/realdata/fetch_real.py``'s output) and one output map of
``densharp sharpen`` on that case's map, masked RSCC to the restore target (the fitted model's sharp density at
the map's resolution; target and mask as ``benchmarks/bench_real.py``, :mod:`densharp.evaluate.realdata`) of:

- the input and the output as they are;
- each of them *re-profiled*: every thin shell scaled so that its power inside the model mask equals the target's
  (the best a sharpening filter that knew the model's spectrum could do to the amplitudes);
- each of them with the *least-squares gain* per shell (the real, non-negative gain that brings the masked map
  closest to the target in that shell: a Wiener filter that knew the answer);
- the blend ``(1 - λ)·k·input + λ·output`` for λ = 0, 0.1, ..., 1 (``k`` puts the input on the output's level inside
  the mask).

Every oracle here reads the model; none is a method. They bound what a global amplitude filter can reach on this
map (if the input's oracle is barely above the input, the map was already filtered about as well as a filter can)
and show whether the output's changes *of content* help (output's oracle above the input's) or cost.

Run::

    densharp sharpen REALDATA/em_emd0093_hcn4/MAP_m4A.mrc --resolution 3.4 -o OUT.mrc
    PYTHONPATH=src python benchmarks/bench_real_headroom.py REALDATA/em_emd0093_hcn4 OUT.mrc
"""

from __future__ import annotations

import argparse
import sys

#: thin shells, uniform in spatial frequency up to the grid's corner
N_SHELLS = 60


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
    s = frequency_grid_invA(inp.shape_zyx, inp.voxel_size_xyz_A)
    shell = np.minimum((s / (s.max() * (1 + 1e-9)) * N_SHELLS).astype(np.int64), N_SHELLS - 1).ravel()
    f_t = rfft_map(target.data_zyx * mask).ravel()

    def per_shell(v: np.ndarray) -> np.ndarray:
        return np.bincount(shell, v, N_SHELLS)

    def filtered(f: np.ndarray, gain: np.ndarray) -> float:
        g = (f * gain[shell]).reshape(s.shape)
        return rscc(inp.with_data(irfft_map(g, inp.shape_zyx).astype(np.float32)), target, mask)

    def oracles(data: np.ndarray) -> tuple[float, float]:
        f = rfft_map(data).ravel()  # transformed once for both gains
        f_m = rfft_map(data * mask).ravel()
        p_m = per_shell(np.abs(f_m) ** 2)
        # empty shells (no power in the mask) keep a zero gain: there is nothing there to scale
        ok = p_m > 1e-30 * max(float(p_m.max()), 1e-300)
        reprofile = np.where(ok, np.sqrt(per_shell(np.abs(f_t) ** 2) / np.where(ok, p_m, 1.0)), 0.0)
        lsq = np.where(ok, np.clip(per_shell(np.real(f_m * np.conj(f_t))) / np.where(ok, p_m, 1.0), 0.0, None), 0.0)
        return filtered(f, reprofile), filtered(f, lsq)

    a, b = inp.data_zyx.astype(np.float64), out.data_zyx.astype(np.float64)
    k = float(np.sqrt(((b * mask) ** 2).sum() / max(float(((a * mask) ** 2).sum()), 1e-300)))
    print(f"{case.name}: d {float(case.resolution_A):g} Å; masked RSCC to the restore target")  # type: ignore[arg-type]
    print(f"{'':>8}  {'as is':>7}  {'re-profiled':>11}  {'least-squares gain':>18}")
    for name, data in (("input", a), ("output", b)):
        rp, lsq = oracles(data)
        print(f"{name:>8}  {rscc(inp.with_data(data.astype(np.float32)), target, mask):7.4f}  {rp:11.4f}  {lsq:18.4f}")
    lams = np.linspace(0.0, 1.0, 11)
    blend = [rscc(inp.with_data(((1 - lam) * k * a + lam * b).astype(np.float32)), target, mask) for lam in lams]
    print("blend (1-λ)·input + λ·output: " + "  ".join(f"{lam:.1f} {r:.4f}" for lam, r in zip(lams, blend)))
    print(
        f"best λ {lams[int(np.argmax(blend))]:.1f}; the re-profiled and least-squares columns read the model (oracles)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
