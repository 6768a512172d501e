"""Read and write MRC/CCP4 maps (``.mrc``, ``.map``, ``.ccp4`` and ``.gz`` of each) as :class:`DensityMap`.

Canonicalisation happens here, once: MAPC/MAPR/MAPS are applied so ``data_zyx`` is (z, y, x) whatever the file
order, and the origin follows one policy (the one Mol* uses):

    origin_xyz_A = ORIGIN                      if any ORIGIN component is non-zero
                 = NSTART_xyz × voxel_size     otherwise (NSTART permuted from column/row/section to x, y, z)

When both are set and disagree, a :class:`~densharp.errors.DensharpWarning` gives the numbers. Writing puts the
axis order, ORIGIN or NSTART (whichever was read), MX/MY/MZ, cell and space group back exactly as read, so a map
processed on its own grid overlays its input voxel for voxel.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from densharp import __version__
from densharp.errors import DensharpWarning, InputError, MapFormatError
from densharp.io.atomic import atomic_path
from densharp.volume import DensityMap, MapSource, OriginSource

MAP_SUFFIXES = (".mrc", ".map", ".ccp4", ".mrcs")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the hex sha256 of a file's bytes (as stored, before any decompression)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_map_path(path: str | os.PathLike[str]) -> bool:
    """True if the name ends in a map suffix (optionally followed by ``.gz``)."""
    name = str(path).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(MAP_SUFFIXES)


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: file not found; check the path")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a map file; give the path of an .mrc/.map/.ccp4 file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: file is not readable; check its permissions")
    if path.stat().st_size == 0:
        raise MapFormatError(f"{path}: file is empty; re-export or re-download the map")


def read_map(path: str | os.PathLike[str], permissive: bool = False) -> DensityMap:
    """Read an MRC/CCP4 map into a canonical :class:`DensityMap`.

    Parameters
    ----------
    path
        ``.mrc``, ``.map``, ``.ccp4`` or ``.mrcs`` file, optionally gzipped.
    permissive
        Read damaged headers (bad map ID, wrong NVERSION) with warnings instead of errors, and replace
        non-finite values by the mean of the finite ones (with a warning).

    Raises
    ------
    InputError
        File missing, unreadable or a folder.
    MapFormatError
        Not an MRC/CCP4 map, truncated, complex mode, not 3D, or non-finite values (strict mode).
    """
    import mrcfile

    p = Path(path)
    _check_readable(p)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with mrcfile.open(p, mode="r", permissive=permissive) as mrc:
                header = mrc.header.copy()
                raw = None if mrc.data is None else np.array(mrc.data, copy=True)
    except (ValueError, OSError, EOFError) as exc:
        raise MapFormatError(_explain_mrcfile_error(p, exc)) from None
    for w in caught:
        if issubclass(w.category, (RuntimeWarning, UserWarning)):
            warnings.warn(f"{p}: {w.message}", DensharpWarning, stacklevel=2)
    if raw is None:
        raise MapFormatError(
            f"{p}: the data block could not be read (header damaged or file truncated); "
            "re-export the map from its source"
        )
    if np.iscomplexobj(raw):
        raise MapFormatError(f"{p}: complex-valued data (MRC mode {int(header.mode)}) is not a density map")
    if raw.ndim == 2:
        raise MapFormatError(f"{p}: is a 2D image, not a 3D map; give a 3D volume")
    if raw.ndim != 3:
        raise MapFormatError(f"{p}: data has {raw.ndim} dimensions; a 3D volume is needed")

    crs = [int(header.mapc), int(header.mapr), int(header.maps)]
    if sorted(crs) != [1, 2, 3]:
        if not permissive:
            raise MapFormatError(
                f"{p}: MAPC/MAPR/MAPS = {crs} is not a permutation of 1,2,3 (damaged header); "
                "pass --permissive to read it as 1,2,3"
            )
        warnings.warn(f"{p}: MAPC/MAPR/MAPS = {crs} invalid; assuming 1,2,3", DensharpWarning, stacklevel=2)
        crs = [1, 2, 3]
    # file data is (section, row, column); file axis i holds the xyz axis crs_file[i]
    xyz_of_file_axis = [crs[2] - 1, crs[1] - 1, crs[0] - 1]
    perm = [xyz_of_file_axis.index(k) for k in (2, 1, 0)]
    data_zyx = np.ascontiguousarray(raw.transpose(perm), dtype=np.float32)

    n_finite_bad = int(np.count_nonzero(~np.isfinite(data_zyx)))
    if n_finite_bad:
        if not permissive:
            raise MapFormatError(
                f"{p}: {n_finite_bad} voxels are NaN or infinite; fix the map or pass --permissive "
                "to replace them by the mean of the finite voxels"
            )
        finite = data_zyx[np.isfinite(data_zyx)]
        fill = float(finite.mean()) if finite.size else 0.0
        data_zyx[~np.isfinite(data_zyx)] = fill
        warnings.warn(f"{p}: replaced {n_finite_bad} non-finite voxels by {fill:.4g}", DensharpWarning, stacklevel=2)

    sampling_xyz = (int(header.mx), int(header.my), int(header.mz))
    # header floats are float32: take their shortest decimal form so 0.9 Å reads back as 0.9, not 0.90000004
    cella = (_f32(header.cella.x), _f32(header.cella.y), _f32(header.cella.z))
    voxel_xyz = tuple(c / n if n > 0 else float("nan") for c, n in zip(cella, sampling_xyz))
    if not all(np.isfinite(v) and v > 0 for v in voxel_xyz):
        if not permissive:
            raise MapFormatError(
                f"{p}: voxel size {voxel_xyz} Å from CELLA/MX,MY,MZ is not positive (damaged header); "
                "pass --permissive (voxel 1 Å assumed) or fix the header"
            )
        warnings.warn(f"{p}: voxel size {voxel_xyz} invalid; assuming 1 Å", DensharpWarning, stacklevel=2)
        voxel_xyz = (1.0, 1.0, 1.0)
        nz, ny, nx = data_zyx.shape
        sampling_xyz = (nx, ny, nz)
        cella = (float(nx), float(ny), float(nz))
    angles = (float(header.cellb.alpha), float(header.cellb.beta), float(header.cellb.gamma))
    if not all(np.isfinite(a) and 0 < a < 180 for a in angles):
        angles = (90.0, 90.0, 90.0)

    nstart_file = [int(header.nxstart), int(header.nystart), int(header.nzstart)]  # column, row, section
    nstart_xyz = tuple(nstart_file[[c - 1 for c in crs].index(k)] for k in range(3))
    origin_hdr = (_f32(header.origin.x), _f32(header.origin.y), _f32(header.origin.z))
    from_nstart = tuple(n * v for n, v in zip(nstart_xyz, voxel_xyz))
    if any(o != 0.0 for o in origin_hdr) and np.all(np.isfinite(origin_hdr)):
        origin_xyz, source_kind = origin_hdr, OriginSource.ORIGIN
        if any(nstart_xyz) and not np.allclose(origin_hdr, from_nstart, atol=1e-3):
            warnings.warn(
                f"{p}: both ORIGIN {origin_hdr} Å and NSTART {nstart_xyz} (= {tuple(round(v, 3) for v in from_nstart)}"
                " Å) are set and disagree; using ORIGIN (the MRC-2014 convention)",
                DensharpWarning,
                stacklevel=2,
            )
    else:
        origin_xyz, source_kind = from_nstart, OriginSource.NSTART
    spacegroup = int(header.ispg)
    m = DensityMap(
        data_zyx=data_zyx,
        voxel_size_xyz_A=voxel_xyz,
        origin_xyz_A=origin_xyz,
        nstart_xyz=nstart_xyz,  # type: ignore[arg-type]
        sampling_xyz=sampling_xyz,
        cell_A_deg=(*cella, *angles),
        spacegroup=spacegroup,
        axis_order_crs=(crs[0], crs[1], crs[2]),
        origin_source=source_kind,
    )
    return replace(m, source=MapSource(path=str(p), sha256=file_sha256(p), header_summary=_summary_line(m)))


def _f32(x: object) -> float:
    return float(str(np.float32(x)))  # type: ignore[arg-type]


def _explain_mrcfile_error(path: Path, exc: Exception) -> str:
    msg = str(exc)
    low = msg.lower()
    if "map id" in low or "not a valid" in low or "map_id" in low:
        return (
            f"{path}: not an MRC/CCP4 map (no 'MAP ' identifier in the header); "
            "check the file type, or pass --permissive for a map with a damaged header"
        )
    if "could only read" in low or "expected" in low or "truncated" in low or "buffer is smaller" in low:
        return f"{path}: file is truncated (data block shorter than the header says); re-export or re-download it"
    if "compressed file ended" in low or "crc" in low or "not a gzipped" in low:
        return f"{path}: damaged gzip file; re-compress or re-download it"
    return f"{path}: cannot read as an MRC/CCP4 map ({msg}); check the file"


def _summary_line(m: DensityMap) -> str:
    return (
        f"grid {m.shape_xyz[0]}x{m.shape_xyz[1]}x{m.shape_xyz[2]} (x,y,z), voxel "
        + "/".join(f"{v:.4g}" for v in m.voxel_size_xyz_A)
        + " Å, origin "
        + ",".join(f"{v:.4g}" for v in m.origin_xyz_A)
        + f" Å, nstart {m.nstart_xyz}, axis order {m.axis_order_crs}, spacegroup {m.spacegroup}"
    )


def write_map(
    path: str | os.PathLike[str],
    m: DensityMap,
    overwrite: bool = False,
    label: str | None = None,
) -> None:
    """Write ``m`` atomically as an MRC/CCP4 map, with the geometry conventions it was read with.

    The file keeps ``m``'s MAPC/MAPR/MAPS, NSTART, MX/MY/MZ, cell, space group and origin field, so a map
    produced on its input's grid is geometrically identical to the input. A name ending in ``.gz`` is gzipped.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is false.
    """
    import mrcfile

    from densharp.io.atomic import check_outputs

    out = Path(path)
    check_outputs([out], overwrite=overwrite)
    crs = m.axis_order_crs
    # data_zyx axis for xyz index k is 2 - k; file order is (section, row, column)
    file_data = np.ascontiguousarray(m.data_zyx.transpose([2 - (crs[2] - 1), 2 - (crs[1] - 1), 2 - (crs[0] - 1)]))
    compression = "gzip" if out.name.lower().endswith(".gz") else None
    with atomic_path(out) as tmp, mrcfile.new(tmp, overwrite=True, compression=compression) as mrc:
        mrc.set_data(file_data)
        h = mrc.header
        h.mapc, h.mapr, h.maps = crs
        mx, my, mz = m.grid_sampling_xyz
        h.mx, h.my, h.mz = mx, my, mz
        a, b, c, al, be, ga = m.cell
        h.cella.x, h.cella.y, h.cella.z = a, b, c
        h.cellb.alpha, h.cellb.beta, h.cellb.gamma = al, be, ga
        nstart_file = [m.nstart_xyz[ci - 1] for ci in crs]
        h.nxstart, h.nystart, h.nzstart = nstart_file
        origin_from_nstart = tuple(n * v for n, v in zip(m.nstart_xyz, m.voxel_size_xyz_A))
        use_nstart = m.origin_source is OriginSource.NSTART and np.allclose(
            origin_from_nstart, m.origin_xyz_A, atol=1e-4
        )
        h.origin.x, h.origin.y, h.origin.z = (0.0, 0.0, 0.0) if use_nstart else m.origin_xyz_A
        h.ispg = m.spacegroup
        mrc.update_header_stats()
        text = (label or f"densharp {__version__}")[:80]
        h.label[0] = text.encode("ascii", "replace")
        h.nlabl = 1
