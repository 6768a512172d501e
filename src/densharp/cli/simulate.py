"""Simulate a density map (and optionally noisy half maps) from an atomic model.

The model is cleaned first (first model, no hydrogens or waters, first altloc; B-factors assigned if the file
has none). Without --half-maps, OUT is the model density band-limited at --resolution (soft edge) with the
extra --b-factor. With --half-maps, OUT_half1/OUT_half2 get independent coloured noise whose half-map FSC
crosses 0.143 at --resolution, and OUT is their average low-passed at --resolution. --modality xray uses X-ray
form factors; add --mtz to write crystallographic map coefficients instead of an EM-style box: the model's crystal
cell and space group when it has a usable one (else a P1 box around it), bulk solvent, measured amplitudes with
noise, anisotropy and missing reflections, and 2mFo-DFc coefficients (FWT/PHWT, sigmaA-weighted) of a model with
errors, as after refinement; OUT is then the map of the whole cell. A JSON sidecar records every parameter.

Examples
--------
  densharp simulate model.cif -o sim.mrc --resolution 3.5
  densharp simulate model.pdb -o sim.mrc --resolution 4 --half-maps --b-factor 50 --seed 1
  densharp simulate model.pdb -o xtal.mrc --resolution 2.5 --modality xray --mtz xtal.mtz
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from densharp.cli._args import add_output, add_seed, finite_float, positive_float, provenance, sidecar_path

log = logging.getLogger(__name__)


def _half_path(out: Path, k: int) -> Path:
    name = out.name
    gz = name.lower().endswith(".gz")
    base = name[:-3] if gz else name
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, "mrc"
    return out.with_name(f"{stem}_half{k}.{ext}" + (".gz" if gz else ""))


def add_args(p: argparse.ArgumentParser) -> None:
    """Register ``simulate`` arguments."""
    p.add_argument("structure", type=Path, metavar="STRUCTURE", help="atomic model (.pdb/.cif, optionally .gz)")
    add_output(p)
    p.add_argument("--resolution", type=positive_float, required=True, help="resolution in Å (band limit / FSC 0.143)")
    p.add_argument("--half-maps", action="store_true", help="also write OUT_half1 and OUT_half2 with independent noise")
    p.add_argument("--voxel-size", type=positive_float, default=1.0, help="voxel size in Å (default %(default)s)")
    p.add_argument(
        "--b-factor",
        type=finite_float,
        default=0.0,
        help="B applied to every atom, exp(-B s²/4), Å² (positive blurs; default %(default)s)",
    )
    p.add_argument(
        "--padding", type=positive_float, default=10.0, help="padding around the model, Å (default %(default)s)"
    )
    p.add_argument("--modality", choices=["em", "xray"], default="em", help="form factors (default %(default)s)")
    p.add_argument("--mtz", type=Path, default=None, help="crystal mode: also write map coefficients FWT/PHWT here")
    add_seed(p)


def run(args: argparse.Namespace) -> int:
    """Simulate and write the map(s)."""
    from densharp.errors import InputError
    from densharp.filters.bfactor import check_bfactor
    from densharp.io.atomic import OutputSet, write_json_atomic
    from densharp.io.maps import write_map
    from densharp.simulate.structure import load_structure

    out: Path = args.out
    outs = [out, sidecar_path(out)]
    if args.half_maps:
        outs += [_half_path(out, 1), _half_path(out, 2)]
    if args.mtz is not None:
        if args.modality != "xray":
            raise InputError("--mtz writes crystallographic map coefficients; add --modality xray")
        outs.append(args.mtz)
    check_bfactor(args.b_factor, "--b-factor")
    if args.resolution < 2 * args.voxel_size:
        raise InputError(
            f"--resolution {args.resolution:g} Å is finer than Nyquist for --voxel-size {args.voxel_size:g} Å; "
            f"use --voxel-size {args.resolution / 2.2:.2f} or less"
        )
    with OutputSet(outs, overwrite=args.overwrite, inputs=[args.structure], primary=out):
        _simulate(args, out, load_structure, write_map, write_json_atomic)
    log.info("wrote %s%s", out, " and half maps" if args.half_maps else "")
    return 0


def _simulate(args: argparse.Namespace, out: Path, load_structure, write_map, write_json_atomic) -> None:  # type: ignore[no-untyped-def]
    st, rec = load_structure(args.structure, seed=args.seed)
    log.info("%s: %d atoms after cleaning", args.structure, rec["atoms"])
    rng = np.random.default_rng(args.seed)
    meta: dict[str, object] = {
        "provenance": provenance(),
        "model": str(args.structure),
        "cleaning": rec,
        "resolution_A": args.resolution,
        "voxel_size_A": args.voxel_size,
        "b_extra_A2": args.b_factor,
        "modality": args.modality,
        "seed": args.seed,
        "half_maps": bool(args.half_maps),
    }
    if args.mtz is not None:
        from densharp.io.mtz import write_mtz
        from densharp.simulate.crystal import simulate_crystal

        xt = simulate_crystal(st, args.resolution, rng, voxel_size_A=args.voxel_size, b_extra_A2=args.b_factor)
        meta["crystal"] = xt.meta
        write_mtz(args.mtz, xt.mtz, overwrite=args.overwrite)
        full = xt.map
        halves = None
        if args.half_maps:
            from densharp.simulate.degrade import add_half_map_noise

            full, h1, h2 = add_half_map_noise(full, args.resolution, rng, cut_factor=1.0)
            halves = (h1, h2)
    else:
        from densharp.simulate.degrade import add_half_map_noise
        from densharp.simulate.density import simulate_map

        if args.half_maps:
            clean = simulate_map(
                st, args.voxel_size, None, args.b_factor, padding_A=args.padding, modality=args.modality
            )
            full, h1, h2 = add_half_map_noise(clean, args.resolution, rng, cut_factor=1.0)
            halves = (h1, h2)
        else:
            full = simulate_map(
                st, args.voxel_size, args.resolution, args.b_factor, padding_A=args.padding, modality=args.modality
            )
            halves = None
    meta["map"] = full.geometry_dict()
    label = f"densharp simulate {args.modality} d={args.resolution:g}A seed={args.seed}"
    if halves is not None:
        write_map(_half_path(out, 1), halves[0], overwrite=args.overwrite, label=label + " half1")
        write_map(_half_path(out, 2), halves[1], overwrite=args.overwrite, label=label + " half2")
    write_json_atomic(sidecar_path(out), meta)
    write_map(out, full, overwrite=args.overwrite, label=label)
