"""Figures and numbers for docs/simulation.md.

Usage:
  OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/plot_simulation.py [MODEL] [--out docs/figures]

Draws, for one structure at 3 and 6 Å, the radially averaged amplitude spectra of target, input and half maps
and the half-map FSC (sim_spectra_3A.png, sim_spectra_6A.png); prints the FSC-0.143 resolution of simulated half
maps against the requested one (3, 4.5, 6 Å; 5 seeds each) and the B recovered from spectra with and without an
extra B. MODEL defaults to 1a28 from $DENSHARP_CORPUS, else a synthetic helix.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

import numpy as np


def _model(path: str | None):
    from densharp.simulate import load_structure

    if path is None:
        root = os.environ.get("DENSHARP_CORPUS", "")
        hits = glob.glob(os.path.join(root, "structures", "*", "1a28.cif.gz"))
        path = hits[0] if hits else None
    if path is None:
        sys.path.insert(0, str(Path(__file__).parent.parent / "tests" / "simulate"))
        from conftest import helix_structure

        return "synthetic helix", helix_structure(n_res=200)
    return Path(path).name.split(".")[0], load_structure(path)[0]


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from densharp.fourier import resolution_shells, shell_amplitudes
    from densharp.metrics.fsc import fsc_curve
    from densharp.simulate.degrade import target_fsc
    from densharp.simulate.density import PreparedModel, simulate_map
    from densharp.simulate.pairs import PairConfig, make_pair

    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("--out", type=Path, default=Path("docs/figures"))
    args = ap.parse_args()
    name, st = _model(args.model)
    pm = PreparedModel(st)
    print(f"structure: {name} ({pm.n_atoms} atoms)")

    def cfg_for(d: float) -> PairConfig:
        return PairConfig(
            d_input_range_A=(d, d),
            voxel_size_range_A=(1.0, 1.0),
            box_zyx=(80, 80, 80),
            rotate=False,
            solvent_fraction=0.0,
            b_global_range_A2=(30.0, 30.0),
            b_local_range_A2=(40.0, 40.0),
            fsc_steepness_range=(8.0, 8.0),
            cut_factor_range=(0.95, 0.95),
        )

    for d in (3.0, 4.5, 6.0):
        got = [
            fsc_curve(p.half1, p.half2).resolution_at(0.143)
            for p in (make_pair(pm, cfg_for(d), 0, i) for i in range(5))
        ]
        print(
            f"requested {d:.1f} Å: FSC-0.143 of half maps {np.mean(got):.2f} ± {np.std(got):.2f} Å (5 seeds; {', '.join(f'{g:.2f}' for g in got)})"
        )

    m0 = simulate_map(pm, 1.0, None)
    sh = resolution_shells(m0.shape_zyx, m0.voxel_size_xyz_A)
    s, a0 = shell_amplitudes(m0, sh)
    for b in (20.0, 50.0, 100.0):
        _, a1 = shell_amplitudes(simulate_map(pm, 1.0, None, b_extra_A2=b), sh)
        ok = (s > 0.05) & (s < 0.4) & (a0 > 0) & (a1 > 0)
        fit = -np.polyfit(s[ok] ** 2 / 4, np.log(a1[ok] / a0[ok]), 1)[0]
        print(f"extra B {b:.0f} Å²: recovered {fit:.1f} Å² ({100 * (fit - b) / b:+.1f} %)")

    args.out.mkdir(parents=True, exist_ok=True)
    for d in (3.0, 6.0):
        p = make_pair(pm, cfg_for(d), 0, 0)
        shells = resolution_shells(p.target.shape_zyx, p.target.voxel_size_xyz_A)
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        for label, m, style in (
            ("target", p.target, "-"),
            ("input", p.input, "-"),
            ("half 1", p.half1, "--"),
            ("half 2", p.half2, ":"),
        ):
            s, a = shell_amplitudes(m, shells)
            ax1.semilogy(s[1:], a[1:], style, label=label)
        ax1.axvline(1 / d, color="grey", lw=0.8)
        ax1.axvline(1 / p.d_target_A, color="grey", lw=0.8, ls="--")
        ax1.set_xlabel("spatial frequency s (1/Å)")
        ax1.set_ylabel("radially averaged |F|")
        ax1.set_title(f"{name}: spectra, input {d:g} Å, target {p.d_target_A:.1f} Å")
        ax1.legend()
        fsc = fsc_curve(p.half1, p.half2, shells=shells)
        ax2.plot(fsc.s_invA[1:], fsc.fsc[1:], label="half-map FSC")
        ax2.plot(fsc.s_invA[1:], target_fsc(fsc.s_invA[1:], d, p.meta["fsc_steepness"]), "--", label="target FSC curve")
        ax2.axhline(0.143, color="grey", lw=0.8)
        ax2.axvline(1 / d, color="grey", lw=0.8)
        ax2.set_xlabel("spatial frequency s (1/Å)")
        ax2.set_ylabel("FSC")
        ax2.set_title(f"FSC 0.143 at {fsc.resolution_at(0.143):.2f} Å (requested {d:g} Å)")
        ax2.legend()
        fig.tight_layout()
        out = args.out / f"sim_spectra_{d:g}A.png"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
