"""Auto-B on a simulated map: does the Guinier fit find a known extra B, and does sharpening help?

Simulates the bundled test-split structure (3A4R chain A) at 3.5 Å with an extra B of 100 Å², fits B between
10 and 3.5 Å, sharpens, and scores masked RSCC against the same model at 2 Å. The 'known B' is measured as the
difference between the fitted B of the blurred map and of the same map without the extra B (the fit also sees
the atoms' own B-factors and the form-factor fall-off). Also sharpens the map *without* extra B (well resolved: its
B is the intrinsic fall-off) with the default rule (residual B of an ideal map) and the former one (flatten all of
B_fit), which made it worse than the input. Prints one table.

Run: python benchmarks/bench_autob.py
"""

from __future__ import annotations

from importlib import resources

from densharp.filters.bfactor import guinier_fit
from densharp.filters.masks import auto_molecule_mask
from densharp.filters.sharpen import ResidualB, sharpen_autob
from densharp.metrics.rscc import rscc
from densharp.simulate.density import simulate_map
from densharp.simulate.structure import load_structure


def main() -> None:
    path = resources.files("densharp").joinpath("data/examples/3a4rA.pdb.gz")
    with resources.as_file(path) as p:
        st, _record = load_structure(p, seed=0)
    kw = {"voxel_size_A": 1.0, "padding_A": 10.0}
    target = simulate_map(st, d_min_A=2.0, **kw)
    plain = simulate_map(st, d_min_A=3.5, **kw)
    blurred = simulate_map(st, d_min_A=3.5, b_extra_A2=100.0, **kw)
    mask = auto_molecule_mask(target)
    b0 = guinier_fit(plain, 3.5).b_A2
    b1 = guinier_fit(blurred, 3.5).b_A2
    sharp = sharpen_autob(blurred, 3.5)
    print("structure 3A4R chain A (test split), voxel 1.0 Å, box", blurred.shape_xyz)
    print(f"Guinier B (10-3.5 Å), map without extra B : {b0:8.1f} Å²")
    print(f"Guinier B (10-3.5 Å), map with extra B 100: {b1:8.1f} Å²")
    print(f"extra B found                             : {b1 - b0:8.1f} Å²  (error {abs(b1 - b0 - 100):.1f} %)")
    print(f"masked RSCC to 2 Å target, input          : {rscc(blurred, target, mask):.4f}")
    print(f"masked RSCC to 2 Å target, auto-B         : {rscc(sharp.map, target, mask):.4f}")
    print(f"box RSCC to 2 Å target, input / auto-B    : {rscc(blurred, target):.4f} / {rscc(sharp.map, target):.4f}")
    old = sharpen_autob(blurred, 3.5, residual=ResidualB.ZERO)
    print(
        f"masked RSCC, auto-B former rule (B_fit)   : {rscc(old.map, target, mask):.4f}  (B {old.b_sharpen_A2:.1f} Å²)"
    )
    print(f"B applied, default rule (B_fit - B_ideal) : {sharp.b_sharpen_A2:8.1f} Å²")
    new0, old0 = sharpen_autob(plain, 3.5), sharpen_autob(plain, 3.5, residual=ResidualB.ZERO)
    print(
        f"map without extra B: input {rscc(plain, target, mask):.4f}, auto-B {rscc(new0.map, target, mask):.4f} "
        f"(B {new0.b_sharpen_A2:.1f} Å²), former rule {rscc(old0.map, target, mask):.4f} (B {old0.b_sharpen_A2:.1f} Å²)"
    )


if __name__ == "__main__":
    main()
