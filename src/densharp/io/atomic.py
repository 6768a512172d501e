"""Atomic writes and up-front output checks: a failed run never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from densharp.errors import InputError, OutputExistsError


def check_outputs(paths: Iterable[str | os.PathLike[str]], overwrite: bool = False) -> list[Path]:
    """Check, before any computation, that every planned output can be written.

    Raises
    ------
    OutputExistsError
        An output exists and ``overwrite`` is false.
    InputError
        The folder is missing or not writable, two outputs collide, or the path is a folder.
    """
    seen: set[Path] = set()
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        resolved = path.resolve()
        if resolved in seen:
            raise InputError(f"{path}: the same output path is planned twice; choose distinct output names")
        seen.add(resolved)
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"{path}: output folder {parent} does not exist; create it first (mkdir -p {parent})")
        if not os.access(parent, os.W_OK):
            raise InputError(f"{path}: output folder {parent} is not writable; choose another output path")
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not a file; give a file name for the output")
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path}: output exists; pass --overwrite to replace it or choose another name")
        out.append(path)
    return out


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success it replaces ``final`` atomically, on error it is removed.

    The temporary file lives in the same folder so :func:`os.replace` is atomic, and the old file (if any) is
    never deleted first.
    """
    final_path = Path(final)
    tmp = final_path.with_name(f".{final_path.name}.partial-{secrets.token_hex(4)}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final_path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    # numpy scalars and arrays, Paths and enums appear in metadata; turn them into plain JSON types.
    import enum

    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, enum.Enum):
        return o.value
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
