"""Real-map benchmark: what ``densharp sharpen`` does to real deposited cryo-EM maps and X-ray map coefficients.

Cases come from the folder ``fetch_real.py`` builds (``--realdata DIR`` or ``$DENSHARP_REALDATA``; no default).
Every method runs the real user path: ``densharp.cli.main(["sharpen", IN, "--resolution", d, "-o", OUT, ...])``
in-process (IN is the case's own map file; MTZ input is a copy holding only the map coefficients, truncated for the
high-resolution X-ray data), then the output is read back with ``read_map`` and scored by
:mod:`densharp.evaluate.realdata`:

- ``default``: ``densharp sharpen`` with no ``--method`` (whatever the CLI picks; the table shows what it used);
- ``autob``: ``--method autob``;
- ``unet``, ``vae``: ``--method unet|vae --force`` (learned models are refused outside their voxel domain;
  ``--force`` runs them anyway);
- ``input``: the unchanged input (always scored).

Printed: one table per case (cryo-EM: masked RSCC against the sharp model map at the map's resolution and at the
super-resolution target, and against the file-B model map; masked map–model FSC 0.5/0.143; consistency FSC with the
input below 1/(2d) and its verdict; amplitude ratio output/input per shell range. X-ray: per truncation, masked RSCC
against the full-resolution data map and the model map, consistency below 1/d, amplitude ratios), then a summary.
Written to ``--out``: ``bench_real.json`` (every record, sections included), ``bench_real.csv`` (one row per case,
resolution and method) and ``figures/<case>.png`` (sections through the molecule: input, outputs, model/data maps).

Run:  python benchmarks/bench_real.py --realdata /work/realdata --out bench_real_out
      python benchmarks/bench_real.py --realdata /work/realdata --cases emd2566,rnasa --methods default,autob
      python benchmarks/bench_real.py --from-json bench_real_out/bench_real.json --out bench_real_out   # re-print
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: benchmark method -> extra ``densharp sharpen`` arguments
METHOD_ARGS: dict[str, list[str]] = {
    "default": [],
    # restoring at the map's own resolution: `--target-resolution d` (scored against the model map at d)
    "default@d": ["--target-resolution", "{d}"],
    "autob": ["--method", "autob"],
    "unet": ["--method", "unet", "--force"],
    "vae": ["--method", "vae", "--force"],
}
DEFAULT_METHODS = "default,default@d,autob,unet,vae"


# ----------------------------------------------------------------------------------------------- the user path
class SharpenFailedError(RuntimeError):
    """``densharp sharpen`` returned a non-zero exit code; the message is its ``error:`` line."""


def run_cli(argv: list[str]) -> tuple[int, str]:
    """``densharp.cli.main(argv)`` in-process with stderr captured; the ``densharp`` logger is restored after."""
    from densharp.cli import main

    root = logging.getLogger("densharp")
    saved = (root.handlers[:], root.level, root.propagate)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stderr(buf):
            rc = main(argv)
    finally:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
    return rc, buf.getvalue()


def _sidecar_info(out: Path) -> dict[str, Any]:
    from densharp.cli._args import sidecar_path

    try:
        rec = json.loads(sidecar_path(out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    res = rec.get("result") or {}
    learned = res.get("learned") or {}
    info: dict[str, Any] = {
        "method_used": rec.get("method"),
        "model": (rec.get("model") or {}).get("name"),
        "fallback": (rec.get("fallback") or {}).get("reasons"),
        "forced": (rec.get("domain") or {}).get("forced"),
        "b_sharpen_A2": res.get("b_sharpen_A2"),
        "d_target_A": learned.get("d_target_A"),
        "cli_runtime_s": rec.get("runtime_s"),
        "peak_rss_MiB": rec.get("peak_rss_MiB"),
        "notes": res.get("notes") or None,
    }
    return {k: v for k, v in info.items() if v is not None}


def _run_sharpen(inp: Path, d_A: float, out: Path, extra: list[str]) -> tuple[Any, dict[str, Any]]:
    from densharp.io.maps import read_map

    argv = ["sharpen", str(inp), "--resolution", f"{d_A:g}", "-o", str(out), "--overwrite", *extra]
    rc, err = run_cli(argv)
    if rc != 0 or not out.is_file():
        lines = [ln for ln in err.splitlines() if ln.startswith("error:")] or err.strip().splitlines()[-1:]
        msg = (lines[-1] if lines else "no message").replace(f"{out.parent}{os.sep}", "")
        raise SharpenFailedError(f"exit {rc}: {msg}")
    m = read_map(out)
    info = _sidecar_info(out)
    info["argv"] = " ".join(["densharp", *argv[:1], inp.name, *argv[2:4], "-o", out.name, *extra])
    return m, info


def cli_em_sharpener(extra: list[str], workdir: Path, tag: str):  # type: ignore[no-untyped-def]
    """``fn(map, d_A, d_target_A)`` running ``densharp sharpen`` on the map's own file (a temporary copy if none)."""
    from densharp.io.maps import write_map

    def fn(m: Any, d_A: float, d_target_A: float | None) -> tuple[Any, dict[str, Any]]:
        src = Path(m.source.path) if m.source is not None else None
        if src is None or not src.is_file():
            src = workdir / f"{tag}_input.mrc"
            write_map(src, m, overwrite=True)
        args = [a.replace("{d}", f"{d_A:g}") for a in extra]
        if d_target_A is not None and "--method" in args and args[args.index("--method") + 1] in ("unet", "vae"):
            args += ["--target-resolution", f"{d_target_A:g}"]
        return _run_sharpen(src, d_A, workdir / f"{tag}.mrc", args)

    return fn


def cli_mtz_sharpener(extra: list[str], workdir: Path, tag: str):  # type: ignore[no-untyped-def]
    """``fn(mtz_path, d_A)`` running ``densharp sharpen data.mtz --resolution d -o out.ccp4``."""

    def fn(mtz_path: Path, d_A: float) -> tuple[Any, dict[str, Any]]:
        return _run_sharpen(Path(mtz_path), d_A, workdir / f"{tag}_{d_A:g}A.ccp4", list(extra))

    return fn


# ----------------------------------------------------------------------------------------------- tables
def paired_input(r: dict[str, Any], methods: dict[str, Any]) -> dict[str, Any]:
    """The baseline of output ``r``: the unchanged input scored on that output's grid and references.

    X-ray references depend on the grid (a finer grid carries more of the full-resolution data), so an output on a
    finer grid than the input row's would otherwise be charged for a harder reference; EM outputs share the input's
    grid, and their baseline is the input row.
    """
    return r.get("input_on_this_grid") or methods.get("input", {})


def _f(v: Any, fmt: str = ".3f") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    return format(v, fmt)


def _table(head: list[str], rows: list[list[str]]) -> str:
    w = [max(len(h), *(len(r[k]) for r in rows)) if rows else len(h) for k, h in enumerate(head)]
    out = ["  ".join(h.ljust(x) for h, x in zip(head, w)).rstrip()]
    out += ["  ".join(c.ljust(x) for c, x in zip(r, w)).rstrip() for r in rows]
    return "\n".join(out)


def _used(r: dict[str, Any]) -> str:
    info = r.get("info") or {}
    used = info.get("method_used", "-")
    if info.get("fallback"):
        used += " (fallback)"
    elif info.get("forced"):
        used += " (forced)"
    return str(used)


def _cons(r: dict[str, Any]) -> list[str]:
    c = r.get("consistency") or {}
    if "skipped" in c or not c:
        return ["-", "-", "-", "-"]
    verdict = "pass" if c.get("is_consistent") else "FAIL"
    return [_f(c.get("fsc_min")), _f(c.get("worst_shell_A"), ".1f"), _f(c.get("fsc_mean")), verdict]


def _amp(r: dict[str, Any]) -> str:
    bands = (r.get("amplitude_ratio") or {}).get("bands") or {}
    return " / ".join(_f(v, ".2f") for v in bands.values()) if bands else "-"


def _beyond(r: dict[str, Any]) -> str:
    fb = (r.get("amplitude_ratio") or {}).get("fraction_beyond_d") or {}
    return _f(fb.get("output"), ".3f")


def _band_labels(methods: dict[str, Any]) -> list[str]:
    for r in methods.values():
        bands = (r.get("amplitude_ratio") or {}).get("bands")
        if bands:
            return list(bands)
    return []


def em_table(rec: dict[str, Any]) -> str:
    """Per-case table of an EM record."""
    bands = _band_labels(rec["methods"])
    head = ["method", "CLI used", "R_restore", "R_super", "R_fileB", "FSC0.5", "FSC0.143"]
    head += ["cons_min", "at_A", "cons_mean", "consistent", "amp " + " / ".join(bands), ">d", "time_s"]
    rows = []
    for name, r in rec["methods"].items():
        if "error" in r:
            rows.append([name, "error (below)"] + [""] * (len(head) - 2))
            continue
        fsc = r.get("map_model_fsc") or {}
        rows.append(
            [
                name,
                _used(r) if name != "input" else "-",
                _f(r.get("rscc_restore")),
                _f(r.get("rscc_super")),
                _f(r.get("rscc_restore_fileB")),
                _f(fsc.get("d_fsc05_A"), ".2f"),
                _f(fsc.get("d_fsc0143_A"), ".2f"),
                *_cons(r),
                _amp(r),
                _beyond(r),
                _f(r.get("runtime_s"), ".1f"),
            ]
        )
    d = f"{rec['d_A']:g} Å" + (" (approx.)" if rec.get("d_is_approx") else "")
    title = (
        f"{rec['case']}: d {d}, consistency band > {rec['consistency_band_A']:g} Å, grid {rec['geometry']['shape_xyz']}"
    )
    title += f" x {rec['geometry']['voxel_size_xyz_A'][0]:g} Å"
    if rec.get("has_model"):
        m = rec["model"]
        title += (
            f"\n  model {m['file']} ({m['atoms']} atoms, B 5/50/95 % {m['b_percentiles_5_50_95_A2']} Å², target B "
            f"lowered by {m['target_b_shift_A2']:g}); super-res {rec['d_super_A']:g} Å; mask {100 * rec['mask_fraction']:.1f} %"
            f" of the box; FSC vs model at {rec['d_model_fsc_A']:g} Å, masked"
        )
    else:
        title += "\n  no fitted model: model-free checks only"
    return title + "\n" + _table(head, rows) + _errors(rec["methods"])


def _errors(methods: dict[str, Any]) -> str:
    lines = [f"\n  {name}: {r['error']}" for name, r in methods.items() if "error" in r]
    return "".join(lines)


def xray_tables(rec: dict[str, Any]) -> str:
    """Per-case tables (one per resolution) of an X-ray record."""
    parts = []
    for run in rec["runs"]:
        bands = _band_labels(run["methods"])
        head = ["method", "CLI used", "grid", "d_ref", "R_data", "(input)", "R_model", "R_model_sup", "(input)"]
        head += ["FSC0.143_data"]
        head += ["cons_min", "at_A", "cons_mean", "consistent", "amp " + " / ".join(bands), ">d", "time_s"]
        rows = []
        for name, r in run["methods"].items():
            if "error" in r:
                rows.append([name, "error (below)"] + [""] * (len(head) - 2))
                continue
            base = paired_input(r, run["methods"])
            rows.append(
                [
                    name,
                    _used(r) if name != "input" else "-",
                    "x".join(str(v) for v in r["grid_xyz"]),
                    _f(r.get("d_fine_A"), ".2f"),
                    _f(r.get("rscc_data_full")),
                    _f(base.get("rscc_data_full")),
                    _f(r.get("rscc_model_restore")),
                    _f(r.get("rscc_model_super")),
                    _f(base.get("rscc_model_super")),
                    _f((r.get("fsc_data_full") or {}).get("d_fsc0143_A"), ".2f"),
                    *_cons(r),
                    _amp(r),
                    _beyond(r),
                    _f(r.get("runtime_s"), ".1f"),
                ]
            )
        what = f"truncated to {run['d_A']:g} Å" if rec["mode"] == "truncate" else "as deposited"
        title = (
            f"{rec['case']}: data {rec['d_data_A']:.3g} Å {what} ({run['mtz']['reflections']} of "
            f"{run['mtz']['reflections_source']} reflections), {rec['spacegroup']}, cell {rec['cell_A_deg']}"
        )
        if rec.get("has_model"):
            title += f"\n  model {rec['model']['file']}, target B lowered by {rec['model']['target_b_shift_A2']:g} Å²"
        title += f"; mask: {rec['mask']}"
        parts.append(title + "\n" + _table(head, rows) + _errors(run["methods"]))
    return "\n\n".join(parts)


def summary_groups(records: list[dict[str, Any]]) -> dict[str, tuple[list[str], list[dict[str, Any]]]]:
    """Group name -> (metrics to summarise, the ``methods`` dicts of every case/resolution in the group)."""
    groups: dict[str, tuple[list[str], list[dict[str, Any]]]] = {}
    for rec in records:
        if rec.get("kind") == "em":
            key, mets = (
                ("cryo-EM, fitted model", ["rscc_restore", "rscc_super", "rscc_restore_fileB"])
                if rec.get("has_model")
                else ("cryo-EM, no fitted model", [])
            )
            groups.setdefault(key, (mets, []))[1].append(rec["methods"])
        elif rec.get("kind") == "xray":
            for run in rec["runs"]:
                if rec["mode"] == "truncate":
                    key, mets = f"X-ray truncated to {run['d_A']:g} Å", ["rscc_data_full", "rscc_model_super"]
                else:
                    key, mets = "X-ray 2.45-3 Å, own data", ["rscc_model_restore", "rscc_model_super"]
                groups.setdefault(key, (mets, []))[1].append(run["methods"])
    return groups


def summary_table(records: list[dict[str, Any]], methods: list[str]) -> str:
    """Per group and method: the mean of each metric over the cases the method ran on, with the paired mean change
    against the input and the paired wins in brackets; how many outputs passed the consistency check; failures."""
    import numpy as np

    parts = []
    for g, (mets, items) in summary_groups(records).items():
        head = ["method", "n", "errors", *[f"{m} (Δ, wins vs input)" for m in mets], "consistent"]
        rows = []
        for name in ["input", *methods]:
            rs = [meths[name] for meths in items if name in meths]
            if not rs:
                continue
            ok = [
                (r, paired_input(r, meths)) for r, meths in zip(rs, [m for m in items if name in m]) if "error" not in r
            ]
            cells = []
            for met in mets:
                pairs = [(r.get(met), base.get(met)) for r, base in ok if r.get(met) is not None]
                if not pairs:
                    cells.append("-")
                    continue
                mean = float(np.mean([v for v, _ in pairs]))
                if name == "input":
                    cells.append(f"{mean:.3f}")
                    continue
                delta = float(np.mean([v - b for v, b in pairs if b is not None]))
                wins = sum(int(b is not None and v > b) for v, b in pairs)
                cells.append(f"{mean:.3f} ({delta:+.3f}, {wins}/{len(pairs)})")
            judged = [
                r["consistency"]["is_consistent"] for r, _ in ok if "is_consistent" in (r.get("consistency") or {})
            ]
            rows.append([name, str(len(rs)), str(len(rs) - len(ok)), *cells, f"{sum(judged)}/{len(judged)}"])
        parts.append(f"{g} ({len(items)} case{'s' if len(items) != 1 else ''})\n" + _table(head, rows))
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------------------------- records -> files
def csv_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per case × resolution × method with the headline numbers."""
    rows = []
    for rec in records:
        if rec.get("kind") == "em":
            runs = [(rec["d_A"], rec["methods"])]
        elif rec.get("kind") == "xray":
            runs = [(run["d_A"], run["methods"]) for run in rec["runs"]]
        else:
            continue
        for d, meths in runs:
            for name, r in meths.items():
                c = r.get("consistency") or {}
                bands = (r.get("amplitude_ratio") or {}).get("bands") or {}
                row: dict[str, Any] = {
                    "case": rec["case"],
                    "kind": rec["kind"],
                    "d_A": d,
                    "method": name,
                    "cli_used": (r.get("info") or {}).get("method_used"),
                    "error": r.get("error"),
                    "rscc_restore": r.get("rscc_restore"),
                    "rscc_super": r.get("rscc_super"),
                    "rscc_restore_fileB": r.get("rscc_restore_fileB"),
                    "d_map_model_fsc05_A": (r.get("map_model_fsc") or {}).get("d_fsc05_A"),
                    "d_map_model_fsc0143_A": (r.get("map_model_fsc") or {}).get("d_fsc0143_A"),
                    "rscc_data_full": r.get("rscc_data_full"),
                    "rscc_data_full_input_same_grid": paired_input(r, meths).get("rscc_data_full"),
                    "rscc_model_restore": r.get("rscc_model_restore"),
                    "rscc_model_super": r.get("rscc_model_super"),
                    "consistency_fsc_min": c.get("fsc_min"),
                    "consistency_fsc_mean": c.get("fsc_mean"),
                    "is_consistent": c.get("is_consistent"),
                    "consistency_band_A": c.get("d_band_A"),
                    "amplitude_ratio_bands": " ".join(f"{k}:{v}" for k, v in bands.items()),
                    "runtime_s": r.get("runtime_s"),
                }
                rows.append(row)
    return rows


def save_figure(rec: dict[str, Any], path: Path) -> None:
    """Sections through the molecule of one record (input, outputs, model/data maps) as a PNG."""
    from densharp.report.plots import save_section_grid

    sl = rec.get("slices")
    if not sl:
        return
    notes = {}
    meths = rec["methods"] if rec["kind"] == "em" else rec["runs"][0]["methods"]
    for name, r in meths.items():
        if name != "input" and "error" not in r:
            c = r.get("consistency") or {}
            verdict = "" if "fsc_min" not in c else f", cons {c['fsc_min']:.2f}"
            notes[name] = _used(r) + verdict
    if rec["kind"] == "em":
        title = f"{rec['case']} ({rec['d_A']:g} Å): sections through the model centre; each map its own grey scale"
    else:
        what = f"truncated to {rec['slices_d_A']:g} Å" if rec["mode"] == "truncate" else f"({rec['d_data_A']:g} Å data)"
        title = f"{rec['case']} {what}: sections through the model centre; each map its own grey scale"
    save_section_grid(path, sl, list(sl), title=title, dpi=100, notes=notes)


# ----------------------------------------------------------------------------------------------- main
def print_record(rec: dict[str, Any]) -> None:
    """Print one case's tables."""
    print(em_table(rec) if rec["kind"] == "em" else xray_tables(rec), flush=True)


def print_summary(records: list[dict[str, Any]], methods: list[str], left_out: dict[str, str]) -> None:
    """Print the summary and the cases that were not scored."""
    print(f"=== summary ({len(records)} cases)")
    print("R = masked RSCC. EM: vs the sharp model map at the map's resolution (restore), at the super-resolution")
    print("target (super) and with the model's own B-factors (fileB). X-ray: vs the full-resolution data map on the")
    print("output's grid (data_full) and the sharp model map. consistent = FSC with the input >= 0.95 in every shell")
    print("of the band (EM: coarser than 2d; X-ray: the whole input band). Δ and wins pair each output with the")
    print("input scored on that output's grid and references (X-ray references depend on the grid; the input row")
    print("is the input on the d/3 grid auto-B uses).\n")
    print(summary_table(records, methods))
    if left_out:
        print("\ncases not scored:")
        for k, why in left_out.items():
            print(f"  {k}: {why}")


def replay(path: Path, fig_dir: Path | None) -> int:
    """Re-print the tables of a saved run (and redraw its figures into ``fig_dir``)."""
    run = json.loads(Path(path).read_text(encoding="utf-8"))
    for rec in run["cases"]:
        print(f"--- {rec['case']}")
        print_record(rec)
        print()
        if fig_dir is not None:
            fig_dir.mkdir(parents=True, exist_ok=True)
            save_figure(rec, fig_dir / f"{rec['case']}.png")
    print_summary(run["cases"], [m for m in run["methods"] if m != "input"], run.get("not_scored") or {})
    return 0


def main(argv: list[str] | None = None) -> int:
    from densharp.evaluate.realdata import TRUNCATION_CUTS_A, find_cases, score_em_case, score_xray_case, xray_mode
    from densharp.io.atomic import check_outputs, write_json_atomic
    from densharp.io.evaluation import write_csv

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--realdata", type=Path, default=None, help="real-data folder (default: $DENSHARP_REALDATA)")
    ap.add_argument("--cases", default=None, help="comma-separated case names or parts of names (default: all)")
    ap.add_argument("--kinds", default="em,xray", help="em and/or xray (%(default)s)")
    ap.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated, from {','.join(METHOD_ARGS)}")
    ap.add_argument("--cuts", default=",".join(f"{c:g}" for c in TRUNCATION_CUTS_A), help="X-ray cuts, Å (%(default)s)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for the learned methods")
    ap.add_argument("--out", type=Path, default=Path("bench_real_out"), help="output folder (%(default)s)")
    ap.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    ap.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    ap.add_argument("--from-json", type=Path, default=None, help="re-print the tables and redraw the figures of a run")
    args = ap.parse_args(argv)
    if args.from_json is not None:
        return replay(args.from_json, None if args.no_figures else args.out / "figures")

    root = args.realdata or (Path(os.environ["DENSHARP_REALDATA"]) if os.environ.get("DENSHARP_REALDATA") else None)
    if root is None:
        ap.error("give --realdata DIR or set DENSHARP_REALDATA (the folder fetch_real.py built)")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHOD_ARGS]
    if bad:
        ap.error(f"unknown method(s) {bad}; choose from {list(METHOD_ARGS)}")
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    cuts = [float(c) for c in args.cuts.split(",") if c.strip()]
    names = [c.strip() for c in args.cases.split(",")] if args.cases else None
    args.out.mkdir(parents=True, exist_ok=True)
    outs = [args.out / "bench_real.json", args.out / "bench_real.csv"]
    check_outputs(outs, overwrite=args.overwrite)
    fig_dir = args.out / "figures"
    cases, skipped = find_cases(root, kinds, names)
    extra_threads = ["--threads", str(args.threads)] if args.threads else []

    records: list[dict[str, Any]] = []
    left_out: dict[str, str] = dict(skipped)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        wd = Path(tmp)
        for case in cases:
            t1 = time.perf_counter()
            print(f"--- {case.name}", flush=True)
            try:
                if case.kind == "em":
                    if case.resolution_A is None:
                        left_out[case.name] = "no stated or approximate resolution: cannot sharpen"
                        continue
                    fns = {
                        m: cli_em_sharpener(
                            METHOD_ARGS[m] + (extra_threads if m != "autob" else []),
                            wd,
                            f"{case.name}_{m}",
                        )
                        for m in methods
                    }
                    rec = score_em_case(case, fns)
                else:
                    mode, why = xray_mode(case)
                    if mode is None:
                        left_out[case.name] = why
                        continue
                    # a template on the input's resolution (`default@d`: target = d) has no meaning for map
                    # coefficients, where the learned target must be finer than the data: EM only
                    fns = {
                        m: cli_mtz_sharpener(
                            METHOD_ARGS[m] + (extra_threads if m != "autob" else []),
                            wd,
                            f"{case.name}_{m}",
                        )
                        for m in methods
                        if not any("{d}" in a for a in METHOD_ARGS[m])
                    }
                    rec = score_xray_case(case, fns, cuts_A=cuts, workdir=wd)
            except Exception as exc:  # a broken case is reported, the others still run
                left_out[case.name] = f"scoring failed: {type(exc).__name__}: {exc}"
                print(f"  scoring failed: {type(exc).__name__}: {exc}", flush=True)
                continue
            print_record(rec)
            print(f"  ({time.perf_counter() - t1:.0f} s)\n", flush=True)
            records.append(rec)
            if not args.no_figures:
                fig_dir.mkdir(exist_ok=True)
                save_figure(rec, fig_dir / f"{case.name}.png")
    print(f"total {time.perf_counter() - t0:.0f} s\n")
    print_summary(records, methods, left_out)
    run = {
        "schema": "densharp.benchmark/1",
        "benchmark": "bench_real",
        "realdata": str(Path(root).resolve()),
        "methods": ["input", *methods],
        "method_args": {m: METHOD_ARGS[m] for m in methods},
        "cuts_A": cuts,
        "not_scored": left_out,
        "cases": records,
    }
    write_json_atomic(outs[0], run)
    write_csv(outs[1], csv_rows(records))
    print(f"\nwrote {outs[0]}, {outs[1]}" + ("" if args.no_figures else f", {fig_dir}/*.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
