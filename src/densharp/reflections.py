"""Map coefficients that respect the measured data: the input's reflections kept, the model's only beyond them.

A crystallographic map comes from measured amplitudes (and phases). Inside the observed resolution those
reflections are data, so a sharpened map must not rewrite them; beyond it the learned model extrapolates. Given the
input coefficients and the model's map of the whole cell, :func:`extend_coefficients`

1. symmetrises the model's map in the space group (the average over symmetry mates; the model sees a P1 cell and
   need not be exactly symmetric),
2. takes its coefficients in the asymmetric unit,
3. keeps every measured reflection of the input as it is (amplitude and phase) and adds the model's reflections
   with ``d_target <= d < d_input`` only, each scaled by the extrapolation gain ``g(u)`` of its relative
   resolution ``u = d_input / d`` (the least-squares gain of the model's extrapolation against the truth, measured
   on held-out simulations and recorded with the model; :data:`DEFAULT_GAIN` when the model has none),

so the map of the result equals the input's map in every shell the input measured (FSC 1) and is exactly
symmetric. Pure functions on ``gemmi.Mtz`` and :class:`~densharp.volume.DensityMap`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gemmi
import numpy as np

from densharp.errors import InputError
from densharp.volume import DensityMap

#: extrapolation gain ``(u, g)`` table used when a model records none: half weight, fading to a quarter at d/2
DEFAULT_GAIN: tuple[tuple[float, float], ...] = ((1.0, 0.5), (2.0, 0.25))


def gain_at(u: np.ndarray, table: Sequence[Sequence[float]]) -> np.ndarray:
    """The extrapolation gain at relative resolutions ``u = d_input / d`` (linear in ``u``, held at the ends)."""
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2 or t.shape[1] != 2 or len(t) < 1:
        raise InputError(f"extrapolation gain table must be rows of (u, g), got {table!r}")
    return np.interp(np.asarray(u, dtype=np.float64), t[:, 0], np.clip(t[:, 1], 0.0, 2.0))


def map_grid(m: DensityMap, spacegroup: gemmi.SpaceGroup | None) -> gemmi.FloatGrid:
    """``m`` (a whole unit cell, fractional grid) as a gemmi grid with its cell and ``spacegroup``."""
    if tuple(m.grid_sampling_xyz) != tuple(m.shape_xyz) or any(m.nstart_xyz):
        raise InputError("map coefficients need a map of the whole unit cell (grid = cell sampling, start 0)")
    grid = gemmi.FloatGrid(np.ascontiguousarray(m.data_zyx.T), gemmi.UnitCell(*m.cell), gemmi.SpaceGroup("P 1"))
    if spacegroup is not None and spacegroup.number != 1:
        grid.spacegroup = spacegroup
    return grid


def _columns(mtz: gemmi.Mtz, f: str, phi: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hkl = np.asarray(mtz.make_miller_array(), dtype=np.int64)
    amp = np.asarray(mtz.column_with_label(f).array, dtype=np.float64)
    ph = np.asarray(mtz.column_with_label(phi).array, dtype=np.float64)
    ok = np.isfinite(amp) & np.isfinite(ph)
    return hkl[ok], amp[ok], ph[ok]


def extend_coefficients(
    measured: gemmi.Mtz,
    columns: tuple[str, str],
    predicted: DensityMap,
    d_input_A: float,
    d_target_A: float,
    gain_table: Sequence[Sequence[float]] = DEFAULT_GAIN,
) -> tuple[gemmi.Mtz, dict[str, Any]]:
    """Measured coefficients plus the model's beyond ``d_input_A`` (see the module docstring).

    Returns the combined coefficients (``FWT``/``PHWT``, the input's cell and space group, asymmetric unit) and a
    JSON-ready record: reflections kept and added, the gain table, the symmetry residual of the model's map.
    """
    from densharp.io.mtz import coefficients_to_mtz

    if not d_target_A < d_input_A:
        raise InputError(
            f"target {d_target_A:g} Å is not finer than the data's {d_input_A:g} Å: nothing to extrapolate"
        )
    sg = measured.spacegroup or gemmi.SpaceGroup("P 1")
    # the input's reflections moved to gemmi's asymmetric unit (phases follow), so they match the model's
    canon = coefficients_to_mtz(*_columns(measured, *columns), measured.cell, sg)
    canon.ensure_asu()
    hkl_m, amp_m, ph_m = _columns(canon, "FWT", "PHWT")
    grid = map_grid(predicted, sg)
    before = np.array(grid, copy=True)
    if sg.number != 1:
        grid.symmetrize_avg()
    after = np.array(grid, copy=False)
    asym = float(np.sqrt(np.mean((before - after) ** 2)) / max(float(np.std(after)), 1e-30))
    grid.spacegroup = sg
    asu = gemmi.transform_map_to_f_phi(grid, half_l=True).prepare_asu_data(dmin=float(d_target_A) * (1 - 1e-6))
    hkl_p = np.asarray(asu.miller_array, dtype=np.int64)
    f_p = np.asarray(asu.value_array)
    d_p = measured.cell.calculate_d_array(hkl_p.astype(np.int32))
    beyond = (d_p < d_input_A) & (d_p >= d_target_A * (1 - 1e-9))
    # a measured reflection is never replaced, even one finer than d_input (anisotropic or uneven data)
    key = {tuple(h) for h in hkl_m.tolist()}
    new = beyond & np.array([tuple(h) not in key for h in hkl_p.tolist()], dtype=bool)
    g = gain_at(d_input_A / d_p[new], gain_table)
    hkl = np.concatenate([hkl_m, hkl_p[new]])
    amp = np.concatenate([amp_m, g * np.abs(f_p[new])])
    ph = np.concatenate([ph_m, np.degrees(np.angle(f_p[new]))])
    out = coefficients_to_mtz(hkl, amp, ph, measured.cell, sg)
    info = {
        "measured_kept": len(hkl_m),
        "extrapolated_added": int(new.sum()),
        "d_input_A": round(float(d_input_A), 4),
        "d_target_A": round(float(d_target_A), 4),
        "gain_table_u_g": [list(map(float, r)) for r in gain_table],
        "spacegroup": sg.hm,
        "model_map_symmetry_residual": round(asym, 5),
        "rule": "measured reflections unchanged; model reflections only with d_target <= d < d_input, times g(u)",
    }
    return out, info


def coefficients_map(mtz: gemmi.Mtz, like: DensityMap, columns: tuple[str, str] = ("FWT", "PHWT")) -> DensityMap:
    """The map of ``mtz``'s coefficients (symmetry applied) on exactly ``like``'s whole-cell grid."""
    nx, ny, nz = like.shape_xyz
    grid = mtz.transform_f_phi_to_map(columns[0], columns[1], exact_size=[nx, ny, nz])
    return like.with_data(np.ascontiguousarray(np.array(grid, copy=False).T, dtype=np.float32))
