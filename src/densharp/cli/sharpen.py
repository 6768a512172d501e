"""Sharpen maps (or two half maps, or MTZ map coefficients) with a learned model or a classical filter.

Methods: unet / vae (learned; shipped weights --model NAME or --weights FILE), autob (Guinier fit between 10 Å and
the resolution), bfactor (a B you give: --b-factor B applies exp(-B s²/4), so negative B sharpens), fsc (half
maps: FSC weighting, auto-B, low-pass at FSC-0.143). Default: the shipped learned model for the input (cryo-EM
map or MTZ) when installed and the input lies in its training domain, else fsc with half maps, else autob. A
learned model is never run outside its training domain (resolution, modality) unless --force: the command falls
back to the classical method and says why in the log and OUT.json. Any voxel size is resampled to the model's
grid and back. The output lies on the input's exact grid. Beside OUT it writes OUT.json (method and how it was
chosen, model card + sha256, parameters, resolution and its source, runtime, peak memory, versions, input sha256),
OUT.log and, with --samples N (VAE, even N >= 8), OUT_sd.mrc: the per-voxel SD across the N samples.

Several inputs in one call need --out-dir (outputs <stem>_sharp.mrc); --jobs N runs them in N processes and
--shard I/N (default from the SLURM array variables) takes every N-th input. A summary table is printed; the exit
code is 0 when all succeed, 2 when every input failed as bad input, else 1 if any failed.

Examples:
  densharp sharpen map.mrc --resolution 3.5 -o map_sharp.mrc
  densharp sharpen map.mrc --method vae --samples 8 --resolution 3.5 -o map_vae.mrc
  densharp sharpen --half-maps half1.mrc half2.mrc --mask mask.mrc -o post.mrc
  densharp sharpen map.mrc --method bfactor --b-factor -80 --resolution 3.2 -o map_b80.mrc
  densharp sharpen data.mtz --columns FWT,PHWT -o out.ccp4 --mtz-out out.mtz
  densharp sharpen a.mrc b.mrc c.mrc --resolution 3.5 --out-dir sharp/ --jobs 2
"""

from __future__ import annotations

import argparse
import logging
import re
import resource
import time
from pathlib import Path
from typing import Any

from densharp.cli._args import (
    RunLog,
    add_mask,
    add_output,
    add_permissive,
    add_seed,
    log_path,
    positive_float,
    provenance,
    resolve_mask,
    sidecar_path,
)
from densharp.errors import CheckpointError, InputError
from densharp.sharpening import CLASSICAL, LEARNED

log = logging.getLogger("densharp.sharpen")

#: library parameter -> the flag that sets it (library messages name parameters; users see flags)
FLAGS = {
    "d_input_A": "--resolution",
    "d_target_A": "--target-resolution",
    "b_factor_A2": "--b-factor",
    "fit_low_A": "--fit-low",
    "batch_size": "--batch-size",
    "mtz_out": "--mtz-out",
    "samples": "--samples",
    "overlap": "--overlap",
    "seed": "--seed",
    "model": "--model",
    "weights": "--weights",
    "model/weights": "--model/--weights",
    "method": "--method",
    "force": "--force",
}


def add_args(p: argparse.ArgumentParser) -> None:
    """Register ``sharpen`` arguments."""
    p.add_argument("inputs", nargs="*", type=Path, metavar="INPUT", help="map(s) (.mrc/.map/.ccp4[.gz]) or MTZ")
    p.add_argument("--half-maps", nargs=2, type=Path, metavar=("H1", "H2"), help="two unfiltered half maps")
    p.add_argument("--method", choices=[*LEARNED, *CLASSICAL], help="sharpening method (default: see above)")
    g = p.add_argument_group("learned models")
    gm = g.add_mutually_exclusive_group()
    gm.add_argument("--model", metavar="NAME", help="shipped model name (see 'densharp models')")
    gm.add_argument("--weights", type=Path, metavar="FILE", help="weights file (.safetensors, densharp export)")
    g.add_argument("--target-resolution", type=positive_float, metavar="Å", help="target resolution (default: model's)")
    g.add_argument("--samples", type=int, default=1, metavar="N", help="VAE samples: 1, or even N >= 8 (writes OUT_sd)")
    g.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="device (default %(default)s)")
    g.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="precision (default %(default)s)")
    g.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's choice)")
    g.add_argument("--batch-size", type=int, default=4, metavar="N", help="tiles per batch (default %(default)s)")
    g.add_argument("--overlap", type=float, default=0.25, help="tile overlap fraction, 0..0.9 (default %(default)s)")
    g.add_argument("--force", action="store_true", help="run a learned model even outside its training domain")
    add_seed(g)
    p.add_argument("--resolution", type=positive_float, metavar="Å", help="input resolution (default: half-map "
                   "FSC-0.143; MTZ: its high-resolution limit)")  # fmt: skip
    p.add_argument("--b-factor", type=float, metavar="Å²", help="bfactor method: B applied (negative sharpens)")
    p.add_argument(
        "--fit-low", type=positive_float, default=10.0, metavar="Å", help="Guinier fit start (%(default)s Å)"
    )
    x = p.add_argument_group("crystallography (MTZ input)")
    x.add_argument("--columns", metavar="F,PHI", help="map-coefficient columns (default: FWT,PHWT etc. when unique)")
    x.add_argument("--mtz-out", type=Path, metavar="FILE", help="also write the sharpened map's coefficients (MTZ)")
    add_mask(p)
    add_output(p, required=False, help="output map (.mrc/.map/.ccp4[.gz]); one input only")
    b = p.add_argument_group("many inputs")
    b.add_argument("--out-dir", type=Path, metavar="DIR", help="output folder for several inputs (<stem>_sharp.mrc)")
    b.add_argument("--jobs", type=int, default=1, metavar="N", help="processes (default %(default)s)")
    b.add_argument("--shard", metavar="I/N", help="process inputs I, I+N, ... (0-based; default from SLURM array)")
    add_permissive(p)


def with_flags(msg: str) -> str:
    """A library message with its parameter names (written `name`) replaced by the flags that set them."""
    return re.sub(r"`([A-Za-z0-9_/]+)`", lambda mt: FLAGS.get(mt[1], mt[1]), msg)


def options_from_args(args: argparse.Namespace) -> Any:
    """:class:`~densharp.sharpening.SharpenOptions` from the flags (errors name the flags)."""
    from densharp.sharpening import SharpenOptions

    try:
        return SharpenOptions(
            method=args.method,
            model=args.model,
            weights=None if args.weights is None else str(args.weights),
            d_input_A=args.resolution,
            d_target_A=args.target_resolution,
            b_factor_A2=args.b_factor,
            fit_low_A=args.fit_low,
            samples=args.samples,
            device=args.device,
            precision=args.precision,
            batch_size=args.batch_size,
            overlap=args.overlap,
            force=args.force,
            seed=args.seed,
            mtz_out=args.mtz_out is not None,
            progress=True,
        )
    except InputError as exc:
        raise InputError(with_flags(str(exc))) from None


def sd_path(out: Path) -> Path:
    """``OUT_sd.<ext>`` beside ``OUT`` (``x.mrc`` → ``x_sd.mrc``, ``x.mrc.gz`` → ``x_sd.mrc.gz``)."""
    name = out.name
    gz = name.lower().endswith(".gz")
    core = name[:-3] if gz else name
    stem, dot, ext = core.rpartition(".")
    return out.with_name(((stem + "_sd." + ext) if dot else (core + "_sd")) + (".gz" if gz else ""))


def is_mtz(path: Path | None) -> bool:
    """Whether a path names an MTZ file."""
    return path is not None and path.name.lower().endswith(".mtz")


def peak_rss_MiB() -> float:
    """Peak resident memory of this process (and finished children) in MiB (getrusage maxrss)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024.0, 1)


def run(args: argparse.Namespace) -> int:
    """Sharpen one input (``-o OUT``) or many (``--out-dir DIR``)."""
    if args.jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {args.jobs}")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be >= 1, got {args.threads}")
    options_from_args(args)  # flag checks before anything is read
    if args.threads:
        import torch

        torch.set_num_threads(int(args.threads))
    if len(args.inputs) > 1 or args.out_dir is not None:
        from densharp.cli._batch import run_many

        return run_many(args, run_one)
    if args.out is None:
        raise InputError("give the output with -o OUT (or --out-dir DIR for several inputs)")
    run_one(args, args.inputs[0] if args.inputs else None, Path(args.out))
    return 0


def _read_inputs(args: argparse.Namespace, inp: Path | None) -> tuple[Any, dict[str, Any]]:
    """Read and check the input (map, half maps or MTZ) and the mask; return the inputs and their sha256."""
    from densharp.filters.fsc_weight import check_half_maps
    from densharp.filters.sharpen import check_map_content, check_orthogonal
    from densharp.io.maps import file_sha256, read_map
    from densharp.sharpening import InputKind, SharpenInputs

    shas: dict[str, Any] = {}
    if is_mtz(inp):
        from densharp.io.mtz import check_mtz_cell, pick_map_columns, read_mtz

        assert inp is not None
        if args.mask is not None or args.mask_threshold is not None:
            raise InputError(f"{inp}: --mask is for map input; MTZ input is sharpened over its whole unit cell")
        mtz = read_mtz(inp)
        cols = pick_map_columns(mtz, args.columns, name=str(inp))
        check_mtz_cell(mtz, str(inp))
        shas[str(inp)] = file_sha256(inp)
        log.info("read %s: columns %s/%s, %s, d_min %.3f Å", inp, *cols, mtz.spacegroup.hm if mtz.spacegroup else "P 1",
                 mtz.resolution_high())  # fmt: skip
        return SharpenInputs(InputKind.MTZ, mtz=mtz, mtz_columns=cols, names=(str(inp),)), shas
    if args.columns:
        raise InputError("--columns is for MTZ input")
    paths: list[Path] = list(args.half_maps) if args.half_maps else [inp]  # type: ignore[list-item]  # checked
    maps = []
    for path in paths:
        m = read_map(path, permissive=args.permissive)
        check_map_content(m, str(path))
        check_orthogonal(m, str(path))
        log.info("read %s: %s", path, m.source.header_summary if m.source else "")
        shas[str(path)] = m.source.sha256 if m.source else None
        maps.append(m)
    if len(maps) == 2:
        check_half_maps(maps[0], maps[1], names=(str(paths[0]), str(paths[1])))
    mask, mask_desc = resolve_mask(args, maps[0])
    names = tuple(str(p) for p in paths)
    if len(maps) == 2:
        half = (maps[0], maps[1])
        return SharpenInputs(InputKind.HALF_MAPS, half_maps=half, mask=mask, mask_desc=mask_desc, names=names), shas
    return SharpenInputs(InputKind.MAP, map=maps[0], mask=mask, mask_desc=mask_desc, names=names), shas


def run_one(args: argparse.Namespace, inp: Path | None, out: Path) -> dict[str, Any]:
    """Sharpen one input (map, MTZ or half maps) to ``out``; return the JSON record written beside it."""
    from densharp.io.atomic import OutputSet, write_json_atomic, write_text_atomic
    from densharp.io.maps import write_map
    from densharp.sharpening import plan_sharpen, run_sharpen

    if inp is None and not args.half_maps:
        raise InputError("give a MAP (or MTZ) or --half-maps H1 H2")
    if inp is not None and args.half_maps:
        raise InputError("give either a MAP or --half-maps H1 H2, not both")
    if args.mtz_out is not None and not is_mtz(inp):
        raise InputError("--mtz-out is for MTZ input")
    options = options_from_args(args)
    planned = [out, sidecar_path(out), log_path(out)]
    if options.samples > 1:
        planned.append(sd_path(out))
    if args.mtz_out is not None:
        planned.append(Path(args.mtz_out))
    inputs_used = [inp, *(args.half_maps or []), args.mask, args.weights]
    # one set: checked (never an input, by file identity), locked, staged, and renamed together with the map last
    with OutputSet(planned, overwrite=args.overwrite, inputs=inputs_used, primary=out), RunLog() as runlog:
        t0 = time.perf_counter()
        inputs, shas = _read_inputs(args, inp)
        try:
            plan = plan_sharpen(inputs, options)
        except InputError as exc:
            raise InputError(with_flags(f"{inputs.label}: {exc}")) from None
        except CheckpointError as exc:  # the weights named (or shipped) cannot be used: bad input, exit 2
            raise InputError(str(exc)) from None
        log.info("method %s (%s); resolution %s Å (%s)", plan.method, plan.choice,
                 "-" if plan.d_input_A is None else f"{plan.d_input_A:.3f}", plan.resolution_source)  # fmt: skip
        for note in plan.notes:
            log.warning("warning: %s", with_flags(note))
        try:
            outcome = run_sharpen(plan, inputs)
        except InputError as exc:
            raise InputError(with_flags(str(exc))) from None
        except CheckpointError as exc:
            raise InputError(str(exc)) from None
        # notes the run itself added (a do-no-harm fallback) and those of the method that ran, one line each
        for note in [n for n in outcome.record.get("notes", []) if n not in plan.notes]:
            log.warning("warning: %s", with_flags(note))
        for note in outcome.record["result"].get("notes", []):
            log.warning("warning: %s", note)
        record = {"command": "sharpen", "output": str(out), **outcome.record, "inputs_sha256": shas}
        record["runtime_s"] = round(time.perf_counter() - t0, 3)
        record["peak_rss_MiB"] = peak_rss_MiB()
        if outcome.sd is not None:
            record["sd_map"]["path"] = str(sd_path(out))
        if outcome.mtz is not None:
            record["mtz_out"] = {"path": str(args.mtz_out), "columns": ["FWT", "PHWT"]}
        record["provenance"] = provenance()
        label = f"densharp sharpen {plan.method}"
        # staged by the OutputSet; the map, its primary output, is renamed into place last
        write_json_atomic(sidecar_path(out), record)
        if outcome.mtz is not None:
            from densharp.io.mtz import write_mtz

            write_mtz(args.mtz_out, outcome.mtz, overwrite=args.overwrite)
        if outcome.sd is not None:
            write_map(sd_path(out), outcome.sd, overwrite=args.overwrite, label=f"{label} per-voxel SD")
        log.info("wrote %s, %s (%.1f s, peak RSS %.0f MiB)", out, sidecar_path(out), record["runtime_s"],
                 record["peak_rss_MiB"])  # fmt: skip
        write_text_atomic(log_path(out), runlog.text())
        write_map(out, outcome.map, overwrite=args.overwrite, label=label)
    return record
