"""Crystallographic mode: unit-cell maps and map coefficients like those of a real crystal structure.

:func:`simulate_crystal` builds, from one atomic model, what a crystallographer has after refinement (or after
experimental phasing) and what the truth would have been:

- **Cell**: the structure's CRYST1 cell and space group when it is usable (the model fits the cell, optionally
  its volume per atom is that of a real crystal and the grid is not too large); else, with probability
  ``pack_probability``, a **packed crystal** in a space group drawn from :data:`PACKING_SPACEGROUPS` (random
  orientation and position, cell edges shrunk until the symmetry copies almost touch, then opened to a drawn
  solvent content); else a P1 box with ``margin_A`` between copies and the molecule across a cell face.
  Symmetry mates fill the cell; the solvent content comes from the cell. A model whose box alone would exceed
  half of ``max_cell_voxels`` is first cut to the residues within a sphere around a random atom.
- **Truth**: ``F_true = F_atoms + k_sol·exp(-B_sol s²/4)·F_mask``: X-ray form factors of the atoms with their
  own B (gemmi ``DensityCalculatorX``, sampling blur removed), ordered waters at hydration sites
  (:func:`add_waters`) and second side-chain conformations (:func:`add_alternate_conformations`), plus a flat
  **bulk solvent** of level ``k_sol`` (e/Å³) and blur ``B_sol`` in the solvent region of the cell (gemmi
  ``SolventMasker``, Refmac radii with drawn probe and shrink radii, symmetry applied; the mask's structure
  factors ``F_mask``), as refinement programs model it.
- **Observed amplitudes**: ``|F_true|`` with an extra isotropic B (``b_extra_A2``) and an anisotropic fall-off
  ``exp(-sᵀ B_aniso s/4)`` (a trace-free tensor with eigenvalue spread drawn from ``aniso_delta_b_range_A2``,
  averaged over the point group so it obeys the crystal's symmetry); intensities with measurement noise
  ``σ_I² = σ_bg² + (e·I)²`` (``σ_bg`` gives ``<I/σ(I)>`` = ``i_over_sigma_dmin`` in the outer shell; ``e`` the
  systematic error) and French-Wilson amplitudes; incompleteness: a beam-stop cut at low resolution, overloads
  among the low-resolution terms, random missing reflections and, sometimes, an anisotropic cut-off where
  the expected ``I/σ(I)`` falls below 1.2 (as STARANISO). ``|F_obs|`` is then put back on the model's scale
  (the anisotropic scale divided out, as refinement programs do for their maps): anisotropy shows as noise
  and incompleteness in the weak directions.
- **Refinement maps** (the default kind): the model used for phases and ``D·F_c`` is the structure with
  coordinate errors (rms ``σ = coordinate_error_per_d·d``, larger for high-B atoms, half of it smooth along
  the chain), B errors, a few missing residues, wrong side-chain rotamers, now and then a misplaced segment,
  only some of the waters and one conformation per residue, and the same bulk-solvent model from its own mask
  (Refmac's radii) with a small error in ``k_sol`` and ``B_sol``. σA per
  resolution shell from the agreement of model and truth in normalised ``E`` values (complex correlation of
  ``|E_obs|·exp(iφ_true)`` with ``E_c``), ``m = I1(X)/I0(X)`` (acentric) or ``tanh(X/2)`` (centric) with
  ``X = 2σA·|E_o|·|E_c|/(1 - σA²)``, ``D = σA·sqrt(Σ_o/Σ_c)``; ``FWT = 2m|F_o| - D|F_c|`` (``m|F_o|`` for
  centrics), ``PHWT = φ_c`` (model bias included); missing reflections filled with ``D·F_c`` with probability
  ``fill_missing_probability`` (refmac and phenix fill by default).
- **Experimental maps** (probability ``experimental_fraction``): ``FWT = m|F_o|`` with von Mises phase errors
  around the true phase, the mean figure of merit falling from ``m_low`` at low resolution to ``m_high`` at
  ``d_min`` (``m(s) = m_high + (m_low - m_high)·(1 - (s·d_min)²)``) and a per-reflection spread of the
  concentration; missing reflections stay missing.
- **Output**: a :class:`gemmi.Mtz` in the crystal's space group with its asymmetric unit of reflections
  (``FP SIGFP FWT PHWT FOM F_TRUE PHI_TRUE``, plus ``FC_ALL PHIC_ALL DELFWT PHDELWT`` for refinement maps), the
  map of ``FWT/PHWT`` over the whole cell (P1-expanded; periodic and symmetric) on a grid compatible with the
  space group (:func:`cell_grid_size`) as a :class:`~densharp.volume.DensityMap` (cell with its angles, space
  group number, sampling = grid), and the target: the true total density (atoms with their own B + bulk
  solvent, no measurement effects) to ``target_d_min_A`` on the same grid.

Every drawn parameter is recorded in :attr:`CrystalSim.meta` (JSON-ready). Reciprocal-space lengths come from
the cell's metric (gemmi ``UnitCell.calculate_1_d2_array``), so oblique cells are exact.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from typing import Any

import gemmi
import numpy as np

from densharp.errors import InputError
from densharp.io.mtz import cell_grid_size
from densharp.simulate.degrade import draw_uniform, random_rotation
from densharp.volume import DensityMap, OriginSource

#: space groups of packed crystals for models without a usable cell, with weights close to their frequency in
#: the PDB (cubic groups left out: 24+ copies make cells too large to simulate quickly)
PACKING_SPACEGROUPS: tuple[tuple[str, float], ...] = (
    ("P 21 21 21", 0.26),
    ("P 1 21 1", 0.15),
    ("C 1 2 1", 0.10),
    ("C 2 2 21", 0.06),
    ("P 21 21 2", 0.05),
    ("P 43 21 2", 0.05),
    ("P 41 21 2", 0.03),
    ("P 32 2 1", 0.05),
    ("P 31 2 1", 0.04),
    ("P 65 2 2", 0.03),
    ("P 61 2 2", 0.02),
    ("I 2 2 2", 0.03),
    ("H 3", 0.03),
    ("P 61", 0.03),
    ("P 43", 0.02),
    ("P 1", 0.05),
)

#: protein volume per non-hydrogen atom (Å³) for a first estimate of the solvent content (0.74 cm³/g)
PROTEIN_VOLUME_PER_ATOM_A3 = 18.0

_BACKBONE = frozenset({"N", "CA", "C", "O", "CB", "OXT"})


class CoefficientKind(str, Enum):
    """How the map coefficients were made."""

    REFINEMENT = "refinement"  # 2mFo-DFc from a model with errors (sigmaA weighting)
    EXPERIMENTAL = "experimental"  # m|Fo| with the phase errors of experimental phasing


@dataclass(frozen=True)
class CrystalOptions:
    """Ranges of everything :func:`simulate_crystal` draws (see the module docstring); all JSON-ready.

    The defaults give realistic refinement maps of the given cell; :class:`~densharp.simulate.crystal_pairs.
    CrystalConfig` (training) extends them with packing, cell checks and experimental maps.

    Parameters
    ----------
    margin_A
        Gap (Å) between copies in a P1 box.
    pack_probability
        Models without a usable cell: probability of a packed crystal in a drawn space group (else a P1 box).
    pack_solvent_range
        Solvent fraction a packed crystal is opened to (when its tight packing has less).
    cell_volume_per_atom_range_A3
        A CRYST1 cell is used only when its volume per atom of the asymmetric unit is in this range (a model
        of part of the asymmetric unit, or a simulation box, falls outside); ``None``: any cell the model fits.
    max_cell_voxels
        A cell whose map would have more voxels is not used (the model goes into a packed cell or a P1 box);
        ``None``: no limit (the memory check still applies).
    k_sol_range, b_sol_range_A2
        Bulk-solvent level (e/Å³) and B (Å²). ``(0, 0)`` for ``k_sol`` turns bulk solvent off.
    solvent_probe_range_A, solvent_shrink_range_A
        Probe and shrink radii (Å) of the true solvent boundary (the model's mask uses Refmac's 1.0 and 0.8 Å).
    waters_per_residue_range
        Ordered waters in the truth, per residue (:func:`add_waters`).
    alt_conformation_fraction_range
        Fraction of residues with a second side-chain conformation in the truth (the model has one).
    aniso_delta_b_range_A2
        Spread (largest minus smallest eigenvalue, Å²) of the trace-free anisotropic B before symmetrisation.
    i_over_sigma_dmin_range
        ``<I/σ(I)>`` of the outer shell.
    sigma_systematic_range
        Relative systematic error ``e`` of the intensities (sets ``I/σ(I)`` of strong reflections ≈ 1/e).
    missing_fraction_range
        Fraction of reflections missing at random.
    low_resolution_cut_range_A
        Beam-stop limit (Å): no reflections at lower resolution.
    low_resolution_missing_range
        Fraction of reflections with ``d > 8 Å`` missing (overloads).
    aniso_truncation_probability
        Probability of an anisotropic cut-off at expected ``I/σ(I) < 1.2``.
    fill_missing_probability
        Refinement maps: probability that missing reflections are filled with ``D·F_c``.
    coordinate_error_per_d_range
        Model coordinate error (rms Å) per Å of resolution (``σ = f·d_min``: 0.1-0.3 Å at 2 Å, 0.2-0.5 Å at 3.5 Å).
    coordinate_error_smooth_fraction
        Share of the coordinate error variance that is smooth along the chain (domain and loop shifts).
    b_error_range
        SD of ``ln B`` of the model's B-factors around the true ones.
    missing_residue_fraction_range
        Fraction of residues absent from the model (in segments, preferably at high B).
    wrong_sidechain_fraction_range
        Fraction of residues whose side chain is in a wrong rotamer (turned ±120° about CA-CB).
    misplaced_segment_probability, misplaced_shift_range_A
        Probability of one rigidly shifted segment (3-8 residues) and its shift (Å).
    model_water_fraction_range
        Fraction of the true waters the model has.
    k_sol_error_range, b_sol_error_range_A2
        Error of the model's bulk-solvent level (relative) and B (Å²).
    experimental_fraction
        Probability of an experimental-phasing map instead of a refinement map.
    fom_low_range, fom_high_range
        Experimental maps: mean figure of merit at low resolution and at ``d_min``.
    """

    margin_A: float = 4.0
    pack_probability: float = 0.0
    pack_solvent_range: tuple[float, float] = (0.35, 0.65)
    cell_volume_per_atom_range_A3: tuple[float, float] | None = None
    max_cell_voxels: int | None = None
    k_sol_range: tuple[float, float] = (0.30, 0.40)
    b_sol_range_A2: tuple[float, float] = (30.0, 80.0)
    solvent_probe_range_A: tuple[float, float] = (0.8, 1.3)
    solvent_shrink_range_A: tuple[float, float] = (0.6, 1.0)
    waters_per_residue_range: tuple[float, float] = (0.5, 1.5)
    alt_conformation_fraction_range: tuple[float, float] = (0.0, 0.1)
    aniso_delta_b_range_A2: tuple[float, float] = (0.0, 25.0)
    i_over_sigma_dmin_range: tuple[float, float] = (1.0, 3.0)
    sigma_systematic_range: tuple[float, float] = (0.02, 0.06)
    missing_fraction_range: tuple[float, float] = (0.0, 0.05)
    low_resolution_cut_range_A: tuple[float, float] = (15.0, 50.0)
    low_resolution_missing_range: tuple[float, float] = (0.0, 0.15)
    aniso_truncation_probability: float = 0.3
    fill_missing_probability: float = 0.8
    coordinate_error_per_d_range: tuple[float, float] = (0.06, 0.2)
    coordinate_error_smooth_fraction: float = 0.5
    b_error_range: tuple[float, float] = (0.1, 0.35)
    missing_residue_fraction_range: tuple[float, float] = (0.0, 0.08)
    wrong_sidechain_fraction_range: tuple[float, float] = (0.0, 0.08)
    misplaced_segment_probability: float = 0.25
    model_water_fraction_range: tuple[float, float] = (0.3, 0.8)
    misplaced_shift_range_A: tuple[float, float] = (1.0, 2.5)
    k_sol_error_range: tuple[float, float] = (-0.1, 0.1)
    b_sol_error_range_A2: tuple[float, float] = (-15.0, 15.0)
    experimental_fraction: float = 0.0
    fom_low_range: tuple[float, float] = (0.6, 0.9)
    fom_high_range: tuple[float, float] = (0.2, 0.5)

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):  # from JSON
                object.__setattr__(self, f.name, tuple(v))
                v = tuple(v)
            if isinstance(v, tuple) and (len(v) != 2 or not float(v[0]) <= float(v[1])):
                raise InputError(f"crystal option {f.name} must be a range (lo, hi) with lo <= hi, got {v}")
        for name in (
            "pack_probability",
            "aniso_truncation_probability",
            "fill_missing_probability",
            "misplaced_segment_probability",
            "experimental_fraction",
            "coordinate_error_smooth_fraction",
        ):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise InputError(f"crystal option {name} must lie in [0, 1], got {getattr(self, name)}")
        if self.k_sol_range[0] < 0 or self.b_sol_range_A2[0] < 0:
            raise InputError(
                f"k_sol_range and b_sol_range_A2 must be >= 0, got {self.k_sol_range}, {self.b_sol_range_A2}"
            )

    @classmethod
    def from_config(cls, cfg: Any) -> CrystalOptions:
        """The options held by any dataclass with (a superset of) these fields, e.g. a ``CrystalConfig``."""
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class CrystalSim:
    """Result of :func:`simulate_crystal`: MTZ (map coefficients), the map and the drawn parameters."""

    mtz: gemmi.Mtz
    map: DensityMap
    meta: dict[str, Any] = field(default_factory=dict)
    #: the true total density (atoms with their own B + bulk solvent, no measurement effects) on the same grid,
    #: band-limited at ``target_d_min_A``; only when that was requested
    target: DensityMap | None = None
    #: the true structure as placed in the cell (cell and space group set)
    structure: gemmi.Structure | None = None
    #: the model with errors that phased a refinement map (``None`` for experimental maps)
    model: gemmi.Structure | None = None


def kappa_from_fom(m: np.ndarray) -> np.ndarray:
    """Von Mises concentration ``κ`` with ``I1(κ)/I0(κ) = m`` (Best & Fisher 1981 approximation)."""
    m = np.clip(np.asarray(m, dtype=np.float64), 1e-6, 0.999)
    return np.where(
        m < 0.53,
        2 * m + m**3 + 5 * m**5 / 6,
        np.where(m < 0.85, -0.4 + 1.39 * m + 0.43 / (1 - m), 1 / (m**3 - 4 * m**2 + 3 * m)),
    )


def fom_acentric(x: np.ndarray) -> np.ndarray:
    """``I1(X)/I0(X)``: the figure of merit of an acentric reflection."""
    from scipy.special import i0e, i1e

    x = np.asarray(x, dtype=np.float64)
    return i1e(x) / i0e(x)


# ----------------------------------------------------------------------------------------------- grids
def _cell_map(a_xyz: np.ndarray, cell: gemmi.UnitCell, sg: gemmi.SpaceGroup) -> DensityMap:
    nx, ny, nz = a_xyz.shape
    return DensityMap(
        np.ascontiguousarray(a_xyz.T, dtype=np.float32),
        voxel_size_xyz_A=(cell.a / nx, cell.b / ny, cell.c / nz),
        origin_xyz_A=(0.0, 0.0, 0.0),
        sampling_xyz=(nx, ny, nz),
        cell_A_deg=(cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma),
        spacegroup=int(sg.number),
        origin_source=OriginSource.NSTART,
    )


def coefficients_map(
    hkl: np.ndarray, f: np.ndarray, cell: gemmi.UnitCell, sg: gemmi.SpaceGroup, size_xyz: tuple[int, int, int]
) -> DensityMap:
    """The whole-cell map of complex coefficients ``f`` (asymmetric unit of ``sg``) on a grid of ``size_xyz``.

    Non-finite coefficients are left out. The grid must suit the space group (:func:`cell_grid_size`).
    """
    ok = np.isfinite(f)
    asu = gemmi.ComplexAsuData(
        cell, sg, np.ascontiguousarray(hkl[ok], dtype=np.int32), np.ascontiguousarray(f[ok], dtype=np.complex64)
    )
    grid = asu.transform_f_phi_to_map(exact_size=list(size_xyz))
    return _cell_map(np.array(grid, copy=False), cell, sg)


# ----------------------------------------------------------------------------------------------- atoms
def _atom_arrays(model: gemmi.Model) -> tuple[np.ndarray, np.ndarray]:
    xyz = np.array([cra.atom.pos.tolist() for cra in model.all()], dtype=np.float64).reshape(-1, 3)
    b = np.array([cra.atom.b_iso for cra in model.all()], dtype=np.float64)
    return xyz, b


def _set_positions(model: gemmi.Model, xyz: np.ndarray, b: np.ndarray | None = None) -> None:
    for k, cra in enumerate(model.all()):
        cra.atom.pos = gemmi.Position(*xyz[k])
        if b is not None:
            cra.atom.b_iso = float(b[k])


def _ops_frac(sg: gemmi.SpaceGroup) -> list[tuple[np.ndarray, np.ndarray]]:
    den = float(gemmi.Op.DEN)
    return [
        (np.asarray(op.rot, dtype=np.float64) / den, np.asarray(op.tran, dtype=np.float64) / den)
        for op in sg.operations()
    ]


def count_symmetry_clashes(
    xyz: np.ndarray, cell: gemmi.UnitCell, sg: gemmi.SpaceGroup, distance_A: float, stop_at: int | None = None
) -> int:
    """Atoms of ``xyz`` (Å) closer than ``distance_A`` to an atom of another copy (symmetry mate or lattice image).

    With ``stop_at``, counting stops once that many are found.
    """
    from scipy.spatial import cKDTree

    orth = np.array(cell.orth.mat.tolist())
    Fm = np.array(cell.frac.mat.tolist())
    frac = xyz @ Fm.T
    c0 = frac.mean(axis=0)
    rmax = float(np.max(np.linalg.norm(xyz - xyz.mean(axis=0), axis=1))) if len(xyz) else 0.0
    reach = 2 * rmax + distance_A
    tree = cKDTree(xyz)
    nmax = [math.ceil(reach * float(np.linalg.norm(Fm[i]))) + 1 for i in range(3)]
    shifts = (
        np.stack(np.meshgrid(*(np.arange(-n, n + 1) for n in nmax), indexing="ij"), axis=-1)
        .reshape(-1, 3)
        .astype(np.float64)
    )
    hit = np.zeros(len(xyz), dtype=bool)
    for k, (R, t) in enumerate(_ops_frac(sg)):
        cf = R @ c0 + t
        base = np.round(c0 - cf)
        cand = shifts + base
        dist = np.linalg.norm((cf + cand - c0) @ orth.T, axis=1)
        for L in cand[dist < reach]:
            if k == 0 and not np.any(L):
                continue
            pts = (frac @ R.T + t + L) @ orth.T
            d, idx = tree.query(pts, distance_upper_bound=distance_A)
            close = np.isfinite(d)
            if close.any():
                hit[idx[close]] = True
                if stop_at is not None and int(hit.sum()) >= stop_at:
                    return int(hit.sum())
    return int(hit.sum())


def _subset(xyz: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(xyz) <= n:
        return xyz
    return xyz[np.sort(rng.choice(len(xyz), n, replace=False))]


def _cell_from_lengths(lengths: np.ndarray, angles: tuple[float, float, float]) -> gemmi.UnitCell:
    return gemmi.UnitCell(float(lengths[0]), float(lengths[1]), float(lengths[2]), *angles)


def _draw_cell_shape(
    sg: gemmi.SpaceGroup, rng: np.random.Generator
) -> tuple[tuple[float, float, float], list[list[int]]]:
    """Cell angles and the groups of edges that must stay equal, for the crystal system of ``sg``."""
    system = sg.crystal_system_str()
    if system == "triclinic":
        return (float(rng.uniform(75, 105)), float(rng.uniform(75, 105)), float(rng.uniform(75, 105))), [[0], [1], [2]]
    if system == "monoclinic":
        return (90.0, float(rng.uniform(92, 118)), 90.0), [[0], [1], [2]]
    if system in ("tetragonal",):
        return (90.0, 90.0, 90.0), [[0, 1], [2]]
    if system in ("trigonal", "hexagonal"):
        return (90.0, 90.0, 120.0), [[0, 1], [2]]
    return (90.0, 90.0, 90.0), [[0], [1], [2]]


def _spread_position(sg: gemmi.SpaceGroup, cell: gemmi.UnitCell, rng: np.random.Generator, n: int = 256) -> np.ndarray:
    """A fractional position whose symmetry copies lie far apart (the best of ``n`` random ones) in ``cell``."""
    cand = rng.uniform(0, 1, (n, 3))
    orth = np.array(cell.orth.mat.tolist())
    best = np.full(n, np.inf)
    shifts = np.stack(np.meshgrid(*([np.arange(-1, 2)] * 3), indexing="ij"), axis=-1).reshape(-1, 3)
    for k, (R, t) in enumerate(_ops_frac(sg)):
        img = cand @ R.T + t
        diff = img - cand
        diff -= np.round(diff)
        for L in shifts:
            if k == 0 and not np.any(L):
                continue
            best = np.minimum(best, np.linalg.norm((diff + L) @ orth.T, axis=1))
    return cand[int(np.argmax(best))]


def _shrink_cell(
    xyz: np.ndarray,
    sg: gemmi.SpaceGroup,
    angles: tuple[float, float, float],
    groups: list[list[int]],
    frac_c: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray | None:
    """Cell edges (Å) at which copies of ``xyz`` (centred, placed at fractional ``frac_c``) nearly touch."""
    probe = _subset(xyz, 500, rng)
    ext = xyz.max(axis=0) - xyz.min(axis=0)
    nops = len(sg.operations())
    lengths = np.maximum(ext + 6.0, 10.0) * max(2.0, 1.3 * nops ** (1 / 3))
    for g in groups:
        lengths[g] = lengths[g].max()

    def clashes(lens: np.ndarray, pts: np.ndarray, dist: float, stop: int) -> int:
        cell = _cell_from_lengths(lens, angles)
        centre = np.array(cell.orth.mat.tolist()) @ frac_c
        return count_symmetry_clashes(pts + centre, cell, sg, dist, stop_at=stop)

    for _ in range(4):
        if clashes(lengths, probe, 3.0, 1) == 0:
            break
        lengths = lengths * 1.5
    else:
        return None
    for _round in range(2):
        for gi in rng.permutation(len(groups)):
            g = groups[int(gi)]
            lo, hi = 0.3, 1.0
            for _ in range(6):
                mid = 0.5 * (lo + hi)
                trial = lengths.copy()
                trial[g] = trial[g] * mid
                if clashes(trial, probe, 3.0, 1) == 0:
                    hi = mid
                else:
                    lo = mid
            lengths[g] = lengths[g] * hi
    # all atoms: open the cell a little until almost no two copies come within 2.5 Å
    allowed = max(1, len(xyz) // 500)
    for _ in range(12):
        if clashes(lengths, xyz, 2.5, allowed + 1) <= allowed:
            return lengths
        lengths = lengths * 1.02
    return None


def _pack_crystal(
    st: gemmi.Structure, rng: np.random.Generator, opts: CrystalOptions, voxel_A: float, tries: int = 2
) -> tuple[gemmi.Structure, dict[str, Any]] | None:
    """A packed crystal of ``st`` in a drawn space group (see module docstring); ``None`` when packing fails.

    ``tries`` random orientations and positions are packed; the tightest is kept.
    """
    names = [n for n, _ in PACKING_SPACEGROUPS]
    w = np.array([p for _, p in PACKING_SPACEGROUPS])
    name = names[int(rng.choice(len(names), p=w / w.sum()))]
    sg = gemmi.SpaceGroup(name)
    angles, groups = _draw_cell_shape(sg, rng)
    xyz0, _ = _atom_arrays(st[0])
    xyz0 = xyz0 - xyz0.mean(axis=0)
    nops = len(sg.operations())
    best: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None
    for _ in range(int(tries)):
        rot = random_rotation(rng)
        xyz = xyz0 @ rot.T
        ext = xyz.max(axis=0) - xyz.min(axis=0)
        frac_c = _spread_position(sg, _cell_from_lengths(ext + 6.0, angles), rng)
        lengths = _shrink_cell(xyz, sg, angles, groups, frac_c, rng)
        if lengths is None:
            continue
        vol = _cell_from_lengths(lengths, angles).volume
        if best is None or vol < best[0]:
            best = (vol, lengths, rot, frac_c)
    if best is None:
        return None
    vol, lengths, rot, frac_c = best
    solvent_tight = 1.0 - PROTEIN_VOLUME_PER_ATOM_A3 * len(xyz0) / (vol / nops)
    solvent_target = draw_uniform(rng, opts.pack_solvent_range)
    if solvent_tight < solvent_target:
        lengths = lengths * ((1.0 - solvent_tight) / (1.0 - solvent_target)) ** (1 / 3)
    cell = _cell_from_lengths(lengths, angles)
    if opts.max_cell_voxels is not None and _voxels(cell, voxel_A) > opts.max_cell_voxels:
        return None
    centre = np.array(cell.orth.mat.tolist()) @ frac_c
    out = st.clone()
    _set_positions(out[0], xyz0 @ rot.T + centre)
    out.cell = cell
    out.spacegroup_hm = sg.xhm()
    return out, {
        "cell_source": "packed",
        "spacegroup_packed": sg.xhm(),
        "solvent_fraction_tight_estimate": round(float(solvent_tight), 4),
        "solvent_fraction_target": round(float(solvent_target), 4),
        "centroid_frac": [round(float(v), 4) for v in frac_c],
        "rotation": [[round(float(v), 6) for v in row] for row in rot],
    }


def _voxels(cell: gemmi.UnitCell, voxel_A: float) -> int:
    return int(np.prod([math.ceil(e / voxel_A) for e in (cell.a, cell.b, cell.c)]))


def _p1_box(st: gemmi.Structure, rng: np.random.Generator, margin_A: float) -> tuple[gemmi.Structure, dict[str, Any]]:
    out = st.clone()
    xyz, _ = _atom_arrays(out[0])
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    edges = hi - lo + margin_A
    out.cell = gemmi.UnitCell(edges[0], edges[1], edges[2], 90, 90, 90)
    out.spacegroup_hm = "P 1"
    # put the centroid next to a random face (fractional 0-0.15 on one axis, anywhere on the others)
    frac = rng.uniform(0, 1, 3)
    axis = int(rng.integers(3))
    frac[axis] = rng.uniform(-0.15, 0.15)
    shift = frac * edges - xyz.mean(axis=0)
    out[0].transform_pos_and_adp(gemmi.Transform(gemmi.Mat33(), gemmi.Vec3(*shift)))
    return out, {
        "cell_source": "P1 box",
        "margin_A": margin_A,
        "centroid_frac": [round(float(v), 4) for v in frac],
        "face_axis": axis,
    }


def place_in_cell(
    st: gemmi.Structure, rng: np.random.Generator, opts: CrystalOptions, voxel_A: float
) -> tuple[gemmi.Structure, dict[str, Any]]:
    """The structure in its crystal: CRYST1 cell, packed crystal or P1 box (see module docstring)."""
    xyz, _ = _atom_arrays(st[0])
    if len(xyz) == 0:
        raise InputError("the structure has no atoms; nothing to simulate")
    sg = st.find_spacegroup()
    why = "no CRYST1 cell"
    if st.cell.a > 2 and st.cell.b > 2 and st.cell.c > 2 and sg is not None:
        ext = xyz.max(axis=0) - xyz.min(axis=0)
        nops = len(sg.operations())
        vpa = st.cell.volume / nops / len(xyz)
        lo_hi = opts.cell_volume_per_atom_range_A3
        if not bool(np.all(ext < np.array([st.cell.a, st.cell.b, st.cell.c]) * 3)):
            why = "model does not fit its cell"
        elif lo_hi is not None and not lo_hi[0] <= vpa <= lo_hi[1]:
            why = f"cell volume per atom {vpa:.1f} Å³ outside {list(lo_hi)}"
        elif opts.max_cell_voxels is not None and _voxels(st.cell, voxel_A) > opts.max_cell_voxels:
            why = f"cell grid above {opts.max_cell_voxels} voxels"
        else:
            out = st.clone()
            out.spacegroup_hm = sg.xhm()
            return out, {"cell_source": "CRYST1", "volume_per_atom_A3": round(float(vpa), 2)}
    st, crop = _crop_to_budget(st, rng, opts, voxel_A)
    if opts.pack_probability > 0 and rng.random() < opts.pack_probability:
        packed = _pack_crystal(st, rng, opts, voxel_A)
        if packed is not None:
            packed[1].update({"cell_rejected": why, **crop})
            return packed
        why += "; packing failed"
    out, meta = _p1_box(st, rng, opts.margin_A)
    meta.update({"cell_rejected": why, **crop})
    return out, meta


def _crop_to_budget(
    st: gemmi.Structure, rng: np.random.Generator, opts: CrystalOptions, voxel_A: float
) -> tuple[gemmi.Structure, dict[str, Any]]:
    """``st``, or the residues within a sphere around a random atom when its box would exceed half the budget.

    Huge models (a ribosome) would make cells of tens of millions of voxels; a fragment of them is crystallised
    instead (``max_cell_voxels``; the sphere's box fits half of it).
    """
    if opts.max_cell_voxels is None:
        return st, {}
    xyz, _ = _atom_arrays(st[0])
    ext = xyz.max(axis=0) - xyz.min(axis=0) + opts.margin_A
    budget = 0.5 * float(opts.max_cell_voxels)
    if float(np.prod(np.ceil(ext / voxel_A))) <= budget:
        return st, {}
    radius = max(8.0, 0.5 * (budget ** (1 / 3) * voxel_A - opts.margin_A))
    centre = xyz[int(rng.integers(len(xyz)))]
    out = st.clone()
    for chain in out[0]:
        for i in range(len(chain) - 1, -1, -1):
            pos = np.array([a.pos.tolist() for a in chain[i]])
            if len(pos) == 0 or float(np.min(np.linalg.norm(pos - centre, axis=1))) > radius:
                del chain[i]
    out.remove_empty_chains()
    kept = sum(1 for _ in out[0].all())
    return out, {"cropped_from_atoms": len(xyz), "cropped_to_atoms": kept, "crop_radius_A": round(float(radius), 2)}


# ----------------------------------------------------------------------------------------------- structure factors
def _keys(hkl: np.ndarray) -> np.ndarray:
    h = np.asarray(hkl, dtype=np.int64) + 1024
    return (h[:, 0] * 2048 + h[:, 1]) * 2048 + h[:, 2]


def _take(hkl_from: np.ndarray, values: np.ndarray, hkl_to: np.ndarray) -> np.ndarray:
    """``values`` (indexed like ``hkl_from``) at the reflections ``hkl_to`` (all must be present)."""
    kf, kt = _keys(hkl_from), _keys(hkl_to)
    order = np.argsort(kf)
    pos = np.searchsorted(kf, kt, sorter=order)
    pos = np.clip(pos, 0, len(kf) - 1)
    idx = order[pos]
    if not np.array_equal(kf[idx], kt):
        raise RuntimeError("structure-factor sets differ (internal error)")
    return values[idx]


def atom_structure_factors(st: gemmi.Structure, d_min_A: float) -> tuple[np.ndarray, np.ndarray]:
    """``(hkl, F)``: X-ray structure factors (electrons) of the atoms and their symmetry mates, ASU to ``d_min_A``."""
    dc = gemmi.DensityCalculatorX()
    dc.d_min = float(d_min_A)
    dc.rate = 1.5
    dc.set_grid_cell_and_spacegroup(st)
    # a sampling blur (as refmac) keeps narrow atoms from aliasing on the grid; it is removed from F again
    dc.set_refmac_compatible_blur(st[0])
    blur = float(dc.blur)
    dc.put_model_density_on_grid(st[0])
    asu = gemmi.transform_map_to_f_phi(dc.grid, half_l=True).prepare_asu_data(dmin=float(d_min_A), unblur=blur)
    return np.asarray(asu.miller_array, dtype=np.int32), np.asarray(asu.value_array, dtype=np.complex128)


def solvent_mask_structure_factors(
    st: gemmi.Structure, d_min_A: float, probe_A: float = 1.0, shrink_A: float = 0.8
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(hkl, F_mask, solvent_fraction)``: structure factors (Å³) of the flat solvent mask (1 in solvent).

    gemmi ``SolventMasker`` with Refmac radii (default probe 1.0 Å and shrink 0.8 Å as Refmac; islands below
    50 Å³ removed), symmetry mates included, on a grid of at most ``min(d/3, 0.6)`` Å.
    """
    sg = st.find_spacegroup() or gemmi.SpaceGroup("P 1")
    grid = gemmi.FloatGrid()
    grid.spacegroup = sg
    grid.set_unit_cell(st.cell)
    size = cell_grid_size(st.cell, sg, min(d_min_A / 3.0, 0.6))
    grid.set_size(*size)
    masker = gemmi.SolventMasker(gemmi.AtomicRadiiSet.Refmac)
    masker.rprobe = float(probe_A)
    masker.rshrink = float(shrink_A)
    masker.put_mask_on_float_grid(grid, st[0])
    solvent = float(np.mean(np.array(grid, copy=False)))
    asu = gemmi.transform_map_to_f_phi(grid, half_l=True).prepare_asu_data(dmin=float(d_min_A))
    return np.asarray(asu.miller_array, dtype=np.int32), np.asarray(asu.value_array, dtype=np.complex128), solvent


def total_structure_factors(
    st: gemmi.Structure,
    d_min_A: float,
    k_sol: float,
    b_sol_A2: float,
    hkl: np.ndarray | None = None,
    probe_A: float = 1.0,
    shrink_A: float = 0.8,
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(hkl, F_atoms + k_sol·exp(-B_sol s²/4)·F_mask, solvent_fraction)`` to ``d_min_A`` (electrons).

    With ``hkl``, the values at those reflections (all must lie within ``d_min_A``). ``probe_A``/``shrink_A``: the
    mask's radii (:func:`solvent_mask_structure_factors`).
    """
    if hkl is not None and len(hkl):  # a little beyond the set, so none of it is lost to round-off at the limit
        d_min_A = min(d_min_A, float(1.0 / np.sqrt(st.cell.calculate_1_d2_array(np.asarray(hkl, np.int32)).max())))
        d_min_A *= 0.995
    h_a, f_a = atom_structure_factors(st, d_min_A)
    if hkl is not None:
        f_a = _take(h_a, f_a, hkl)
        h_a = np.asarray(hkl, dtype=np.int32)
    solvent = float("nan")  # not computed without bulk solvent
    if k_sol > 0:
        h_m, f_m, solvent = solvent_mask_structure_factors(st, d_min_A, probe_A, shrink_A)
        s2 = st.cell.calculate_1_d2_array(h_a.astype(np.int32))
        f_a = f_a + k_sol * np.exp(-b_sol_A2 * s2 / 4.0) * _take(h_m, f_m, h_a)
    return h_a, f_a, solvent


# ----------------------------------------------------------------------------------------------- the truth
def _rotation_about(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    axis = axis / max(float(np.linalg.norm(axis)), 1e-9)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * K + (1 - np.cos(angle_rad)) * K @ K


def _turn_sidechain(res: gemmi.Residue, angle_deg: float) -> bool:
    """Turn the atoms beyond CB about the CA-CB axis (in place); False when the residue has no side chain."""
    ca, cb = res.find_atom("CA", "*"), res.find_atom("CB", "*")
    side = [a for a in res if a.name not in _BACKBONE]
    if ca is None or cb is None or not side:
        return False
    p_ca, p_cb = np.array(ca.pos.tolist()), np.array(cb.pos.tolist())
    R = _rotation_about(p_cb - p_ca, np.radians(angle_deg))
    for a in side:
        a.pos = gemmi.Position(*((np.array(a.pos.tolist()) - p_cb) @ R.T + p_cb))
    return True


def add_waters(st: gemmi.Structure, rng: np.random.Generator, per_residue: float) -> tuple[gemmi.Structure, int]:
    """``st`` with ordered waters: about ``per_residue`` per residue at hydration sites of N and O atoms.

    A site lies 2.6-3.1 Å from its N/O atom in a random direction, at least 2.6 Å from every other atom (symmetry
    mates included) and 2.4 Å from the waters placed before; B = the parent's B × 1.1-1.6 + 0-10 Å².
    """
    out = st.clone()
    n_res = sum(len(ch) for ch in out[0])
    want = round(per_residue * n_res)
    if want <= 0:
        return out, 0
    out.setup_cell_images()
    ns = gemmi.NeighborSearch(out, 5.0).populate()  # symmetry mates and lattice images included
    polar = [cra.atom for cra in out[0].all() if cra.atom.element.name in ("N", "O")]
    if not polar:
        return out, 0
    placed: list[np.ndarray] = []
    bs: list[float] = []
    for k in rng.permutation(len(polar))[: 4 * want]:
        if len(placed) >= want:
            break
        a = polar[int(k)]
        u = rng.standard_normal(3)
        u /= max(float(np.linalg.norm(u)), 1e-9)
        p = np.array(a.pos.tolist()) + u * rng.uniform(2.6, 3.1)
        pos = gemmi.Position(*p)
        if len(ns.find_atoms(pos, "\0", radius=2.6)) > 0:
            continue
        if placed and float(np.min(np.linalg.norm(np.asarray(placed) - p, axis=1))) < 2.4:
            continue
        placed.append(p)
        bs.append(float(a.b_iso * rng.uniform(1.1, 1.6) + rng.uniform(0, 10)))
    if placed:
        chain = gemmi.Chain("W" if out[0].find_chain("W") is None else "w")
        for i, (p, b) in enumerate(zip(placed, bs)):
            r = gemmi.Residue()
            r.name = "HOH"
            r.seqid = gemmi.SeqId(i + 1, " ")
            r.entity_type = gemmi.EntityType.Water
            w = gemmi.Atom()
            w.name = "O"
            w.element = gemmi.Element("O")
            w.pos = gemmi.Position(*p)
            w.b_iso = min(b, 150.0)
            w.occ = 1.0
            r.add_atom(w)
            chain.add_residue(r)
        out[0].add_chain(chain)
    return out, len(placed)


def add_alternate_conformations(
    st: gemmi.Structure, rng: np.random.Generator, fraction: float
) -> tuple[gemmi.Structure, int]:
    """``st`` with a second side-chain conformation (turned ±120°, occupancy 0.3-0.5) in ``fraction`` of residues."""
    out = st.clone()
    n = 0
    if fraction <= 0:
        return out, 0
    for chain in out[0]:
        for res in chain:
            if res.entity_type == gemmi.EntityType.Water or rng.random() >= fraction:
                continue
            alt = res.clone()
            if not _turn_sidechain(alt, 120.0 if rng.random() < 0.5 else -120.0):
                continue
            q = float(rng.uniform(0.3, 0.5))
            side_names = {a.name for a in alt if a.name not in _BACKBONE}
            for a in res:
                if a.name in side_names:
                    a.occ = 1.0 - q
                    a.altloc = "A"
            for a in alt:
                if a.name in side_names:
                    b = gemmi.Atom()
                    b.name, b.element, b.pos, b.b_iso = a.name, a.element, a.pos, a.b_iso
                    b.occ, b.altloc = q, "B"
                    res.add_atom(b)
            n += 1
    return out, n


# ----------------------------------------------------------------------------------------------- the model with errors
def _drop_waters(st: gemmi.Structure, rng: np.random.Generator, keep: float) -> gemmi.Structure:
    """``st`` keeping each water with probability ``keep``."""
    out = st.clone()
    for chain in out[0]:
        for i in range(len(chain) - 1, -1, -1):
            if chain[i].name == "HOH" and rng.random() >= keep:
                del chain[i]
    out.remove_empty_chains()
    return out


def _residue_table(model: gemmi.Model) -> list[tuple[int, int, list[int], float, bool]]:
    """(chain index, residue index in chain, atom indices in model.all() order, mean B, is water) per residue."""
    out = []
    k = 0
    for ci, chain in enumerate(model):
        for ri, res in enumerate(chain):
            idx = list(range(k, k + len(res)))
            k += len(res)
            water = res.entity_type == gemmi.EntityType.Water or res.name == "HOH"
            out.append((ci, ri, idx, float(np.mean([a.b_iso for a in res])) if len(res) else 0.0, water))
    return out


def _smooth_along(n: int, corr: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) random displacements with unit rms per component, correlated over ``corr`` residues."""
    from scipy.ndimage import gaussian_filter1d

    u = rng.standard_normal((n, 3))
    if n > 1 and corr > 0:
        u = gaussian_filter1d(u, corr, axis=0, mode="nearest")
    sd = u.std(axis=0, keepdims=True) if n > 2 else np.ones((1, 3))
    return u / np.where(sd > 0, sd, 1.0)


def perturb_model(
    st: gemmi.Structure, rng: np.random.Generator, d_min_A: float, opts: CrystalOptions, b_extra_A2: float = 0.0
) -> tuple[gemmi.Structure, dict[str, Any]]:
    """The structure as a refined model would have it at ``d_min_A`` (see module docstring) and what was drawn."""
    model_st = st.clone()
    m = model_st[0]
    xyz, b = _atom_arrays(m)
    n = len(xyz)
    res_all = _residue_table(m)
    res = [r for r in res_all if not r[4]]  # waters: coordinate and B errors only
    # coordinate errors: per atom, scaled by sqrt(B / median B), half smooth along each chain
    f = draw_uniform(rng, opts.coordinate_error_per_d_range)
    sigma = f * d_min_A
    w = float(opts.coordinate_error_smooth_fraction)
    corr = draw_uniform(rng, (2.0, 8.0))
    smooth = np.zeros((n, 3))
    for ci in sorted({r[0] for r in res_all}):
        rows = [r for r in res_all if r[0] == ci]
        u = _smooth_along(len(rows), corr, rng)
        for k, r in enumerate(rows):
            smooth[r[2]] = u[k]
    scale = np.sqrt(np.clip(b / max(float(np.median(b)), 1.0), 0.25, 4.0))
    disp = (np.sqrt(w) * smooth + np.sqrt(1 - w) * rng.standard_normal((n, 3))) * scale[:, None]
    rms = float(np.sqrt(np.mean(np.sum(disp**2, axis=1)))) if n else 1.0
    disp *= sigma / max(rms, 1e-9)
    new_xyz = xyz + disp
    # wrong rotamers: side chain beyond CB turned by ±120° about CA-CB
    names = [cra.atom.name for cra in m.all()]
    frac_rot = draw_uniform(rng, opts.wrong_sidechain_fraction_range)
    n_rot = 0
    for r in res:
        if rng.random() >= frac_rot:
            continue
        idx = r[2]
        ca = [i for i in idx if names[i] == "CA"]
        cb = [i for i in idx if names[i] == "CB"]
        side = [i for i in idx if names[i] not in _BACKBONE]
        if not (ca and cb and side):
            continue
        axis = new_xyz[cb[0]] - new_xyz[ca[0]]
        axis /= max(float(np.linalg.norm(axis)), 1e-9)
        ang = np.radians(120.0 if rng.random() < 0.5 else -120.0)
        K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        Rm = np.eye(3) + np.sin(ang) * K + (1 - np.cos(ang)) * K @ K
        new_xyz[side] = (new_xyz[side] - new_xyz[cb[0]]) @ Rm.T + new_xyz[cb[0]]
        n_rot += 1
    # a misplaced segment: 3-8 residues shifted rigidly
    misplaced: dict[str, Any] | None = None
    if len(res) >= 10 and rng.random() < opts.misplaced_segment_probability:
        length = int(rng.integers(3, 9))
        start = int(rng.integers(0, len(res) - length))
        seg = [i for r in res[start : start + length] if r[0] == res[start][0] for i in r[2]]
        vec = rng.standard_normal(3)
        vec *= draw_uniform(rng, opts.misplaced_shift_range_A) / max(float(np.linalg.norm(vec)), 1e-9)
        new_xyz[seg] += vec
        misplaced = {"first_residue": start, "residues": length, "shift_A": [round(float(v), 3) for v in vec]}
    # B errors (the refined B follow the data, b_extra included)
    sd_lnb = draw_uniform(rng, opts.b_error_range)
    new_b = np.clip((b + b_extra_A2) * np.exp(rng.normal(0.0, sd_lnb, n)), 2.0, 300.0)
    _set_positions(m, new_xyz, new_b)
    # missing residues: segments of 1-8 residues, seeded preferably at high B
    frac_missing = draw_uniform(rng, opts.missing_residue_fraction_range)
    target = round(frac_missing * len(res))
    gone: set[int] = set()
    if target > 0:
        rb = np.array([r[3] for r in res])
        p = np.maximum(rb - rb.min(), 1e-3) ** 2
        p /= p.sum()
        for _ in range(100):
            if len(gone) >= target:
                break
            k0 = int(rng.choice(len(res), p=p))
            for k in range(k0, min(len(res), k0 + int(rng.integers(1, 9)))):
                if res[k][0] == res[k0][0] and len(gone) < target:
                    gone.add(k)
    if gone:
        for k in sorted(gone, reverse=True):
            ci, ri = res[k][0], res[k][1]
            del m[ci][ri]
        model_st.remove_empty_chains()
    return model_st, {
        "coordinate_error_rms_A": round(float(sigma), 4),
        "coordinate_error_per_d": round(float(f), 4),
        "coordinate_error_corr_residues": round(float(corr), 3),
        "b_error_sd_ln": round(float(sd_lnb), 4),
        "wrong_sidechains": n_rot,
        "missing_residues": len(gone),
        "residues": len(res),
        "misplaced_segment": misplaced,
    }


# ----------------------------------------------------------------------------------------------- data
def restricted_phases(hkl: np.ndarray, sg: gemmi.SpaceGroup) -> np.ndarray:
    """The allowed phase (radians, modulo π) of each centric reflection; NaN for acentric ones.

    A reflection with ``h·R = -h`` for an operator ``(R, t)`` has ``φ = π h·t`` modulo π (gemmi's convention).
    """
    h = np.asarray(hkl, dtype=np.int64)
    out = np.full(len(h), np.nan)
    den = gemmi.Op.DEN
    for op in sg.operations():
        hr = (h @ np.asarray(op.rot, dtype=np.int64)) // den
        hit = np.all(hr == -h, axis=1) & np.isnan(out)
        if hit.any():
            out[hit] = np.mod(np.pi * (h[hit] @ np.asarray(op.tran, dtype=np.float64)) / den, np.pi)
    return out


def _restrict(f: np.ndarray, phi_r: np.ndarray) -> np.ndarray:
    """``f`` with the phases of centric reflections moved to the nearer allowed value (float round-off of tiny F)."""
    c = np.isfinite(phi_r)
    if not c.any():
        return f
    out = f.copy()
    ph = np.angle(f[c])
    k = np.round((ph - phi_r[c]) / np.pi)
    out[c] = np.abs(f[c]) * np.exp(1j * (phi_r[c] + np.pi * k))
    return out


def _aniso_tensor(rng: np.random.Generator, delta_b: float, cell: gemmi.UnitCell, sg: gemmi.SpaceGroup) -> np.ndarray:
    """A trace-free Cartesian B tensor (Å²) of eigenvalue spread ``delta_b``, averaged over the point group."""
    if delta_b <= 0:
        return np.zeros((3, 3))
    e = np.sort(np.array([0.0, rng.uniform(0, 1), 1.0])) * delta_b
    e -= e.mean()
    Q = random_rotation(rng)
    B = Q @ np.diag(e) @ Q.T
    orth = np.array(cell.orth.mat.tolist())
    orth_inv = np.linalg.inv(orth)
    acc = np.zeros((3, 3))
    ops = _ops_frac(sg)
    for R, _ in ops:
        Rc = orth @ R @ orth_inv
        acc += Rc @ B @ Rc.T
    acc /= len(ops)
    return acc - np.trace(acc) / 3.0 * np.eye(3)


def _shell_index(s2: np.ndarray, n_shells: int) -> np.ndarray:
    """Shells of about equal reflection count (equal steps in s³)."""
    s3 = s2**1.5
    lo, hi = float(s3.min()), float(s3.max())
    edges = np.linspace(lo, hi * (1 + 1e-9) + 1e-12, n_shells + 1)
    return np.clip(np.searchsorted(edges, s3, side="right") - 1, 0, n_shells - 1)


def _shell_means(values: np.ndarray, shell: np.ndarray, n_shells: int) -> np.ndarray:
    tot = np.bincount(shell, weights=values, minlength=n_shells)
    cnt = np.bincount(shell, minlength=n_shells)
    return tot / np.maximum(cnt, 1)


def _french_wilson(i_obs: np.ndarray, sig_i: np.ndarray, sigma_wilson: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Amplitudes from intensities with an acentric Wilson prior: sqrt of the posterior mean of J ≥ 0, and SD."""
    from scipy.special import erfcx

    mu = i_obs - sig_i**2 / np.maximum(sigma_wilson, 1e-12)
    alpha = -mu / sig_i
    lam = np.sqrt(2.0 / np.pi) / erfcx(alpha / np.sqrt(2.0))
    mean_j = np.maximum(mu + sig_i * lam, 1e-12 * np.maximum(sigma_wilson, 1e-12))
    var_j = np.maximum(sig_i**2 * (1.0 + alpha * lam - lam**2), 0.0)
    f = np.sqrt(mean_j)
    sig_f = np.minimum(np.sqrt(var_j) / (2.0 * f), np.sqrt(np.maximum(sigma_wilson, 0.0)))
    return f, sig_f


def _sigmaa_shells(
    fo: np.ndarray, phi_true: np.ndarray, fc: np.ndarray, eps: np.ndarray, shell: np.ndarray, n_shells: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per shell: σA (complex correlation of ``fo·exp(iφ_true)`` with ``fc``, 1/ε weights), Σ_o, Σ_c."""
    zo = fo * np.exp(1j * phi_true)
    sig_o = _shell_means(fo**2 / eps, shell, n_shells)
    sig_c = _shell_means(np.abs(fc) ** 2 / eps, shell, n_shells)
    cross = _shell_means(np.real(zo * np.conj(fc)) / eps, shell, n_shells)
    sa = cross / np.sqrt(np.maximum(sig_o * sig_c, 1e-30))
    return np.clip(sa, 0.02, 0.98), sig_o, sig_c


# ----------------------------------------------------------------------------------------------- the simulation
def simulate_crystal(
    st: gemmi.Structure,
    d_min_A: float,
    rng: np.random.Generator,
    voxel_size_A: float | None = None,
    b_extra_A2: float = 0.0,
    fom_low_range: tuple[float, float] | None = None,
    fom_high_range: tuple[float, float] | None = None,
    missing_fraction_range: tuple[float, float] | None = None,
    margin_A: float | None = None,
    target_d_min_A: float | None = None,
    options: CrystalOptions | None = None,
    kind: CoefficientKind | str | None = None,
) -> CrystalSim:
    """Simulate map coefficients and the map of a whole unit cell (see module docstring).

    Parameters
    ----------
    st
        Cleaned structure (first model used); its CRYST1 cell and space group are used when usable.
    d_min_A
        Resolution limit (Å) of the data.
    rng
        Random generator (everything drawn comes from it).
    voxel_size_A
        Largest grid spacing (Å); default ``d_min/3``; at most ``d_min/2``. The grid is finer where the
        space group's size rules need it (:func:`cell_grid_size`).
    b_extra_A2
        Extra isotropic B (Å²) of the data (the refined model's B follow it; the target does not have it).
    fom_low_range, fom_high_range, missing_fraction_range, margin_A
        Override the same fields of ``options``.
    target_d_min_A
        When given, also return :attr:`CrystalSim.target` (true total density to this resolution on the map's
        grid). Must be coarser than 2 voxels.
    options
        Ranges of the drawn parameters; default :class:`CrystalOptions`.
    kind
        Force refinement or experimental coefficients; default drawn (``options.experimental_fraction``).
    """
    opts = options or CrystalOptions()
    over: dict[str, Any] = {
        k: v
        for k, v in (
            ("fom_low_range", fom_low_range),
            ("fom_high_range", fom_high_range),
            ("missing_fraction_range", missing_fraction_range),
            ("margin_A", margin_A),
        )
        if v is not None
    }
    if over:
        opts = replace(opts, **over)
    d_min_A = float(d_min_A)
    v = d_min_A / 3.0 if voxel_size_A is None else float(voxel_size_A)
    if v > d_min_A / 2.0:
        raise InputError(f"voxel size {v:g} Å is too coarse for {d_min_A:g} Å; use at most {d_min_A / 2:g} Å")
    if target_d_min_A is not None and target_d_min_A <= 2.0 * v:
        raise InputError(f"target resolution {target_d_min_A:g} Å needs a voxel below {target_d_min_A / 2:g} Å")
    xst, cell_meta = place_in_cell(st, rng, opts, v)
    cell = xst.cell
    sg = xst.find_spacegroup() or gemmi.SpaceGroup("P 1")
    size = cell_grid_size(cell, sg, v)
    from densharp.resources import check_grid_memory

    check_grid_memory(
        size,
        f"simulating the {cell.a:.0f} × {cell.b:.0f} × {cell.c:.0f} Å cell at voxel {v:g} Å",
        "use a larger voxel size (--voxel-size) or a lower resolution",
    )
    if kind is None:
        is_exp = opts.experimental_fraction > 0 and rng.random() < opts.experimental_fraction
        kind = CoefficientKind.EXPERIMENTAL if is_exp else CoefficientKind.REFINEMENT
    kind = CoefficientKind(kind)
    d_calc = d_min_A if target_d_min_A is None else min(d_min_A, float(target_d_min_A))

    # truth: atoms (with ordered waters and alternate conformations) + bulk solvent
    w_per_res = draw_uniform(rng, opts.waters_per_residue_range)
    wet, n_waters = add_waters(xst, rng, w_per_res)
    alt_frac = draw_uniform(rng, opts.alt_conformation_fraction_range)
    truth, n_alt = add_alternate_conformations(wet, rng, alt_frac)
    k_sol = draw_uniform(rng, opts.k_sol_range)
    b_sol = draw_uniform(rng, opts.b_sol_range_A2)
    probe = draw_uniform(rng, opts.solvent_probe_range_A)
    shrink = draw_uniform(rng, opts.solvent_shrink_range_A)
    hkl_all, f_true_all, solvent = total_structure_factors(truth, d_calc, k_sol, b_sol, probe_A=probe, shrink_A=shrink)
    phi_r_all = restricted_phases(hkl_all, sg)
    f_true_all = _restrict(f_true_all, phi_r_all)
    s2_all = cell.calculate_1_d2_array(hkl_all)
    d_all = 1.0 / np.sqrt(np.maximum(s2_all, 1e-30))
    keep = d_all >= d_min_A * (1 - 1e-9)
    hkl, f_true, s2 = hkl_all[keep], f_true_all[keep], s2_all[keep]
    d = 1.0 / np.sqrt(s2)
    n = len(hkl)
    if n < 20:
        raise InputError(
            f"the {cell.a:.0f} × {cell.b:.0f} × {cell.c:.0f} Å cell has only {n} reflections to {d_min_A:g} Å"
        )
    gops = sg.operations()
    eps = np.asarray(gops.epsilon_factor_array(hkl), dtype=np.float64)
    phi_r = phi_r_all[keep]
    centric = np.isfinite(phi_r)

    # data: fall-off, anisotropy, noise, incompleteness
    delta_b = draw_uniform(rng, opts.aniso_delta_b_range_A2)
    B_aniso = _aniso_tensor(rng, delta_b, cell, sg)
    Fm = np.array(cell.frac.mat.tolist())
    s_cart = hkl.astype(np.float64) @ Fm  # row vectors: s = Fᵀh
    aniso = np.exp(-np.einsum("ni,ij,nj->n", s_cart, B_aniso, s_cart) / 4.0)
    iso = np.exp(-b_extra_A2 * s2 / 4.0)
    i_true = (np.abs(f_true) * iso * aniso) ** 2
    n_shells = int(np.clip(n // 400, 6, 20))
    shell = _shell_index(s2, n_shells)
    sigma_w = _shell_means(i_true / eps, shell, n_shells)[shell] * eps  # Wilson expectation, per reflection
    iso_mean = _shell_means((np.abs(f_true) * iso) ** 2 / eps, shell, n_shells)[shell] * eps
    ios = draw_uniform(rng, opts.i_over_sigma_dmin_range)
    e_sys = draw_uniform(rng, opts.sigma_systematic_range)
    outer = s2 >= np.quantile(s2, 0.9)
    sig_bg = float(np.mean(i_true[outer])) / ios
    sig_i = np.sqrt(sig_bg**2 + (e_sys * i_true) ** 2)
    i_obs = i_true + rng.standard_normal(n) * sig_i
    f_obs, sig_f = _french_wilson(i_obs, sig_i, sigma_w)
    f_obs /= aniso  # on the model's scale, as in a refinement program's map
    sig_f /= aniso
    observed = np.ones(n, dtype=bool)
    d_low = draw_uniform(rng, opts.low_resolution_cut_range_A)
    in_list = d <= d_low  # beyond the beam stop: not in the reflection list at all
    low_miss = draw_uniform(rng, opts.low_resolution_missing_range)
    observed &= ~((d > 8.0) & (rng.random(n) < low_miss))
    rand_miss = draw_uniform(rng, opts.missing_fraction_range)
    observed &= rng.random(n) >= rand_miss
    truncated = bool(opts.aniso_truncation_probability > 0 and rng.random() < opts.aniso_truncation_probability)
    if truncated:
        expect = iso_mean * aniso**2
        observed &= expect / np.sqrt(sig_bg**2 + (e_sys * expect) ** 2) >= 1.2
    observed &= in_list
    if observed.sum() < 20:
        raise InputError(f"only {int(observed.sum())} observed reflections were simulated; use a larger cell")
    phi_true = np.angle(f_true)

    meta: dict[str, Any] = dict(cell_meta)
    meta.update(
        {
            "kind": kind.value,
            "d_min_A": d_min_A,
            "cell_A_deg": [round(float(x), 4) for x in cell.parameters],
            "spacegroup": sg.xhm(),
            "spacegroup_number": int(sg.number),
            "symmetry_operators": len(gops),
            "solvent_fraction": round(float(solvent), 4),
            "k_sol": round(k_sol, 4),
            "b_sol_A2": round(b_sol, 3),
            "solvent_probe_A": round(probe, 3),
            "solvent_shrink_A": round(shrink, 3),
            "waters": n_waters,
            "waters_per_residue": round(w_per_res, 3),
            "alt_conformations": n_alt,
            "b_extra_A2": b_extra_A2,
            "aniso_delta_b_A2": round(delta_b, 3),
            "aniso_b_eigenvalues_A2": [round(float(x), 3) for x in np.linalg.eigvalsh(B_aniso)],
            "aniso_b_tensor_A2": [[round(float(x), 4) for x in row] for row in B_aniso],  # Cartesian, trace-free
            "i_over_sigma_dmin": round(ios, 3),
            "sigma_systematic": round(e_sys, 4),
            "low_resolution_cut_A": round(d_low, 3),
            "low_resolution_missing_fraction": round(low_miss, 4),
            "missing_fraction": round(rand_miss, 4),
            "aniso_truncation": truncated,
            "reflections": n,
            "reflections_listed": int(in_list.sum()),
            "reflections_observed": int(observed.sum()),
            "completeness": round(float(observed.sum()) / n, 4),
            "grid_xyz": list(size),
            "target_d_min_A": target_d_min_A,
        }
    )
    cols: dict[str, np.ndarray] = {
        "FP": np.where(observed, f_obs, np.nan),
        "SIGFP": np.where(observed, sig_f, np.nan),
    }
    model_st: gemmi.Structure | None = None
    if kind is CoefficientKind.REFINEMENT:
        keep_w = draw_uniform(rng, opts.model_water_fraction_range)
        model_st, model_meta = perturb_model(_drop_waters(wet, rng, keep_w), rng, d_min_A, opts, b_extra_A2)
        model_meta["water_fraction_kept"] = round(keep_w, 3)
        k_sol_m = k_sol * (1.0 + draw_uniform(rng, opts.k_sol_error_range))
        b_sol_m = max(5.0, b_sol + draw_uniform(rng, opts.b_sol_error_range_A2))
        _, fc, solvent_m = total_structure_factors(model_st, d_min_A, max(k_sol_m, 0.0), b_sol_m, hkl=hkl)
        fc = _restrict(fc, phi_r)
        ob = observed
        sa_sh, so_sh, sc_sh = _sigmaa_shells(f_obs[ob], phi_true[ob], fc[ob], eps[ob], shell[ob], n_shells)
        # smooth over shells and interpolate in s (what a program's sigmaA curve looks like)
        s_mid = np.sqrt(_shell_means(s2, shell, n_shells))
        s_ref = np.sqrt(s2)
        sa = np.interp(s_ref, s_mid, sa_sh)
        d_scale = sa * np.sqrt(np.interp(s_ref, s_mid, so_sh) / np.maximum(np.interp(s_ref, s_mid, sc_sh), 1e-30))
        eo = f_obs / np.sqrt(eps * np.interp(s_ref, s_mid, so_sh))
        ec = np.abs(fc) / np.sqrt(eps * np.interp(s_ref, s_mid, sc_sh))
        x = 2.0 * sa * eo * ec / (1.0 - sa**2)
        m = np.where(centric, np.tanh(x / 2.0), fom_acentric(x))
        phic = np.angle(fc)
        amp = np.where(centric, m * f_obs, 2.0 * m * f_obs - d_scale * np.abs(fc))
        fill = bool(rng.random() < opts.fill_missing_probability)
        missing_listed = in_list & ~observed
        amp = np.where(observed, amp, np.where(missing_listed & fill, d_scale * np.abs(fc), np.nan))
        fwt = amp * np.exp(1j * phic)  # a negative amplitude is the opposite phase
        delfwt = np.where(observed, m * f_obs - d_scale * np.abs(fc), np.nan) * np.exp(1j * phic)
        cols.update(
            {
                "FC_ALL": np.abs(fc),
                "PHIC_ALL": np.degrees(phic),
                "FWT": np.abs(fwt),
                "PHWT": np.degrees(np.angle(np.nan_to_num(fwt))),
                "DELFWT": np.abs(delfwt),
                "PHDELWT": np.degrees(np.angle(np.nan_to_num(delfwt))),
                "FOM": np.where(observed, m, np.where(missing_listed & fill, 0.0, np.nan)),
            }
        )
        meta.update(
            {
                "model": model_meta,
                "k_sol_model": round(float(k_sol_m), 4),
                "b_sol_model_A2": round(float(b_sol_m), 3),
                "solvent_fraction_model": round(float(solvent_m), 4),
                "fill_missing": fill,
                "sigmaa_shells": [round(float(x), 4) for x in sa_sh],
                "shell_d_A": [round(float(1 / x), 3) for x in s_mid],
                "mean_fom": round(float(np.mean(m[observed])), 4),
                "mean_phase_error_deg": round(
                    float(np.degrees(np.mean(np.abs(np.angle(np.exp(1j * (phic - phi_true)))[observed])))), 3
                ),
            }
        )
    else:
        m_low = draw_uniform(rng, opts.fom_low_range)
        m_high = draw_uniform(rng, opts.fom_high_range)
        xs = np.clip(np.sqrt(s2) * d_min_A, 0, 1)
        m_mean = m_high + (m_low - m_high) * (1 - xs**2)
        kappa = kappa_from_fom(m_mean) * np.exp(rng.normal(0.0, 0.5, n))
        m = fom_acentric(kappa)
        dphi = rng.vonmises(0.0, kappa)
        # centric phases are right or wrong by π: wrong with probability (1 - m)/2, so E[cos Δφ] = m
        dphi = np.where(centric, np.where(rng.random(n) < (1.0 - m) / 2.0, np.pi, 0.0), dphi)
        phase = phi_true + dphi
        cols.update(
            {
                "FWT": np.where(observed, m * f_obs, np.nan),
                "PHWT": np.degrees(phase),
                "FOM": np.where(observed, m, np.nan),
            }
        )
        meta.update(
            {
                "fom_low": round(m_low, 4),
                "fom_at_dmin": round(m_high, 4),
                "mean_fom": round(float(np.mean(m[observed])), 4),
                "mean_phase_error_deg": round(float(np.degrees(np.abs(dphi[observed]).mean())), 3),
            }
        )
    cols["F_TRUE"] = np.abs(f_true) * iso
    cols["PHI_TRUE"] = np.degrees(phi_true)
    mtz = _make_mtz(hkl[in_list], {k: c[in_list] for k, c in cols.items()}, cell, sg)
    fwt_c = cols["FWT"] * np.exp(1j * np.radians(np.nan_to_num(cols["PHWT"])))
    cell_map = coefficients_map(hkl, fwt_c, cell, sg, size)
    target = None
    if target_d_min_A is not None:
        d_t_all = 1.0 / np.sqrt(np.maximum(s2_all, 1e-30))
        sel = d_t_all >= float(target_d_min_A) * (1 - 1e-9)
        target = coefficients_map(hkl_all[sel], f_true_all[sel], cell, sg, size)
    return CrystalSim(mtz=mtz, map=cell_map, meta=_json_ready(meta), target=target, structure=truth, model=model_st)


_COLUMN_TYPES = {
    "FP": "F",
    "SIGFP": "Q",
    "FC_ALL": "F",
    "PHIC_ALL": "P",
    "FWT": "F",
    "PHWT": "P",
    "DELFWT": "F",
    "PHDELWT": "P",
    "FOM": "W",
    "F_TRUE": "F",
    "PHI_TRUE": "P",
}


def _make_mtz(hkl: np.ndarray, cols: dict[str, np.ndarray], cell: gemmi.UnitCell, sg: gemmi.SpaceGroup) -> gemmi.Mtz:
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = sg
    mtz.set_cell_for_all(cell)
    mtz.add_dataset("simulated")
    labels = list(cols)
    for label in labels:
        mtz.add_column(label, _COLUMN_TYPES[label])
    data = [hkl.astype(np.float64)]
    for label in labels:
        c = np.asarray(cols[label], dtype=np.float64)
        data.append((np.mod(c, 360.0) if _COLUMN_TYPES[label] == "P" else c)[:, None])
    mtz.set_data(np.hstack(data).astype(np.float32))
    mtz.update_reso()
    return mtz


def _json_ready(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _json_ready(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_ready(x) for x in v]
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        x = float(v)
        return x if math.isfinite(x) else None
    return v


def options_dict(opts: CrystalOptions) -> dict[str, Any]:
    """``opts`` as plain JSON (tuples as lists)."""
    return _json_ready(asdict(opts))
