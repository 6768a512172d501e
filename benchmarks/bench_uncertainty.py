"""Where is the shipped VAE uncertain, and does its uncertainty predict its real error?

Simulates the bundled test-split structure (3A4R chain A; its B-factors are assigned 15 Å² at the centroid rising to
60 Å² at the rim, so the surface is blurrier) at 3.5 Å with an extra global B and half-map noise, sharpens it with a
VAE drawing N samples, and reads the per-voxel SD map. Two scenarios:

- **atom B**: the input as described; atoms are grouped into the well-determined core (B < 30 Å²), the exposed rim
  (B > 45 Å²), main chain (N, CA, C, O) and side chains beyond CB;
- **local resolution**: the same, plus ``--local-b`` Å² of extra B on the +x half of the molecule (a smooth 4 Å-wide
  step through the centroid), like a flexible domain in a cryo-EM map; voxels are grouped into the sharp and the
  blurred half.

The target is the structure simulated at 2 Å without the extra B (what training asks the model to reach), so each
scenario also gives the real error |mean - target| (both z-scored inside the molecule mask). Printed per group:
mean SD and mean real error at atoms/voxels, and both relative to the output density at the atom (medians); then the rank correlation of SD with the error
over molecule voxels and the mean error per SD quintile (an informative, calibrated SD has errors rising with it,
close to the |error| = 0.8·SD of a Gaussian). Writes docs/figures/vae_uncertainty.png (local-resolution scenario).

Run: python benchmarks/bench_uncertainty.py [--model vae-em] [--samples 16] [--local-b 80]
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import binary_dilation

from densharp.sharpening import sharpen_map
from densharp.simulate.degrade import add_half_map_noise
from densharp.simulate.density import simulate_map
from densharp.simulate.structure import load_structure

FIG = Path(__file__).resolve().parent.parent / "docs" / "figures" / "vae_uncertainty.png"
VOXEL_A = 1.0


def _rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


def run_case(st: Any, args: argparse.Namespace, local_b: float) -> dict[str, Any]:
    """Simulate, sharpen with N samples, and return the maps and per-atom/voxel arrays of one scenario."""
    kw = {"d_min_A": 2.0, "padding_A": 10.0}
    clean = simulate_map(st, VOXEL_A, b_extra_A2=args.b_extra, **kw)
    target = simulate_map(st, VOXEL_A, b_extra_A2=0.0, **kw).data_zyx
    assert target.shape == clean.data_zyx.shape
    ox, oy, oz = clean.origin_xyz_A
    xs = ox + VOXEL_A * np.arange(clean.data_zyx.shape[2])
    cx = float(np.mean([cra.atom.pos.x for cra in st[0].all()]))
    w_x = 1.0 / (1.0 + np.exp(-(xs - cx) / 1.0))  # 0 on the sharp (-x) side, 1 on the blurred (+x) side
    if local_b > 0:
        blurred = simulate_map(st, VOXEL_A, b_extra_A2=args.b_extra + local_b, **kw).data_zyx
        clean = clean.with_data((1 - w_x) * clean.data_zyx + w_x * blurred)
    full, _, _ = add_half_map_noise(clean, args.resolution, np.random.default_rng(0))
    kw = {"weights": args.model} if args.model.endswith(".safetensors") else {"model": args.model}
    res = sharpen_map(full, args.resolution, method="vae", samples=args.samples, seed=0, **kw)  # the user's path
    assert res.sd is not None
    sd, mean = res.sd.data_zyx, res.map.data_zyx
    # molecule mask: target above 10 % of its maximum, dilated so side-chain tips and their surroundings count
    mask = binary_dilation(target > 0.1 * target.max(), iterations=2)
    scale = mean[mask].std()

    def z(a: np.ndarray) -> np.ndarray:
        return (a - a[mask].mean()) / a[mask].std()

    err = np.abs(z(mean) - z(target))
    atoms = []
    for cra in st[0].all():
        a = cra.atom
        i = round((a.pos.z - oz) / VOXEL_A), round((a.pos.y - oy) / VOXEL_A), round((a.pos.x - ox) / VOXEL_A)
        if all(0 <= i[k] < sd.shape[k] for k in range(3)):
            atoms.append((a.b_iso, a.name, a.pos.x > cx, sd[i] / scale, mean[i], err[i]))
    return {
        "sd_z": sd / scale,
        "err_z": err,
        "mean": mean,
        "mask": mask,
        "blurred_side": (w_x > 0.5)[None, None, :] & mask,
        "sharp_side": (w_x < 0.5)[None, None, :] & mask,
        "b": np.array([r[0] for r in atoms]),
        "main": np.array([r[1] in ("N", "CA", "C", "O") for r in atoms]),
        "side": np.array([r[1] not in ("N", "CA", "C", "O", "CB") for r in atoms]),
        "plus_x": np.array([r[2] for r in atoms]),
        "sd_atom": np.array([r[3] for r in atoms]),
        "rel_atom": np.array([r[3] * scale / max(abs(r[4]), 1e-6) for r in atoms]),
        "err_atom": np.array([r[5] for r in atoms]),
        # the real error relative to the output density, normalised like rel_atom (z units -> map units)
        "relerr_atom": np.array([r[5] * scale / max(abs(r[4]), 1e-6) for r in atoms]),
    }


def report(title: str, c: dict[str, Any], voxel_groups: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Print one scenario's tables; return the calibration numbers for the figure."""
    print(f"\n== {title}")
    print(
        f"{'group':30s} {'n':>6s} {'mean SD':>8s} {'|error|':>8s} {'SD/dens':>8s} {'err/dens':>8s}"
        "   (SD, error: z units; /dens: relative to the output density at the atom)"
    )
    b = c["b"]
    groups = {
        "atoms: core (B < 30 Å²)": b < 30,
        "atoms: rim (B > 45 Å²)": b > 45,
        "atoms: main chain": c["main"],
        "atoms: side chains beyond CB": c["side"],
    }
    for name, sel in groups.items():
        print(
            f"{name:30s} {sel.sum():6d} {c['sd_atom'][sel].mean():8.4f} {c['err_atom'][sel].mean():8.4f} "
            f"{np.median(c['rel_atom'][sel]):8.3f} {np.median(c['relerr_atom'][sel]):8.3f}"
        )
    for name, sel in (voxel_groups or {}).items():
        print(f"{name:30s} {sel.sum():6d} {c['sd_z'][sel].mean():8.4f} {c['err_z'][sel].mean():8.4f}")
    print(f"{'solvent voxels (outside mask)':30s} {(~c['mask']).sum():6d} {c['sd_z'][~c['mask']].mean():8.4f}")
    print(f"rank correlation of atom SD with atom B: {_rank_corr(b, c['sd_atom']):.3f}")
    sdm, err = c["sd_z"][c["mask"]], c["err_z"][c["mask"]]
    rank = _rank_corr(sdm, err)
    q = np.quantile(sdm, [0.2, 0.4, 0.6, 0.8])
    which = np.searchsorted(q, sdm)
    sd_q = [float(sdm[which == k].mean()) for k in range(5)]
    err_q = [float(err[which == k].mean()) for k in range(5)]
    print(f"calibration over {sdm.size} molecule voxels: rank correlation of SD with |error| {rank:.3f}")
    print("SD quintile: mean SD -> mean |error|   " + "   ".join(f"{s:.3f}->{e:.3f}" for s, e in zip(sd_q, err_q)))
    return {"rank": rank, "sd_q": sd_q, "err_q": err_q, "groups": groups}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--model", default="vae-em", help="shipped VAE name or a .safetensors path")
    p.add_argument("--resolution", type=float, default=3.5)
    p.add_argument("--b-extra", type=float, default=40.0, help="global extra B (Å²) of the input")
    p.add_argument("--local-b", type=float, default=80.0, help="extra B (Å²) on the +x half, second scenario")
    p.add_argument("--no-figure", action="store_true")
    args = p.parse_args()
    path = resources.files("densharp").joinpath("data/examples/3a4rA.pdb.gz")
    with resources.as_file(path) as f:
        st, _ = load_structure(f, seed=0)
    print(
        f"3A4R chain A, input {args.resolution} Å + B {args.b_extra} Å² + half-map noise; "
        f"{args.model}, {args.samples} samples; target: 2 Å, atoms' own B"
    )
    report("scenario 1: atom B only (core 15 Å² -> rim 60 Å²)", run_case(st, args, 0.0))
    c = run_case(st, args, args.local_b)
    cal = report(
        f"scenario 2: + {args.local_b:g} Å² on the +x half (local resolution)",
        c,
        {"voxels: sharp half (-x)": c["sharp_side"], "voxels: blurred half (+x)": c["blurred_side"]},
    )
    if not args.no_figure:
        figure(c, cal, args)


def figure(c: dict[str, Any], cal: dict[str, Any], args: argparse.Namespace) -> None:
    """Sections of mean, SD and real error; SD vs atom B; SD by group; calibration curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(2, 3, figsize=(13, 8), dpi=110)
    ax = axs.ravel()
    k = c["mean"].shape[0] // 2
    vmax = float(np.quantile(c["err_z"][c["mask"]], 0.99))
    ax[0].imshow(c["mean"][k], origin="lower", cmap="gray")
    ax[0].set_title(f"VAE mean of {args.samples} samples, z={k}")
    # SD on its own scale (its contrast inside the molecule is the point here); calibration is panel 6
    sd_max = float(np.quantile(c["sd_z"][c["mask"]], 0.99))
    panels = (("sd_z", "per-voxel SD of samples", sd_max), ("err_z", "real |error| of the mean", vmax))
    for i, (key, title, top) in enumerate(panels):
        im = ax[1 + i].imshow(c[key][k], origin="lower", cmap="magma", vmin=0, vmax=top)
        ax[1 + i].set_title(f"{title} (z units)")
        fig.colorbar(im, ax=ax[1 + i], fraction=0.046)
    for a_ in ax[:3]:
        a_.contour(c["mask"][k], levels=[0.5], colors="c", linewidths=0.6)
        a_.axvline(c["mean"].shape[2] / 2, color="w", lw=0.5, ls=":")
        a_.set_xlabel("x (voxel); +x half blurred by local B")
        a_.set_ylabel("y (voxel)")
    ax[3].scatter(c["b"], c["sd_atom"], s=4, alpha=0.5, c=np.where(c["plus_x"], "C3", "C0"))
    ax[3].set_xlabel("atom B-factor (Å²); red: blurred half")
    ax[3].set_ylabel("SD at atom (z units)")
    ax[3].set_title("uncertainty vs how blurred the atom is")
    names = [*cal["groups"], "blurred half"]
    vals = [c["sd_atom"][sel].mean() for sel in cal["groups"].values()] + [c["sd_z"][c["blurred_side"]].mean()]
    errs = [c["err_atom"][sel].mean() for sel in cal["groups"].values()] + [c["err_z"][c["blurred_side"]].mean()]
    xs = np.arange(len(names))
    ax[4].bar(xs - 0.2, vals, 0.4, label="mean SD")
    ax[4].bar(xs + 0.2, errs, 0.4, label="mean |error|")
    ax[4].set_xticks(xs, [n.split(": ")[-1].split(" (")[0].replace(" beyond CB", "") for n in names], rotation=20)
    ax[4].set_ylabel("z units")
    ax[4].set_title("SD and real error by group")
    ax[4].legend(fontsize=8)
    ax[5].plot(cal["sd_q"], cal["err_q"], "o-", label="mean |error| per SD quintile")
    lim = max(max(cal["sd_q"]), max(cal["err_q"])) * 1.1
    ax[5].plot([0, lim], [0, 0.8 * lim], "k--", lw=0.8, label="Gaussian: |error| = 0.8 SD")
    ax[5].set_xlabel("predicted SD (z units)")
    ax[5].set_ylabel("real |error| (z units)")
    ax[5].set_title(f"calibration over molecule voxels (rank corr {cal['rank']:.2f})")
    ax[5].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    FIG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIG)
    print(f"wrote {FIG}")


if __name__ == "__main__":
    main()
