"""Files of evaluation runs: the run JSON (schema-checked on read) and CSV tables, written atomically."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from densharp.errors import InputError
from densharp.io.atomic import write_json_atomic, write_text_atomic

#: schemas a run JSON may carry (``"schema"`` key) and the report can draw
RUN_SCHEMAS = ("densharp.evaluate/1", "densharp.hallucination/1", "densharp.benchmark/1")


def write_run_json(path: str | os.PathLike[str], run: dict[str, Any]) -> None:
    """Write a run record (must carry a known ``schema``) as indented JSON, atomically."""
    if run.get("schema") not in RUN_SCHEMAS:
        raise ValueError(f"run record schema {run.get('schema')!r} is not one of {RUN_SCHEMAS}")
    write_json_atomic(path, run)


def read_run_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a run JSON written by :func:`write_run_json`."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: run JSON not found; check the path")
    try:
        run = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not a JSON file ({exc})") from None
    if not isinstance(run, dict) or run.get("schema") not in RUN_SCHEMAS:
        raise InputError(
            f"{p}: not a densharp evaluation record (schema {run.get('schema') if isinstance(run, dict) else None!r});"
            " give a JSON written by 'densharp evaluate', 'densharp hallucination' or benchmarks/bench_quality.py"
        )
    if run["schema"] != "densharp.hallucination/1" and not isinstance(run.get("cases"), list):
        raise InputError(f"{p}: evaluation record without a 'cases' list")
    return run


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows (dicts) as CSV text; columns are the union of keys in first-seen order."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def write_csv(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> None:
    """Write rows as CSV atomically."""
    write_text_atomic(path, csv_text(rows))
