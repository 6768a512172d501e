"""Show a map's header geometry, statistics and warnings.

Examples
--------
  densharp info emd_1234.map
  densharp info half1.mrc half2.mrc --json
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from densharp.cli._args import add_permissive
from densharp.errors import DensharpWarning
from densharp.io.maps import read_map
from densharp.metrics.stats import map_statistics


def add_args(p: argparse.ArgumentParser) -> None:
    """Register ``info`` arguments."""
    p.add_argument("maps", nargs="+", type=Path, metavar="MAP", help="map files (.mrc/.map/.ccp4, optionally .gz)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_permissive(p)


def run(args: argparse.Namespace) -> int:
    """Print the header summary of every map."""
    records = []
    for path in args.maps:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DensharpWarning)
            m = read_map(path, permissive=args.permissive)
        notes = [str(w.message) for w in caught]
        if not m.is_isotropic:
            notes.append("anisotropic voxels")
        if not m.is_orthogonal:
            notes.append("non-orthogonal cell (crystallographic map)")
        stats = map_statistics(m)
        if stats["sd"] == 0:
            notes.append("constant map: every voxel has the same value")
        rec = {"path": str(path), "sha256": m.source.sha256 if m.source else None, **m.geometry_dict()}
        rec["statistics"] = stats
        rec["nyquist_A"] = m.nyquist_A
        rec["warnings"] = notes
        records.append(rec)
    if args.json:
        print(json.dumps(records if len(records) > 1 else records[0], indent=2))
        return 0
    for rec in records:
        order = "".join("xyz"[i - 1] for i in rec["axis_order_crs"])
        st = rec["statistics"]
        print(f"{rec['path']}")
        print(f"  grid (x,y,z)      {rec['shape_xyz']}")
        print(f"  voxel size (Å)    {rec['voxel_size_xyz_A']}  (Nyquist {rec['nyquist_A']:.3f} Å)")
        print(f"  origin (Å)        {rec['origin_xyz_A']}  (from {rec['origin_source'].upper()})")
        print(f"  nstart (x,y,z)    {rec['nstart_xyz']}")
        print(f"  cell sampling     {rec['sampling_xyz']}")
        print(f"  cell (Å, °)       {rec['cell_A_deg']}")
        print(f"  file axis order   columns,rows,sections = {order}")
        print(f"  space group       {rec['spacegroup']}")
        print(f"  statistics        min {st['min']:.4g}  max {st['max']:.4g}  mean {st['mean']:.4g}  sd {st['sd']:.4g}")
        print(f"  sha256            {rec['sha256']}")
        for n in rec["warnings"]:
            print(f"  warning: {n}")
    return 0
