"""Argument groups and helpers shared by the commands (one definition of each flag)."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

from densharp import __version__


def add_output(
    p: argparse.ArgumentParser, required: bool = True, help: str = "output map (.mrc/.map/.ccp4[.gz])"
) -> None:
    """``-o/--out`` and ``--overwrite``."""
    p.add_argument("-o", "--out", type=Path, required=required, metavar="OUT", help=help)
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (refused by default)")


def add_permissive(p: argparse.ArgumentParser) -> None:
    """``--permissive``: read damaged headers / non-finite values with warnings."""
    p.add_argument(
        "--permissive",
        action="store_true",
        help="read maps with damaged headers or NaN/Inf values (with warnings) instead of refusing them",
    )


def add_seed(p: argparse.ArgumentParser, default: int = 0) -> None:
    """``--seed``."""
    p.add_argument("--seed", type=int, default=default, help="random seed (recorded in outputs; default %(default)s)")


def positive_float(text: str) -> float:
    """Argparse type: a finite number > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return v


def sidecar_path(out: Path) -> Path:
    """``OUT.json`` beside a map output (``x.mrc`` → ``x.json``, ``x.mrc.gz`` → ``x.json``)."""
    name = out.name
    for suf in (".gz",):
        if name.lower().endswith(suf):
            name = name[: -len(suf)]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return out.with_name(stem + ".json")


def log_path(out: Path) -> Path:
    """``OUT.log`` beside a map output."""
    return sidecar_path(out).with_suffix(".log")


def provenance() -> dict[str, Any]:
    """Versions, time, host and argv for sidecars and run logs."""
    import gemmi
    import mrcfile
    import numpy
    import scipy

    info: dict[str, Any] = {
        "densharp": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "gemmi": gemmi.__version__,
        "mrcfile": mrcfile.__version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(),
        "argv": list(sys.argv),
    }
    if "torch" in sys.modules:
        info["torch"] = sys.modules["torch"].__version__
    return info
