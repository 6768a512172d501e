"""Crystal maps: is a molecule that straddles the unit-cell faces sharpened as one piece?

Simulates the bundled test-split structure (3A4R chain A) in a P1 cell with the molecule shifted across a cell face
(`simulate_crystal`: X-ray form factors, resolution-dependent phase errors with FOM weighting, missing reflections)
at 2.5 Å, sharpens the cell map with the shipped X-ray model (`unet-xray`), with
periodic tiling and, for comparison, without it, and compares masked RSCC to the error-free 2.2 Å cell map (the training target resolution for this input) in the
edge region (within 6 Å of a cell face) and in the interior. Prints one table.

Run: python benchmarks/bench_crystal_edge.py
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from densharp.fourier import lowpass
from densharp.metrics.rscc import rscc
from densharp.ml.registry import shipped_card
from densharp.ml.sharpen import load_model, sharpen_learned
from densharp.simulate.crystal import simulate_crystal
from densharp.simulate.structure import load_structure


def main() -> None:
    path = resources.files("densharp").joinpath("data/examples/3a4rA.pdb.gz")
    with resources.as_file(path) as f:
        st, _ = load_structure(f, seed=0)
    d_in = 2.5
    cs = simulate_crystal(st, d_in, np.random.default_rng(0), voxel_size_A=1.0, target_d_min_A=2.2)
    assert cs.target is not None
    inp, target = cs.map, cs.target
    name = "unet-xray"
    model = load_model(shipped_card(name))
    smooth = lowpass(target, 4.0).data_zyx
    mol = (smooth >= smooth.mean() + 0.5 * smooth.std()).astype(np.float32)
    edge = np.zeros(inp.shape_zyx, dtype=bool)
    w = [round(6.0 / v) for v in inp.voxel_size_zyx_A]
    for ax in range(3):
        idx = [slice(None)] * 3
        idx[ax] = np.r_[0 : w[ax], inp.shape_zyx[ax] - w[ax] : inp.shape_zyx[ax]]
        edge[tuple(idx)] = True
    print(f"cell {tuple(round(c, 1) for c in inp.cell[:3])} Å, grid {inp.shape_xyz}, model {name}, input {d_in} Å")
    print(f"molecule voxels at the faces: {mol[edge].sum():.0f} of {mol.sum():.0f}")
    print(f"{'map':28s} {'RSCC edge':>10s} {'RSCC interior':>14s} {'difference':>11s}")
    rows = [("input (phase errors, FOM)", inp)]
    for periodic in (True, False):
        res = sharpen_learned(inp, model, d_in, periodic=periodic)  # the learned step of the MTZ path
        rows.append((f"{name}, periodic={periodic}", res.map))
    for label, m in rows:
        r_edge = rscc(m, target, mol * edge)
        r_int = rscc(m, target, mol * ~edge)
        print(f"{label:28s} {r_edge:10.4f} {r_int:14.4f} {r_edge - r_int:11.4f}")


if __name__ == "__main__":
    main()
