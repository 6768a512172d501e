"""The one map type: :class:`DensityMap` carries a (z, y, x) float32 array together with its exact geometry.

Conventions (used everywhere in densharp):

- ``data_zyx`` is C-contiguous float32 with shape ``(nz, ny, nx)``: sections are z, rows y, columns x,
  whatever axis order the file had (it is canonicalised once, on read).
- Physical vectors are ``(x, y, z)`` and in Å: ``voxel_size_xyz_A``, ``origin_xyz_A``.
- Voxels may be anisotropic; they are never averaged.
- ``origin_xyz_A`` is the position of voxel ``[0, 0, 0]``. The file-level details needed to write the map back
  exactly as it came (MAPC/MAPR/MAPS, NSTART, MX/MY/MZ, cell, space group, which header field held the origin)
  travel with the map, so a sharpened map overlays its input in ChimeraX or Coot voxel for voxel.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from densharp.errors import GeometryMismatchError, InputError

Vec3 = tuple[float, float, float]
IVec3 = tuple[int, int, int]


class OriginSource(str, enum.Enum):
    """Which header field the origin was taken from; the writer writes the same convention back."""

    ORIGIN = "origin"  # MRC-2014 ORIGIN words 50-52 (Å), the cryo-EM convention
    NSTART = "nstart"  # NSTART × voxel (grid units), the crystallographic convention


@dataclass(frozen=True)
class MapSource:
    """Provenance of a map read from disk."""

    path: str
    sha256: str
    header_summary: str = ""


@dataclass(frozen=True, eq=False)
class DensityMap:
    """A 3D density map and its geometry.

    Parameters
    ----------
    data_zyx
        float32 array, shape ``(nz, ny, nx)``.
    voxel_size_xyz_A
        Voxel edge lengths along x, y, z in Å (anisotropic allowed).
    origin_xyz_A
        Position of voxel ``[0, 0, 0]`` in Å (x, y, z).
    nstart_xyz
        Grid index of the first voxel along x, y, z (MRC NSTART, crystallographic maps).
    sampling_xyz
        Grid sampling of the unit cell (MRC MX, MY, MZ); ``None`` means the map's own shape.
    cell_A_deg
        Unit cell ``(a, b, c, alpha, beta, gamma)`` in Å and degrees; ``None`` means the box itself.
    spacegroup
        Space-group number (MRC ISPG); 1 for cryo-EM volumes.
    axis_order_crs
        The file's MAPC, MAPR, MAPS (1 = x, 2 = y, 3 = z); used only to write the same layout back.
    origin_source
        Which header field held the origin (written back the same way).
    source
        Where the map came from, if read from a file.
    """

    data_zyx: np.ndarray
    voxel_size_xyz_A: Vec3
    origin_xyz_A: Vec3 = (0.0, 0.0, 0.0)
    nstart_xyz: IVec3 = (0, 0, 0)
    sampling_xyz: IVec3 | None = None
    cell_A_deg: tuple[float, float, float, float, float, float] | None = None
    spacegroup: int = 1
    axis_order_crs: IVec3 = (1, 2, 3)
    origin_source: OriginSource = OriginSource.ORIGIN
    source: MapSource | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        data = np.asarray(self.data_zyx)
        if data.ndim != 3:
            raise InputError(f"a density map needs a 3D array, got shape {data.shape}")
        if data.dtype != np.float32 or not data.flags.c_contiguous:
            data = np.ascontiguousarray(data, dtype=np.float32)
        object.__setattr__(self, "data_zyx", data)
        vox = tuple(float(v) for v in self.voxel_size_xyz_A)
        if len(vox) != 3 or not all(np.isfinite(v) and v > 0 for v in vox):
            raise InputError(f"voxel size must be three positive numbers in Å, got {self.voxel_size_xyz_A}")
        object.__setattr__(self, "voxel_size_xyz_A", vox)
        object.__setattr__(self, "origin_xyz_A", tuple(float(v) for v in self.origin_xyz_A))
        object.__setattr__(self, "nstart_xyz", tuple(int(v) for v in self.nstart_xyz))
        if sorted(self.axis_order_crs) != [1, 2, 3]:
            raise InputError(f"axis order must be a permutation of 1,2,3, got {self.axis_order_crs}")

    # ----------------------------------------------------------------- derived geometry
    @property
    def shape_zyx(self) -> IVec3:
        """Array shape ``(nz, ny, nx)``."""
        nz, ny, nx = self.data_zyx.shape
        return (int(nz), int(ny), int(nx))

    @property
    def shape_xyz(self) -> IVec3:
        """Grid size ``(nx, ny, nz)``."""
        nz, ny, nx = self.shape_zyx
        return (nx, ny, nz)

    @property
    def voxel_size_zyx_A(self) -> Vec3:
        """Voxel sizes in array order (z, y, x), Å."""
        vx, vy, vz = self.voxel_size_xyz_A
        return (vz, vy, vx)

    @property
    def grid_sampling_xyz(self) -> IVec3:
        """MX, MY, MZ: the cell sampling (the map's own shape unless the file said otherwise)."""
        return self.sampling_xyz if self.sampling_xyz is not None else self.shape_xyz

    @property
    def cell(self) -> tuple[float, float, float, float, float, float]:
        """Unit cell ``(a, b, c, alpha, beta, gamma)``; for a plain box, its edge lengths and 90° angles."""
        if self.cell_A_deg is not None:
            return self.cell_A_deg
        m = self.grid_sampling_xyz
        v = self.voxel_size_xyz_A
        return (m[0] * v[0], m[1] * v[1], m[2] * v[2], 90.0, 90.0, 90.0)

    @property
    def is_orthogonal(self) -> bool:
        """True when all cell angles are 90° (within 0.01°)."""
        return all(abs(a - 90.0) < 0.01 for a in self.cell[3:])

    @property
    def is_isotropic(self) -> bool:
        """True when the three voxel sizes agree within 0.1 %."""
        v = np.asarray(self.voxel_size_xyz_A)
        return bool(np.ptp(v) <= 1e-3 * v.max())

    @property
    def nyquist_A(self) -> float:
        """Finest resolution (Å) supported in every direction: twice the coarsest voxel."""
        return 2.0 * max(self.voxel_size_xyz_A)

    @property
    def box_size_xyz_A(self) -> Vec3:
        """Box edge lengths in Å (x, y, z)."""
        n = self.shape_xyz
        v = self.voxel_size_xyz_A
        return (n[0] * v[0], n[1] * v[1], n[2] * v[2])

    # ----------------------------------------------------------------- derived maps
    def with_data(self, data_zyx: np.ndarray) -> DensityMap:
        """Return a map with the same geometry and new data of the same shape."""
        data_zyx = np.asarray(data_zyx)
        if tuple(data_zyx.shape) != self.shape_zyx:
            raise GeometryMismatchError(
                f"new data has shape {tuple(data_zyx.shape)} but the map is {self.shape_zyx} (z,y,x)"
            )
        return replace(self, data_zyx=data_zyx, source=None)

    def same_grid(self, other: DensityMap, rtol: float = 1e-4) -> bool:
        """True when shape, voxel size and origin agree (origin within ``rtol`` of a voxel)."""
        return not self.grid_differences(other, rtol)

    def grid_differences(self, other: DensityMap, rtol: float = 1e-4) -> list[str]:
        """Human-readable list of the ways ``other`` lies on a different grid (empty when the same)."""
        out: list[str] = []
        if self.shape_zyx != other.shape_zyx:
            out.append(f"shape {self.shape_xyz} vs {other.shape_xyz} (x,y,z)")
        va, vb = np.asarray(self.voxel_size_xyz_A), np.asarray(other.voxel_size_xyz_A)
        if not np.allclose(va, vb, rtol=rtol, atol=0):
            out.append(f"voxel size {_fmt(va)} vs {_fmt(vb)} Å")
        oa, ob = np.asarray(self.origin_xyz_A), np.asarray(other.origin_xyz_A)
        if np.any(np.abs(oa - ob) > 1e-3 * va.min()):
            out.append(f"origin {_fmt(oa)} vs {_fmt(ob)} Å")
        return out

    def check_same_grid(self, other: DensityMap, what: str, fix: str = "") -> None:
        """Raise :class:`GeometryMismatchError` naming ``what`` if ``other`` is on a different grid."""
        diffs = self.grid_differences(other)
        if diffs:
            msg = f"{what} are on different grids: " + "; ".join(diffs)
            raise GeometryMismatchError(msg + (f"; {fix}" if fix else ""))

    def geometry_dict(self) -> dict[str, Any]:
        """JSON-ready summary of the geometry (for sidecars and reports)."""
        return {
            "shape_xyz": list(self.shape_xyz),
            "voxel_size_xyz_A": [round(v, 6) for v in self.voxel_size_xyz_A],
            "origin_xyz_A": [round(v, 6) for v in self.origin_xyz_A],
            "nstart_xyz": list(self.nstart_xyz),
            "sampling_xyz": list(self.grid_sampling_xyz),
            "cell_A_deg": [round(v, 6) for v in self.cell],
            "spacegroup": self.spacegroup,
            "axis_order_crs": list(self.axis_order_crs),
            "origin_source": self.origin_source.value,
        }

    def crop(self, start_zyx: IVec3, shape_zyx: IVec3) -> DensityMap:
        """Return the sub-box starting at array index ``start_zyx`` with ``shape_zyx``; origin and nstart follow."""
        s = [int(v) for v in start_zyx]
        n = [int(v) for v in shape_zyx]
        if any(a < 0 or a + b > c for a, b, c in zip(s, n, self.shape_zyx)) or min(n) < 1:
            raise InputError(f"crop {s}+{n} lies outside the map {self.shape_zyx} (z,y,x)")
        data = self.data_zyx[s[0] : s[0] + n[0], s[1] : s[1] + n[1], s[2] : s[2] + n[2]]
        shift_xyz = (s[2], s[1], s[0])
        ox, oy, oz = (o + k * v for o, k, v in zip(self.origin_xyz_A, shift_xyz, self.voxel_size_xyz_A))
        sx, sy, sz = (a + k for a, k in zip(self.nstart_xyz, shift_xyz))
        origin, nstart = (ox, oy, oz), (sx, sy, sz)
        return replace(self, data_zyx=np.ascontiguousarray(data), origin_xyz_A=origin, nstart_xyz=nstart, source=None)

    def __repr__(self) -> str:
        return (
            f"DensityMap(shape_xyz={self.shape_xyz}, voxel_size_xyz_A={_fmt(self.voxel_size_xyz_A)}, "
            f"origin_xyz_A={_fmt(self.origin_xyz_A)}, nstart_xyz={self.nstart_xyz})"
        )


def _fmt(v: Any) -> str:
    return "(" + ", ".join(f"{float(x):.4g}" for x in v) + ")"
