"""Typed exceptions. ``InputError`` and its subclasses mean *bad input* (CLI exit 2); the rest mean failure (1).

Every message should say what is wrong, where (file, field) and how to fix it, on one line.
"""

from __future__ import annotations


class DensharpError(Exception):
    """Base class of every error densharp raises on purpose."""


class InputError(DensharpError, ValueError):
    """The user's input (files, flags, values) cannot be used as given."""


class MapFormatError(InputError):
    """A file is not a readable density map (wrong format, truncated, damaged header, non-finite data)."""


class GeometryMismatchError(InputError):
    """Two maps that must share a grid (half maps, map and mask) do not."""


class OutputExistsError(InputError):
    """An output file exists and ``--overwrite`` was not given."""


class OutputBusyError(DensharpError):
    """Another run holds the lock on an output this run would write (exit 1: try again later)."""


class OutputWriteError(DensharpError):
    """Writing an output failed (disk full, permissions, ...); nothing was left in its place."""


class MemoryLimitError(InputError):
    """An input or a requested size would need more memory than the budget allows (refused before allocating)."""


class CheckpointError(DensharpError):
    """A checkpoint or weights file cannot be loaded (format version, checksum, architecture)."""


class DensharpWarning(UserWarning):
    """Odd but usable input (both ORIGIN and NSTART set, non-finite values replaced, ...)."""
