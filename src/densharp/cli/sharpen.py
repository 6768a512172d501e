"""Sharpen maps (or two half maps, or MTZ map coefficients) with a learned model or a classical filter.

Methods: unet / vae (learned; shipped weights or --weights FILE), autob (Guinier fit between 10 Å and the
resolution, RELION style), bfactor (a B you give), fsc (half maps: FSC weighting, auto-B, low-pass at FSC-0.143).
Default: unet when shipped weights are installed and the input lies inside their training domain, else fsc with
half maps or autob. A learned model is never run outside its training domain (resolution, voxel size, modality)
unless --force: the command falls back to the classical method and says why in the log and OUT.json.
The output lies on the input's exact grid. Beside OUT it writes OUT.json (method, model + sha256, parameters,
resolution, runtime, peak memory, versions, input sha256), OUT.log and, with --samples N > 1 (VAE), OUT_sd.mrc:
the per-voxel SD across the N samples, in the output's units.

Several inputs in one call need --out-dir (outputs <stem>_sharp.mrc); --jobs N runs them in N processes and
--shard I/N (default from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT) takes every N-th input. A summary table
is printed; the exit code is 0 when all succeed, 2 when every input failed as bad input, else 1 if any failed.

Examples:
  densharp sharpen map.mrc --resolution 3.5 -o map_sharp.mrc
  densharp sharpen map.mrc --method vae --samples 8 --resolution 3.5 -o map_vae.mrc
  densharp sharpen --half-maps half1.mrc half2.mrc --mask mask.mrc -o post.mrc
  densharp sharpen map.mrc --method bfactor --b-factor 80 --resolution 3.2 -o map_b80.mrc
  densharp sharpen data.mtz --columns FWT,PHWT -o out.ccp4
  densharp sharpen a.mrc b.mrc c.mrc --resolution 3.5 --out-dir sharp/ --jobs 2
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import resource
import sys
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
from densharp.errors import CheckpointError, DensharpError, InputError

log = logging.getLogger("densharp.sharpen")

LEARNED = ("unet", "vae")
CLASSICAL = ("autob", "bfactor", "fsc")
#: shipped model used for each learned method when no --model/--weights is given
DEFAULT_MODEL = {"unet": "unet-em", "vae": "vae-em"}
#: shipped model used for X-ray (MTZ) input when no --model/--weights is given, if the registry has it with an X-ray
#: training domain (otherwise MTZ input goes the cryo-EM default's way: a domain fallback to the classical method)
XRAY_MODEL = "unet-xray"


def add_args(p: argparse.ArgumentParser) -> None:
    """Register ``sharpen`` arguments."""
    p.add_argument(
        "inputs",
        nargs="*",
        type=Path,
        metavar="INPUT",
        help="map(s) (.mrc/.map/.ccp4[.gz]) or MTZ to sharpen (omit when --half-maps is given)",
    )
    p.add_argument("--half-maps", nargs=2, type=Path, metavar=("H1", "H2"), help="two unfiltered half maps")
    p.add_argument(
        "--method",
        choices=[*LEARNED, *CLASSICAL],
        help="sharpening method (default: unet with shipped weights inside their domain, else fsc with half "
        "maps, else autob)",
    )
    g = p.add_argument_group("learned models")
    gm = g.add_mutually_exclusive_group()
    gm.add_argument("--model", metavar="NAME", help="shipped model name (see 'densharp models')")
    gm.add_argument("--weights", type=Path, metavar="FILE", help="weights file (.safetensors, densharp export)")
    g.add_argument(
        "--target-resolution",
        type=positive_float,
        metavar="Å",
        help="resolution to condition the output on (default as in training: max(d/2, 2.0, 2.2·voxel) Å)",
    )
    g.add_argument("--samples", type=int, default=1, metavar="N", help="VAE samples; N > 1 writes OUT_sd (default 1)")
    g.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="device (default %(default)s)")
    g.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="precision (default %(default)s)")
    g.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's choice)")
    g.add_argument("--batch-size", type=int, default=4, metavar="N", help="tiles per batch (default %(default)s)")
    g.add_argument(
        "--overlap", type=float, default=0.25, help="fraction of a tile shared with its neighbour (default %(default)s)"
    )
    g.add_argument("--force", action="store_true", help="run a learned model even outside its training domain")
    add_seed(g)
    p.add_argument(
        "--resolution",
        type=positive_float,
        metavar="Å",
        help="resolution of the input in Å (default: FSC-0.143 of the half maps; MTZ: its high-resolution limit)",
    )
    p.add_argument("--b-factor", type=float, metavar="Å²", help="B to sharpen by (Å², positive sharpens; bfactor)")
    p.add_argument(
        "--fit-low",
        type=positive_float,
        default=10.0,
        metavar="Å",
        help="low-resolution end of the Guinier fit (default %(default)s Å)",
    )
    x = p.add_argument_group("crystallography (MTZ input)")
    x.add_argument("--columns", metavar="F,PHI", help="map-coefficient columns (default: FWT,PHWT etc. when unique)")
    x.add_argument(
        "--mtz-out", type=Path, metavar="FILE", help="also write the sharpened map's coefficients FWT/PHWT (MTZ input)"
    )
    add_mask(p)
    add_output(p, required=False, help="output map (.mrc/.map/.ccp4[.gz]); one input only")
    b = p.add_argument_group("many inputs")
    b.add_argument("--out-dir", type=Path, metavar="DIR", help="output folder for several inputs (<stem>_sharp.mrc)")
    b.add_argument("--jobs", type=int, default=1, metavar="N", help="processes (default %(default)s)")
    b.add_argument("--shard", metavar="I/N", help="process inputs I, I+N, ... (0-based; default from SLURM array)")
    add_permissive(p)


# ----------------------------------------------------------------------------------------------- helpers
def sd_path(out: Path) -> Path:
    """``OUT_sd.<ext>`` beside ``OUT`` (``x.mrc`` → ``x_sd.mrc``, ``x.mrc.gz`` → ``x_sd.mrc.gz``)."""
    name = out.name
    gz = name.lower().endswith(".gz")
    core = name[:-3] if gz else name
    stem, dot, ext = core.rpartition(".")
    new = (stem + "_sd." + ext) if dot else (core + "_sd")
    return out.with_name(new + (".gz" if gz else ""))


def shipped_model_names() -> list[str]:
    """Names in the shipped-weights registry, read without importing torch (none when torch is not installed)."""
    import importlib.util
    import json
    from importlib import resources

    if importlib.util.find_spec("torch") is None:
        return []
    if "densharp.ml.checkpoint" in sys.modules:  # already loaded (torch imported): ask it
        return sorted(sys.modules["densharp.ml.checkpoint"].shipped_models())
    reg = resources.files("densharp.ml").joinpath("weights", "registry.json")
    try:
        return sorted(json.loads(reg.read_text(encoding="utf-8")).get("models", {}))
    except (OSError, ValueError):
        return []


def shipped_model_modality(name: str) -> str | None:
    """Training-domain modality of shipped model ``name`` in the registry (``None`` when absent or unknown)."""
    import importlib.util
    import json
    from importlib import resources

    if importlib.util.find_spec("torch") is None:
        return None
    if "densharp.ml.checkpoint" in sys.modules:
        models = sys.modules["densharp.ml.checkpoint"].shipped_models()
    else:
        reg = resources.files("densharp.ml").joinpath("weights", "registry.json")
        try:
            models = json.loads(reg.read_text(encoding="utf-8")).get("models", {})
        except (OSError, ValueError):
            return None
    meta = (models.get(name) or {}).get("metadata") or {}
    mod = meta.get("modality")
    return str(mod) if mod else None


def gemmi_spacegroup(hm: str):  # type: ignore[no-untyped-def]
    """The gemmi SpaceGroup of a Hermann-Mauguin name."""
    import gemmi

    return gemmi.SpaceGroup(hm)


def is_mtz(path: Path | None) -> bool:
    """Whether a path names an MTZ file."""
    return path is not None and path.name.lower().endswith(".mtz")


def peak_rss_MiB() -> float:
    """Peak resident memory of this process (and finished children) in MiB (getrusage maxrss)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024.0, 1)


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"I/N"`` (or SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, or ``0/1``) → ``(I, N)``."""
    if text is None:
        tid, cnt = os.environ.get("SLURM_ARRAY_TASK_ID"), os.environ.get("SLURM_ARRAY_TASK_COUNT")
        if tid is None or cnt is None:
            return 0, 1
        lo = int(os.environ.get("SLURM_ARRAY_TASK_MIN", "0") or 0)
        text = f"{int(tid) - lo}/{cnt}"
    try:
        i_s, n_s = text.split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise InputError(f"--shard must be I/N with 0 <= I < N, got {text!r}") from None
    if not 0 <= i < n:
        raise InputError(f"--shard must be I/N with 0 <= I < N, got {text!r}")
    return i, n


def _usage_checks(args: argparse.Namespace) -> None:
    if args.samples < 1:
        raise InputError(f"--samples must be >= 1, got {args.samples}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not 0.0 <= args.overlap < 1.0:
        raise InputError(f"--overlap must be in [0, 1), got {args.overlap}")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be >= 1, got {args.threads}")
    if args.jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {args.jobs}")
    if args.method in CLASSICAL and (args.model or args.weights):
        raise InputError(f"--model/--weights are for learned methods, not --method {args.method}")
    if args.samples > 1 and args.method in CLASSICAL:
        raise InputError("--samples needs a VAE (--method vae)")


# ----------------------------------------------------------------------------------------------- entry
def run(args: argparse.Namespace) -> int:
    """Sharpen one input (``-o OUT``) or many (``--out-dir DIR``)."""
    _usage_checks(args)
    if args.threads:
        import torch

        torch.set_num_threads(int(args.threads))
    if len(args.inputs) > 1 or args.out_dir is not None:
        return run_many(args)
    if args.out is None:
        raise InputError("give the output with -o OUT (or --out-dir DIR for several inputs)")
    run_one(args, args.inputs[0] if args.inputs else None, Path(args.out))
    return 0


def run_many(args: argparse.Namespace) -> int:
    """Sharpen several inputs into ``--out-dir``; print a summary table; see the module docstring for exit codes."""
    if args.out is not None:
        raise InputError("-o OUT is for one input; with several inputs use --out-dir DIR")
    if args.out_dir is None:
        raise InputError("several inputs need --out-dir DIR (outputs are named <stem>_sharp.mrc)")
    if args.half_maps:
        raise InputError("--half-maps takes one pair; run one command per pair")
    if args.mtz_out is not None:
        raise InputError("--mtz-out is for one MTZ input (with -o OUT), not --out-dir")
    if not args.inputs:
        raise InputError("give at least one INPUT with --out-dir")
    i, n = parse_shard(args.shard)
    todo = [p for k, p in enumerate(args.inputs) if k % n == i]
    out_dir = Path(args.out_dir)
    if not out_dir.is_dir():
        raise InputError(f"--out-dir {out_dir} is not an existing folder; create it first")
    jobs_list = []
    for p in todo:
        stem = p.name
        for suf in (".gz", ".mrc", ".map", ".ccp4", ".mtz"):
            if stem.lower().endswith(suf):
                stem = stem[: -len(suf)]
        ext = ".ccp4" if is_mtz(p) else ".mrc"
        jobs_list.append((p, out_dir / f"{stem}_sharp{ext}"))
    outs = [o for _, o in jobs_list]
    if len(set(outs)) != len(outs):
        raise InputError("two inputs share a name stem; their outputs would collide in --out-dir")
    sub = copy.copy(args)
    sub.out_dir = None
    sub.inputs = []
    ns = {k: v for k, v in vars(sub).items() if k != "_module"}
    rows: list[dict[str, Any]] = []
    if args.jobs > 1 and len(jobs_list) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        threads = max(1, (args.threads or os.cpu_count() or 1) // args.jobs)
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=mp.get_context("spawn")) as ex:
            futs = [ex.submit(_worker, ns, str(p), str(o), threads) for p, o in jobs_list]
            rows = [f.result() for f in futs]
    else:
        rows = [_one_row(argparse.Namespace(**ns), p, o) for p, o in jobs_list]
    _print_table(rows, shard=(i, n))
    bad = [r for r in rows if r["status"] != "ok"]
    if not bad:
        return 0
    if len(bad) == len(rows) and all(r["status"] == "error (input)" for r in rows):
        return 2
    return 1


def _worker(ns: dict[str, Any], inp: str, out: str, threads: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    root = logging.getLogger("densharp")
    root.setLevel(logging.INFO)
    root.propagate = False
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    return _one_row(argparse.Namespace(**ns), Path(inp), Path(out))


def _one_row(args: argparse.Namespace, inp: Path, out: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    row: dict[str, Any] = {"input": str(inp), "output": str(out), "method": "-", "resolution_A": None}
    try:
        rec = run_one(args, inp, out)
        row.update(method=rec["method"], resolution_A=rec.get("resolution_A"), status="ok", error="")
    except InputError as exc:
        row.update(status="error (input)", error=str(exc))
    except DensharpError as exc:
        row.update(status="error", error=str(exc))
    except Exception as exc:  # one broken input must not stop the others
        row.update(status="error", error=f"unexpected {type(exc).__name__}: {exc}")
    row["runtime_s"] = round(time.perf_counter() - t0, 2)
    if row["status"] != "ok":
        log.error("%s: %s", inp, row["error"])
    return row


def _print_table(rows: list[dict[str, Any]], shard: tuple[int, int]) -> None:
    head = ("input", "method", "resolution_Å", "runtime_s", "status")
    lines = [
        (
            r["input"],
            str(r["method"]),
            "-" if r["resolution_A"] is None else f"{r['resolution_A']:.2f}",
            f"{r['runtime_s']:.1f}",
            r["status"] + (f": {r['error']}" if r["status"] != "ok" else ""),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(x[k]) for x in lines)) if lines else len(h) for k, h in enumerate(head)]
    if shard[1] > 1:
        print(f"shard {shard[0]}/{shard[1]}: {len(rows)} input(s)")
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
    for x in lines:
        print("  ".join(v.ljust(w) for v, w in zip(x, widths)).rstrip())


# ----------------------------------------------------------------------------------------------- one input
def _load_model(
    args: argparse.Namespace, method: str | None, default_name: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """Model and metadata for the learned path; every weights problem is bad input (exit 2)."""
    from densharp.ml.sharpen import load_model

    default = default_name or DEFAULT_MODEL[method or "unet"]
    src: str | Path = args.weights if args.weights is not None else (args.model or default)
    try:
        model, meta = load_model(src)
    except CheckpointError as exc:
        msg = str(exc)
        raise InputError(msg if str(src) in msg else f"{src}: {msg}") from exc
    arch = meta.get("architecture")
    if method in LEARNED and arch != method:
        raise InputError(f"--method {method} but the weights {src} are a {arch!r} model; use --method {arch}")
    if args.samples > 1 and arch != "vae":
        raise InputError(f"--samples {args.samples} needs a VAE model; {src} is a {arch!r} model")
    return model, meta


def run_one(args: argparse.Namespace, inp: Path | None, out: Path) -> dict[str, Any]:
    """Sharpen one input (map, MTZ or half maps) to ``out``; return the JSON record written beside it."""
    from densharp.filters.sharpen import check_map_content, check_orthogonal
    from densharp.io.atomic import check_outputs, write_json_atomic, write_text_atomic
    from densharp.io.maps import read_map, write_map

    # ---- usage checks, then outputs, before any computation
    if inp is None and not args.half_maps:
        raise InputError("give a MAP (or MTZ) or --half-maps H1 H2")
    if inp is not None and args.half_maps:
        raise InputError("give either a MAP or --half-maps H1 H2, not both")
    mtz_in = is_mtz(inp)
    if (args.columns or args.mtz_out) and not mtz_in:
        raise InputError("--columns and --mtz-out are for MTZ input")
    method = args.method
    if method == "fsc" and not args.half_maps:
        raise InputError("--method fsc needs --half-maps H1 H2")
    if method == "bfactor" and args.b_factor is None:
        raise InputError("--method bfactor needs --b-factor B (Å², positive sharpens)")
    if method == "autob" and args.resolution is None and not args.half_maps and not mtz_in:
        raise InputError("autob needs the map's resolution: pass --resolution Å (or give --half-maps)")
    planned = [out, sidecar_path(out), log_path(out)]
    if args.samples > 1:
        planned.append(sd_path(out))
    if args.mtz_out is not None:
        planned.append(Path(args.mtz_out))
    check_outputs(planned, overwrite=args.overwrite)

    with RunLog() as runlog:
        t0 = time.perf_counter()
        inputs: dict[str, Any] = {}
        choice: dict[str, Any] = {"requested": method}
        # ---- which method: learned requested (explicitly, by model/weights, or by default with shipped weights)
        learned_wanted = method in LEARNED or (method is None and (args.model or args.weights))
        default_name = None
        if (
            mtz_in
            and method in (None, "unet")
            and not (args.model or args.weights)
            and str(shipped_model_modality(XRAY_MODEL) or "").lower() == "x-ray"
        ):
            default_name = XRAY_MODEL
            learned_wanted = True
            choice["default"] = f"X-ray input and shipped {XRAY_MODEL} (x-ray) present: trying it"
        if method is None and not learned_wanted:
            if DEFAULT_MODEL["unet"] in shipped_model_names():
                learned_wanted = True
                choice["default"] = f"shipped {DEFAULT_MODEL['unet']} present: trying it"
            else:
                choice["default"] = "no shipped weights installed: classical method"
                log.info("no shipped weights installed; using the classical method")
        model = meta = None
        if learned_wanted:
            model, meta = _load_model(args, method, default_name)
            method = meta["architecture"]
            log.info("model %s (%s, sha256 %s)", meta["name"], method, meta["sha256"][:16])
        classical_default = "fsc" if args.half_maps else "autob"

        # ---- read inputs
        h1 = h2 = m = None
        modality = "cryo-em"
        d = args.resolution
        mtz_info: dict[str, Any] | None = None
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
        elif mtz_in:
            from densharp.io.maps import file_sha256
            from densharp.io.mtz import mtz_map, pick_map_columns, read_mtz

            assert inp is not None
            mtz = read_mtz(inp)
            f_col, phi_col = pick_map_columns(mtz, args.columns, name=str(inp))
            c = mtz.cell
            if any(abs(a - 90.0) > 0.01 for a in (c.alpha, c.beta, c.gamma)):
                raise InputError(
                    f"{inp}: non-orthogonal cell ({c.alpha:g}, {c.beta:g}, {c.gamma:g}°) is not supported yet; "
                    "densharp sharpens orthogonal cells only"
                )
            d_mtz = float(mtz.resolution_high())
            d = d if d is not None else d_mtz
            modality = "x-ray"
            from densharp.ml.sharpen import model_voxel_A

            v = min(model_voxel_A(meta), d / 2.5) if meta is not None else d / 3.0
            m = mtz_map(mtz, f_col, phi_col, v)
            inputs[str(inp)] = file_sha256(inp)
            mtz_info = {
                "columns": [f_col, phi_col],
                "d_min_mtz_A": round(d_mtz, 4),
                "spacegroup": mtz.spacegroup.hm if mtz.spacegroup else "P 1",
                "grid_xyz": list(m.shape_xyz),
                "expanded_to_p1": True,
            }
            log.info("read %s: columns %s/%s, %s, d_min %.3f Å, grid %s", inp, f_col, phi_col,
                     mtz_info["spacegroup"], d_mtz, m.shape_xyz)  # fmt: skip
            ref = m
        else:
            assert inp is not None
            m = read_map(inp, permissive=args.permissive)
            check_map_content(m, str(inp))
            check_orthogonal(m, str(inp))
            log.info("read %s: %s", inp, m.source.header_summary if m.source else "")
            inputs[str(inp)] = m.source.sha256 if m.source else None
            ref = m
        mask, mask_desc = resolve_mask(args, ref)
        log.info("mask: %s", mask_desc)
        if d is None and args.half_maps:
            from densharp.filters.fsc_weight import estimate_resolution

            d, _ = estimate_resolution(h1, h2, mask)
            d = max(d, h1.nyquist_A)
            log.info("resolution from the half-map FSC (0.143): %.3f Å", d)

        # ---- domain check (learned only)
        domain: dict[str, Any] | None = None
        fallback: dict[str, Any] | None = None
        if model is not None:
            from densharp.ml.sharpen import check_domain

            if d is None:
                raise InputError("a learned model needs the input's resolution: pass --resolution Å (or --half-maps)")
            reasons = check_domain(meta, modality, d, ref.voxel_size_xyz_A)  # type: ignore[arg-type]
            if modality == "x-ray":
                reasons = [r for r in reasons if not r.startswith("voxel size")]  # the cell grid is ours to choose
            domain = {"inside": not reasons, "reasons": reasons, "forced": bool(reasons and args.force)}
            if reasons and not args.force:
                fallback = {"from": method, "to": classical_default, "reasons": reasons}
                log.warning(
                    "warning: input outside %s's training domain (%s); falling back to %s (use --force to run the "
                    "model anyway)", meta["name"], "; ".join(reasons), classical_default)  # fmt: skip
                method, model = classical_default, None
            elif reasons:
                log.warning("warning: input outside the model's domain (%s); running it anyway (--force)",
                            "; ".join(reasons))  # fmt: skip
        if method is None:
            method = classical_default
        if method == "autob" and d is None:
            raise InputError("autob needs the map's resolution: pass --resolution Å (or give --half-maps)")

        # ---- compute
        sd_map = None
        result: dict[str, Any]
        if model is not None:
            out_map, sd_map, result = _learned(args, model, meta, m, h1, h2, mask, d, periodic=mtz_in)
        else:
            out_map, result = _classical(args, method, m, h1, h2, mask, d)
        runtime = time.perf_counter() - t0
        record: dict[str, Any] = {
            "command": "sharpen",
            "output": str(out),
            "method": method,
            "method_choice": choice,
            "resolution_A": None if d is None else round(float(d), 4),
            "inputs_sha256": inputs,
            "mask": mask_desc,
            "geometry": out_map.geometry_dict(),
            "parameters": {
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in vars(args).items()
                if k not in ("_module", "inputs", "out", "out_dir", "half_maps", "verbose", "quiet", "debug")
            },
            "result": result,
            "runtime_s": round(runtime, 3),
            "peak_rss_MiB": peak_rss_MiB(),
        }
        if meta is not None:
            record["model"] = {
                "name": meta.get("name"),
                "architecture": meta.get("architecture"),
                "sha256": meta.get("sha256"),
                "training_domain": meta.get("training_domain"),
                "voxel_size_A": meta.get("voxel_size_A"),
            }
            record["domain"] = domain
        if fallback is not None:
            record["fallback"] = fallback
        if mtz_info is not None:
            record["mtz"] = mtz_info
        if sd_map is not None:
            record["sd_map"] = {
                "path": str(sd_path(out)),
                "meaning": f"per-voxel standard deviation across {args.samples} VAE samples, in the output map's "
                "units (same grid as the output)",
            }
        record["provenance"] = provenance()
        label = f"densharp sharpen {method}"
        write_map(out, out_map, overwrite=args.overwrite, label=label)
        if mtz_info is not None and args.mtz_out is not None:
            from densharp.io.mtz import map_to_mtz, write_mtz

            sg = gemmi_spacegroup(mtz_info["spacegroup"])
            write_mtz(args.mtz_out, map_to_mtz(out_map, float(d), sg), overwrite=args.overwrite)
            record["mtz_out"] = {"path": str(args.mtz_out), "columns": ["FWT", "PHWT"], "d_min_A": round(float(d), 4)}
        if sd_map is not None:
            write_map(sd_path(out), sd_map, overwrite=args.overwrite, label=f"{label} per-voxel SD")
        write_json_atomic(sidecar_path(out), record)
        log.info("wrote %s, %s (%.1f s, peak RSS %.0f MiB)", out, sidecar_path(out), runtime, record["peak_rss_MiB"])
        write_text_atomic(log_path(out), runlog.text())
    return record


def _classical(
    args: argparse.Namespace, method: str, m: Any, h1: Any, h2: Any, mask: Any, d: float | None
) -> tuple[Any, dict[str, Any]]:
    from densharp.filters.sharpen import sharpen_autob, sharpen_fixed_b, sharpen_half_maps

    if h1 is not None and method == "fsc":
        res = sharpen_half_maps(h1, h2, mask=mask, d_min_A=args.resolution if d is None else d, fit_low_A=args.fit_low)
    else:
        if h1 is not None:
            m = h1.with_data(0.5 * (h1.data_zyx + h2.data_zyx))
        if method == "autob":
            res = sharpen_autob(m, float(d), mask=mask, fit_low_A=args.fit_low)  # type: ignore[arg-type]
        else:
            res = sharpen_fixed_b(m, float(args.b_factor), d)
    for note in res.notes:
        log.warning("%s", note)
    log.info(
        "method %s: resolution %.3f Å, B applied %.1f Å²%s",
        res.method.value,
        res.d_min_A,
        res.b_sharpen_A2,
        f", Guinier B {res.guinier.b_A2:.1f} Å²" if res.guinier else "",
    )
    return res.map, res.to_dict()


def _learned(
    args: argparse.Namespace,
    model: Any,
    meta: dict[str, Any],
    m: Any,
    h1: Any,
    h2: Any,
    mask: Any,
    d: float,
    periodic: bool,
) -> tuple[Any, Any, dict[str, Any]]:
    import numpy as np

    from densharp.ml.sharpen import sharpen_learned

    kw = dict(
        d_target_A=args.target_resolution,
        mask_zyx=mask,
        samples=args.samples,
        device=args.device,
        precision=args.precision,
        overlap=args.overlap,
        batch_size=args.batch_size,
        periodic=periodic,
        progress=True,
        seed=args.seed,
    )
    if h1 is None:
        r = sharpen_learned(m, model, meta, d, **kw)  # type: ignore[arg-type]
        log.info("%s: %d tiles, target %.2f Å, %.1f s", meta["architecture"], r.meta["tiles"],
                 r.meta["d_target_A"], r.meta["runtime_s"])  # fmt: skip
        return r.map, r.sd, {"learned": r.meta}
    from densharp.filters.fsc_weight import half_map_fsc

    r1 = sharpen_learned(h1, model, meta, d, **kw)  # type: ignore[arg-type]
    r2 = sharpen_learned(h2, model, meta, d, **kw)  # type: ignore[arg-type]
    curve = half_map_fsc(r1.map, r2.map, mask)
    d_proc = float(curve.resolution_at(0.143))
    log.info("FSC-0.143 between the processed half maps: %.3f Å", d_proc)
    out = h1.with_data(0.5 * (r1.map.data_zyx + r2.map.data_zyx))
    sd = None
    if r1.sd is not None and r2.sd is not None:
        sd = h1.with_data(0.5 * np.sqrt(r1.sd.data_zyx**2 + r2.sd.data_zyx**2))
    return (
        out,
        sd,
        {
            "learned": r1.meta,
            "learned_half2_runtime_s": r2.meta["runtime_s"],
            "processed_half_map_fsc": curve.to_dict(),
            "processed_d_fsc0143_A": round(d_proc, 4),
            "output": "mean of the two processed half maps",
        },
    )
