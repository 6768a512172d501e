"""Argument groups and helpers shared by the commands (one definition of each flag)."""

from __future__ import annotations

import argparse
import logging
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


#: seeds are accepted in [0, MAX_SEED]: numpy and torch both take every value in this range
MAX_SEED = 2**32 - 1


def seed_int(text: str) -> int:
    """Argparse type: an integer seed from 0 to :data:`MAX_SEED`."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; give a seed from 0 to {MAX_SEED}") from None
    if not 0 <= v <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text} is outside the valid range; give a seed from 0 to {MAX_SEED}")
    return v


def add_seed(p: argparse.ArgumentParser | argparse._ArgumentGroup, default: int = 0) -> None:
    """``--seed`` (an integer from 0 to 2³²−1)."""
    p.add_argument(
        "--seed",
        type=seed_int,
        default=default,
        help=f"random seed, 0 to {MAX_SEED} (recorded in outputs; default %(default)s)",
    )


def positive_float(text: str) -> float:
    """Argparse type: a finite number > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return v


def finite_float(text: str) -> float:
    """Argparse type: a finite number (no nan, inf)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
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
        "scipy": getattr(scipy, "__version__", "?"),
        "gemmi": getattr(gemmi, "__version__", "?"),
        "mrcfile": getattr(mrcfile, "__version__", "?"),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(),
        "argv": list(sys.argv),
    }
    if sys.modules.get("torch") is not None:
        info["torch"] = sys.modules["torch"].__version__
    return info


def add_mask(p: argparse.ArgumentParser) -> None:
    """``--mask MAP`` / ``--mask-threshold T``."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--mask", type=Path, metavar="MAP", help="mask map on the same grid, values in [0, 1]")
    g.add_argument(
        "--mask-threshold",
        type=float,
        metavar="T",
        help="make a soft mask from voxels >= T (dilated 3 Å, 5 Å soft edge)",
    )


def resolve_mask(args: argparse.Namespace, like: Any, auto_from: Any = None) -> tuple[Any, str]:
    """Return ``(mask_zyx or None, description)`` from ``--mask``/``--mask-threshold`` or an automatic mask.

    ``auto_from`` (a DensityMap) is used for an automatic molecule mask when neither flag is given.
    """
    from densharp.filters.masks import auto_molecule_mask, mask_from_map, soft_mask_from_threshold
    from densharp.io.maps import read_map

    if getattr(args, "mask", None) is not None:
        mm = read_map(args.mask, permissive=getattr(args, "permissive", False))
        return mask_from_map(mm, like, name=f"mask {args.mask}"), f"file {args.mask}"
    if getattr(args, "mask_threshold", None) is not None:
        return soft_mask_from_threshold(like, args.mask_threshold), f"threshold {args.mask_threshold:g}"
    if auto_from is not None:
        return auto_molecule_mask(auto_from), "automatic (10 Å low-pass, mean + 1 sd, 3 Å dilation, 5 Å edge)"
    return None, "none"


class RunLog(logging.Handler):
    """Collects the run's log lines in memory so the log file is written atomically with the other outputs."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def __enter__(self) -> RunLog:
        logging.getLogger("densharp").addHandler(self)
        prov = provenance()
        # provenance header goes to the run log only, not the console
        self.lines.append(
            f"{prov['time']} densharp {prov['densharp']} | python {prov['python']} | numpy {prov['numpy']} | "
            f"scipy {prov['scipy']} | gemmi {prov['gemmi']} | mrcfile {prov['mrcfile']} | host {prov['host']} | "
            f"argv {' '.join(prov['argv'])}"
        )
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("densharp").removeHandler(self)

    def text(self) -> str:
        """The collected log as text."""
        return "\n".join(self.lines) + "\n"
