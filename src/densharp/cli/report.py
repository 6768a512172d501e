"""Render an HTML report (self-contained, base64 PNGs) from a run JSON, with the PNGs written beside it.

RUN is a JSON written by 'densharp evaluate --json', 'densharp hallucination --json' or benchmarks/bench_quality.py,
or a training-run folder (with val_curve.csv / train_log.jsonl). Everything is drawn from the files alone:
evaluation JSONs store FSC curves, summaries and downsampled central sections. PNGs go to OUT_<part>.png.

Examples:
  densharp report run.json -o report.html
  densharp report docs/training/unet_2k -o train_report.html
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from densharp.cli._args import add_output

log = logging.getLogger("densharp.report")


def add_args(p: argparse.ArgumentParser) -> None:
    """Register ``report`` arguments."""
    p.add_argument("run", type=Path, metavar="RUN", help="run JSON or training-run folder")
    p.add_argument("--training", type=Path, metavar="DIR", help="also plot this training-run folder")
    p.add_argument("--title", default=None, help="page title (default: the RUN name)")
    add_output(p, help="output HTML file")


def run(args: argparse.Namespace) -> int:
    """Write the report and its PNGs (all of them or none)."""
    from densharp.errors import InputError
    from densharp.io.atomic import OutputSet, check_outputs
    from densharp.io.evaluation import read_run_json
    from densharp.report.html import build_report, planned_pngs

    out = Path(args.out)
    check_outputs([out], overwrite=args.overwrite, inputs=[args.run, args.training])
    rec = None
    training = args.training
    if args.run.is_dir():
        if not ((args.run / "val_curve.csv").is_file() or (args.run / "train_log.jsonl").is_file()):
            raise InputError(f"{args.run}: folder has no val_curve.csv or train_log.jsonl; give a run JSON")
        training = training or args.run
    else:
        rec = read_run_json(args.run)
        side = args.run.parent
        if training is None and ((side / "val_curve.csv").is_file() or (side / "train_log.jsonl").is_file()):
            training = side
    try:
        pngs = planned_pngs(out, rec, training)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        raise InputError(_malformed(args.run, exc)) from None
    inputs = [args.run, args.training]
    if training is not None:
        inputs += [Path(training) / "val_curve.csv", Path(training) / "train_log.jsonl"]
    with OutputSet([out, *pngs], overwrite=args.overwrite, inputs=inputs, primary=out):
        try:
            written = build_report(out, rec, training, title=args.title or f"densharp report: {args.run}")
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(_malformed(args.run, exc)) from None
        unplanned = sorted(set(written) - set(pngs))
        if unplanned:  # pragma: no cover - planned_pngs and build_report disagree: a bug, not the user's
            raise RuntimeError(f"report drew unplanned files {unplanned}")
    print(f"wrote {out} and {len(pngs)} PNGs beside it")
    return 0


def _malformed(path: Path, exc: Exception) -> str:
    what = f"missing key {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
    return (
        f"{path}: malformed run record ({what}); regenerate it with 'densharp evaluate --json', "
        "'densharp hallucination --json' or benchmarks/bench_quality.py"
    )
