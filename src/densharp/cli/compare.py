"""Compare a map with a target map on the same grid: RSCC over the box and inside a mask, and FSC resolutions.

The mask defaults to an automatic molecule mask made from the target.

Examples:
  densharp compare sharpened.mrc target.mrc
  densharp compare sharpened.mrc target.mrc --mask mask.mrc --json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from densharp.cli._args import add_mask, add_permissive, resolve_mask


def add_args(p: argparse.ArgumentParser) -> None:
    """Register ``compare`` arguments."""
    p.add_argument("map", type=Path, help="map to score")
    p.add_argument("target", type=Path, help="reference map on the same grid")
    add_mask(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_permissive(p)


def run(args: argparse.Namespace) -> int:
    """Print RSCC and FSC figures."""
    from densharp.filters.sharpen import check_map_content
    from densharp.io.maps import read_map
    from densharp.metrics.fsc import fsc_curve
    from densharp.metrics.rscc import rscc

    m = read_map(args.map, permissive=args.permissive)
    t = read_map(args.target, permissive=args.permissive)
    check_map_content(m, str(args.map))
    check_map_content(t, str(args.target))
    m.check_same_grid(t, f"{args.map} and {args.target}", fix="resample one map onto the other's grid")
    mask, mask_desc = resolve_mask(args, t, auto_from=t)
    curve = fsc_curve(m, t)
    out = {
        "rscc_box": rscc(m, t),
        "rscc_mask": rscc(m, t, mask),
        "mask": mask_desc,
        "d_fsc05_A": curve.resolution_at(0.5),
        "d_fsc0143_A": curve.resolution_at(0.143),
    }
    if args.json:
        from densharp.cli.fsc import resolution_notes
        from densharp.io.atomic import json_text

        res = {k: float(out[k]) for k in ("d_fsc05_A", "d_fsc0143_A")}  # type: ignore[arg-type]
        print(json_text({**out, "notes": resolution_notes(res)}), end="")
        return 0
    print(f"RSCC (box)      {out['rscc_box']:.4f}")
    print(f"RSCC (mask)     {out['rscc_mask']:.4f}   mask: {mask_desc}")
    print(f"FSC=0.5 at      {out['d_fsc05_A']:.3f} Å")
    print(f"FSC=0.143 at    {out['d_fsc0143_A']:.3f} Å")
    return 0
