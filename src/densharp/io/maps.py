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

import enum
import hashlib
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from densharp import __version__
from densharp.errors import DensharpError, DensharpWarning, InputError, MapFormatError
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


class MapKind(str, enum.Enum):
    """What an MRC file holds, by the MRC2014 convention (ISPG and NZ) and the ``.mrcs`` suffix."""

    VOLUME = "volume"  # ISPG 1-230 (or other non-zero, non-stack values) and NZ > 1
    IMAGE = "2-D image"  # NZ = 1 (a micrograph, a projection, a 2-D class average)
    IMAGE_STACK = "image stack"  # ISPG 0 with MZ = 1 and NZ > 1, or a .mrcs file: NZ separate 2-D images
    VOLUME_STACK = "volume stack"  # ISPG 401-630: NZ / MZ volumes one after another


@dataclass(frozen=True)
class MapHeader:
    """What the header of an MRC file says, read without the data block (:func:`read_map_header`).

    ``shape_crs`` is the file's (columns, rows, sections) = (NX, NY, NZ); ``pixel_size_xyz_A`` is CELLA / MX,MY,MZ.
    """

    path: Path
    kind: MapKind
    why: str
    shape_crs: tuple[int, int, int]
    mode: int
    ispg: int
    sampling_xyz: tuple[int, int, int]
    pixel_size_xyz_A: tuple[float, float, float]
    data_bytes: int

    @property
    def n_voxels(self) -> int:
        """NX·NY·NZ."""
        nx, ny, nz = self.shape_crs
        return nx * ny * nz

    def describe(self) -> str:
        """One phrase: what the file is and its size, e.g. ``image stack of 40 images of 64×64 pixels``."""
        nx, ny, nz = self.shape_crs
        if self.kind is MapKind.IMAGE_STACK:
            return f"image stack of {nz} images of {nx}×{ny} pixels ({self.why})"
        if self.kind is MapKind.IMAGE:
            return f"single 2-D image of {nx}×{ny} pixels ({self.why})"
        if self.kind is MapKind.VOLUME_STACK:
            mz = max(1, self.sampling_xyz[2])
            return f"stack of {nz // mz} volumes of {nx}×{ny}×{mz} voxels ({self.why})"
        return f"volume of {nx}×{ny}×{nz} voxels"


_MODE_BYTES = {0: 1, 1: 2, 2: 4, 3: 4, 4: 8, 6: 2, 12: 2, 101: 1}


def _open_quiet(p: Path, permissive: bool, header_only: bool):  # type: ignore[no-untyped-def]
    """``mrcfile.open`` with mrcfile's warnings re-issued as DensharpWarnings naming the file."""
    import mrcfile

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mrc = mrcfile.open(p, mode="r", permissive=permissive, header_only=header_only)
    except (ValueError, OSError, EOFError) as exc:
        raise MapFormatError(_explain_mrcfile_error(p, exc)) from None
    return mrc, [w for w in caught if issubclass(w.category, (RuntimeWarning, UserWarning))]


def _classify(p: Path, header: Any) -> tuple[MapKind, str]:
    nz = int(header.nz)
    ispg = int(header.ispg)
    if 401 <= ispg <= 630:
        return MapKind.VOLUME_STACK, f"ISPG {ispg}"
    if nz == 1:
        return MapKind.IMAGE, "NZ = 1"
    if _base_name(p).endswith(".mrcs"):
        return MapKind.IMAGE_STACK, "the .mrcs suffix of particle stacks"
    # MRC2014 marks an image stack with ISPG 0 *and* MZ = 1 (one image's sampling along z). Many programs
    # (Chimera, older EMDB entries) write ordinary volumes with ISPG 0 but MZ = NZ: those are volumes.
    if ispg == 0 and int(header.mz) == 1:
        return MapKind.IMAGE_STACK, "ISPG 0 with MZ = 1 and NZ > 1, the MRC2014 image-stack convention"
    if ispg == 0:
        return MapKind.VOLUME, "ISPG 0 but MZ = NZ: a volume (as Chimera and older EMDB maps write them)"
    return MapKind.VOLUME, f"ISPG {ispg}"


def _base_name(p: Path) -> str:
    name = p.name.lower()
    return name[:-3] if name.endswith(".gz") else name


def _header_record(p: Path, header: Any) -> MapHeader:
    nx, ny, nz = int(header.nx), int(header.ny), int(header.nz)
    mode = int(header.mode)
    kind, why = _classify(p, header)
    sampling = (int(header.mx), int(header.my), int(header.mz))
    cella = (_f32(header.cella.x), _f32(header.cella.y), _f32(header.cella.z))
    pix = tuple(c / n if n > 0 else float("nan") for c, n in zip(cella, sampling))
    nbytes = max(nx, 0) * max(ny, 0) * max(nz, 0) * _MODE_BYTES.get(mode, 4)
    return MapHeader(p, kind, why, (nx, ny, nz), mode, int(header.ispg), sampling, pix, nbytes)  # type: ignore[arg-type]


def read_map_header(path: str | os.PathLike[str], permissive: bool = False) -> MapHeader:
    """Read only the header of an MRC/CCP4 file (cheap, also for huge or gzipped files) and say what it holds.

    Raises
    ------
    InputError
        File missing, unreadable or a folder.
    MapFormatError
        Not an MRC/CCP4 file, or the header gives no grid (NX, NY or NZ not positive).
    """
    p = Path(path)
    _check_readable(p)
    mrc, _ = _open_quiet(p, permissive, header_only=True)
    with mrc:
        rec = _header_record(p, mrc.header)
        ext_bytes = max(int(mrc.header.nsymbt), 0)
    nx, ny, nz = rec.shape_crs
    if min(nx, ny, nz) <= 0:
        raise MapFormatError(
            f"{p}: the header gives a grid of {nx}×{ny}×{nz} voxels (NX, NY, NZ must be positive): the file holds "
            "no map or its header is damaged; re-export or re-download it"
        )
    if not p.name.lower().endswith((".gz", ".bz2")):
        need = 1024 + ext_bytes + rec.data_bytes
        have = p.stat().st_size
        if have < need:
            raise MapFormatError(
                f"{p}: file is truncated or not a map: its header promises {nx}×{ny}×{nz} voxels ({need} bytes) but "
                f"the file has {have} bytes; re-export or re-download it"
            )
    return rec


def _refuse_non_volume(h: MapHeader, permissive: bool) -> bool:
    """Raise for files that are not one volume; return True when an image stack is read as a volume (permissive)."""
    p = h.path
    if h.kind is MapKind.VOLUME:
        return False
    if h.kind is MapKind.IMAGE:
        raise MapFormatError(
            f"{p}: is a {h.describe()}, not a 3-D volume; densharp sharpens 3-D maps: give the reconstructed volume"
        )
    if h.kind is MapKind.VOLUME_STACK:
        raise MapFormatError(
            f"{p}: is a {h.describe()}, not one volume; extract the volume you want first "
            "(e.g. mrcfile: mrcfile.new('one.mrc', data=mrcfile.read(F)[i]))"
        )
    if permissive:
        warnings.warn(
            f"{p}: header says {h.describe()}; reading it as one volume of {h.shape_crs[2]} sections "
            "(--permissive), written back as a volume (ISPG 1)",
            DensharpWarning,
            stacklevel=3,
        )
        return True
    raise MapFormatError(
        f"{p}: is an {h.describe()}, not a 3-D volume (particle stacks and tilt series cannot be sharpened as "
        "volumes); if it really is a volume whose writer left ISPG 0, pass --permissive, or mark it as a volume "
        "(mrcfile: with mrcfile.open(F, 'r+') as m: m.set_volume()"
        + (", and rename it to .mrc)" if _base_name(p).endswith(".mrcs") else ")")
    )


def read_map(path: str | os.PathLike[str], permissive: bool = False) -> DensityMap:
    """Read an MRC/CCP4 map into a canonical :class:`DensityMap`.

    The header is read first (:func:`read_map_header`): files that are not one volume (a 2-D image, an image
    stack — ISPG 0 with NZ > 1, or ``.mrcs`` — or a volume stack) are refused, and the memory needed is checked
    against the budget (:mod:`densharp.resources`) before the data block is read.

    Parameters
    ----------
    path
        ``.mrc``, ``.map`` or ``.ccp4`` file, optionally gzipped.
    permissive
        Read damaged headers (bad map ID, wrong NVERSION, invalid axis order, voxel size, origin or cell angles)
        with warnings instead of errors, read an image stack (ISPG 0) as a volume, and replace non-finite values
        by the mean of the finite ones (with a warning).

    Raises
    ------
    InputError
        File missing, unreadable or a folder.
    MapFormatError
        Not an MRC/CCP4 map, truncated, complex mode, not one 3-D volume, damaged header fields or non-finite
        values (strict mode).
    MemoryLimitError
        The map would not fit the memory budget.
    """
    from densharp.resources import WORK_BYTES_PER_VOXEL, check_memory

    p = Path(path)
    hdr = read_map_header(p, permissive=permissive)
    stack_as_volume = _refuse_non_volume(hdr, permissive)
    check_memory(
        hdr.data_bytes + WORK_BYTES_PER_VOXEL * hdr.n_voxels,
        f"{p}: reading and filtering this {'×'.join(map(str, hdr.shape_crs))} map",
        "crop or bin the map (e.g. to the molecule), or raise the limit with DENSHARP_MAX_MEMORY_GB",
    )
    mrc, caught = _open_quiet(p, permissive, header_only=False)
    with mrc:
        header = mrc.header.copy()
        raw = None if mrc.data is None else np.array(mrc.data, copy=True)
    for w in caught:
        warnings.warn(f"{p}: {w.message}", DensharpWarning, stacklevel=2)
    if raw is None:
        raise MapFormatError(
            f"{p}: the data block could not be read (header damaged or file truncated); "
            "re-export the map from its source"
        )
    if np.iscomplexobj(raw):
        raise MapFormatError(f"{p}: complex-valued data (MRC mode {int(header.mode)}) is not a density map")
    if raw.ndim != 3 or min(raw.shape) < 2:
        raise MapFormatError(
            f"{p}: data block has shape {raw.shape} (sections, rows, columns): an axis of one voxel is a 2-D image, "
            "not a 3-D volume; give a volume with at least 2 voxels along every axis"
        )

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
    del raw

    n_finite_bad = int(np.count_nonzero(~np.isfinite(data_zyx)))
    if n_finite_bad:
        if not permissive:
            raise MapFormatError(
                f"{p}: {n_finite_bad} voxels are NaN or infinite; fix the map or pass --permissive "
                "to replace them by the mean of the finite voxels"
            )
        finite = data_zyx[np.isfinite(data_zyx)]
        fill = float(finite.mean(dtype=np.float64)) if finite.size else 0.0
        data_zyx[~np.isfinite(data_zyx)] = fill
        warnings.warn(f"{p}: replaced {n_finite_bad} non-finite voxels by {fill:.4g}", DensharpWarning, stacklevel=2)

    sampling_xyz = [int(header.mx), int(header.my), int(header.mz)]
    # header floats are float32: take their shortest decimal form so 0.9 Å reads back as 0.9, not 0.90000004
    cella = [_f32(header.cella.x), _f32(header.cella.y), _f32(header.cella.z)]
    spacegroup = int(header.ispg)
    if stack_as_volume:
        spacegroup = 1
        if sampling_xyz[2] != int(header.nz):
            # stacks carry MZ = 1 and CELLA.z = one pixel; a volume needs MZ = NZ and the matching cell edge
            pz = cella[2] / sampling_xyz[2] if sampling_xyz[2] > 0 and cella[2] > 0 else float("nan")
            px = cella[0] / sampling_xyz[0] if sampling_xyz[0] > 0 else float("nan")
            vz = pz if np.isfinite(pz) and pz > 0 and abs(pz - px) <= 0.01 * px else px
            warnings.warn(
                f"{p}: MZ = {sampling_xyz[2]} for {int(header.nz)} sections (a stack header); using MZ = NZ and a "
                f"section spacing of {vz:.4g} Å",
                DensharpWarning,
                stacklevel=2,
            )
            sampling_xyz[2] = int(header.nz)
            cella[2] = float(vz * sampling_xyz[2])
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
        sampling_xyz = [nx, ny, nz]
        cella = [float(nx), float(ny), float(nz)]
    angles = _cell_angles(p, header, permissive)

    nstart_file = [int(header.nxstart), int(header.nystart), int(header.nzstart)]  # column, row, section
    nstart_xyz = tuple(nstart_file[[c - 1 for c in crs].index(k)] for k in range(3))
    from_nstart = tuple(n * v for n, v in zip(nstart_xyz, voxel_xyz))
    origin_xyz, source_kind = _origin(p, header, from_nstart, nstart_xyz, permissive)
    m = DensityMap(
        data_zyx=data_zyx,
        voxel_size_xyz_A=voxel_xyz,  # type: ignore[arg-type]
        origin_xyz_A=origin_xyz,
        nstart_xyz=nstart_xyz,  # type: ignore[arg-type]
        sampling_xyz=tuple(sampling_xyz),  # type: ignore[arg-type]
        cell_A_deg=(*cella, *angles),  # type: ignore[arg-type]
        spacegroup=spacegroup,
        axis_order_crs=(crs[0], crs[1], crs[2]),
        origin_source=source_kind,
    )
    return replace(m, source=MapSource(path=str(p), sha256=file_sha256(p), header_summary=_summary_line(m)))


def _cell_angles(p: Path, header: Any, permissive: bool) -> tuple[float, float, float]:
    """Cell angles from the header; unset (0, 0, 0) means 90° (with a warning), anything else invalid is refused."""
    angles = (_f32(header.cellb.alpha), _f32(header.cellb.beta), _f32(header.cellb.gamma))
    if all(np.isfinite(a) and 0 < a < 180 for a in angles):
        return angles
    shown = ", ".join(f"{a:g}" for a in angles)
    if all(a == 0 for a in angles):
        warnings.warn(f"{p}: cell angles are unset (0, 0, 0); assuming 90, 90, 90°", DensharpWarning, stacklevel=3)
        return (90.0, 90.0, 90.0)
    if not permissive:
        raise MapFormatError(
            f"{p}: cell angles ({shown})° are not valid (each must lie strictly between 0 and 180; damaged header); "
            "fix the header or pass --permissive to assume 90°"
        )
    warnings.warn(f"{p}: cell angles ({shown})° invalid; assuming 90, 90, 90° (--permissive)", DensharpWarning,
                  stacklevel=3)  # fmt: skip
    return (90.0, 90.0, 90.0)


def _origin(
    p: Path,
    header: Any,
    from_nstart: tuple[float, ...],
    nstart_xyz: tuple[int, ...],
    permissive: bool,
) -> tuple[tuple[float, float, float], OriginSource]:
    """The origin policy (module docstring), refusing non-finite ORIGIN components instead of dropping them."""
    origin_hdr = (_f32(header.origin.x), _f32(header.origin.y), _f32(header.origin.z))
    finite = [bool(np.isfinite(o)) for o in origin_hdr]
    if not all(finite):
        shown = ", ".join(f"{o:g}" for o in origin_hdr)
        repaired = tuple(o if f else n for o, f, n in zip(origin_hdr, finite, from_nstart))
        fixed = ", ".join(f"{o:g}" for o in repaired)
        if not permissive:
            raise MapFormatError(
                f"{p}: ORIGIN ({shown}) Å has non-finite components (damaged header), so the map's position is "
                f"unknown; fix the header, or pass --permissive to use ({fixed}) Å (NSTART × voxel where not finite)"
            )
        warnings.warn(
            f"{p}: ORIGIN ({shown}) Å has non-finite components; using ({fixed}) Å (--permissive)",
            DensharpWarning,
            stacklevel=3,
        )
        src = OriginSource.ORIGIN if any(o != 0.0 for o in repaired) or not any(nstart_xyz) else OriginSource.NSTART
        return repaired, src  # type: ignore[return-value]
    if any(o != 0.0 for o in origin_hdr):
        if any(nstart_xyz) and not np.allclose(origin_hdr, from_nstart, atol=1e-3):
            warnings.warn(
                f"{p}: both ORIGIN {origin_hdr} Å and NSTART {nstart_xyz} (= {tuple(round(v, 3) for v in from_nstart)}"
                " Å) are set and disagree; using ORIGIN (the MRC-2014 convention)",
                DensharpWarning,
                stacklevel=3,
            )
        return origin_hdr, OriginSource.ORIGIN
    return from_nstart, OriginSource.NSTART  # type: ignore[return-value]


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
    n_bad = int(np.count_nonzero(~np.isfinite(m.data_zyx)))
    if n_bad:
        raise DensharpError(
            f"{out}: refusing to write a map with {n_bad} NaN/infinite voxels (a computation overflowed); nothing was "
            "written: rerun with --debug and report it"
        )
    crs = m.axis_order_crs
    # data_zyx axis for xyz index k is 2 - k; file order is (section, row, column)
    file_data = np.ascontiguousarray(m.data_zyx.transpose([2 - (crs[2] - 1), 2 - (crs[1] - 1), 2 - (crs[0] - 1)]))
    compression = "gzip" if out.name.lower().endswith(".gz") else None
    with atomic_path(out) as tmp, mrcfile.new(tmp, overwrite=True, compression=compression) as mrc:
        with np.errstate(over="ignore", invalid="ignore"):  # mrcfile's float32 stats; replaced below
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
        # statistics in float64: mrcfile's float32 rms overflows for values beyond ~1e19
        h.dmin, h.dmax = float(file_data.min()), float(file_data.max())
        h.dmean = float(np.mean(file_data, dtype=np.float64))
        h.rms = float(np.std(file_data, dtype=np.float64))
        text = (label or f"densharp {__version__}")[:80]
        h.label[0] = text.encode("ascii", "replace")
        h.nlabl = 1
