"""Sharpen a map (or two half maps) and write the result on the input's exact grid.

Classical methods: autob (Guinier fit between 10 Å and the resolution, RELION style), bfactor (a B you give),
fsc (half maps: FSC weighting, auto-B, low-pass at the FSC-0.143 resolution). Beside OUT it writes OUT.json
(parameters, B found, resolution, half-map FSC, versions, input sha256) and OUT.log.

Examples:
  densharp sharpen map.mrc --resolution 3.5 -o map_sharp.mrc
  densharp sharpen --half-maps half1.mrc half2.mrc --mask mask.mrc -o post.mrc
  densharp sharpen map.mrc --method bfactor --b-factor 80 --resolution 3.2 -o map_b80.mrc
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from densharp.cli._args import (
    RunLog,
    add_mask,
    add_output,
    add_permissive,
    log_path,
    positive_float,
    provenance,
    resolve_mask,
    sidecar_path,
)
from densharp.errors import InputError

log = logging.getLogger("densharp.sharpen")


def add_args(p: argparse.ArgumentParser) -> None:
    """Register ``sharpen`` arguments."""
    p.add_argument("map", nargs="?", type=Path, help="map to sharpen (omit when --half-maps is given)")
    p.add_argument("--half-maps", nargs=2, type=Path, metavar=("H1", "H2"), help="two unfiltered half maps")
    p.add_argument(
        "--method",
        choices=["autob", "bfactor", "fsc"],
        help="sharpening method (default: fsc with half maps, else autob)",
    )
    p.add_argument(
        "--resolution",
        type=positive_float,
        metavar="Å",
        help="resolution of the input in Å (default: FSC-0.143 of the half maps)",
    )
    p.add_argument("--b-factor", type=float, metavar="Å²", help="B to sharpen by (Å², positive sharpens; bfactor)")
    p.add_argument(
        "--fit-low",
        type=positive_float,
        default=10.0,
        metavar="Å",
        help="low-resolution end of the Guinier fit (default %(default)s Å)",
    )
    add_mask(p)
    add_output(p)
    add_permissive(p)


def run(args: argparse.Namespace) -> int:
    """Sharpen and write map, JSON sidecar and log."""
    from densharp.filters.sharpen import (
        SharpenMethod,
        check_map_content,
        check_orthogonal,
        sharpen_autob,
        sharpen_fixed_b,
        sharpen_half_maps,
    )
    from densharp.io.atomic import check_outputs, write_json_atomic, write_text_atomic
    from densharp.io.maps import read_map, write_map

    # ---- usage checks, then outputs, before any computation
    if args.map is None and not args.half_maps:
        raise InputError("give a MAP or --half-maps H1 H2")
    if args.map is not None and args.half_maps:
        raise InputError("give either a MAP or --half-maps H1 H2, not both")
    method = SharpenMethod(args.method or ("fsc" if args.half_maps else "autob"))
    if method is SharpenMethod.FSC and not args.half_maps:
        raise InputError("--method fsc needs --half-maps H1 H2")
    if method is SharpenMethod.BFACTOR and args.b_factor is None:
        raise InputError("--method bfactor needs --b-factor B (Å², positive sharpens)")
    if method is SharpenMethod.AUTOB and args.resolution is None and not args.half_maps:
        raise InputError("autob needs the map's resolution: pass --resolution Å (or give --half-maps)")
    out = Path(args.out)
    planned = [out, sidecar_path(out), log_path(out)]
    check_outputs(planned, overwrite=args.overwrite)

    with RunLog() as runlog:
        t0 = time.perf_counter()
        inputs: dict[str, Any] = {}
        if args.half_maps:
            from densharp.filters.fsc_weight import check_half_maps

            h1 = read_map(args.half_maps[0], permissive=args.permissive)
            h2 = read_map(args.half_maps[1], permissive=args.permissive)
            for h, path in ((h1, args.half_maps[0]), (h2, args.half_maps[1])):
                check_map_content(h, str(path))
                check_orthogonal(h, str(path))
                log.info("read %s: %s", path, h.source.header_summary if h.source else "")
                inputs[str(path)] = h.source.sha256 if h.source else None
            check_half_maps(h1, h2, names=(str(args.half_maps[0]), str(args.half_maps[1])))
            ref = h1
        else:
            m = read_map(args.map, permissive=args.permissive)
            check_map_content(m, str(args.map))
            check_orthogonal(m, str(args.map))
            log.info("read %s: %s", args.map, m.source.header_summary if m.source else "")
            inputs[str(args.map)] = m.source.sha256 if m.source else None
            ref = m
        mask, mask_desc = resolve_mask(args, ref)
        log.info("mask: %s", mask_desc)

        if args.half_maps and method is SharpenMethod.FSC:
            result = sharpen_half_maps(h1, h2, mask=mask, d_min_A=args.resolution, fit_low_A=args.fit_low)
        else:
            if args.half_maps:
                from densharp.filters.fsc_weight import estimate_resolution

                m = h1.with_data(0.5 * (h1.data_zyx + h2.data_zyx))
                d = args.resolution
                if d is None:
                    d, _ = estimate_resolution(h1, h2, mask)
                    d = max(d, m.nyquist_A)
            else:
                d = args.resolution
            if method is SharpenMethod.AUTOB:
                result = sharpen_autob(m, d, mask=mask, fit_low_A=args.fit_low)
            else:
                result = sharpen_fixed_b(m, float(args.b_factor), d)
        for note in result.notes:
            log.warning("%s", note)
        log.info(
            "method %s: resolution %.3f Å, B applied %.1f Å²%s",
            result.method.value,
            result.d_min_A,
            result.b_sharpen_A2,
            f", Guinier B {result.guinier.b_A2:.1f} Å²" if result.guinier else "",
        )
        runtime = time.perf_counter() - t0
        record = {
            "command": "sharpen",
            "output": str(out),
            "inputs_sha256": inputs,
            "mask": mask_desc,
            "geometry": result.map.geometry_dict(),
            "result": result.to_dict(),
            "runtime_s": round(runtime, 3),
            "provenance": provenance(),
        }
        write_map(out, result.map, overwrite=args.overwrite, label=f"densharp sharpen {result.method.value}")
        write_json_atomic(sidecar_path(out), record)
        log.info("wrote %s, %s", out, sidecar_path(out))
        write_text_atomic(log_path(out), runlog.text())
    return 0
