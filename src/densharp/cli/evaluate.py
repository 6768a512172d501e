"""Score sharpened maps against a target, side by side with identity and auto-B baselines.

The target is a map (--target) or is simulated from an atomic model at a resolution (--structure, --resolution) on the
grid of the first MAP. With --input (the unsharpened map) the baseline methods (--methods, default identity,autob;
fsc is added with --half-maps) are computed too, and with --half-maps each method is also applied to half map 1
and its FSC against the untouched half map 2 recorded (the model-free check). RSCC is reported over the box and in
a molecule mask (--mask, or automatic from the target). Learned methods (unet, vae, report-vae) are skipped with a
reason when their code or model is missing. The JSON (--json) feeds 'densharp report'.

Examples:
  densharp evaluate sharp.mrc --target target.mrc --input input.mrc --input-resolution 3.5
  densharp evaluate sharp.mrc --structure model.cif --resolution 2.5 --input input.mrc --half-maps h1.mrc h2.mrc
  densharp evaluate --target t.mrc --input in.mrc --input-resolution 4 --methods identity,autob,unet --json run.json
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from densharp.cli._args import add_permissive, positive_float, provenance
from densharp.errors import InputError

log = logging.getLogger("densharp.evaluate")


def add_args(p: argparse.ArgumentParser) -> None:
    """Register ``evaluate`` arguments."""
    p.add_argument(
        "maps",
        nargs="*",
        type=Path,
        metavar="MAP",
        help="sharpened maps to score (named by file name without the map suffix; folders added when names collide)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--target", type=Path, metavar="MAP", help="target map on the same grid")
    g.add_argument(
        "--structure", type=Path, metavar="FILE", help="atomic model (PDB/mmCIF) to simulate the target from"
    )
    p.add_argument("--resolution", type=positive_float, metavar="Å", help="resolution of the simulated target (Å)")
    p.add_argument("--input", type=Path, metavar="MAP", help="the unsharpened input map (for the baselines)")
    p.add_argument(
        "--input-resolution",
        type=positive_float,
        metavar="Å",
        help="resolution of the input (Å); default: half-map FSC-0.143 with --half-maps",
    )
    p.add_argument("--half-maps", nargs=2, type=Path, metavar=("H1", "H2"), help="half maps of the input")
    p.add_argument("--mask", type=Path, metavar="MAP", help="mask map for the masked RSCC (default: from the target)")
    p.add_argument(
        "--methods",
        default=None,
        metavar="LIST",
        help="comma-separated methods run on --input: identity, autob, fsc, global-filter, unet, vae, report-vae "
        "(default identity,autob, plus fsc with --half-maps)",
    )
    p.add_argument("--json", type=Path, metavar="OUT.json", help="write the full record (curves, slices) here")
    p.add_argument("--csv", type=Path, metavar="OUT.csv", help="write one row per map/method here")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (refused by default)")
    add_permissive(p)


_MAP_SUFFIXES = (".gz", ".mrc", ".map", ".ccp4", ".mrcs")


def _stem(p: Path) -> str:
    name = p.name
    for suf in _MAP_SUFFIXES:
        if name.lower().endswith(suf):
            name = name[: -len(suf)]
    return name or p.name


def unique_map_names(paths: list[Path], reserved: tuple[str, ...] = ()) -> list[str]:
    """One distinct row name per map, for the table and the JSON.

    The name is the file name without its map suffix (``x.v1.mrc`` → ``x.v1``), with as many parent folders as it
    takes to tell maps apart (``a/x.mrc``, ``b/x.mrc`` → ``a/x``, ``b/x``).

    Names that equal a method in ``reserved`` get their suffix back (``autob.mrc``). The same file given twice is
    refused.
    """
    resolved = [p.resolve() for p in paths]
    for i, r in enumerate(resolved):
        if r in resolved[:i]:
            raise InputError(f"{paths[i]}: the same map is given twice; give each map once")
    parents = [p.resolve().parent.parts for p in paths]
    depth = [0] * len(paths)

    def name(i: int) -> str:
        return "/".join([*parents[i][len(parents[i]) - depth[i] :], _stem(paths[i])]) if depth[i] else _stem(paths[i])

    names = [name(i) for i in range(len(paths))]
    for _ in range(64):  # only the names that collide get (more) parent folders
        clash = [i for i, n in enumerate(names) if names.count(n) > 1]
        if not clash:
            break
        for i in clash:
            depth[i] = min(depth[i] + 1, len(parents[i]))
        names = [name(i) for i in range(len(paths))]
    out = []
    for p, n in zip(paths, names):
        if n in reserved:
            n = n[: len(n) - len(_stem(p))] + p.name
        out.append(n)
    if len(set(out)) != len(out):  # pragma: no cover - only if renaming a reserved name collides again
        out = [str(p) for p in paths]
    return out


def csv_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One CSV row per method of a case record."""
    rows = []
    for name, r in record["methods"].items():
        rows.append(
            {
                "case": record["case"],
                "method": name,
                "d_input_A": record["d_input_A"],
                "bin": record["bin"],
                "rscc_box": r.get("rscc_box"),
                "rscc_mask": r.get("rscc_mask"),
                "d_fsc05_A": r.get("d_fsc05_A"),
                "d_fsc0143_A": r.get("d_fsc0143_A"),
                "d_half_fsc0143_A": r.get("d_half_fsc0143_A"),
                "runtime_s": r.get("runtime_s"),
                "skipped": r.get("skipped"),
            }
        )
    return rows


def format_case(record: dict[str, Any]) -> str:
    """Plain-text table of one case."""

    def f(v: Any, w: int) -> str:
        return f"{'-':>{w}}" if v is None else f"{v:>{w}.4g}" if isinstance(v, float) else f"{v!s:>{w}}"

    lines = [
        f"input resolution {record['d_input_A']:g} Å; mask: {record['mask']}",
        f"{'map/method':<24}{'RSCC box':>10}{'RSCC mask':>11}{'FSC0.5 Å':>10}{'FSC0.143 Å':>12}{'half-FSC Å':>12}",
    ]
    for name, r in record["methods"].items():
        if r.get("skipped") is not None:
            lines.append(f"{name:<24}skipped: {r['skipped']}")
            continue
        lines.append(
            f"{name:<24}{f(r['rscc_box'], 10)}{f(r['rscc_mask'], 11)}{f(r['d_fsc05_A'], 10)}"
            f"{f(r['d_fsc0143_A'], 12)}{f(r.get('d_half_fsc0143_A'), 12)}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Score maps and baselines; print the table; write JSON/CSV when asked."""
    from densharp.evaluate.methods import parse_methods
    from densharp.io.atomic import OutputSet

    if args.target is None and args.structure is None:
        raise InputError("give the target: --target MAP, or --structure FILE with --resolution Å")
    if args.structure is not None and args.resolution is None:
        raise InputError("--structure needs --resolution Å (resolution of the simulated target)")
    if not args.maps and args.input is None:
        raise InputError("nothing to score: give sharpened MAPs and/or --input MAP for the baselines")
    names = parse_methods(args.methods) if args.methods else ["identity", "autob"] + (["fsc"] if args.half_maps else [])
    if args.input is None and args.methods:
        raise InputError("--methods run on the input: give --input MAP")
    inputs = [*args.maps, args.input, args.target, args.structure, args.mask, *(args.half_maps or [])]
    with OutputSet([args.json, args.csv], overwrite=args.overwrite, inputs=inputs, primary=args.json or args.csv):
        return _run(args, names)


def _run(args: argparse.Namespace, names: list[str]) -> int:
    from densharp.evaluate.case import check_model_in_box, evaluate_case, target_from_model
    from densharp.evaluate.methods import METHODS
    from densharp.evaluate.table import summarize
    from densharp.filters.fsc_weight import check_half_maps, estimate_resolution
    from densharp.filters.masks import mask_from_map
    from densharp.filters.sharpen import check_map_content, check_resolution
    from densharp.io.evaluation import write_csv, write_run_json
    from densharp.io.maps import file_sha256, read_map

    keys = unique_map_names(list(args.maps), reserved=tuple(METHODS))
    maps = {k: read_map(p, permissive=args.permissive) for k, p in zip(keys, args.maps)}
    like = next(iter(maps.values())) if maps else read_map(args.input, permissive=args.permissive)
    inp = read_map(args.input, permissive=args.permissive) if args.input is not None else None
    if inp is not None:
        check_map_content(inp, str(args.input))
    half = None
    if args.half_maps:
        half = (read_map(args.half_maps[0], permissive=args.permissive), read_map(args.half_maps[1], args.permissive))
        check_half_maps(*half, names=(str(args.half_maps[0]), str(args.half_maps[1])))
    for m, p in zip(maps.values(), args.maps):
        check_map_content(m, str(p))
    if args.input_resolution is not None:
        check_resolution(args.input_resolution, inp if inp is not None else like, "--input-resolution")
    if args.target is not None:
        target = read_map(args.target, permissive=args.permissive)
        target_desc = f"map {args.target}"
        check_map_content(target, f"{args.target} (the target)")
    else:
        from densharp.simulate.structure import load_structure

        check_resolution(args.resolution, like, "--resolution (of the simulated target)")
        st, _ = load_structure(args.structure)
        check_model_in_box(st, like, str(args.structure))
        target = target_from_model(st, like, args.resolution)
        target_desc = f"simulated from {args.structure} at {args.resolution:g} Å"
        check_map_content(target, f"the target simulated from {args.structure}")
    like.check_same_grid(target, "the maps and the target", fix="resample onto one grid")
    d_in = args.input_resolution
    if d_in is None and half is not None:
        d_in, _ = estimate_resolution(*half)
        log.info("input resolution from the half-map FSC-0.143: %.2f Å", d_in)
    if d_in is None:
        if inp is not None:
            raise InputError("the baselines need the input resolution: pass --input-resolution Å (or --half-maps)")
        d_in = float("nan")
    mask, mask_desc = None, ""
    if args.mask is not None:
        mask = mask_from_map(read_map(args.mask, permissive=args.permissive), like, f"mask {args.mask}")
        mask_desc = f"file {args.mask}"
    record = evaluate_case(
        "evaluate",
        inp if inp is not None else like,
        target,
        d_in,
        names if inp is not None else [],
        half_maps=half,
        mask=mask,
        mask_desc=mask_desc or "given mask",
        given_maps=maps,
    )
    print(f"target: {target_desc}")
    print(format_case(record))
    run_rec: dict[str, Any] = {
        "schema": "densharp.evaluate/1",
        "target": target_desc,
        "inputs": {
            str(p): file_sha256(p)
            for p in [*args.maps, args.input, args.target, args.structure, args.mask]
            if p is not None
        },
        "provenance": provenance(),
        "cases": [record],
        "summary": summarize([record]),
    }
    if args.json is not None:
        write_run_json(args.json, run_rec)
        log.info("wrote %s", args.json)
    if args.csv is not None:
        write_csv(args.csv, csv_rows(record))
        log.info("wrote %s", args.csv)
    return 0
