"""Many inputs in one ``densharp sharpen`` call: output names, shards (SLURM arrays), worker processes, the table."""

from __future__ import annotations

import argparse
import copy
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from densharp.errors import DensharpError, InputError

log = logging.getLogger("densharp.sharpen")

RunOne = Callable[[argparse.Namespace, Path, Path], dict[str, Any]]


def _env_int(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise InputError(
            f"environment variable {name}={text!r} is not an integer; fix the job script or pass --shard I/N"
        ) from None


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"I/N"``, else the SLURM array variables, else ``(0, 1)``.

    SLURM: task index ``(SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP`` of
    ``SLURM_ARRAY_TASK_COUNT`` tasks, so stepped arrays (``--array=0-8:2``) cover every input too.
    """
    if text is None:
        tid, cnt = _env_int("SLURM_ARRAY_TASK_ID"), _env_int("SLURM_ARRAY_TASK_COUNT")
        if tid is None or cnt is None:
            return 0, 1
        lo = _env_int("SLURM_ARRAY_TASK_MIN") or 0
        step = _env_int("SLURM_ARRAY_TASK_STEP") or 1
        if step < 1 or (tid - lo) % step or not 0 <= (tid - lo) // step < cnt:
            raise InputError(
                f"SLURM array task {tid} is not one of {cnt} tasks from {lo} in steps of {step}; "
                "check the job script or pass --shard I/N"
            )
        return (tid - lo) // step, cnt
    try:
        i_s, n_s = text.split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise InputError(f"--shard must be I/N with 0 <= I < N, got {text!r}") from None
    if not 0 <= i < n:
        raise InputError(f"--shard must be I/N with 0 <= I < N, got {text!r}")
    return i, n


def output_name(inp: Path, out_dir: Path) -> Path:
    """``<stem>_sharp.mrc`` (``.ccp4`` for MTZ input) in ``out_dir``."""
    stem = inp.name
    for suf in (".gz", ".mrc", ".map", ".ccp4", ".mtz"):
        if stem.lower().endswith(suf):
            stem = stem[: -len(suf)]
    ext = ".ccp4" if inp.name.lower().endswith(".mtz") else ".mrc"
    return out_dir / f"{stem}_sharp{ext}"


def run_many(args: argparse.Namespace, run_one: RunOne) -> int:
    """Sharpen several inputs into ``--out-dir``; print a summary table; see the sharpen help for exit codes."""
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
    jobs = [(p, output_name(p, out_dir)) for p in todo]
    outs = [o for _, o in jobs]
    if len(set(outs)) != len(outs):
        raise InputError("two inputs share a name stem; their outputs would collide in --out-dir")
    sub = copy.copy(args)
    sub.out_dir = None
    sub.inputs = []
    ns = {k: v for k, v in vars(sub).items() if k != "_module"}
    if args.jobs > 1 and len(jobs) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        threads = max(1, (args.threads or os.cpu_count() or 1) // args.jobs)
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx, initializer=_die_with_parent) as ex:
            futs = [ex.submit(_worker, ns, str(p), str(o), threads) for p, o in jobs]
            rows = [f.result() for f in futs]
    else:
        rows = [one_row(run_one, argparse.Namespace(**ns), p, o) for p, o in jobs]
    print_table(rows, shard=(i, n))
    bad = [r for r in rows if r["status"] != "ok"]
    if not bad:
        return 0
    if len(bad) == len(rows) and all(r["status"] == "error (input)" for r in rows):
        return 2
    return 1


def _die_with_parent() -> None:
    """Worker initialiser: get SIGTERM when the parent dies (Linux), so killed batches leave no workers behind."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: workers end when their queue closes
        pass


def _worker(ns: dict[str, Any], inp: str, out: str, threads: int) -> dict[str, Any]:
    import torch

    from densharp.cli.sharpen import run_one

    torch.set_num_threads(threads)
    root = logging.getLogger("densharp")
    root.setLevel(logging.INFO)
    root.propagate = False
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    return one_row(run_one, argparse.Namespace(**ns), Path(inp), Path(out))


def one_row(run_one: RunOne, args: argparse.Namespace, inp: Path, out: Path) -> dict[str, Any]:
    """Run one input; a failure becomes a row of the table instead of stopping the batch."""
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


def print_table(rows: list[dict[str, Any]], shard: tuple[int, int]) -> None:
    """The summary table: input, method, resolution, runtime, status."""
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
