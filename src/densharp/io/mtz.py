"""MTZ files: read, pick map-coefficient columns, compute the unit-cell map, write atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gemmi
import numpy as np

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


#: map-coefficient column pairs recognised automatically (amplitude, phase), in the order they are preferred
KNOWN_MAP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("FWT", "PHWT"),
    ("2FOFCWT", "PH2FOFCWT"),
    ("2FOFCWT_no_fill", "PH2FOFCWT_no_fill"),
    ("FDM", "PHIDM"),
    ("FEM", "PHIFEM"),
    ("parrot.F_phi.F", "parrot.F_phi.phi"),
)


def read_mtz(path: str | os.PathLike[str]) -> gemmi.Mtz:
    """Read an MTZ file (with its data).

    Raises
    ------
    InputError
        Missing or unreadable file, or not an MTZ.
    """
    from densharp.errors import InputError
    from densharp.resources import check_grid_memory

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: MTZ file not found")
    try:
        mtz = gemmi.read_mtz_file(str(p))
    except (RuntimeError, ValueError, OSError) as exc:
        raise InputError(f"{p}: not a readable MTZ file ({exc})") from exc
    c = mtz.cell
    if not all(np.isfinite(v) and v > 0 for v in (c.a, c.b, c.c)):
        raise InputError(f"{p}: cell ({c.a:g}, {c.b:g}, {c.c:g}) Å is not positive; fix the MTZ cell")
    if mtz.nreflections == 0:
        raise InputError(f"{p}: holds no reflections; give an MTZ with map coefficients")
    d = float(mtz.resolution_high())
    if not (np.isfinite(d) and d > 0):
        raise InputError(f"{p}: its resolution limit ({d:g} Å) is not positive; the reflections are damaged")
    # the map is computed on a grid of about d/3 (classical) to d/2.5: check that grid before any FFT
    check_grid_memory(
        tuple(int(np.ceil(3.0 * e / d)) for e in (c.a, c.b, c.c)),
        f"{p}: the map of its {c.a:.0f} × {c.b:.0f} × {c.c:.0f} Å cell at {d:.2f} Å",
        "cut the resolution or use a smaller cell (a 2500 Å cell is not a crystal map densharp can grid)",
    )
    _remember_path(mtz, p)
    return mtz


#: the files of the last MTZs read (object id -> (object, path)), so maps made from them can name their file; the
#: objects are held so an id cannot be reused while it is listed
_READ_FROM: dict[int, tuple[gemmi.Mtz, Path]] = {}


def _remember_path(mtz: gemmi.Mtz, path: Path) -> None:
    _READ_FROM[id(mtz)] = (mtz, path)
    while len(_READ_FROM) > 4:
        _READ_FROM.pop(next(iter(_READ_FROM)))


def mtz_source_path(mtz: gemmi.Mtz) -> Path | None:
    """The file ``mtz`` was read from by :func:`read_mtz` (``None`` if unknown)."""
    hit = _READ_FROM.get(id(mtz))
    return hit[1] if hit is not None and hit[0] is mtz else None


def pick_map_columns(mtz: gemmi.Mtz, columns: str | None = None, name: str = "MTZ") -> tuple[str, str]:
    """Choose the amplitude/phase columns: ``columns`` ("F,PHI") when given, else the one known pair present.

    Raises
    ------
    InputError
        Named columns absent or of the wrong type, or no unambiguous pair; the message lists the columns.
    """
    from densharp.errors import InputError

    have = {c.label: c.type for c in mtz.columns}
    listing = ", ".join(f"{lab}({typ})" for lab, typ in have.items())
    if columns:
        parts = [c.strip() for c in columns.split(",")]
        if len(parts) != 2 or not all(parts):
            raise InputError(f"--columns needs two labels 'F,PHI', got {columns!r}; {name} has {listing}")
        f, phi = parts
        missing = [c for c in (f, phi) if c not in have]
        if missing:
            raise InputError(f"{name}: no column {', '.join(missing)}; columns are {listing}")
        if have[f] not in ("F", "G") or have[phi] != "P":
            raise InputError(f"{name}: {f}/{phi} are not an amplitude/phase pair (types {have[f]}/{have[phi]})")
        return _check_column_content(mtz, f, phi, name)
    found = [(f, p) for f, p in KNOWN_MAP_COLUMNS if f in have and p in have]
    if len(found) == 1:
        return _check_column_content(mtz, *found[0], name)
    types = set(have.values())
    if "P" not in types:  # no phases at all: a map cannot be computed, whatever the columns are called
        what = "intensities only (type J)" if "J" in types and "F" not in types else "amplitudes but no phases"
        raise InputError(
            f"{name}: has {what} (columns {listing}); sharpening needs map coefficients, an amplitude and a phase "
            "column (e.g. 2mFo-DFc FWT,PHWT from refinement); refine or phase the data first"
        )
    why = "several map-coefficient pairs" if found else "no known map-coefficient pair"
    raise InputError(f"{name}: {why}; choose one with --columns F,PHI; columns are {listing}")


def _check_column_content(mtz: gemmi.Mtz, f: str, phi: str, name: str) -> tuple[str, str]:
    """Refuse an amplitude column with no data (all zero or missing): its map would be empty."""
    from densharp.errors import InputError

    amp = np.asarray(mtz.column_with_label(f).array, dtype=np.float64)
    ok = amp[np.isfinite(amp)]
    if ok.size == 0 or not np.any(ok != 0):
        what = "missing (NaN) in every reflection" if ok.size == 0 else "zero in every reflection"
        raise InputError(
            f"{name}: column {f} is {what}, so its map is empty; choose other columns with --columns F,PHI"
        )
    return f, phi


def symmetric_axes(spacegroup: gemmi.SpaceGroup | None) -> list[tuple[int, int]]:
    """Pairs of cell axes (0 = a, 1 = b, 2 = c) that a symmetry operation of ``spacegroup`` maps onto each other.

    A grid of the cell must have the same size along such axes (gemmi refuses it otherwise).
    """
    if spacegroup is None:
        return []
    pairs = set()
    for op in spacegroup.operations().sym_ops:
        rot = op.rot
        for i in range(3):
            for j in range(3):
                if i != j and rot[i][j] != 0:
                    pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def _fast_even_size(n: int, factor: int) -> int:
    """Smallest size from ``n`` up that the FFT likes (``next_fast_len``, then even) and ``factor`` divides.

    The first candidate is the size densharp always used (``next_fast_len(n)``, plus one if odd), so a grid that
    suited its space group before keeps its size.
    """
    import scipy.fft

    while True:
        m = int(scipy.fft.next_fast_len(int(n)))
        m += m % 2
        if m % factor == 0:
            return m
        n = m + 1


def cell_grid_size(cell: gemmi.UnitCell, spacegroup: gemmi.SpaceGroup | None, voxel_A: float) -> tuple[int, int, int]:
    """Grid ``(nx, ny, nz)`` of a whole cell with spacing at most ``voxel_A`` along every cell axis.

    Every size is even and FFT-friendly, a multiple of the space group's grid factor along its axis (gemmi's
    ``find_grid_factors``: e.g. 4 along c for P4₃2₁2, 6 for P6₅22) and equal along axes related by symmetry, so
    gemmi accepts the grid for the space group and the map of the cell is exactly symmetric on it.
    """
    facs = list(spacegroup.operations().find_grid_factors()) if spacegroup is not None else [1, 1, 1]
    edges = (cell.a, cell.b, cell.c)
    n0 = [int(np.ceil(e / voxel_A - 1e-6)) for e in edges]
    # axes that must share a size: union of symmetric pairs (a = b in tetragonal and hexagonal, a = b = c cubic)
    group = [0, 1, 2]
    for i, j in symmetric_axes(spacegroup):
        gi, gj = group[i], group[j]
        group = [min(gi, gj) if g in (gi, gj) else g for g in group]
    sizes = [0, 0, 0]
    for g in sorted(set(group)):
        axes = [k for k in range(3) if group[k] == g]
        factor = int(np.lcm.reduce([int(facs[k]) for k in axes]))
        size = _fast_even_size(max(n0[k] for k in axes), factor)
        for k in axes:
            sizes[k] = size
    return (sizes[0], sizes[1], sizes[2])


def mtz_map(mtz: gemmi.Mtz, f: str, phi: str, voxel_A: float) -> Any:
    """The map of the whole unit cell (P1-expanded) from ``f``/``phi`` with a grid spacing of at most ``voxel_A``.

    Returns a :class:`~densharp.volume.DensityMap` with the cell (any angles: the map then samples the cell along
    its fractional axes, voxel lengths a/nx, b/ny, c/nz), the MTZ's space group (number), sampling = grid and
    origin 0 (NSTART convention), on an even, FFT-friendly grid that suits the space group
    (:func:`cell_grid_size`), so the map is symmetric.
    """
    from densharp.resources import check_grid_memory
    from densharp.volume import DensityMap, OriginSource

    cell = mtz.cell
    src = mtz_source_path(mtz)
    check_grid_memory(
        tuple(int(np.ceil(e / voxel_A)) for e in (cell.a, cell.b, cell.c)),
        f"{f'{src}: ' if src else ''}the map of the {cell.a:.0f} × {cell.b:.0f} × {cell.c:.0f} Å cell at "
        f"{voxel_A:.3g} Å spacing",
        "cut the resolution or use a smaller cell",
    )
    sg = mtz.spacegroup
    sizes = list(cell_grid_size(cell, sg, voxel_A))
    grid = mtz.transform_f_phi_to_map(f, phi, exact_size=sizes)
    arr = np.ascontiguousarray(np.array(grid, copy=False).T, dtype=np.float32)
    nx, ny, nz = sizes
    from densharp.volume import MapSource

    return DensityMap(
        arr,
        voxel_size_xyz_A=(cell.a / nx, cell.b / ny, cell.c / nz),
        origin_xyz_A=(0.0, 0.0, 0.0),
        sampling_xyz=(nx, ny, nz),
        cell_A_deg=(cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma),
        spacegroup=int(sg.number) if sg is not None else 1,
        origin_source=OriginSource.NSTART,
        # provenance for messages (the sha256 of the file is recorded by the command that read it)
        source=MapSource(path=f"{src} ({f}/{phi})", sha256="") if src else None,
    )


def map_to_mtz(m: Any, d_min_A: float, spacegroup: gemmi.SpaceGroup | None = None, labels=("FWT", "PHWT")) -> gemmi.Mtz:  # type: ignore[no-untyped-def]
    """Map coefficients (amplitude, phase) to ``d_min_A`` of a whole-cell map, in ``spacegroup`` (default P1).

    The map must cover the unit cell (sampling = grid, origin 0). Reflections are reduced to the space group's
    asymmetric unit; a map that breaks the symmetry slightly (a network's output) is thereby averaged by taking
    one representative per orbit.
    """
    from densharp.errors import InputError

    if tuple(m.grid_sampling_xyz) != tuple(m.shape_xyz) or any(m.nstart_xyz):
        raise InputError("map coefficients need a map of the whole unit cell (grid = cell sampling, start 0)")
    grid = gemmi.FloatGrid(
        np.ascontiguousarray(m.data_zyx.T), gemmi.UnitCell(*m.cell), spacegroup or gemmi.SpaceGroup("P 1")
    )
    # a hair finer than d_min: reflections lying exactly on it would otherwise be lost to float round-off
    asu = gemmi.transform_map_to_f_phi(grid, half_l=True).prepare_asu_data(dmin=float(d_min_A) * (1 - 1e-6))
    f = np.asarray(asu.value_array)
    return coefficients_to_mtz(
        np.asarray(asu.miller_array), np.abs(f), np.degrees(np.angle(f)), grid.unit_cell, grid.spacegroup, labels
    )


def coefficients_to_mtz(
    hkl: np.ndarray,
    amplitude: np.ndarray,
    phase_deg: np.ndarray,
    cell: gemmi.UnitCell,
    spacegroup: gemmi.SpaceGroup | None,
    labels: tuple[str, str] = ("FWT", "PHWT"),
) -> gemmi.Mtz:
    """A new MTZ holding H, K, L and one amplitude/phase pair (``labels``), in ``cell`` and ``spacegroup``."""
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = spacegroup or gemmi.SpaceGroup("P 1")
    mtz.set_cell_for_all(cell)
    mtz.add_dataset("densharp")
    mtz.add_column(labels[0], "F")
    mtz.add_column(labels[1], "P")
    data = np.column_stack(
        [np.asarray(hkl, np.float64), np.asarray(amplitude, np.float64), np.mod(np.asarray(phase_deg), 360.0)]
    )
    mtz.set_data(data.astype(np.float32) if len(data) else np.zeros((0, 5), np.float32))
    mtz.update_reso()
    return mtz


def check_mtz_cell(mtz: gemmi.Mtz, name: str = "MTZ") -> None:
    """Refuse a cell densharp cannot grid: degenerate (angles that span no volume) or at odds with the space group.

    Any non-degenerate cell is sharpened, orthogonal or not (the map is gridded along the cell axes and every
    spectral function uses the cell's reciprocal metric, ``densharp.fourier``). The cell must also have the
    metric its space group implies (e.g. a = b and γ = 120° for P6₅22), or the symmetry-expanded map would be
    wrong.

    Raises
    ------
    InputError
        Non-finite or non-positive edges or angles, angles outside (0°, 180°), a cell of (nearly) zero volume,
        or a cell incompatible with the space group.
    """
    from densharp.errors import InputError

    c = mtz.cell
    params = (c.a, c.b, c.c, c.alpha, c.beta, c.gamma)
    text = ", ".join(f"{v:g}" for v in params)
    if not all(np.isfinite(v) and v > 0 for v in params) or not all(v < 180.0 for v in params[3:]):
        raise InputError(f"{name}: cell ({text}) needs positive edges and angles between 0° and 180°; fix the MTZ cell")
    ca, cb, cg = (float(np.cos(np.radians(a))) for a in params[3:])
    vol2 = 1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg
    if not vol2 > 1e-6:
        raise InputError(f"{name}: cell ({text}) is degenerate (its angles span no volume); fix the MTZ cell")
    sg = mtz.spacegroup
    if sg is not None and not c.is_compatible_with_spacegroup(sg, 1e-3):
        raise InputError(
            f"{name}: cell ({text}) does not have the metric of its space group {sg.hm} (e.g. a = b, or angles of "
            "90° or 120°); fix the cell or the space group of the MTZ"
        )
