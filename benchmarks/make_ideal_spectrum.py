"""Make the reference 'ideal map' spectrum auto-B sharpens towards (densharp.filters.ideal_spectrum).

Simulates noise-free model maps (2 Å, the atoms' own B-factors, no extra blur; 64³ boxes of ~1 Å voxels centred
on a random atom, as the quality benchmark does) for every other structure of the *train* split, two boxes each,
takes each box's radially averaged log amplitude, removes its mean over 0.1–0.4 1/Å, and prints the median
over boxes on a fixed grid of spatial frequencies. The printed table is pasted into
``src/densharp/filters/ideal_spectrum.py``.

Run: python benchmarks/make_ideal_spectrum.py --corpus /work/corpus
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from densharp.fourier import resolution_shells, rfft_map
    from densharp.simulate.corpus_pairs import read_corpus_manifest
    from densharp.simulate.density import PreparedModel
    from densharp.simulate.pairs import PairConfig, make_pair
    from densharp.simulate.structure import load_structure

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("/work/corpus"))
    ap.add_argument("--seed", type=int, default=777)
    args = ap.parse_args(argv)
    grid = np.round(np.arange(0.02, 0.4501, 0.01), 4)
    curves = []
    for si, e in enumerate(read_corpus_manifest(args.corpus, "train")[::2]):
        st, _ = load_structure(e["path"], seed=0)
        pm = PreparedModel(st)
        for k in range(2):
            cfg = PairConfig(
                d_input_range_A=(3.0, 3.0),
                d_target_A=2.0,
                box_zyx=(64, 64, 64),
                voxel_size_range_A=(0.95, 1.05),
                solvent_fraction=0.0,
            )
            t = make_pair(pm, cfg, args.seed, si * 10 + k).target
            sh = resolution_shells(t.shape_zyx, t.voxel_size_xyz_A)
            d = t.data_zyx - t.data_zyx.mean()
            power = sh.sum(np.abs(rfft_map(d)) ** 2) / np.maximum(sh.count(), 1)
            ok = power > 0
            ln_a = np.interp(grid, sh.centres_invA[ok], 0.5 * np.log(power[ok]))
            ln_a -= ln_a[(grid >= 0.1) & (grid <= 0.4)].mean()
            curves.append(ln_a)
    med = np.median(np.asarray(curves), axis=0)
    print(f"# {len(curves)} boxes from the train split, seed {args.seed}")
    print("IDEAL_S_INVA = (" + ", ".join(f"{s:g}" for s in grid) + ")")
    print("IDEAL_LN_AMPLITUDE = (" + ", ".join(f"{v:.4f}" for v in med) + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
