"""The memory rule, in one place: estimate before allocating, refuse with the estimate and the fix.

Budget: ``DENSHARP_MAX_MEMORY_GB`` (GiB, a positive number) when set, else :data:`DEFAULT_FRACTION` of the memory
this process may use (the smaller of physical memory and the cgroup limit of a container or batch job).

Estimates are per voxel of the largest grid a step holds: :data:`WORK_BYTES_PER_VOXEL` covers reading a map
(raw block, float32 copy, canonical transpose) and one classical filter pass (centred copy, half-grid FFT,
frequency grid, transfer function, output): the peak RSS of ``densharp sharpen --method autob|bfactor`` on 128³
and 192³ float32 maps grew by 33–38 bytes per voxel over the imports (``read_map`` adds the file's own data bytes
on top). The learned path needs more and is not covered by this estimate.
"""

from __future__ import annotations

import os
from pathlib import Path

from densharp.errors import InputError, MemoryLimitError

#: environment variable that sets the budget in GiB
ENV_VAR = "DENSHARP_MAX_MEMORY_GB"
#: share of the available memory used as the default budget
DEFAULT_FRACTION = 0.75
#: bytes per voxel to read one map and run one classical filter pass over it (see the module docstring)
WORK_BYTES_PER_VOXEL = 40

GIB = float(1 << 30)


def _cgroup_limit_bytes() -> int | None:
    for p in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(p).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < (1 << 60):
            return int(text)
    return None


def physical_memory_bytes() -> int | None:
    """Memory this process may use: physical memory, or the cgroup limit when smaller (``None`` if unknown)."""
    phys: int | None = None
    try:
        phys = int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        phys = None
    cg = _cgroup_limit_bytes()
    if cg is not None and (phys is None or cg < phys):
        return cg
    return phys


def memory_budget() -> tuple[float, str]:
    """``(budget in bytes, how it was chosen)``.

    Raises
    ------
    InputError
        ``DENSHARP_MAX_MEMORY_GB`` is set but not a positive number.
    """
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        try:
            gb = float(env)
        except ValueError:
            gb = float("nan")
        if not (gb > 0 and gb < float("inf")):
            raise InputError(f"{ENV_VAR}={env!r} is not a positive number of GiB; unset it or give e.g. 8")
        return gb * GIB, f"{ENV_VAR}={env}"
    phys = physical_memory_bytes()
    if phys is None:
        return 16 * GIB, f"16 GiB (memory size unknown; set {ENV_VAR} to change)"
    return DEFAULT_FRACTION * phys, (f"{DEFAULT_FRACTION:.0%} of {phys / GIB:.1f} GiB memory; set {ENV_VAR} to change")


def check_memory(nbytes: float, what: str, fix: str) -> None:
    """Refuse, before allocating, a step estimated to need ``nbytes``.

    Parameters
    ----------
    nbytes
        Estimated peak memory of the step (bytes).
    what
        The step and its size, e.g. ``"maps/big.mrc: a 1200×1200×1200 map"``; starts the message.
    fix
        How the user can make it fit, e.g. ``"crop or bin the map"``.

    Raises
    ------
    MemoryLimitError
        The estimate exceeds :func:`memory_budget` (one line: what, the estimate, the budget, the fix).
    """
    budget, how = memory_budget()
    if nbytes > budget:
        raise MemoryLimitError(
            f"{what} needs about {nbytes / GIB:.1f} GiB of memory, more than the {budget / GIB:.1f} GiB allowed "
            f"({how}); {fix}"
        )


def check_grid_memory(
    shape: tuple[int, ...], what: str, fix: str, bytes_per_voxel: float = WORK_BYTES_PER_VOXEL
) -> None:
    """:func:`check_memory` for a grid of ``shape`` voxels at ``bytes_per_voxel`` (default: read + one filter)."""
    n = 1.0
    for s in shape:
        n *= max(int(s), 0)
    dims = "×".join(str(int(s)) for s in shape)
    check_memory(n * bytes_per_voxel, f"{what} ({dims} voxels)", fix)
