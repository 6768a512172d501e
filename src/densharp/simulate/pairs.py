"""Training pairs: a degraded input (and its two half maps) and a clean target on one grid, from (seed, index).

:func:`make_pair` draws every parameter from ``np.random.default_rng([seed, index])`` so a pair is reproducible from
those two integers alone (DataLoader workers need no shared state). Steps:

1. draw voxel size, rotation, box centre (an atom, or with probability ``solvent_fraction`` a point well outside
   the model), input resolution ``d_input``, target resolution, global B, local-B spread, FSC steepness, cut;
2. simulate the model density once on a padded box (:func:`densharp.simulate.density.simulate_raw_padded`);
3. target = that density band-limited at ``d_target`` (soft edge);
4. signal = the density with global B plus a smoothly varying local B (:func:`~densharp.simulate.degrade.local_bfactor_blend`);
5. half maps = signal + two independent coloured-noise draws that make the half-map FSC cross 0.143 at
   ``d_input`` (:func:`~densharp.simulate.degrade.half_map_noise`); for solvent boxes the noise level is that
   of a box on the molecule, so empty regions get realistic noise;
6. input = average of the half maps, low-passed with a soft edge at ``cut·d_input`` (``cut`` ≤ 1, so the cut never
   hides the FSC crossing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import gemmi
import numpy as np

from densharp.conditioning import ConditioningRule, target_b_shift_A2
from densharp.errors import InputError
from densharp.fourier import frequency_grid_invA, irfft_map, lowpass_filter_values, resolution_shells, rfft_map
from densharp.simulate.degrade import (
    anisotropic_bfactor_filter,
    draw_uniform,
    flatten_spectrum,
    half_map_noise,
    local_bfactor_blend,
    low_resolution_gain,
    radial_grid,
    random_rotation,
    shells_for,
    smooth_random_field,
    solvent_mask_from_density,
)
from densharp.simulate.density import Modality, PreparedModel, _as_prepared, simulate_raw_padded
from densharp.volume import DensityMap


@dataclass(frozen=True)
class PairConfig:
    """Ranges every pair's parameters are drawn from (uniformly unless stated).

    Attributes
    ----------
    d_input_range_A
        Input resolution (Å) where the half-map FSC crosses 0.143.
    d_target_A
        Fixed target resolution (Å); ``None`` uses the conditioning rule's default (:attr:`conditioning`).
    d_target_min_A
        Finest target resolution (Å) when ``d_target_A`` is ``None``.
    b_global_range_A2
        Global B (Å²) added to the input on top of the atoms' own B-factors.
    b_local_range_A2
        Spread (Å²) of the smoothly varying extra B across the box (0 = uniform).
    local_b_length_A
        Correlation length (Å) of the local-B field.
    fsc_steepness_range
        Steepness of the target half-map FSC curve.
    cut_factor_range
        Input low-pass at ``cut·d_input`` (≤ 1: finer than the stated resolution).
    voxel_size_range_A
        Voxel size (Å), isotropic, drawn per pair.
    box_zyx
        Shape of the simulated box (z, y, x); cut smaller patches with :func:`random_patch`.
    padding_A
        Padding (Å) used while simulating (never returned).
    modality
        ``"em"`` or ``"xray"`` form factors.
    rotate
        Random uniform rotation of the model per pair.
    solvent_fraction
        Probability of centring the box well outside the model (solvent-dominated boxes).
    n_local_b_levels
        Number of blurred copies blended for the local B.
    d_target_random_fraction
        Fraction of pairs whose target resolution is drawn uniformly (in 1/d) between the finest target and
        ``d_input`` instead of the default, so the network learns to follow the requested target.

    The remaining fields post-process the **input only** the way real maps are (each applied to a fraction of
    pairs, from a separate random stream so the default pairs are unchanged; every value drawn is recorded in the
    pair's ``meta["post"]``): ``aniso_fraction``/``aniso_b_range_A2`` (extra B along one random direction:
    anisotropic resolution), ``unfiltered_fraction`` (no low-pass: noise to Nyquist, which the noise model puts
    beyond ``d`` anyway), ``noise_floor_range`` (white noise added to Nyquist, its SD as a fraction of the map's),
    ``post_b_fraction``/``post_b_range_A2`` (a B applied to the whole map after reconstruction: negative
    over-sharpens, positive blurs), ``flat_fraction`` (amplitudes flattened from 10 Å to ``d``, as automatic
    sharpening does), ``low_res_fraction``/``low_res_gain_range`` (terms below ~12 Å weakened, as solvent contrast
    does), ``coarse_voxel_fraction``/``coarse_voxel_range_A`` (a hard cut at the Nyquist of a coarser original
    grid), ``mask_fraction``/``mask_dilate_range_A``/``mask_soft_fraction`` (solvent masked flat to 0 outside a
    dilated molecule mask, soft or hard).

    ``fsc_weight_fraction`` weights the averaged map by ``C_ref = sqrt(2·FSC/(1+FSC))`` of its half-map FSC before the
    other post-processing (what RELION's post-processing does before sharpening, so deposited sharpened maps carry
    little noise near ``d``). With ``fsc_weight_last`` the weighting is applied after the flattening or B instead:
    a flattened map then keeps the ``C_ref`` fall-off near ``d`` (a post-processed map's end result is
    ``C_ref`` times a sharpened map whichever order the program used; flattening first would erase the weighting).

    ``match_target_fraction``/``match_target_range`` sharpen the input by a fraction ``u`` (drawn from the range) of
    its whole B relative to the target (global B + half the local spread + the sharp target's shift): a map that a
    user already post-processed to about the right B, on which the network should change little below ``d``.

    ``sharp_target`` lowers every atom's B in the target by :func:`densharp.conditioning.target_b_shift_A2` (a
    median of 20 Å²): the output is then the density of a well-ordered model, not of the deposited B-factors.

    ``unmodelled_fraction``/``unmodelled_level_range`` add density no atomic model explains — smooth patches in a
    belt 2-14 Å from the molecule, like a detergent micelle, lipid nanodisc or disordered domain, at a level
    relative to the molecule's mean density — to the truth itself, so it is in the input *and* the target: the
    network learns to keep what it cannot explain instead of erasing it.
    """

    d_input_range_A: tuple[float, float] = (2.5, 8.0)
    d_target_A: float | None = None
    d_target_min_A: float = 2.0
    b_global_range_A2: tuple[float, float] = (0.0, 100.0)
    b_local_range_A2: tuple[float, float] = (0.0, 80.0)
    local_b_length_A: float = 20.0
    fsc_steepness_range: tuple[float, float] = (5.0, 12.0)
    cut_factor_range: tuple[float, float] = (0.85, 1.0)
    voxel_size_range_A: tuple[float, float] = (0.9, 1.2)
    box_zyx: tuple[int, int, int] = (64, 64, 64)
    padding_A: float = 8.0
    modality: str = "em"
    rotate: bool = True
    solvent_fraction: float = 0.05
    n_local_b_levels: int = 3
    d_target_random_fraction: float = 0.0
    aniso_fraction: float = 0.0
    aniso_b_range_A2: tuple[float, float] = (20.0, 150.0)
    unfiltered_fraction: float = 0.0
    noise_floor_range: tuple[float, float] = (0.0, 0.0)
    post_b_fraction: float = 0.0
    post_b_range_A2: tuple[float, float] = (-50.0, 250.0)
    flat_fraction: float = 0.0
    low_res_fraction: float = 0.0
    low_res_gain_range: tuple[float, float] = (0.3, 1.0)
    coarse_voxel_fraction: float = 0.0
    coarse_voxel_range_A: tuple[float, float] = (1.2, 1.6)
    mask_fraction: float = 0.0
    mask_dilate_range_A: tuple[float, float] = (1.0, 6.0)
    mask_soft_fraction: float = 0.5
    unmodelled_fraction: float = 0.0
    unmodelled_level_range: tuple[float, float] = (0.2, 0.8)
    fsc_weight_fraction: float = 0.0
    fsc_weight_last: bool = False
    match_target_fraction: float = 0.0
    match_target_range: tuple[float, float] = (0.7, 1.1)
    sharp_target: bool = False

    def __post_init__(self) -> None:
        lo, hi = self.d_input_range_A
        if not 0 < lo <= hi:
            raise InputError(f"d_input_range_A must be 0 < lo <= hi, got {self.d_input_range_A}")
        if min(self.box_zyx) < 8:
            raise InputError(f"box_zyx must be at least 8 voxels per axis, got {self.box_zyx}")
        Modality.parse(self.modality)
        if self.voxel_size_range_A[0] <= 0:
            raise InputError(f"voxel sizes must be positive, got {self.voxel_size_range_A}")

    @property
    def conditioning(self) -> ConditioningRule:
        """The grid and target rule of models trained on these pairs (recorded with their weights)."""
        return ConditioningRule.from_pair_config(asdict(self))


@dataclass(frozen=True)
class SimPair:
    """A simulated (input, target) pair with half maps, all on one grid.

    Attributes
    ----------
    input, target, half1, half2
        Maps on the same grid; ``input`` is the low-passed average of the half maps.
    d_input_A, d_target_A
        Stated input resolution (half-map FSC 0.143) and target resolution, Å.
    meta
        Every drawn parameter (JSON-ready).
    """

    input: DensityMap
    target: DensityMap
    half1: DensityMap
    half2: DensityMap
    d_input_A: float
    d_target_A: float
    meta: dict[str, Any] = field(default_factory=dict)


def make_pair(
    structure: gemmi.Structure | PreparedModel,
    cfg: PairConfig,
    seed: int,
    index: int,
) -> SimPair:
    """Simulate pair number ``index`` of the stream ``seed`` for ``structure`` (see module docstring).

    Pass a :class:`~densharp.simulate.density.PreparedModel` when making many pairs of one structure (it avoids
    copying the model for every pair).
    """
    pm = _as_prepared(structure)
    rng = np.random.default_rng([int(seed), int(index)])
    v = draw_uniform(rng, cfg.voxel_size_range_A)
    vox = (v, v, v)
    d_in = draw_uniform(rng, cfg.d_input_range_A)
    d_in = max(d_in, cfg.conditioning.target_voxel_factor * v)
    d_t = float(cfg.d_target_A) if cfg.d_target_A is not None else cfg.conditioning.default_target_A(d_in, v)
    rot = random_rotation(rng) if cfg.rotate else None
    atom_i = int(rng.integers(pm.n_atoms))
    center = pm.xyz_A[atom_i].copy()
    is_solvent = bool(rng.random() < cfg.solvent_fraction)
    if is_solvent:
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        half_box = 0.5 * np.asarray(cfg.box_zyx[::-1]) * v
        center = center + direction * float(np.linalg.norm(half_box)) * 1.2
    b_glob = draw_uniform(rng, cfg.b_global_range_A2)
    b_spread = draw_uniform(rng, cfg.b_local_range_A2)
    steep = draw_uniform(rng, cfg.fsc_steepness_range)
    cut = draw_uniform(rng, cfg.cut_factor_range)
    # real-map post-processing draws come from their own stream: the default pairs stay what they were
    aug = np.random.default_rng([int(seed), int(index), 0xA06])
    d_target_random = cfg.d_target_A is None and bool(aug.random() < cfg.d_target_random_fraction)
    if d_target_random:
        finest = cfg.conditioning.finest_target_A(v)
        d_t = 1.0 / draw_uniform(aug, (1.0 / max(d_in, finest), 1.0 / finest))

    padded, pad, blur = simulate_raw_padded(pm, vox, cfg.box_zyx, center, rot, cfg.padding_A, cfg.modality, cutoff=1e-3)
    shape = (int(cfg.box_zyx[0]), int(cfg.box_zyx[1]), int(cfg.box_zyx[2]))
    sl = tuple(slice(p, p + n) for p, n in zip(pad, shape))
    rg_pad = radial_grid(padded.shape_zyx)
    f_pad = rfft_map(padded.data_zyx)
    post: dict[str, Any] = {}
    if aug.random() < cfg.unmodelled_fraction:
        level = draw_uniform(aug, cfg.unmodelled_level_range)
        f_pad = f_pad + rfft_map(unmodelled_density(padded.data_zyx, vox, level, aug))
        post["unmodelled_level"] = level
    # remove the sampling blur; band-limit at the target (target) or at 2.2 voxels (signal, avoids unblur blow-up);
    # a sharp target (atoms' B lowered to a median of 20 Å², the same rule the real-map scoring uses) when asked
    b_shift = target_b_shift_A2(pm.b_A2) if cfg.sharp_target else 0.0
    target = irfft_map(
        f_pad * rg_pad.filter(lambda s: np.exp((blur + b_shift) * s * s / 4) * lowpass_filter_values(s, d_t), v),
        padded.shape_zyx,
    )[sl]
    f_pad *= rg_pad.filter(lambda s: np.exp(blur * s * s / 4) * lowpass_filter_values(s, 2.2 * v), v)
    levels = b_glob + np.linspace(0.0, b_spread, max(1, cfg.n_local_b_levels))
    if b_spread <= 0 or cfg.n_local_b_levels <= 1:
        levels = levels[:1]
    bfilters = [rg_pad.filter(lambda s, b=b: np.exp(-b * s * s / 4), v) for b in levels]
    field_w = smooth_random_field(rng, shape, vox, cfg.local_b_length_A) if len(levels) > 1 else np.zeros(shape)
    signal = local_bfactor_blend(f_pad, bfilters, padded.shape_zyx, field_w.astype(np.float32), crop=sl)
    signal = np.ascontiguousarray(signal)
    f_s = rfft_map(signal)
    if aug.random() < cfg.aniso_fraction:
        b_an = draw_uniform(aug, cfg.aniso_b_range_A2)
        u = aug.standard_normal(3)
        u /= np.linalg.norm(u)
        f_s = f_s * anisotropic_bfactor_filter(shape, vox, b_an, u)
        post["aniso_b_A2"], post["aniso_direction_xyz"] = b_an, [float(c) for c in u]
    f_ref = None
    if is_solvent:
        # noise level of the molecule, not of the empty box: spectrum of a box on the centre atom (global B only)
        ref, ref_pad, ref_blur = simulate_raw_padded(pm, vox, shape, pm.xyz_A[atom_i], rot, 0.0, cfg.modality)
        rsl = tuple(slice(p, p + n) for p, n in zip(ref_pad, shape))
        f_ref = rfft_map(np.ascontiguousarray(ref.data_zyx[rsl]))
        f_ref *= radial_grid(shape).filter(
            lambda s: np.exp((ref_blur - b_glob) * s * s / 4) * lowpass_filter_values(s, 2.2 * v), v
        )
    n1, n2, fsc_half = half_map_noise(f_s, shape, vox, d_in, rng, steepness=steep, f_reference=f_ref)
    h1 = irfft_map(f_s + n1, shape)
    h2 = irfft_map(f_s + n2, shape)
    f_in = f_s + 0.5 * (n1 + n2)
    if aug.random() < cfg.unfiltered_fraction:
        post["unfiltered"] = True
    else:
        f_in = f_in * radial_grid(shape).filter(lambda s: lowpass_filter_values(s, cut * d_in), v)
    c_ref_grid = None
    if aug.random() < cfg.fsc_weight_fraction:  # post-processing as RELION does: C_ref of the half-map FSC
        shells = resolution_shells(shape, vox, max_invA=float(np.max(frequency_grid_invA(shape, vox))))
        c_ref = np.sqrt(2 * fsc_half / (1 + fsc_half))
        c_ref_grid = np.append(c_ref, c_ref[-1]).astype(np.float32)[shells.index]
        post["fsc_weighted"] = True
        if cfg.fsc_weight_last:
            post["fsc_weighted_last"] = True
        else:
            f_in = f_in * c_ref_grid
            c_ref_grid = None
    inp, post = _post_process(
        f_in, target, shape, v, d_in, cfg, aug, post, c_ref_grid, b_excess_A2=b_glob + 0.5 * b_spread + b_shift
    )

    origin = tuple(np.asarray(padded.origin_xyz_A) + np.asarray(pad[::-1]) * v)
    geo = DensityMap(np.zeros((1, 1, 1), np.float32), vox, origin)

    def mk(a: np.ndarray) -> DensityMap:
        return replace(geo, data_zyx=np.ascontiguousarray(a, dtype=np.float32))

    meta: dict[str, Any] = {
        "seed": int(seed),
        "index": int(index),
        "voxel_size_A": v,
        "d_input_A": d_in,
        "d_target_A": d_t,
        "rotation": None if rot is None else rot.round(8).tolist(),
        "center_xyz_A": [float(x) for x in center],
        "center_atom_index": atom_i,
        "is_solvent_box": is_solvent,
        "b_global_A2": b_glob,
        "b_local_spread_A2": b_spread,
        "local_b_length_A": cfg.local_b_length_A,
        "fsc_steepness": steep,
        "input_cut_factor": cut,
        "input_lowpass_A": None if post.get("unfiltered") else cut * d_in,
        "d_target_random": d_target_random,
        "target_b_shift_A2": b_shift,
        "post": post,
        "modality": str(Modality.parse(cfg.modality).value),
        "internal_blur_A2": blur,
        "box_zyx": list(shape),
        "origin_xyz_A": [float(x) for x in origin],
    }
    return SimPair(mk(inp), mk(target), mk(h1), mk(h2), d_in, d_t, meta)


def unmodelled_density(
    raw_zyx: np.ndarray, vox: tuple[float, float, float], level: float, rng: np.random.Generator
) -> np.ndarray:
    """Smooth density no atom explains, in a belt 2-14 Å from the molecule (see :class:`PairConfig`).

    Patches of a smooth random field (correlation length 10 Å) inside the belt, at ``level`` times the molecule's
    mean density, low-passed at 8 Å (so the pair's removal of the sampling blur leaves it alone).
    """
    from scipy import ndimage

    from densharp.fourier import lowpass

    inside = raw_zyx > 0.1 * float(raw_zyx.max())
    if not inside.any():
        return np.zeros_like(raw_zyx)
    dist = ndimage.distance_transform_edt(~inside, sampling=tuple(vox[::-1]))
    belt = (dist > 2.0) & (dist < 14.0)
    field = smooth_random_field(rng, raw_zyx.shape, vox, 10.0)  # type: ignore[arg-type]
    patches = belt & (field > 0.5)
    m = DensityMap(patches.astype(np.float32), vox)
    smooth = lowpass(m, 8.0).data_zyx
    mol_mean = float(raw_zyx[inside].mean())
    out = np.clip(smooth, 0.0, None) * (level * mol_mean / max(float(smooth.max()), 1e-12))
    return out.astype(np.float32)


def _post_process(
    f_in: np.ndarray,
    target: np.ndarray,
    shape: tuple[int, int, int],
    v: float,
    d_in: float,
    cfg: PairConfig,
    aug: np.random.Generator,
    post: dict[str, Any],
    weight_last: np.ndarray | None = None,
    b_excess_A2: float = 0.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Real-map post-processing of the input spectrum (see :class:`PairConfig`); returns the map and the record.

    ``weight_last`` (a filter on the rfft grid) multiplies the spectrum after the flattening / B, before the mask;
    ``b_excess_A2`` is the input's B relative to the target (for ``match_target_fraction``).
    """
    vox = (v, v, v)
    s_grid = radial_grid(shape)
    if cfg.noise_floor_range[1] > 0:
        frac = draw_uniform(aug, cfg.noise_floor_range)
        sd = float(np.sqrt(np.sum(np.abs(f_in) ** 2) * 2 / np.prod(shape) ** 2))
        white = rfft_map(aug.standard_normal(shape).astype(np.float32))
        f_in = f_in + white * np.float32(frac * sd)
        post["noise_floor_fraction"] = frac
    if aug.random() < cfg.flat_fraction:
        f_in = f_in * flatten_spectrum(f_in, shells_for(shape, vox), d_in)
        post["flattened_to_A"] = d_in
    elif cfg.match_target_fraction > 0 and aug.random() < cfg.match_target_fraction:
        u = draw_uniform(aug, cfg.match_target_range)
        b = -u * float(b_excess_A2)
        f_in = f_in * s_grid.filter(lambda s: np.exp(-b * s * s / 4), v)
        post["post_b_A2"], post["matched_target_fraction"] = b, u
    elif aug.random() < cfg.post_b_fraction:
        b = draw_uniform(aug, cfg.post_b_range_A2)
        f_in = f_in * s_grid.filter(lambda s: np.exp(-b * s * s / 4), v)
        post["post_b_A2"] = b
    if aug.random() < cfg.low_res_fraction:
        g = draw_uniform(aug, cfg.low_res_gain_range)
        f_in = f_in * s_grid.filter(lambda s: low_resolution_gain(s, g), v)
        post["low_res_gain"] = g
    if aug.random() < cfg.coarse_voxel_fraction:
        vc = draw_uniform(aug, cfg.coarse_voxel_range_A)
        if vc > v:
            f_in = f_in * s_grid.filter(lambda s: (s <= 0.5 / vc).astype(np.float32), v)
            post["coarse_voxel_A"] = vc
    if weight_last is not None:
        f_in = f_in * weight_last
    inp = irfft_map(f_in, shape)
    if aug.random() < cfg.mask_fraction:
        dil = draw_uniform(aug, cfg.mask_dilate_range_A)
        soft = 3.0 if aug.random() < cfg.mask_soft_fraction else 0.0
        inp = inp * solvent_mask_from_density(target, vox, dil, soft)
        post["mask_dilate_A"], post["mask_soft_edge_A"] = dil, soft
    return inp, post


def random_patch(
    pair: SimPair,
    patch_zyx: tuple[int, int, int],
    rng: np.random.Generator,
    solvent_fraction: float = 0.1,
    density_quantile: float = 0.9,
) -> SimPair:
    """Cut the same random sub-box out of every map of ``pair``.

    With probability ``solvent_fraction`` the patch is the one (of 8 uniform candidates) with the least target
    density (solvent); otherwise it is centred on a random voxel whose target density is above the
    ``density_quantile`` quantile (so most patches contain molecule).
    """
    shape = pair.target.shape_zyx
    p = (int(patch_zyx[0]), int(patch_zyx[1]), int(patch_zyx[2]))
    if any(a > b for a, b in zip(p, shape)):
        raise InputError(f"patch {p} is larger than the pair's box {shape} (z,y,x); use a smaller patch")
    hi = np.array(shape) - np.array(p)
    t = pair.target.data_zyx
    if rng.random() < solvent_fraction:
        cands = [
            (int(rng.integers(hi[0] + 1)), int(rng.integers(hi[1] + 1)), int(rng.integers(hi[2] + 1))) for _ in range(8)
        ]
        scores = [float(np.abs(t[c[0] : c[0] + p[0], c[1] : c[1] + p[1], c[2] : c[2] + p[2]]).mean()) for c in cands]
        start = cands[int(np.argmin(scores))]
        kind = "solvent"
    else:
        thr = float(np.quantile(t[::2, ::2, ::2], density_quantile))
        idx = np.argwhere(t > thr)
        c = np.array(shape) // 2 if len(idx) == 0 else idx[int(rng.integers(len(idx)))]
        z0, y0, x0 = (int(np.clip(ci - pi // 2, 0, h)) for ci, pi, h in zip(c, p, hi))
        start = (z0, y0, x0)
        kind = "density"
    meta = dict(pair.meta, patch_start_zyx=list(start), patch_zyx=list(p), patch_kind=kind)
    return SimPair(
        pair.input.crop(start, p),
        pair.target.crop(start, p),
        pair.half1.crop(start, p),
        pair.half2.crop(start, p),
        pair.d_input_A,
        pair.d_target_A,
        meta,
    )
