"""Score sharpening on real deposited maps and crystallographic data (the cases ``fetch_real.py`` builds).

Simulated test splits only show that a model learned its simulator; these scores show what users get. Each case is
a folder with a ``case.json`` (kind, resolution, file roles, MTZ column labels) and its files; :func:`load_cases`
reads them. Scoring takes *sharpen callables*, so the same code runs the CLI (``benchmarks/bench_real.py``) or an
in-memory model (inside training):

- cryo-EM, ``SharpenEM(map, d_A, d_target_A) -> DensityMap`` (:func:`score_em_case`): the output is compared
  with the fitted model's density simulated on exactly the map's grid (EM form factors, the model's B-factors),
  low-passed at the map's resolution (*restore*) and at a finer one (*super-resolution*,
  :func:`super_resolution_A`), by masked RSCC (mask from the model: atoms dilated 3 Å, 3 Å cosine edge), and by
  the masked map–model FSC against the model's density at the grid's limit; plus the model-free checks of
  :mod:`densharp.metrics.consistency` (FSC output vs input in shells coarser than 2·d) and the per-shell
  amplitude ratio output/input. Cases without a fitted model get the model-free checks only.
- X-ray, ``SharpenMTZ(mtz_path, d_A) -> DensityMap`` (:func:`score_xray_case`): data at 2 Å or better are
  truncated to 3.0 and 3.5 Å (a copy holding only ``FWT``/``PHWT``, written to a temporary folder), sharpened, and
  compared with the map of the *full-resolution* coefficients of the same crystal on exactly the output's grid
  (and with the model's map where there is a model); data between 2 and 3 Å are sharpened as they are and compared
  with the model's map. Consistency with the input is judged over the whole input band (``s < 1/d``).

A callable may return ``(map, info)``; the JSON-ready ``info`` (e.g. which method the CLI picked) is stored with the
scores. A callable that raises is recorded with its error and the other methods still run. Records are JSON-ready
dicts. Torch-free (numpy, scipy, gemmi); files are only read, except the truncated MTZ copies.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gemmi
import numpy as np

from densharp.conditioning import TARGET_MEDIAN_B_A2, TARGET_MIN_B_A2
from densharp.errors import InputError
from densharp.metrics.consistency import (
    CONSISTENCY_MIN_FSC,
    amplitude_ratio,
    consistency_check,
    em_band_A,
    xray_band_A,
)
from densharp.metrics.fsc import FSCCurve, fsc_curve
from densharp.metrics.rscc import rscc
from densharp.volume import DensityMap

log = logging.getLogger(__name__)

#: case.json ``kind`` -> short kind used here
KINDS: dict[str, str] = {"real_em": "em", "real_xtal": "xray"}
#: X-ray data at this resolution (Å) or better are truncated and compared with their own full-resolution map
XRAY_TRUNCATE_MAX_A = 2.0
#: X-ray data up to this resolution (Å) (and coarser than XRAY_TRUNCATE_MAX_A) are scored as they are
XRAY_OWN_DATA_MAX_A = 3.0
#: resolutions (Å) the high-resolution X-ray data are truncated to
TRUNCATION_CUTS_A: tuple[float, ...] = (3.0, 3.5)
#: super-resolution target: finer than the input by this factor ...
SUPER_RESOLUTION_FACTOR = 1.5
#: ... but no finer than this many voxels (a soft low-pass edge reaching 1.1/d then stays below Nyquist)
SUPER_RESOLUTION_MIN_VOXELS = 2.2
#: model mask: atoms dilated by this distance (Å) ...
MASK_DILATE_A = 3.0
#: ... with a raised-cosine edge of this width (Å)
MASK_EDGE_A = 3.0
#: sharp model targets: every B-factor is lowered by (median B - this), so the median becomes this (Å²) ...
#: the sharp-target rule (median B 20 Å², floor 5 Å²) is the training targets' too: densharp.conditioning

#: the name under which the unchanged input is scored
INPUT_NAME = "input"

SharpenEM = Callable[[DensityMap, float, float | None], Any]
SharpenMTZ = Callable[[Path, float], Any]


# ----------------------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class RealCase:
    """One real-data case as described by its ``case.json``.

    Attributes
    ----------
    name
        Folder name (``em_emd0093_hcn4``).
    kind
        ``"em"`` or ``"xray"``.
    resolution_A
        Stated resolution, else the approximate one, else ``None``.
    is_resolution_approx
        True when only an approximate resolution was given.
    flags
        Flags from ``case.json`` (``masked_solvent_zero``, ``no_model`` ...).
    files
        File role (``map``, ``model``, ``mtz`` ...) -> absolute path, for every role with a file.
    labels
        MTZ column labels by role (``f``, ``phi``, ``fobs`` ...); empty when none.
    folder
        The case folder (absolute).
    description
        What the molecule is.
    notes
        Free-text notes from ``case.json``.
    optional
        True for cases only built with ``fetch_real.py --all``.
    """

    name: str
    kind: str
    resolution_A: float | None
    is_resolution_approx: bool
    flags: tuple[str, ...]
    files: Mapping[str, Path]
    labels: Mapping[str, str] = field(default_factory=dict)
    folder: Path = Path()
    description: str = ""
    notes: str = ""
    optional: bool = False

    def path(self, role: str) -> Path | None:
        """Path of the file with ``role`` (``None`` when the case has none)."""
        return self.files.get(role)

    @property
    def has_model(self) -> bool:
        """True when the case has a model fitted to its map or data (role ``model``)."""
        return "model" in self.files

    def summary(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            "name": self.name,
            "kind": self.kind,
            "resolution_A": self.resolution_A,
            "is_resolution_approx": self.is_resolution_approx,
            "flags": list(self.flags),
            "files": {k: str(v) for k, v in self.files.items()},
            "labels": dict(self.labels),
            "description": self.description,
        }


def read_case(folder: str | os.PathLike[str]) -> RealCase:
    """Read ``folder/case.json`` into a :class:`RealCase` (file paths resolved against the folder).

    Raises
    ------
    InputError
        No or unreadable ``case.json``, an unknown kind, or a listed file that does not exist.
    """
    d = Path(folder).resolve()
    p = d / "case.json"
    if not p.is_file():
        raise InputError(f"{d}: no case.json; build the case with fetch_real.py")
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{p}: not a readable JSON file ({exc})") from None
    kind = KINDS.get(str(raw.get("kind")))
    if kind is None:
        raise InputError(f"{p}: unknown kind {raw.get('kind')!r}; expected one of {', '.join(KINDS)}")
    files: dict[str, Path] = {}
    missing: list[str] = []
    for role, name in (raw.get("files") or {}).items():
        if not name:
            continue
        fp = (d / str(name)).resolve()
        if fp.is_file():
            files[str(role)] = fp
        else:
            missing.append(f"{role} ({name})")
    if missing:
        raise InputError(f"{d.name}: file(s) missing: {', '.join(missing)}; re-run fetch_real.py for this case")
    res, approx = raw.get("resolution"), raw.get("resolution_approx")
    resolution = float(res) if res else (float(approx) if approx else None)
    return RealCase(
        name=str(raw.get("name") or d.name),
        kind=kind,
        resolution_A=resolution,
        is_resolution_approx=not res and bool(approx),
        flags=tuple(str(f) for f in raw.get("flags") or ()),
        files=files,
        labels={str(k): str(v) for k, v in (raw.get("labels") or {}).items() if v},
        folder=d,
        description=str(raw.get("molecule") or ""),
        notes=str(raw.get("notes") or ""),
        optional=bool(raw.get("optional")),
    )


def find_cases(
    root: str | os.PathLike[str], kinds: Iterable[str] = ("em", "xray"), names: Sequence[str] | None = None
) -> tuple[list[RealCase], dict[str, str]]:
    """All readable cases under ``root`` of the given kinds, and the reasons others were left out.

    Parameters
    ----------
    root
        Folder holding one sub-folder per case.
    kinds
        ``"em"`` and/or ``"xray"``.
    names
        Keep only cases whose name equals or contains one of these (default: all).

    Returns
    -------
    cases, skipped
        Cases sorted by name; ``{folder or name: reason}`` for folders left out.
    """
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"{base}: real-data folder not found; build it with fetch_real.py OUTDIR --all")
    want = set(kinds)
    bad = want - set(KINDS.values())
    if bad:
        raise InputError(f"unknown case kind(s) {sorted(bad)}; use em and/or xray")
    cases: list[RealCase] = []
    skipped: dict[str, str] = {}
    for d in sorted(p for p in base.iterdir() if p.is_dir()):
        if not (d / "case.json").is_file():
            continue
        if names and not any(n == d.name or n in d.name for n in names):
            continue
        try:
            c = read_case(d)
        except InputError as exc:
            skipped[d.name] = str(exc)
            continue
        if c.kind in want:
            cases.append(c)
    for n in names or ():
        if not any(n == c.name or n in c.name for c in cases) and not any(n in k for k in skipped):
            skipped[n] = f"no case matches {n!r} under {base}"
    return cases, skipped


def load_cases(
    root: str | os.PathLike[str], kinds: Iterable[str] = ("em", "xray"), names: Sequence[str] | None = None
) -> list[RealCase]:
    """Readable cases under ``root`` (see :func:`find_cases`); the ones left out are logged with the reason."""
    cases, skipped = find_cases(root, kinds, names)
    for k, why in skipped.items():
        log.warning("real-data case %s left out: %s", k, why)
    return cases


# ----------------------------------------------------------------------------------------------- targets, masks
def sharpened_bfactors(
    st: gemmi.Structure, median_A2: float = TARGET_MEDIAN_B_A2, min_A2: float = TARGET_MIN_B_A2
) -> tuple[gemmi.Structure, float]:
    """A copy of ``st`` with every B-factor lowered by ``max(0, median(B) - median_A2)`` (floor ``min_A2``).

    The B-factors of a model refined into a cryo-EM map absorb the map's overall blur (a median of 90-130 Å² is
    common), so density made with them matches the *unsharpened* map and rewards leaving it blurred. Lowering
    them all by one amount removes that overall blur and keeps each atom's disorder relative to the rest; the
    median becomes that of a well-ordered crystal structure (the training targets' 15-60 Å²). Models whose median
    is already at or below ``median_A2`` are unchanged.

    Returns
    -------
    structure, shift_A2
        The copy and the B subtracted (Å², ≥ 0).
    """
    out = st.clone()
    b = np.array([cra.atom.b_iso for cra in out[0].all()], dtype=np.float64)
    shift = max(0.0, float(np.median(b)) - float(median_A2)) if b.size else 0.0
    if shift > 0:
        for cra in out[0].all():
            cra.atom.b_iso = float(max(min_A2, cra.atom.b_iso - shift))
    return out, shift


def super_resolution_A(d_A: float, voxel_size_xyz_A: Sequence[float]) -> float:
    """Super-resolution target (Å): ``max(d / 1.5, 2.2 · coarsest voxel)``.

    1.5× finer than the input is as far as a claim of restoring lost detail is credible; 2.2 voxels keeps the
    soft low-pass edge (to ``1.1/d``) below the grid's Nyquist frequency.
    """
    return max(float(d_A) / SUPER_RESOLUTION_FACTOR, SUPER_RESOLUTION_MIN_VOXELS * max(voxel_size_xyz_A))


def em_model_maps(st: gemmi.Structure, like: DensityMap, d_list_A: Sequence[float]) -> list[DensityMap]:
    """The model's density (EM form factors, its B-factors) on exactly ``like``'s grid, one map per resolution.

    The atoms are placed once (:func:`densharp.simulate.density.simulate_raw_padded`, padded so nothing wraps) and
    band-limited at every ``d_list_A`` with the simulator's soft edge, as
    :func:`densharp.evaluate.case.target_from_model` does for one resolution.

    Raises
    ------
    InputError
        A resolution finer than the grid's Nyquist limit.
    """
    from densharp.simulate.density import PreparedModel, finish_map, simulate_raw_padded

    vox = like.voxel_size_xyz_A
    for d in d_list_A:
        if d < like.nyquist_A * (1 - 1e-6):
            raise InputError(f"model map at {d:g} Å is finer than the grid's Nyquist limit {like.nyquist_A:g} Å")
    centre = np.asarray(like.origin_xyz_A) + np.array([n // 2 for n in like.shape_xyz]) * np.asarray(vox)
    padded, pad, blur = simulate_raw_padded(PreparedModel(st), vox, like.shape_zyx, centre, padding_A=10.0)
    out = []
    for d in d_list_A:
        sim = finish_map(padded, pad, like.shape_zyx, float(d), -blur)
        if not np.allclose(sim.origin_xyz_A, like.origin_xyz_A, atol=1e-3 * min(vox)):
            raise RuntimeError(f"model map origin {sim.origin_xyz_A} differs from the map's {like.origin_xyz_A}")
        out.append(like.with_data(sim.data_zyx))
    return out


def model_mask(
    st: gemmi.Structure,
    like: DensityMap,
    dilate_A: float = MASK_DILATE_A,
    soft_edge_A: float = MASK_EDGE_A,
    periodic: bool = False,
) -> np.ndarray:
    """Soft (z, y, x) mask in [0, 1] on ``like``'s grid from the exact distance ``r`` of each voxel to the nearest atom.

    1 for ``r <= dilate_A``, a raised cosine down to 0 at ``r = dilate_A + soft_edge_A``, 0 beyond. Distances are
    Cartesian (voxel centres from the grid's cell, so anisotropic voxels and oblique cells are handled).
    ``periodic=False`` (a cryo-EM box at ``origin_xyz_A``): nothing wraps round; atoms outside the box count only
    near it. ``periodic=True`` (a whole crystallographic cell, origin 0): the model's own copy (no symmetry mates)
    and its lattice translates, however small the cell.
    """
    from scipy.spatial import cKDTree

    xyz = np.array([cra.atom.pos.tolist() for cra in st[0].all()], dtype=np.float64).reshape(-1, 3)
    if xyz.size == 0:
        raise InputError("the model has no atoms; check the model file")
    reach = float(dilate_A) + float(soft_edge_A)
    nx, ny, nz = like.shape_xyz
    out = np.zeros(like.shape_zyx, dtype=np.float32)
    if periodic:
        if any(like.nstart_xyz) or tuple(like.grid_sampling_xyz) != tuple(like.shape_xyz):
            raise InputError("a periodic model mask needs a map of the whole unit cell (grid = cell sampling)")
        cell = gemmi.UnitCell(*like.cell)
        orth = np.array(cell.orth.mat.tolist())
        frac_mat = np.array(cell.frac.mat.tolist())
        width = 1.0 / np.linalg.norm(frac_mat, axis=1)  # distance between lattice planes along each axis, Å
        frac = (xyz @ frac_mat.T) % 1.0
        n_img = [int(np.ceil(reach / w)) + 1 for w in width]
        shifts = np.array(np.meshgrid(*[np.arange(-k, k + 1) for k in n_img], indexing="ij")).reshape(3, -1).T
        img = (frac[:, None, :] + shifts[None, :, :]).reshape(-1, 3)
        margin = reach / width
        img = img[np.all((img > -margin) & (img < 1 + margin), axis=1)]
        atoms = img @ orth.T
        # grid indices (per axis) within reach of some atom, wrapped round the cell
        lo, hi = frac.min(axis=0) - margin, frac.max(axis=0) + margin
        idx = []
        for k, n in enumerate((nx, ny, nz)):
            if hi[k] - lo[k] >= 1.0:
                idx.append(np.arange(n))
            else:
                idx.append(np.unique(np.mod(np.arange(int(np.floor(lo[k] * n)), int(np.ceil(hi[k] * n)) + 1), n)))
        ix, iy, iz = idx

        def positions(kz: int) -> np.ndarray:
            gy, gx = np.meshgrid(iy / ny, ix / nx, indexing="ij")
            f = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, kz / nz)], axis=1)
            return f @ orth.T

    else:
        if not like.is_orthogonal:
            raise InputError("a box model mask needs an orthogonal grid; use periodic=True for a crystal cell")
        vox = np.asarray(like.voxel_size_xyz_A)
        org = np.asarray(like.origin_xyz_A)
        ijk = (xyz - org) / vox
        lo = np.floor(ijk.min(axis=0) - reach / vox).astype(int)
        hi = np.ceil(ijk.max(axis=0) + reach / vox).astype(int)
        n_xyz = np.array([nx, ny, nz])
        lo, hi = np.clip(lo, 0, n_xyz - 1), np.clip(hi, 0, n_xyz - 1)
        near = np.all((ijk > -reach / vox - 1) & (ijk < n_xyz - 1 + reach / vox + 1), axis=1)
        atoms = xyz[near]
        if atoms.size == 0:
            return out
        ix, iy, iz = (np.arange(a, b + 1) for a, b in zip(lo, hi))

        def positions(kz: int) -> np.ndarray:
            gy, gx = np.meshgrid(iy, ix, indexing="ij")
            p = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, kz)], axis=1).astype(np.float64)
            return org + p * vox

    tree = cKDTree(atoms)
    for kz in iz:  # one z-section at a time keeps the point arrays small
        dist, _ = tree.query(positions(int(kz)), k=1, distance_upper_bound=reach)
        t = np.clip((np.minimum(dist, reach) - dilate_A) / max(float(soft_edge_A), 1e-6), 0.0, 1.0)
        vals = (0.5 * (1.0 + np.cos(np.pi * t))).reshape(len(iy), len(ix))
        out[int(kz)][np.ix_(iy, ix)] = vals
    return out


def em_restore_reference(case: RealCase) -> tuple[DensityMap, DensityMap, np.ndarray]:
    """The case's map, its fitted model's sharp density at the map's resolution and the model mask.

    The ``restore`` target and mask of :func:`score_em_case`, for diagnostics that score one map against it.

    Raises
    ------
    InputError
        Not a cryo-EM case with a fitted model and a resolution.
    """
    from densharp.io.maps import read_map
    from densharp.simulate.structure import load_structure

    if case.kind != "em" or not case.has_model or case.resolution_A is None:
        raise InputError(f"{case.name}: needs a cryo-EM case with a fitted model and a resolution")
    inp = read_map(case.path("map"))  # type: ignore[arg-type]
    st, _ = load_structure(case.path("model"))  # type: ignore[arg-type]
    (target,) = em_model_maps(sharpened_bfactors(st)[0], inp, [float(case.resolution_A)])
    return inp, target, model_mask(st, inp)


def em_output_on_case(
    case_dir: str | os.PathLike[str], output_path: str | os.PathLike[str]
) -> tuple[RealCase, DensityMap, DensityMap, np.ndarray, DensityMap]:
    """A real cryo-EM case, its restore reference (:func:`em_restore_reference`) and an output map on its grid.

    Returns ``(case, input map, restore target, model mask, output)`` for the diagnostics that score one
    ``densharp sharpen`` output of the case's map.

    Raises
    ------
    InputError
        Not a cryo-EM case with a fitted model, or the output is not on the case map's grid.
    """
    from densharp.io.maps import read_map

    case = read_case(case_dir)
    inp, target, mask = em_restore_reference(case)
    out = read_map(output_path)
    if not inp.same_grid(out):
        raise InputError(f"{output_path}: not on the case map's grid: " + "; ".join(inp.grid_differences(out)))
    return case, inp, target, mask, out


def coefficients_mtz(
    mtz: gemmi.Mtz, f: str, phi: str, d_min_A: float | None = None, labels: tuple[str, str] = ("FWT", "PHWT")
) -> gemmi.Mtz:
    """A new MTZ with only H, K, L and the map coefficients ``f``/``phi`` (renamed ``labels``), to ``d_min_A``.

    Keeps the cell and space group; drops reflections with a missing (NaN) amplitude or phase and, when
    ``d_min_A`` is given, those with ``d < d_min_A``.
    """
    for lab in (f, phi):
        if mtz.column_with_label(lab) is None:
            have = ", ".join(c.label for c in mtz.columns)
            raise InputError(f"MTZ has no column {lab}; columns are {have}")
    hkl = np.asarray(mtz.make_miller_array(), dtype=np.float64)
    d = np.asarray(mtz.make_d_array(), dtype=np.float64)
    amp = np.asarray(mtz.column_with_label(f).array, dtype=np.float64)
    ph = np.asarray(mtz.column_with_label(phi).array, dtype=np.float64)
    keep = np.isfinite(amp) & np.isfinite(ph)
    if d_min_A is not None:
        keep &= d >= float(d_min_A) * (1 - 1e-9)
    from densharp.io.mtz import coefficients_to_mtz

    return coefficients_to_mtz(hkl[keep], amp[keep], ph[keep], mtz.cell, mtz.spacegroup, labels)


def write_truncated_mtz(
    src: gemmi.Mtz, dst: str | os.PathLike[str], f: str, phi: str, d_min_A: float | None
) -> dict[str, Any]:
    """Write :func:`coefficients_mtz` of ``src`` to ``dst`` (atomically); return what was kept."""
    from densharp.io.mtz import write_mtz

    out = coefficients_mtz(src, f, phi, d_min_A)
    write_mtz(dst, out, overwrite=True)
    return {
        "path": str(dst),
        "columns_from": [f, phi],
        "d_min_A": None if d_min_A is None else float(d_min_A),
        "reflections": int(out.nreflections),
        "reflections_source": int(src.nreflections),
        "d_high_A": round(float(out.resolution_high()), 4) if out.nreflections else None,
    }


def grid_limit_A(like: DensityMap) -> float:
    """Finest resolution (Å) every reflection of which fits on ``like``'s grid: twice its coarsest voxel."""
    return like.nyquist_A


def coefficient_map(
    mtz: gemmi.Mtz, like: DensityMap, d_min_A: float | None = None, f: str = "FWT", phi: str = "PHWT"
) -> DensityMap:
    """The map of ``mtz``'s ``f``/``phi`` (all reflections with ``d >= d_min_A``) on exactly ``like``'s grid.

    ``like`` must cover the whole unit cell (the sharpened MTZ output does). Reflections finer than the grid's
    limit (:func:`grid_limit_A`) or with an index beyond half the grid are dropped first, so nothing aliases; the
    reflections are expanded to P1 (gemmi ``expand_to_p1``), so the grid need not suit the space group, and
    transformed with gemmi ``transform_f_phi_to_map(..., exact_size=...)``.
    """
    if any(like.nstart_xyz) or tuple(like.grid_sampling_xyz) != tuple(like.shape_xyz):
        raise InputError("a coefficient map needs a grid that covers the unit cell (grid = cell sampling, start 0)")
    d_cut = max(float(d_min_A or 0.0), grid_limit_A(like))
    sub = coefficients_mtz(mtz, f, phi, d_cut)
    # in P1 any grid is allowed (gemmi refuses a grid that does not fit the space group's symmetry operators)
    sub.expand_to_p1()
    hkl = np.asarray(sub.make_miller_array(), dtype=np.int64)
    n = np.asarray(like.shape_xyz)
    if len(hkl) and np.any(2 * np.abs(hkl) >= n):
        # an index can pass the d test and still exceed half the grid (round-off, oblique cells); drop it
        keep = np.all(2 * np.abs(hkl) < n, axis=1)
        arr = np.asarray(sub.array)[keep]
        sub.set_data(np.ascontiguousarray(arr, dtype=np.float32))
    grid = sub.transform_f_phi_to_map("FWT", "PHWT", exact_size=[int(v) for v in n])
    data = np.ascontiguousarray(np.array(grid, copy=False).T, dtype=np.float32)
    return like.with_data(data)


def xray_model_coefficients(st: gemmi.Structure, mtz: gemmi.Mtz, d_min_A: float) -> gemmi.Mtz:
    """Model structure factors (X-ray form factors, the model's B-factors, symmetry mates) to ``d_min_A``.

    The model is put in ``mtz``'s cell and space group; returns a P1 :class:`gemmi.Mtz` with ``FWT``/``PHWT``
    (half of reciprocal space, as gemmi's FFT gives it) for :func:`coefficient_map`.
    """
    xst = st.clone()
    xst.cell = mtz.cell
    xst.spacegroup_hm = mtz.spacegroup.xhm() if mtz.spacegroup is not None else "P 1"
    dc = gemmi.DensityCalculatorX()
    dc.d_min = float(d_min_A)
    dc.rate = 1.5
    dc.set_grid_cell_and_spacegroup(xst)
    dc.set_refmac_compatible_blur(xst[0])
    blur = float(dc.blur)
    dc.put_model_density_on_grid(xst[0])
    dc.grid.spacegroup = gemmi.SpaceGroup("P 1")
    asu = gemmi.transform_map_to_f_phi(dc.grid, half_l=True).prepare_asu_data(dmin=float(d_min_A), unblur=blur)
    hkl = np.asarray(asu.miller_array, dtype=np.float32)
    fc = np.asarray(asu.value_array)
    out = gemmi.Mtz(with_base=True)
    out.spacegroup = gemmi.SpaceGroup("P 1")
    out.set_cell_for_all(mtz.cell)
    out.add_dataset("model")
    out.add_column("FWT", "F")
    out.add_column("PHWT", "P")
    out.set_data(np.column_stack([hkl, np.abs(fc), np.degrees(np.angle(fc)) % 360.0]).astype(np.float32))
    out.update_reso()
    return out


# ----------------------------------------------------------------------------------------------- sections
def index_of_position(m: DensityMap, xyz_A: Sequence[float]) -> np.ndarray:
    """Fractional grid index (z, y, x) of the Cartesian point ``xyz_A`` on ``m``'s grid (any cell)."""
    cell = gemmi.UnitCell(*m.cell)
    rel = np.asarray(xyz_A, dtype=np.float64) - np.asarray(m.origin_xyz_A)
    frac = cell.fractionalize(gemmi.Position(*rel.tolist()))
    ijk = np.array([frac.x, frac.y, frac.z]) * np.asarray(m.grid_sampling_xyz)
    return ijk[::-1]


def molecule_sections(
    m: DensityMap, centre_xyz_A: Sequence[float], half_extent_A: float, periodic: bool = False, max_px: int = 80
) -> dict[str, Any]:
    """Three orthogonal grid sections through ``centre_xyz_A``, ``±half_extent_A`` wide, for plotting.

    Same layout as :func:`densharp.evaluate.case.central_slices` (``xy``, ``xz``, ``yz``; row 0 the lowest index;
    block-mean downsampled to at most ``max_px`` a side; 4 significant digits), so
    :func:`densharp.report.plots.save_slices_plot` draws it. ``periodic`` wraps indices round the cell; otherwise
    they are clipped to the box.
    """
    d = m.data_zyx
    c = np.rint(index_of_position(m, centre_xyz_A)).astype(int)
    vz, vy, vx = m.voxel_size_zyx_A

    def span(axis: int, v: float) -> np.ndarray:
        h = int(np.ceil(half_extent_A / v))
        idx = np.arange(c[axis] - h, c[axis] + h + 1)
        n = d.shape[axis]
        return np.mod(idx, n) if periodic else np.unique(np.clip(idx, 0, n - 1))

    iz, iy, ix = span(0, vz), span(1, vy), span(2, vx)
    cz, cy, cx = (int(np.mod(v, n)) if periodic else int(np.clip(v, 0, n - 1)) for v, n in zip(c, d.shape))
    secs = {
        "xy": d[cz][np.ix_(iy, ix)],
        "xz": d[:, cy, :][np.ix_(iz, ix)],
        "yz": d[:, :, cx][np.ix_(iz, iy)],
    }
    out: dict[str, Any] = {}
    for k, a in secs.items():
        step = max(1, int(np.ceil(max(a.shape) / max_px)))
        if step > 1:
            r, cc = (a.shape[0] // step) * step, (a.shape[1] // step) * step
            a = a[:r, :cc].reshape(r // step, step, cc // step, step).mean(axis=(1, 3))
        out[k] = _round_sig(a).tolist()
        out[f"{k}_stride"] = step
    return out


def _round_sig(a: np.ndarray, digits: int = 4) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    scale = float(np.max(np.abs(a))) if a.size else 0.0
    if scale <= 0 or not np.isfinite(scale):
        return a
    decimals = digits - int(np.floor(np.log10(scale))) - 1
    return np.round(a, max(0, decimals))


def _model_centre_extent(xyz: np.ndarray, margin_A: float = 4.0) -> tuple[np.ndarray, float]:
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    return (lo + hi) / 2, float((hi - lo).max() / 2 + margin_A)


# ----------------------------------------------------------------------------------------------- scoring pieces
def _finite(v: float | None, nd: int = 4) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def _call(fn: Callable[..., Any], *args: Any) -> tuple[DensityMap | None, dict[str, Any], str | None, float]:
    """Run a sharpen callable; ``(map, info, error, seconds)``. Any exception is the method's failure, recorded."""
    t0 = time.perf_counter()
    try:
        res = fn(*args)
    except Exception as exc:  # one failing method must not stop a benchmark; the error is recorded
        return None, {}, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0
    info: dict[str, Any] = {}
    if isinstance(res, tuple):
        res, info = res[0], dict(res[1] or {})
    if not isinstance(res, DensityMap):
        return None, info, f"sharpen callable returned {type(res).__name__}, not a DensityMap", time.perf_counter() - t0
    return res, info, None, time.perf_counter() - t0


def amplitude_bands_A(d_A: float, like: DensityMap) -> list[tuple[str, float, float]]:
    """Shell ranges for the amplitude-ratio summary: ``(label, coarse Å, fine Å)`` — >2d, 2d–d, d–Nyquist."""
    d = float(d_A)
    ny = like.nyquist_A
    bands = [(f">{2 * d:.3g}", float("inf"), 2 * d), (f"{2 * d:.3g}-{d:.3g}", 2 * d, d)]
    if d > ny * 1.001:
        bands.append((f"{d:.3g}-{ny:.3g}", d, ny * 0.999))
    return bands


def model_free_scores(output: DensityMap, input_map: DensityMap, d_A: float, d_band_A: float) -> dict[str, Any]:
    """Consistency (FSC output vs input below ``1/d_band_A``) and amplitude ratios; JSON-ready.

    Also the FSC over the whole input band (``s < 1/d``) as ``consistency_to_d`` (information, no verdict). A
    grid the consistency check refuses (non-orthogonal, too small) gives ``{"skipped": reason}`` entries.
    """
    out: dict[str, Any] = {}
    try:
        out["consistency"] = consistency_check(output, input_map, d_band_A).to_dict(with_curve=True)
        if abs(d_band_A - d_A) > 1e-6:
            out["consistency_to_d"] = consistency_check(output, input_map, d_A).to_dict()
    except InputError as exc:
        out["consistency"] = {"skipped": str(exc)}
    if not input_map.is_orthogonal:
        out["amplitude_ratio"] = {"skipped": "shells need an orthogonal grid"}
        return out
    ar = amplitude_ratio(output, input_map)
    out["amplitude_ratio"] = {
        "bands": {lab: _finite(ar.band(c, f)) for lab, c, f in amplitude_bands_A(d_A, input_map)},
        "fraction_beyond_d": {
            "input": round(ar.fraction_beyond(d_A, of_output=False), 5),
            "output": round(ar.fraction_beyond(d_A), 5),
        },
        "curve": ar.to_dict(),
    }
    return out


def fsc_summary(m: DensityMap, ref: DensityMap, mask: np.ndarray | None = None) -> dict[str, Any]:
    """FSC of ``m`` against ``ref`` (optionally masked): resolutions at 0.5 and 0.143, and the curve.

    Leading shells where ``ref`` holds no amplitude (X-ray data without their lowest-resolution reflections) are
    skipped before looking for the crossings, so an empty first shell does not read as "no correlation".
    """
    from densharp.fourier import shell_amplitudes

    curve = fsc_curve(m, ref, mask=mask)
    _, amp = shell_amplitudes(ref if mask is None else ref.with_data(ref.data_zyx * mask))
    top = float(amp[1:].max()) if amp.size > 1 else 0.0
    ok = np.nonzero((np.arange(amp.size) >= 1) & (amp > 1e-4 * top))[0]
    k0 = int(ok[0]) if ok.size else 1
    sub = FSCCurve(curve.s_invA[k0 - 1 :], curve.fsc[k0 - 1 :], curve.n_coeffs[k0 - 1 :])
    return {
        "d_fsc05_A": _finite(sub.resolution_at(0.5)),
        "d_fsc0143_A": _finite(sub.resolution_at(0.143)),
        "masked": mask is not None,
        "first_shell_A": _finite(1.0 / curve.s_invA[k0], 3),
        "curve": curve.to_dict(),
    }


# ----------------------------------------------------------------------------------------------- cryo-EM
def score_em_case(
    case: RealCase,
    methods: Mapping[str, SharpenEM],
    d_target_A: float | None = None,
    keep_slices: bool = True,
) -> dict[str, Any]:
    """Sharpen a real cryo-EM map with every method and score it; the unchanged input is scored as ``"input"``.

    Parameters
    ----------
    case
        An ``"em"`` case with a resolution (stated or approximate). With a fitted model (role ``model``) the
        model-based scores are computed; without one only the model-free checks.
    methods
        Name -> ``fn(map, d_A, d_target_A)`` returning a map on the input's grid (or ``(map, info)``).
    d_target_A
        Passed to every callable (``None``: the method's default).
    keep_slices
        Store sections through the molecule (input, outputs, model maps) for a figure.

    Returns
    -------
    dict
        ``case``, ``d_A``, ``d_super_A``, ``mask``, ``methods: {name: scores | {"error": ...}}``, ``slices``;
        see ``docs/real/README.md`` for the fields.

    Raises
    ------
    InputError
        Not an EM case, or no resolution to sharpen at.
    """
    from densharp.io.maps import read_map
    from densharp.simulate.structure import load_structure

    if case.kind != "em":
        raise InputError(f"{case.name} is a {case.kind} case, not cryo-EM")
    if case.resolution_A is None:
        raise InputError(f"{case.name}: no stated or approximate resolution; cannot sharpen without one")
    path = case.path("map")
    if path is None:
        raise InputError(f"{case.name}: no map file")
    t0 = time.perf_counter()
    inp = read_map(path)
    d = float(case.resolution_A)
    d_super = super_resolution_A(d, inp.voxel_size_xyz_A)
    d_fine = SUPER_RESOLUTION_MIN_VOXELS * max(inp.voxel_size_xyz_A)
    rec: dict[str, Any] = {
        "schema": "densharp.realdata.em/1",
        "case": case.name,
        "kind": "em",
        "description": case.description,
        "flags": list(case.flags),
        "d_A": d,
        "d_is_approx": case.is_resolution_approx,
        "geometry": inp.geometry_dict(),
        "consistency_band_A": em_band_A(d),
        "consistency_threshold": CONSISTENCY_MIN_FSC,
        "has_model": case.has_model,
        "methods": {},
    }
    targets: dict[str, DensityMap] = {}
    mask = None
    centre, half = None, None
    if case.has_model:
        st, clean = load_structure(case.path("model"))  # type: ignore[arg-type]
        xyz = np.array([cra.atom.pos.tolist() for cra in st[0].all()]).reshape(-1, 3)
        sharp_st, b_shift = sharpened_bfactors(st)
        restore, superres, fine = em_model_maps(sharp_st, inp, [d, d_super, d_fine])
        targets = {"restore": restore, "super": superres, "fine": fine}
        targets["restore_fileB"] = em_model_maps(st, inp, [d])[0] if b_shift > 0 else restore
        mask = model_mask(st, inp)
        centre, half = _model_centre_extent(xyz)
        rec.update(
            {
                "d_super_A": round(d_super, 4),
                "d_super_rule": "max(d / 1.5, 2.2 x coarsest voxel)",
                "d_model_fsc_A": round(d_fine, 4),
                "mask": f"model atoms dilated {MASK_DILATE_A:g} Å, {MASK_EDGE_A:g} Å cosine edge",
                "mask_fraction": round(float(mask.mean()), 5),
                "model": _model_record(case, st, clean, b_shift),
                "model_atoms_in_box": _fraction_inside(inp, xyz),
            }
        )
    outputs: dict[str, DensityMap] = {INPUT_NAME: inp}
    rec["methods"][INPUT_NAME] = _score_em_output(inp, inp, d, targets, mask)
    for name, fn in methods.items():
        out, info, err, dt = _call(fn, inp, d, d_target_A)
        if out is not None and not inp.same_grid(out):
            err = "output is not on the input's grid: " + "; ".join(inp.grid_differences(out))
        if err is not None:
            rec["methods"][name] = {"error": err, "runtime_s": round(dt, 2), "info": info}
            continue
        assert out is not None
        r = _score_em_output(out, inp, d, targets, mask)
        r.update(runtime_s=round(dt, 2), info=info)
        rec["methods"][name] = r
        outputs[name] = out
    if keep_slices:
        if centre is None:
            centre = np.asarray(inp.origin_xyz_A) + np.asarray(inp.box_size_xyz_A) / 2
            half = float(max(inp.box_size_xyz_A)) / 2
        sl: dict[str, Any] = {}
        for name, m in {
            **outputs,
            **{f"model {k}": v for k, v in targets.items() if k in ("restore", "super")},
        }.items():
            sl[name] = molecule_sections(m, centre, half)  # type: ignore[arg-type]
        rec["slices"] = sl
    rec["runtime_s"] = round(time.perf_counter() - t0, 2)
    return rec


def _model_record(case: RealCase, st: gemmi.Structure, clean: Mapping[str, Any], b_shift: float) -> dict[str, Any]:
    b = np.array([cra.atom.b_iso for cra in st[0].all()], dtype=np.float64)
    return {
        "file": case.path("model").name,  # type: ignore[union-attr]
        "atoms": int(b.size),
        "bfactors": clean.get("bfactors"),
        "b_percentiles_5_50_95_A2": [round(float(v), 1) for v in np.percentile(b, [5, 50, 95])],
        "target_b_shift_A2": round(b_shift, 2),
        "target_b_rule": f"B - max(0, median B - {TARGET_MEDIAN_B_A2:g}), at least {TARGET_MIN_B_A2:g} Å²",
    }


def _fraction_inside(m: DensityMap, xyz: np.ndarray) -> float:
    ijk = (xyz - np.asarray(m.origin_xyz_A)) / np.asarray(m.voxel_size_xyz_A)
    inside = np.all((ijk >= -0.5) & (ijk <= np.asarray(m.shape_xyz) - 0.5), axis=1)
    return round(float(inside.mean()), 4)


def _score_em_output(
    out: DensityMap, inp: DensityMap, d_A: float, targets: Mapping[str, DensityMap], mask: np.ndarray | None
) -> dict[str, Any]:
    r: dict[str, Any] = {}
    if targets:
        r["rscc_restore"] = round(rscc(out, targets["restore"], mask), 5)
        r["rscc_super"] = round(rscc(out, targets["super"], mask), 5)
        r["rscc_restore_box"] = round(rscc(out, targets["restore"]), 5)
        r["rscc_restore_fileB"] = round(rscc(out, targets["restore_fileB"], mask), 5)
        r["map_model_fsc"] = fsc_summary(out, targets["fine"], mask)
    r.update(model_free_scores(out, inp, d_A, em_band_A(d_A)))
    return r


# ----------------------------------------------------------------------------------------------- X-ray
def xray_mode(case: RealCase) -> tuple[str | None, str]:
    """How an X-ray case is scored: ``("truncate" | "own-data" | None, reason)``."""
    if case.kind != "xray":
        return None, "not an X-ray case"
    if case.path("mtz") is None:
        if case.path("map") is not None:
            return None, "map only (no map coefficients): nothing to truncate, and the MTZ path cannot be used"
        return None, "no map coefficients (phases): only observed data"
    d = case.resolution_A
    if d is None:
        return None, "no resolution stated"
    if d <= XRAY_TRUNCATE_MAX_A + 1e-6:
        return "truncate", f"data at {d:g} Å: truncated to {', '.join(f'{c:g}' for c in TRUNCATION_CUTS_A)} Å"
    if d <= XRAY_OWN_DATA_MAX_A + 1e-6:
        return "own-data", f"data at {d:g} Å: sharpened as they are, scored against the model"
    return None, f"data at {d:g} Å are coarser than {XRAY_OWN_DATA_MAX_A:g} Å"


def _xray_columns(case: RealCase, mtz: gemmi.Mtz) -> tuple[str, str]:
    f, phi = case.labels.get("f"), case.labels.get("phi")
    if f and phi:
        return f, phi
    from densharp.io.mtz import pick_map_columns

    return pick_map_columns(mtz, None, name=case.name)


def score_xray_case(
    case: RealCase,
    methods: Mapping[str, SharpenMTZ],
    cuts_A: Sequence[float] = TRUNCATION_CUTS_A,
    workdir: str | os.PathLike[str] | None = None,
    keep_slices: bool = True,
) -> dict[str, Any]:
    """Sharpen real X-ray map coefficients with every method and score the maps; the input is scored too.

    Parameters
    ----------
    case
        An ``"xray"`` case with an ``mtz`` (see :func:`xray_mode`).
    methods
        Name -> ``fn(mtz_path, d_A)`` returning the sharpened whole-cell map (or ``(map, info)``). The MTZ it gets
        holds only ``FWT``/``PHWT`` (the case's map coefficients, truncated to ``d_A`` in truncate mode).
    cuts_A
        Truncation resolutions (Å) for data at 2 Å or better.
    workdir
        Folder for the MTZ copies (default: a temporary folder, removed afterwards).
    keep_slices
        Store sections through the molecule for a figure (of the first run).

    Returns
    -------
    dict
        ``case``, ``mode``, ``d_data_A``, ``runs: [{"d_A", "mtz", "methods": {name: scores | {"error"}}}]``,
        ``slices``. The unchanged input is the map of the coefficients on the grid ``--method autob`` uses
        (spacing ``d/3``).

    Raises
    ------
    InputError
        A case :func:`xray_mode` cannot score (the reason is the message).
    """
    from densharp.io.mtz import read_mtz
    from densharp.simulate.structure import load_structure

    mode, why = xray_mode(case)
    if mode is None:
        raise InputError(f"{case.name}: {why}")
    t0 = time.perf_counter()
    mtz = read_mtz(case.path("mtz"))  # type: ignore[arg-type]
    f, phi = _xray_columns(case, mtz)
    d_data = float(mtz.resolution_high())
    cell = mtz.cell
    orthogonal = all(abs(a - 90.0) < 0.01 for a in (cell.alpha, cell.beta, cell.gamma))
    rec: dict[str, Any] = {
        "schema": "densharp.realdata.xray/1",
        "case": case.name,
        "kind": "xray",
        "mode": mode,
        "mode_reason": why,
        "description": case.description,
        "flags": list(case.flags),
        "d_data_A": round(d_data, 4),
        "columns": [f, phi],
        "spacegroup": mtz.spacegroup.hm if mtz.spacegroup else "P 1",
        "cell_A_deg": [round(v, 4) for v in (cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma)],
        "is_orthogonal": orthogonal,
        "has_model": case.has_model,
        "consistency_threshold": CONSISTENCY_MIN_FSC,
        "runs": [],
    }
    st = model_f = None
    if case.has_model:
        st, clean = load_structure(case.path("model"))  # type: ignore[arg-type]
        d_model = d_data if mode == "truncate" else d_data / SUPER_RESOLUTION_FACTOR
        sharp_st, b_shift = sharpened_bfactors(st)
        model_f = xray_model_coefficients(sharp_st, mtz, d_model)
        rec["model"] = _model_record(case, st, clean, b_shift)
        rec["mask"] = f"model atoms (one copy, periodic) dilated {MASK_DILATE_A:g} Å, {MASK_EDGE_A:g} Å cosine edge"
    else:
        rec["mask"] = "molecule mask from the full-resolution map (10 Å low-pass, mean + 1 sd, 3 Å dilation, 5 Å edge)"
    cuts = [float(c) for c in cuts_A] if mode == "truncate" else [d_data]
    tmp = tempfile.TemporaryDirectory(prefix="densharp-real-") if workdir is None else None
    wd = Path(tmp.name if tmp is not None else workdir)  # type: ignore[arg-type]
    try:
        for k, cut in enumerate(cuts):
            run = _xray_run(case, mode, mtz, f, phi, cut, d_data, st, model_f, methods, wd, keep_slices and k == 0)
            rec["runs"].append(run)
    finally:
        if tmp is not None:
            tmp.cleanup()
    if rec["runs"] and "slices" in rec["runs"][0]:
        rec["slices"] = rec["runs"][0].pop("slices")
        rec["slices_d_A"] = rec["runs"][0]["d_A"]
    rec["runtime_s"] = round(time.perf_counter() - t0, 2)
    return rec


def _xray_run(
    case: RealCase,
    mode: str,
    mtz: gemmi.Mtz,
    f: str,
    phi: str,
    cut: float,
    d_data: float,
    st: gemmi.Structure | None,
    model_f: gemmi.Mtz | None,
    methods: Mapping[str, SharpenMTZ],
    wd: Path,
    keep_slices: bool,
) -> dict[str, Any]:
    from densharp.filters.masks import auto_molecule_mask
    from densharp.io.mtz import mtz_map

    tag = f"{case.name}_{cut:g}A"
    trunc_path = wd / f"{tag}.mtz"
    info_mtz = write_truncated_mtz(mtz, trunc_path, f, phi, cut if mode == "truncate" else None)
    trunc = coefficients_mtz(mtz, f, phi, cut if mode == "truncate" else None)
    run: dict[str, Any] = {"d_A": cut, "mtz": {k: v for k, v in info_mtz.items() if k != "path"}, "methods": {}}
    refs_cache: dict[tuple[int, int, int], dict[str, Any]] = {}

    def refs(grid: DensityMap) -> dict[str, Any]:
        key = grid.shape_xyz
        if key not in refs_cache:
            lim = grid_limit_A(grid)
            d_fine = max(d_data, lim) if mode == "truncate" else max(cut / SUPER_RESOLUTION_FACTOR, lim)
            r: dict[str, Any] = {"d_fine_A": round(d_fine, 4), "grid_limit_A": round(lim, 4)}
            r["input"] = coefficient_map(trunc, grid)
            if mode == "truncate":
                r["data_full"] = coefficient_map(mtz, grid, d_fine, f, phi)
            if model_f is not None:
                r["model_restore"] = coefficient_map(model_f, grid, cut)
                r["model_super"] = coefficient_map(model_f, grid, d_fine)
            if st is not None:
                r["mask"] = model_mask(st, grid, periodic=True)
            else:
                r["mask"] = auto_molecule_mask(r["data_full"] if "data_full" in r else r["input"])
            refs_cache[key] = r
        return refs_cache[key]

    def score(out: DensityMap) -> dict[str, Any]:
        r = refs(out)
        mask = r["mask"]
        s: dict[str, Any] = {
            "grid_xyz": list(out.shape_xyz),
            "voxel_size_xyz_A": [round(v, 4) for v in out.voxel_size_xyz_A],
            "d_fine_A": r["d_fine_A"],
            "mask_fraction": round(float(mask.mean()), 5),
        }
        if "data_full" in r:
            s["rscc_data_full"] = round(rscc(out, r["data_full"], mask), 5)
            if out.is_orthogonal:
                s["fsc_data_full"] = fsc_summary(out, r["data_full"])
        if "model_restore" in r:
            s["rscc_model_restore"] = round(rscc(out, r["model_restore"], mask), 5)
            s["rscc_model_super"] = round(rscc(out, r["model_super"], mask), 5)
        s.update(model_free_scores(out, r["input"], cut, xray_band_A(cut)))
        return s

    try:
        inp = mtz_map(trunc, "FWT", "PHWT", cut / 3.0)
    except RuntimeError as exc:  # the grid densharp picks may not suit the space group; P1 takes any grid
        run["input_note"] = f"densharp.io.mtz.mtz_map failed ({exc}); input map computed from P1-expanded coefficients"
        p1 = coefficients_mtz(trunc, "FWT", "PHWT")
        p1.expand_to_p1()
        inp = mtz_map(p1, "FWT", "PHWT", cut / 3.0)
    outputs: dict[str, DensityMap] = {INPUT_NAME: inp}
    run["methods"][INPUT_NAME] = score(inp)
    for name, fn in methods.items():
        out, info, err, dt = _call(fn, trunc_path, cut)
        if out is not None and (any(out.nstart_xyz) or tuple(out.grid_sampling_xyz) != tuple(out.shape_xyz)):
            err = f"output does not cover the unit cell (grid {out.shape_xyz}, sampling {out.grid_sampling_xyz})"
        if err is not None:
            run["methods"][name] = {"error": err, "runtime_s": round(dt, 2), "info": info}
            continue
        assert out is not None
        sc = score(out)
        if out.shape_xyz != inp.shape_xyz:
            # the references depend on the grid (a finer grid carries more of the full-resolution data), so the
            # unchanged input is scored again on this output's grid: the fair baseline for its margin
            base = score(refs(out)["input"])
            sc["input_on_this_grid"] = {k: v for k, v in base.items() if k.startswith("rscc")}
        sc.update(runtime_s=round(dt, 2), info=info)
        run["methods"][name] = sc
        outputs[name] = out
    if keep_slices:
        if st is not None:
            xyz = np.array([cra.atom.pos.tolist() for cra in st[0].all()]).reshape(-1, 3)
            centre, half = _model_centre_extent(xyz)
            half = min(half, 24.0)
        else:
            centre = np.array([mtz.cell.a, mtz.cell.b, mtz.cell.c]) / 2
            half = 24.0
        r0 = refs(inp)
        rows = dict(outputs)
        if "data_full" in r0:
            rows[f"data {r0['d_fine_A']:.3g} Å"] = r0["data_full"]
        if "model_super" in r0:
            rows[f"model {r0['d_fine_A']:.3g} Å"] = r0["model_super"]
        run["slices"] = {k: molecule_sections(m, list(centre), half, periodic=True) for k, m in rows.items()}
    return run
