"""Evaluation: sharpening methods side by side against targets, summary tables, hallucination checks.

Pure functions (no file I/O); the ``evaluate``, ``hallucination`` and ``report`` commands write the files.
"""

from densharp.evaluate.case import central_slices, evaluate_case
from densharp.evaluate.methods import (
    METHODS,
    MethodUnavailableError,
    get_method,
    method_available,
    register_method,
    run_method,
)
from densharp.evaluate.metrics import MapScore, score_map, target_mask
from densharp.evaluate.table import bin_of, format_table, summarize, table_rows

__all__ = [
    "METHODS",
    "MapScore",
    "MethodUnavailableError",
    "bin_of",
    "central_slices",
    "evaluate_case",
    "format_table",
    "get_method",
    "method_available",
    "register_method",
    "run_method",
    "score_map",
    "summarize",
    "table_rows",
    "target_mask",
]
