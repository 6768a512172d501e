"""Model density on an orthogonal box with gemmi, band-limited in Fourier space.

gemmi's ``d_min`` only sets grid spacing (nothing is band-limited) and its boxes are periodic, so
:func:`simulate_map` (1) puts atoms on a box padded by ``padding_A`` on every side (density from atoms near one
face never reaches the region returned), (2) band-limits with :func:`densharp.fourier.lowpass_filter_values`
(soft edge) and applies any extra B in the same Fourier pass, (3) crops the padding away. The returned map's
``origin_xyz_A`` is the position of voxel ``[0, 0, 0]`` in the model's frame (after the optional rotation), so
map and (rotated) model overlay.

Speed: a :class:`PreparedModel` keeps a private copy of the model and its coordinates so repeated crops of a big
structure only place the atoms near the box (one Python call per atom, ~2 µs); ``cutoff=1e-3`` (default here)
is 2.5-3× faster than gemmi's default at map correlation ≥ 0.9998.
"""

from __future__ import annotations

from dataclasses import replace

import gemmi
import numpy as np
import scipy.fft

from densharp.errors import InputError
from densharp.fourier import frequency_grid_invA, irfft_map, lowpass_filter_values, rfft_map
from densharp.modality import Modality
from densharp.resources import check_grid_memory
from densharp.volume import DensityMap

Vec3 = tuple[float, float, float]


#: lowest total B (Å², per voxel² of grid spacing) at which atoms are put on the grid; the difference is added as
#: gemmi ``blur`` and removed again in Fourier space, so narrow atoms are not aliased by coarse sampling
MIN_SAMPLED_B_PER_VOXEL2 = 20.0


class PreparedModel:
    """A cleaned model ready for repeated simulation (crops, rotations) without re-reading it.

    Holds a private clone of the first model, its atoms and their coordinates. Not thread-safe (atoms are moved
    in place); each worker process gets its own copy on fork.

    Parameters
    ----------
    st
        Structure (first model used). It is not modified.
    """

    def __init__(self, st: gemmi.Structure) -> None:
        if len(st) == 0:
            raise InputError("the structure has no model; load it with densharp.simulate.load_structure")
        self.structure = st.clone()
        self.model = self.structure[0]
        self.atoms = [cra.atom for cra in self.model.all()]
        if not self.atoms:
            raise InputError("the structure has no atoms; check the model file")
        self.xyz_A = np.array([a.pos.tolist() for a in self.atoms], dtype=np.float64)
        self.b_A2 = np.array([a.b_iso for a in self.atoms], dtype=np.float64)
        self._current = self.xyz_A.copy()

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.atoms)

    @property
    def centroid_xyz_A(self) -> np.ndarray:
        """Mean atom position (x, y, z), Å."""
        return self.xyz_A.mean(axis=0)

    def transformed_xyz_A(self, rotation: np.ndarray | None, center_xyz_A: np.ndarray) -> np.ndarray:
        """Coordinates after rotating by ``rotation`` (3×3) about ``center_xyz_A``."""
        if rotation is None:
            return self.xyz_A
        r = np.asarray(rotation, dtype=np.float64)
        return (self.xyz_A - center_xyz_A) @ r.T + center_xyz_A

    def place(self, idx: np.ndarray, new_xyz_A: np.ndarray) -> list[gemmi.Atom]:
        """Move atoms ``idx`` to ``new_xyz_A`` (rows matching ``idx``) and return them."""
        out = []
        cur = self._current
        for i, p in zip(idx.tolist(), new_xyz_A.tolist()):
            a = self.atoms[i]
            if cur[i, 0] != p[0] or cur[i, 1] != p[1] or cur[i, 2] != p[2]:
                a.pos = gemmi.Position(p[0], p[1], p[2])
            out.append(a)
        cur[idx] = new_xyz_A
        return out


def _as_prepared(st: gemmi.Structure | PreparedModel) -> PreparedModel:
    return st if isinstance(st, PreparedModel) else PreparedModel(st)


def _voxel3(voxel_size_A: float | Vec3) -> Vec3:
    if np.ndim(voxel_size_A) == 0:
        v = float(voxel_size_A)  # type: ignore[arg-type]
        vox = (v, v, v)
    else:
        vals = [float(x) for x in voxel_size_A]  # type: ignore[union-attr]
        if len(vals) != 3:
            raise InputError(f"voxel size must be one or three positive numbers (Å), got {voxel_size_A}")
        vox = (vals[0], vals[1], vals[2])
    if not all(np.isfinite(x) and x > 0 for x in vox):
        raise InputError(f"voxel size must be positive (Å), got {voxel_size_A}")
    return vox  # type: ignore[return-value]


def density_calculator(modality: Modality | str) -> gemmi.DensityCalculatorE | gemmi.DensityCalculatorX:
    """A gemmi density calculator for ``modality`` (electron or X-ray form factors)."""
    mod = Modality.parse(modality)
    return gemmi.DensityCalculatorE() if mod is Modality.EM else gemmi.DensityCalculatorX()


def put_atoms_on_box(
    atoms: list[gemmi.Atom],
    shift_xyz_A: np.ndarray,
    shape_xyz: tuple[int, int, int],
    voxel_xyz_A: Vec3,
    modality: Modality | str = Modality.EM,
    blur_A2: float = 0.0,
    cutoff: float = 1e-3,
) -> np.ndarray:
    """Density of ``atoms`` on a periodic box whose voxel [0,0,0] sits at ``-shift_xyz_A``; (z, y, x) float32.

    The atoms' positions must already include ``shift_xyz_A`` (box frame); this only sets up the grid.
    """
    nx, ny, nz = shape_xyz
    vx, vy, vz = voxel_xyz_A
    dc = density_calculator(modality)
    dc.d_min = 0.0
    dc.cutoff = cutoff
    dc.blur = blur_A2
    dc.grid.unit_cell = gemmi.UnitCell(nx * vx, ny * vy, nz * vz, 90, 90, 90)
    dc.grid.spacegroup = gemmi.SpaceGroup("P1")
    dc.grid.set_size(nx, ny, nz)
    dc.initialize_grid()
    for a in atoms:
        dc.add_atom_density_to_grid(a)
    dc.grid.symmetrize_sum()
    arr = np.array(dc.grid, copy=False)  # (x, y, z), Fortran order
    return np.ascontiguousarray(arr.T, dtype=np.float32)


def _box_shape(extent_A: np.ndarray, vox: Vec3) -> tuple[int, int, int]:
    return tuple(int(scipy.fft.next_fast_len(max(8, int(np.ceil(e / v))))) for e, v in zip(extent_A, vox))  # type: ignore[return-value]


def simulate_raw_padded(
    st: gemmi.Structure | PreparedModel,
    voxel_size_A: float | Vec3,
    shape_zyx: tuple[int, int, int] | None = None,
    center_xyz_A: Vec3 | np.ndarray | None = None,
    rotation: np.ndarray | None = None,
    padding_A: float = 10.0,
    modality: Modality | str = Modality.EM,
    cutoff: float = 1e-3,
    box_center_xyz_A: Vec3 | np.ndarray | None = None,
) -> tuple[DensityMap, tuple[int, int, int], float]:
    """Unfiltered density on a padded box; return ``(padded map, pad voxels (z, y, x), internal blur Å²)``.

    The model is rotated about ``center_xyz_A`` (default: centroid); the box is centred on ``box_center_xyz_A``
    (default: ``center_xyz_A``) in the rotated frame. The requested region is ``padded.crop(pad, shape_zyx)``. The density carries an internal ``blur`` (so narrow
    atoms are sampled without aliasing) that :func:`finish_map` removes in Fourier space.
    """
    pm = _as_prepared(st)
    vox = _voxel3(voxel_size_A)
    c = np.asarray(center_xyz_A, dtype=np.float64) if center_xyz_A is not None else pm.centroid_xyz_A
    xyz = pm.transformed_xyz_A(rotation, c)
    pad_xyz = [int(np.ceil(padding_A / v)) for v in vox]
    bc = np.asarray(box_center_xyz_A, dtype=np.float64) if box_center_xyz_A is not None else c
    if shape_zyx is None:
        lo, hi = xyz.min(axis=0), xyz.max(axis=0)
        inner_xyz = _box_shape(hi - lo, vox)
        bc = (lo + hi) / 2
    else:
        nz, ny, nx = (int(n) for n in shape_zyx)
        if min(nz, ny, nx) < 1:
            raise InputError(f"box shape must be positive, got {shape_zyx} (z,y,x)")
        inner_xyz = (nx, ny, nz)
    # voxel n//2 sits on the centre, so even and odd boxes are both centred to within half a voxel
    inner_origin = bc - np.array([n // 2 for n in inner_xyz]) * np.asarray(vox)
    full_xyz = [int(scipy.fft.next_fast_len(n + 2 * p)) for n, p in zip(inner_xyz, pad_xyz)]
    pad_lo_xyz = [(f - n) // 2 for f, n in zip(full_xyz, inner_xyz)]
    origin = inner_origin - np.asarray(pad_lo_xyz) * np.asarray(vox)
    check_grid_memory(
        (full_xyz[0], full_xyz[1], full_xyz[2]),
        f"simulating a box of {' × '.join(f'{n * v:.0f}' for n, v in zip(full_xyz, vox))} Å (model and padding) "
        f"at voxel {'/'.join(sorted({f'{v:g}' for v in vox}))} Å",
        "use a larger voxel size (--voxel-size), less padding (--padding) or a smaller model",
    )
    box_A = np.asarray(full_xyz) * np.asarray(vox)
    local = xyz - origin
    # atoms beyond the padded box are skipped (they would wrap around); those inside the padding still add
    # density to the region, and what they spill over the outer faces lands in the padding, which is cropped.
    sel = np.nonzero(np.all((local >= 0) & (local < box_A), axis=1))[0]
    atoms = pm.place(sel, local[sel])
    b_min = float(pm.b_A2[sel].min()) if len(sel) else 0.0
    blur = max(0.0, MIN_SAMPLED_B_PER_VOXEL2 * max(vox) ** 2 - b_min)
    data = put_atoms_on_box(atoms, -origin, tuple(full_xyz), vox, modality, blur, cutoff)  # type: ignore[arg-type]
    m = DensityMap(data, voxel_size_xyz_A=vox, origin_xyz_A=tuple(origin))  # type: ignore[arg-type]
    pad_zyx = (pad_lo_xyz[2], pad_lo_xyz[1], pad_lo_xyz[0])
    return m, pad_zyx, blur


def fourier_factor(
    s_invA: np.ndarray, d_min_A: float | None, b_A2: float, edge_width_invA: float | None = None
) -> np.ndarray:
    """``lowpass(d_min) · exp(-B s²/4)`` on a frequency grid (``d_min=None``: no low-pass)."""
    f = np.exp(-b_A2 * s_invA * s_invA / 4.0)
    if d_min_A is not None:
        f = f * lowpass_filter_values(s_invA, d_min_A, edge_width_invA)
    return f.astype(np.float32)


def simulate_map(
    st: gemmi.Structure | PreparedModel,
    voxel_size_A: float | Vec3,
    d_min_A: float | None = None,
    b_extra_A2: float = 0.0,
    padding_A: float = 10.0,
    modality: Modality | str = Modality.EM,
    rotation: np.ndarray | None = None,
    shape_zyx: tuple[int, int, int] | None = None,
    center_xyz_A: Vec3 | np.ndarray | None = None,
    cutoff: float = 1e-3,
) -> DensityMap:
    """Simulate the density of a model on an orthogonal box, band-limited with a soft edge.

    Parameters
    ----------
    st
        Cleaned structure (see :func:`densharp.simulate.load_structure`) or a :class:`PreparedModel`.
    voxel_size_A
        Voxel size in Å (one number, or x, y, z).
    d_min_A
        Resolution (Å) of the soft low-pass (pass below ``1/d``, raised-cosine edge to ``1.1/d``); ``None``
        band-limits at the grid's Nyquist frequency.
    b_extra_A2
        Extra B (Å²) applied to every atom (``exp(-B s²/4)`` in Fourier space; negative sharpens).
    padding_A
        Padding (Å) on every side used while computing; larger than the atoms' radius so nothing wraps.
    modality
        ``"em"`` (electron form factors) or ``"xray"`` (X-ray form factors).
    rotation
        Optional 3×3 rotation matrix applied to the model about ``center_xyz_A`` (default: centroid) first.
    shape_zyx
        Box shape (z, y, x); ``None`` fits the whole (rotated) model plus ``padding_A``.
    center_xyz_A
        Centre of the box (and of the rotation), Å; default the model's centroid.
    cutoff
        gemmi density cutoff (relative); 1e-3 is fast and accurate to CC ≥ 0.9998.

    Returns
    -------
    DensityMap
        float32 (z, y, x) map; ``origin_xyz_A`` is voxel [0, 0, 0] in the (rotated) model frame.
    """
    vox = _voxel3(voxel_size_A)
    d = 2.0 * max(vox) if d_min_A is None else float(d_min_A)
    b_extra_A2 = float(b_extra_A2)
    if not np.isfinite(b_extra_A2):
        raise InputError(f"extra B-factor (--b-factor) {b_extra_A2} Å² is not a finite number; give a B in Å², e.g. 50")
    if not (np.isfinite(padding_A) and padding_A >= 0):
        raise InputError(f"padding (--padding) {padding_A} Å must be a finite number >= 0")
    pm = _as_prepared(st)
    st = pm
    b_floor = float(pm.b_A2.min())
    if b_extra_A2 < -b_floor:
        raise InputError(
            f"extra B-factor (--b-factor) {b_extra_A2:g} Å² would give atoms with B {b_floor:g} Å² a negative B "
            f"(narrower than a point: the map would be dominated by amplified round-off); give at least {-b_floor:g}"
        )
    if d < 2.0 * max(vox) * (1 - 1e-6):
        raise InputError(f"resolution {d:g} Å is finer than Nyquist ({2 * max(vox):g} Å); use a smaller voxel size")
    box_center = None
    if shape_zyx is None:
        # fit the (rotated) model plus padding_A on every side; nothing lies outside, so no extra padding is needed
        c = np.asarray(center_xyz_A, dtype=np.float64) if center_xyz_A is not None else pm.centroid_xyz_A
        xyz = pm.transformed_xyz_A(rotation, c)
        lo, hi = xyz.min(axis=0), xyz.max(axis=0)
        nx, ny, nz = _box_shape(hi - lo + 2 * padding_A, vox)
        shape_zyx = (nz, ny, nx)
        box_center = (lo + hi) / 2
        padding_A = 0.0
    padded, pad, blur = simulate_raw_padded(
        st, vox, shape_zyx, center_xyz_A, rotation, padding_A, modality, cutoff, box_center_xyz_A=box_center
    )
    return finish_map(padded, pad, shape_zyx, d, b_extra_A2 - blur)


def finish_map(
    padded: DensityMap,
    pad_zyx: tuple[int, int, int],
    shape_zyx: tuple[int, int, int],
    d_min_A: float | None,
    b_A2: float,
    b_removed_A2: float = 0.0,
) -> DensityMap:
    """Band-limit and B-filter ``padded`` in one Fourier pass, then crop ``shape_zyx`` starting at ``pad_zyx``."""
    f = rfft_map(padded.data_zyx)
    s = frequency_grid_invA(padded.shape_zyx, padded.voxel_size_xyz_A)
    f *= fourier_factor(s, d_min_A, b_A2 + b_removed_A2)
    out = padded.with_data(irfft_map(f, padded.shape_zyx))
    # a simulated box is a free-standing EM-style map: its position is ORIGIN, NSTART stays 0
    return replace(out.crop(pad_zyx, shape_zyx), nstart_xyz=(0, 0, 0))
