"""Where is the shipped VAE uncertain? Per-voxel SD across samples vs how well the input determines the density.

Simulates the bundled test-split structure (3A4R chain A; its B-factors are assigned 15 Å² at the centroid rising
to 60 Å² at the rim, so the surface is blurrier) at 3.5 Å with an extra global B and half-map noise, sharpens it
with `vae-em` drawing N samples, and reads the SD map at every atom. Atoms are grouped into the well-determined
core (B < 30 Å²) and the exposed rim (B > 45 Å²), and into main chain (N, CA, C, O) and side chains beyond CB.
SD is reported absolute and relative to the output density at the atom. Calibration: the same structure simulated
without the extra B (the target at 2 Å) gives the real error |mean - target| of the sharpened map (both z-scored
inside the molecule mask); the script prints the rank correlation of SD with that error over mask voxels and the
mean error per SD quintile (an informative SD has errors rising with it). Writes docs/figures/vae_uncertainty.png.

Run: python benchmarks/bench_uncertainty.py [--samples 16]
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import numpy as np

from densharp.ml.sharpen import load_model, sharpen_learned
from densharp.simulate.degrade import add_half_map_noise
from densharp.simulate.density import simulate_map
from densharp.simulate.structure import load_structure

FIG = Path(__file__).resolve().parent.parent / "docs" / "figures" / "vae_uncertainty.png"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--model", default="vae-em", help="shipped VAE name or a .safetensors path")
    p.add_argument("--resolution", type=float, default=3.5)
    p.add_argument("--b-extra", type=float, default=40.0)
    args = p.parse_args()
    path = resources.files("densharp").joinpath("data/examples/3a4rA.pdb.gz")
    with resources.as_file(path) as f:
        st, _ = load_structure(f, seed=0)
    clean = simulate_map(st, 1.0, d_min_A=2.0, b_extra_A2=args.b_extra, padding_A=10.0)
    target = simulate_map(st, 1.0, d_min_A=2.0, b_extra_A2=0.0, padding_A=10.0)
    assert target.data_zyx.shape == clean.data_zyx.shape
    full, _, _ = add_half_map_noise(clean, args.resolution, np.random.default_rng(0))
    model, meta = load_model(args.model)
    res = sharpen_learned(full, model, meta, args.resolution, samples=args.samples, seed=0)
    assert res.sd is not None
    sd, mean = res.sd.data_zyx, res.map.data_zyx
    ox, oy, oz = full.origin_xyz_A
    rows = []
    for cra in st[0].all():
        a = cra.atom
        i = round((a.pos.z - oz) / 1.0), round((a.pos.y - oy) / 1.0), round((a.pos.x - ox) / 1.0)
        if all(0 <= i[k] < sd.shape[k] for k in range(3)):
            main = a.name in ("N", "CA", "C", "O")
            side = not main and a.name != "CB"
            rows.append((a.b_iso, main, side, sd[i], mean[i]))
    b = np.array([r[0] for r in rows])
    is_main = np.array([r[1] for r in rows])
    is_side = np.array([r[2] for r in rows])
    s = np.array([r[3] for r in rows])
    dens = np.array([r[4] for r in rows])
    rel = s / np.maximum(np.abs(dens), 1e-6)
    groups = {
        "core (B < 30 Å²)": b < 30,
        "rim (B > 45 Å²)": b > 45,
        "main chain": is_main,
        "side chains (beyond CB)": is_side,
    }
    solvent = sd[res.map.data_zyx < np.percentile(mean, 50)].mean()
    print(
        f"3A4R chain A, input {args.resolution} Å + B {args.b_extra} Å² + half-map noise; {args.model}, {args.samples} samples"
    )
    print(f"{'atoms':26s} {'n':>5s} {'mean SD':>10s} {'SD / density':>13s}")
    for name, sel in groups.items():
        print(f"{name:26s} {sel.sum():5d} {s[sel].mean():10.4g} {rel[sel].mean():13.3f}")
    print(f"{'solvent-like voxels':26s} {'':5s} {solvent:10.4g}")
    print(
        f"Spearman-like rank correlation of SD with atom B: {np.corrcoef(np.argsort(np.argsort(b)), np.argsort(np.argsort(s)))[0, 1]:.3f}"
    )

    # calibration against the real error, inside the molecule (target above 10 % of its maximum, dilated by
    # the smoothing of the input resolution so side-chain tips and their surroundings count)
    from scipy.ndimage import binary_dilation

    t = target.data_zyx
    mask = binary_dilation(t > 0.1 * t.max(), iterations=2)

    def z(a: np.ndarray) -> np.ndarray:
        return (a - a[mask].mean()) / a[mask].std()

    err = np.abs(z(mean) - z(t))[mask]
    sdm = sd[mask] / mean[mask].std()  # SD in the same (z-score) units as the error
    rank = np.corrcoef(np.argsort(np.argsort(sdm)), np.argsort(np.argsort(err)))[0, 1]
    q = np.quantile(sdm, [0.2, 0.4, 0.6, 0.8])
    which = np.searchsorted(q, sdm)
    print(
        f"calibration over {mask.sum()} molecule voxels (z-score units): rank correlation of SD with |error| {rank:.3f}"
    )
    print(f"{'SD quintile':12s} {'mean SD':>8s} {'mean |error|':>13s}")
    for k in range(5):
        sel = which == k
        print(f"{k + 1:<12d} {sdm[sel].mean():8.4f} {err[sel].mean():13.4f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(12, 3.8), dpi=110)
    k = sd.shape[0] // 2
    ax[0].imshow(mean[k], origin="lower", cmap="gray")
    ax[0].set_title(f"VAE mean, section z={k}")
    im = ax[1].imshow(sd[k], origin="lower", cmap="magma")
    ax[1].set_title("per-voxel SD across samples")
    fig.colorbar(im, ax=ax[1], fraction=0.046)
    for a_ in ax[:2]:
        a_.set_xlabel("x (voxel)")
        a_.set_ylabel("y (voxel)")
    ax[2].scatter(b, rel, s=4, alpha=0.5)
    ax[2].set_xlabel("atom B-factor (Å²)")
    ax[2].set_ylabel("SD / density at atom")
    ax[2].set_title("uncertainty vs how blurred the input is")
    fig.tight_layout()
    FIG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIG)
    print(f"wrote {FIG}")


if __name__ == "__main__":
    main()
