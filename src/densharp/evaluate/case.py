"""Evaluate one case (input, target, optional half maps) with several methods; returns a JSON-ready record.

Record layout (``schema`` :data:`CASE_SCHEMA`)::

    {"case": str, "d_input_A": float, "bin": "3.5-5" | None, "mask": str,
     "methods": {name: {"rscc_box", "rscc_mask", "d_fsc05_A", "d_fsc0143_A", "fsc": {...},
                        ["half_fsc": {...}, "d_half_fsc0143_A"], "runtime_s"}
                 | {"skipped": reason}},
     "slices": {...}}   # optional, see :func:`central_slices`

Slices are stored *in* the JSON (downsampled to at most ``max_px`` pixels a side, 4 significant digits) so a
report can be redrawn from the JSON alone, without the maps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from densharp.evaluate.methods import MethodOutput, get_method, run_method
from densharp.evaluate.metrics import score_map, target_mask
from densharp.evaluate.table import bin_of
from densharp.volume import DensityMap

CASE_SCHEMA = "densharp.evaluate.case/1"

#: slice name -> (fixed axis, row axis, column axis), array axes named as in (z, y, x)
SLICE_AXES = {"xy": ("z", "y", "x"), "xz": ("y", "z", "x"), "yz": ("x", "z", "y")}


def central_slices(m: DensityMap, max_px: int = 64) -> dict[str, Any]:
    """Three orthogonal central sections of ``m``, downsampled.

    ``xy`` (at the middle z; rows y, columns x), ``xz`` (middle y; rows z, columns x), ``yz`` (middle x; rows z,
    columns y); row 0 is the lowest index (plot with origin lower).

    Each is downsampled by block means over an integer stride to at most ``max_px`` a side.
    """
    d = m.data_zyx
    nz, ny, nx = d.shape
    secs = {"xy": d[nz // 2, :, :], "xz": d[:, ny // 2, :], "yz": d[:, :, nx // 2]}
    out: dict[str, Any] = {}
    for k, a in secs.items():
        step = max(1, int(np.ceil(max(a.shape) / max_px)))
        if step > 1:  # block means (no aliasing), dropping the incomplete last block
            r, c = (a.shape[0] // step) * step, (a.shape[1] // step) * step
            a = a[:r, :c].reshape(r // step, step, c // step, step).mean(axis=(1, 3))
        out[k] = np.asarray(a, dtype=np.float64).round(5).tolist()
        out[f"{k}_stride"] = step
    return out


def evaluate_case(
    case_id: str,
    inp: DensityMap,
    target: DensityMap,
    d_input_A: float,
    methods: list[str],
    half_maps: tuple[DensityMap, DensityMap] | None = None,
    mask: np.ndarray | None = None,
    mask_desc: str = "given mask",
    given_maps: dict[str, DensityMap] | None = None,
    keep_slices: bool = True,
    slice_px: int = 64,
) -> dict[str, Any]:
    """Run ``methods`` on ``inp`` (and score ``given_maps``, already sharpened), all against ``target``.

    The mask defaults to :func:`densharp.evaluate.metrics.target_mask`. With half maps, every method that needs only
    one map is also applied to half map 1 and its FSC against half map 2 is recorded (the model-free check).
    """
    inp.check_same_grid(target, "the input and the target")
    if mask is None:
        mask, mask_desc = target_mask(target)
    record: dict[str, Any] = {
        "schema": CASE_SCHEMA,
        "case": case_id,
        "d_input_A": round(float(d_input_A), 4),
        "bin": bin_of(d_input_A),
        "mask": mask_desc,
        "voxel_size_xyz_A": list(inp.voxel_size_xyz_A),
        "shape_zyx": list(inp.shape_zyx),
        "methods": {},
    }
    outputs: dict[str, MethodOutput] = {}
    for name, gm in (given_maps or {}).items():
        inp.check_same_grid(gm, f"map {name!r} and the input")
        outputs[name] = MethodOutput(name, gm)
    for name in methods:
        outputs[name] = run_method(name, inp, d_input_A, half_maps=half_maps, target=target)
    for name, out in outputs.items():
        if out.map is None:
            record["methods"][name] = {"skipped": out.skipped}
            continue
        half_proc = None
        if half_maps is not None and name in methods and not get_method(name).needs_half_maps:
            hp = run_method(name, half_maps[0], d_input_A, target=target)
            half_proc = hp.map
        sc = score_map(out.map, target, mask, half_proc, half_maps[1] if half_maps else None)
        rec = sc.to_dict()
        rec["runtime_s"] = round(out.runtime_s, 4)
        rec["has_sd"] = out.sd is not None
        record["methods"][name] = rec
    if keep_slices:
        sl: dict[str, Any] = {"axes": SLICE_AXES, "input": central_slices(inp, slice_px)}
        sl["target"] = central_slices(target, slice_px)
        for name, out in outputs.items():
            if out.map is not None and name != "identity":
                sl[f"output:{name}"] = central_slices(out.map, slice_px)
            if out.sd is not None:
                sl[f"sd:{name}"] = central_slices(out.sd, slice_px)
        record["slices"] = sl
    return record


def check_model_in_box(st: Any, like: DensityMap, name: str = "the model", min_fraction: float = 0.5) -> float:
    """Fraction of the model's atoms inside ``like``'s box; refuse a model mostly outside it.

    Raises
    ------
    InputError
        Fewer than ``min_fraction`` of the atoms lie in the box: the model and the map are in different frames (or
        the map's origin is wrong), and the simulated target would be (nearly) empty.
    """
    from densharp.errors import InputError

    xyz = np.array([cra.atom.pos.tolist() for cra in st[0].all()], dtype=np.float64).reshape(-1, 3)
    if len(xyz) == 0:
        raise InputError(f"{name}: the model has no atoms; check the file")
    lo = np.asarray(like.origin_xyz_A, dtype=np.float64)
    hi = lo + np.asarray(like.box_size_xyz_A, dtype=np.float64)
    frac = float(np.mean(np.all((xyz >= lo) & (xyz < hi), axis=1)))
    if frac < min_fraction:
        c = xyz.mean(axis=0)
        raise InputError(
            f"{name}: only {frac:.0%} of its {len(xyz)} atoms lie inside the map box "
            f"(x {lo[0]:.1f}..{hi[0]:.1f}, y {lo[1]:.1f}..{hi[1]:.1f}, z {lo[2]:.1f}..{hi[2]:.1f} Å; model centre "
            f"{c[0]:.1f}, {c[1]:.1f}, {c[2]:.1f} Å): the model and the maps are in different frames; fit the model "
            "into the map or fix the map origin"
        )
    return frac


def target_from_model(st: Any, like: DensityMap, d_A: float, b_extra_A2: float = 0.0) -> DensityMap:
    """Model density (EM form factors) at ``d_A`` simulated on exactly ``like``'s grid (orthogonal box)."""
    from densharp.simulate.density import simulate_map

    vox = like.voxel_size_xyz_A
    centre = np.asarray(like.origin_xyz_A) + np.array([n // 2 for n in like.shape_xyz]) * np.asarray(vox)
    sim = simulate_map(st, vox, d_A, b_extra_A2, padding_A=10.0, shape_zyx=like.shape_zyx, center_xyz_A=centre)
    if not np.allclose(sim.origin_xyz_A, like.origin_xyz_A, atol=1e-3 * min(vox)):
        raise RuntimeError(f"simulated target origin {sim.origin_xyz_A} differs from the map's {like.origin_xyz_A}")
    return like.with_data(sim.data_zyx)
