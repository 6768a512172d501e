"""Write MTZ files (map coefficients) atomically."""

from __future__ import annotations

import os
from pathlib import Path

import gemmi

from densharp.io.atomic import atomic_path, check_outputs


def write_mtz(path: str | os.PathLike[str], mtz: gemmi.Mtz, overwrite: bool = False) -> None:
    """Write ``mtz`` to ``path`` atomically.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is false.
    """
    out = Path(path)
    check_outputs([out], overwrite=overwrite)
    with atomic_path(out) as tmp:
        mtz.write_to_file(str(tmp))
