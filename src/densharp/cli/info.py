"""Show a map's header geometry, statistics and warnings (and what a file that is not a volume holds).

Files that are not one 3-D volume — a 2-D image (NZ = 1), an image stack (ISPG 0 with NZ > 1, or .mrcs, per
MRC2014) or a volume stack (ISPG 401-630) — are reported as what they are, from the header alone; so is a map too
large for the memory budget (statistics skipped).

Examples
--------
  densharp info emd_1234.map
  densharp info half1.mrc half2.mrc --json
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

from densharp.cli._args import add_permissive
from densharp.errors import DensharpWarning, MemoryLimitError
from densharp.io.atomic import json_text
from densharp.io.maps import MapKind, read_map, read_map_header
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
        hdr = read_map_header(path, permissive=args.permissive)
        readable = hdr.kind is MapKind.VOLUME or (args.permissive and hdr.kind is MapKind.IMAGE_STACK)
        if not readable:
            records.append(_header_only_record(hdr, None))
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DensharpWarning)
                m = read_map(path, permissive=args.permissive)
        except MemoryLimitError as exc:
            records.append(_header_only_record(hdr, str(exc)))
            continue
        notes = [str(w.message) for w in caught]
        if not m.is_isotropic:
            notes.append("anisotropic voxels")
        if not m.is_orthogonal:
            notes.append("non-orthogonal cell (crystallographic map)")
        stats = map_statistics(m)
        if stats["sd"] == 0:
            notes.append("constant map: every voxel has the same value")
        rec: dict[str, Any] = {
            "path": str(path),
            "kind": hdr.kind.value,
            "sha256": m.source.sha256 if m.source else None,
        }
        rec.update(m.geometry_dict())
        rec["statistics"] = stats
        rec["nyquist_A"] = m.nyquist_A
        rec["warnings"] = notes
        records.append(rec)
    if args.json:
        print(json_text(records if len(records) > 1 else records[0]), end="")
        return 0
    for rec in records:
        if "statistics" not in rec:
            print(f"{rec['path']}")
            print(f"  kind              {rec['kind']}: {rec['description']}")
            print(f"  grid (NX,NY,NZ)   {rec['shape_crs']}  (MRC mode {rec['mode']}, ISPG {rec['ispg']})")
            print(f"  pixel size (Å)    {rec['pixel_size_xyz_A']}")
            for n in rec["warnings"]:
                print(f"  note: {n}")
            continue
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


def _header_only_record(hdr, too_big: str | None) -> dict:  # type: ignore[no-untyped-def]
    """Record of a file described from its header alone (not a volume, or too large to read)."""
    notes = []
    if hdr.kind is not MapKind.VOLUME:
        notes.append(
            f"not a 3-D volume ({hdr.why}): commands that need a volume (sharpen, fsc, compare, evaluate) refuse it"
        )
    if too_big:
        notes.append(f"statistics skipped: {too_big}")
    return {
        "path": str(hdr.path),
        "kind": hdr.kind.value,
        "description": hdr.describe(),
        "shape_crs": list(hdr.shape_crs),
        "mode": hdr.mode,
        "ispg": hdr.ispg,
        "pixel_size_xyz_A": [round(v, 6) if v == v else None for v in hdr.pixel_size_xyz_A],
        "data_bytes": hdr.data_bytes,
        "warnings": notes,
    }
