"""Fourier shell correlation between two maps: the curve and the resolutions at 0.5 and 0.143.

For two half maps the 0.143 value is the gold-standard resolution. Optional CSV and PNG outputs.

Examples:
  densharp fsc half1.mrc half2.mrc --mask mask.mrc
  densharp fsc map.mrc model_map.mrc --csv fsc.csv --png fsc.png
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from densharp.cli._args import add_mask, add_permissive, resolve_mask


def add_args(p: argparse.ArgumentParser) -> None:
    """Register ``fsc`` arguments."""
    p.add_argument("map_a", type=Path, metavar="A", help="first map")
    p.add_argument("map_b", type=Path, metavar="B", help="second map, on the same grid")
    add_mask(p)
    p.add_argument("--csv", type=Path, help="write the curve as CSV")
    p.add_argument("--png", type=Path, help="write a plot of the curve (needs matplotlib: densharp[plot])")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--overwrite", action="store_true", help="replace existing CSV/PNG outputs")
    add_permissive(p)


def run(args: argparse.Namespace) -> int:
    """Compute and print the FSC."""
    from densharp.io.atomic import OutputSet

    outs = [p for p in (args.csv, args.png) if p is not None]
    with OutputSet(outs, overwrite=args.overwrite, inputs=[args.map_a, args.map_b, args.mask]):
        return _run(args)


def resolution_notes(res: dict[str, float]) -> list[str]:
    """Why a resolution is null in JSON: the curve is below the threshold from the first shell on (``inf``)."""
    return [
        f"{k} is null: the FSC is below {'0.5' if '05' in k else '0.143'} from the first shell on (no resolution)"
        for k, v in res.items()
        if v is not None and not math.isfinite(v)
    ]


def _run(args: argparse.Namespace) -> int:
    from densharp.filters.sharpen import check_map_content
    from densharp.io.atomic import json_text, write_text_atomic
    from densharp.io.maps import read_map
    from densharp.metrics.fsc import fsc_curve

    a = read_map(args.map_a, permissive=args.permissive)
    b = read_map(args.map_b, permissive=args.permissive)
    check_map_content(a, str(args.map_a))
    check_map_content(b, str(args.map_b))
    a.check_same_grid(b, f"{args.map_a} and {args.map_b}", fix="resample one map onto the other's grid")
    mask, mask_desc = resolve_mask(args, a)
    curve = fsc_curve(a, b, mask=mask)
    res = {"d_fsc05_A": curve.resolution_at(0.5), "d_fsc0143_A": curve.resolution_at(0.143)}
    if args.csv:
        rows = ["s_invA,resolution_A,fsc,n_coeffs"]
        d = curve.to_dict()
        for s, r, f, n in zip(d["s_invA"], d["resolution_A"], d["fsc"], d["n_coeffs"]):
            rows.append(f"{s},{'' if r is None else r},{f},{n}")
        write_text_atomic(args.csv, "\n".join(rows) + "\n")
    if args.png:
        from densharp.report.plots import save_fsc_plot

        save_fsc_plot(args.png, {"FSC": curve.to_dict()}, title=f"{args.map_a.name} vs {args.map_b.name}")
    if args.json:
        print(json_text({"mask": mask_desc, **res, "curve": curve.to_dict(), "notes": resolution_notes(res)}), end="")
        return 0
    print(f"mask: {mask_desc}")
    print(f"FSC = 0.5   at {res['d_fsc05_A']:.3f} Å" + ("" if curve.crosses(0.5) else " (never crossed: Nyquist)"))
    print(f"FSC = 0.143 at {res['d_fsc0143_A']:.3f} Å" + ("" if curve.crosses(0.143) else " (never crossed: Nyquist)"))
    return 0
