"""Omit test: simulate a map without part of the model, sharpen it, and measure density invented there.

One chain (--omit CHAIN; default the last chain) is removed, or for a single-chain model a contiguous ~20 % of its
residues. The input is simulated from the rest at --resolution with an extra blur and half-map noise; each method
sharpens it. Invention score = (mean output where only removed atoms were − solvent mean) / (mean output on the
kept atoms − solvent mean): 0 nothing invented, 1 invented at full strength. Pure-noise and solvent-only inputs
give output SD / input SD (should not exceed ~1). Learned methods are skipped with a reason when unavailable.

Examples:
  densharp hallucination structure.cif --omit B --resolution 4 --methods identity,autob,unet
  densharp hallucination structure.cif --resolution 3.5 --json omit.json
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from densharp.cli._args import add_seed, positive_float, provenance
from densharp.errors import InputError

log = logging.getLogger("densharp.hallucination")


def add_args(p: argparse.ArgumentParser) -> None:
    """Register ``hallucination`` arguments."""
    p.add_argument("structure", type=Path, metavar="STRUCTURE", help="atomic model (PDB/mmCIF, optionally .gz)")
    p.add_argument("--omit", metavar="CHAIN", help="chain to remove (default: last chain, or 20 %% of a single chain)")
    p.add_argument("--fraction", type=float, default=0.2, help="fraction removed from a single chain (%(default)s)")
    p.add_argument("--resolution", type=positive_float, required=True, metavar="Å", help="input resolution (Å)")
    p.add_argument("--voxel-size", type=positive_float, default=1.0, metavar="Å", help="voxel (Å; %(default)s)")
    p.add_argument("--b-extra", type=float, default=50.0, metavar="Å²", help="extra input blur (Å²; %(default)s)")
    p.add_argument("--max-box", type=int, default=128, help="largest box edge in voxels (%(default)s)")
    p.add_argument("--methods", default="identity,autob", metavar="LIST", help="methods (default %(default)s)")
    p.add_argument("--json", type=Path, metavar="OUT.json", help="write the record here")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (refused by default)")
    add_seed(p)


def run(args: argparse.Namespace) -> int:
    """Run the omit test and print its table."""
    from densharp.evaluate.methods import parse_methods
    from densharp.io.atomic import OutputSet
    from densharp.io.evaluation import write_run_json
    from densharp.io.maps import file_sha256
    from densharp.simulate.structure import load_structure

    names = parse_methods(args.methods)
    if not 0 < args.fraction < 1:
        raise InputError(f"--fraction must lie between 0 and 1 (exclusive), got {args.fraction:g}")
    if not (args.b_extra == args.b_extra and abs(args.b_extra) < 1e4):
        raise InputError(f"--b-extra {args.b_extra} Å² must be a finite B-factor within ±10000 Å²")
    if args.max_box < 16:
        raise InputError(f"--max-box must be at least 16 voxels, got {args.max_box}")
    with OutputSet([args.json], overwrite=args.overwrite, inputs=[args.structure]):
        return _run(args, names, load_structure, file_sha256, write_run_json)


def _run(args: argparse.Namespace, names: list[str], load_structure, file_sha256, write_run_json) -> int:  # type: ignore[no-untyped-def]
    from densharp.evaluate.hallucination import format_hallucination, hallucination_check, make_omit_case

    st, _ = load_structure(args.structure, seed=args.seed)
    case = make_omit_case(
        st,
        args.resolution,
        args.voxel_size,
        omit_chain=args.omit,
        fraction=args.fraction,
        b_extra_A2=args.b_extra,
        seed=args.seed,
        max_box=args.max_box,
    )
    rec = hallucination_check(case, names, seed=args.seed)
    rec["structure"] = str(args.structure)
    rec["inputs"] = {str(args.structure): file_sha256(args.structure)}
    rec["provenance"] = provenance()
    print(format_hallucination(rec))
    if args.json is not None:
        write_run_json(args.json, rec)
        log.info("wrote %s", args.json)
    return 0
