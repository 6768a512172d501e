"""Crystallographic (X-ray) training pairs: 2mFo-DFc-like unit-cell maps against the true cell density.

:class:`CrystalPairs` is the X-ray counterpart of :class:`~densharp.simulate.corpus_pairs.CorpusPairs` (same
structure choice, same dict keys). Pair ``index`` is cut from crystal :meth:`CrystalConfig.crystal_index`
(``patches_per_crystal`` pairs share one crystal; consecutive indices cycle over ``crystals_in_flight`` crystals),
which draws ``d_input`` in :attr:`CrystalConfig.d_input_range_A`, the grid spacing of the conditioning rule (the
grid ``densharp sharpen`` puts MTZ input on) and simulates the crystal with
:func:`densharp.simulate.crystal.simulate_crystal` (real or packed cell with symmetry mates and bulk solvent,
measured amplitudes with noise, anisotropy and incompleteness, 2mFo-DFc from a model with errors or an
experimental-phasing map); the target is the true total density on the same cell grid, band-limited at the
rule's default target. Crystals are simulated once per process and kept in an LRU cache, so every pair is a
function of ``(seed, index)`` alone, cached or not. The patch is cut with periodic wrap (the cell is periodic),
centred on the molecule or, with probability ``solvent_fraction``, anywhere in the cell (its own draw per index);
``norm_box`` holds the statistics of the whole cell map (what a per-map model normalises with at inference).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from densharp.conditioning import ConditioningRule, prefilter_input
from densharp.errors import InputError
from densharp.modality import Modality
from densharp.normalisation import NormKind, map_norm_stats
from densharp.simulate.corpus_pairs import CorpusPairs
from densharp.simulate.crystal import CrystalOptions


@dataclass(frozen=True)
class CrystalConfig(CrystalOptions):
    """Ranges of the X-ray pair simulation (the ``"pair"`` object of a train config in X-ray mode).

    Every field of :class:`~densharp.simulate.crystal.CrystalOptions` (bulk solvent, data, model errors, kinds of
    map; documented there), with training defaults: packed crystals for models without a usable cell
    (``pack_probability`` 0.7), CRYST1 cells only with 20-90 Å³ per atom and grids up to 3·10⁶ voxels, and
    20 % experimental-phasing maps; plus:

    Parameters
    ----------
    d_input_range_A
        Range of the map-coefficient resolution limit (Å).
    voxel_A
        Largest grid spacing (Å); the spacing is ``min(voxel_A, d_input/2.5)`` (:attr:`conditioning`).
    d_target_min_A
        Finest target resolution (Å).
    b_extra_range_A2
        Range of the extra B (Å²) of the data (the target keeps the atoms' own B).
    solvent_fraction
        Probability of a patch centred anywhere in the cell instead of on the molecule.
    patches_per_crystal
        Patches cut from one simulated crystal (pairs ``k`` of a group share it; see :class:`CrystalPairs`).
    crystals_in_flight
        Consecutive pair indices cycle over this many crystals (batch diversity; DataLoader workers whose number
        divides it never simulate the same crystal twice).
    """

    d_input_range_A: tuple[float, float] = (1.5, 4.0)
    voxel_A: float = 1.0
    d_target_min_A: float = 1.5
    b_extra_range_A2: tuple[float, float] = (0.0, 0.0)
    solvent_fraction: float = 0.05
    patches_per_crystal: int = 8
    crystals_in_flight: int = 8
    pack_probability: float = 0.7
    cell_volume_per_atom_range_A3: tuple[float, float] | None = (20.0, 90.0)
    max_cell_voxels: int | None = 3_000_000
    experimental_fraction: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        lo, hi = self.d_input_range_A
        if not 0 < lo <= hi:
            raise InputError(f"d_input_range_A must be 0 < lo <= hi, got {self.d_input_range_A}")
        if self.voxel_A <= 0:
            raise InputError(f"voxel_A must be positive, got {self.voxel_A}")
        if int(self.patches_per_crystal) < 1 or int(self.crystals_in_flight) < 1:
            raise InputError(
                f"patches_per_crystal and crystals_in_flight must be >= 1, got {self.patches_per_crystal}, "
                f"{self.crystals_in_flight}"
            )

    @property
    def conditioning(self) -> ConditioningRule:
        """The grid and target rule of models trained on these pairs (recorded with their weights)."""
        return ConditioningRule.from_pair_config(asdict(self))

    def crystal_index(self, index: int) -> int:
        """The crystal that pair ``index`` is cut from.

        Each block of ``crystals_in_flight × patches_per_crystal`` consecutive indices holds
        ``crystals_in_flight`` crystals, taken in turn.
        """
        g, p = int(self.crystals_in_flight), int(self.patches_per_crystal)
        if p == 1:
            return int(index)
        return (int(index) // (g * p)) * g + int(index) % g


def wrap_patch(a: np.ndarray, start_zyx: tuple[int, int, int], size: int) -> np.ndarray:
    """Cube of edge ``size`` from ``a`` starting at ``start_zyx``, wrapping periodically across the edges."""
    out = a
    for axis, s in enumerate(start_zyx):
        out = np.take(out, np.arange(int(s), int(s) + size), axis=axis, mode="wrap")
    return np.ascontiguousarray(out)


class CrystalPairs(CorpusPairs):
    """Picklable X-ray pair function over one split of a corpus (see module docstring).

    Parameters
    ----------
    corpus_dir, split, patch, cache_size
        As :class:`~densharp.simulate.corpus_pairs.CorpusPairs` (``cache_size``: structures per process).
    crystal_cfg
        Simulation ranges; default :class:`CrystalConfig`.
    """

    modality = Modality.XRAY

    def __init__(
        self,
        corpus_dir: str | os.PathLike[str],
        split: str = "train",
        crystal_cfg: CrystalConfig | None = None,
        patch: int = 32,
        cache_size: int = 16,
    ) -> None:
        cfg = crystal_cfg or CrystalConfig()
        super().__init__(
            corpus_dir, split, patch=patch, patch_solvent_fraction=cfg.solvent_fraction, cache_size=cache_size
        )
        self.crystal_cfg = cfg
        self._crystals: OrderedDict[Any, dict[str, Any]] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_crystals"] = OrderedDict()  # simulated lazily in each process
        return state

    def describe(self) -> dict[str, Any]:
        """Provenance record (with the modality)."""
        return {**super().describe(), "modality": Modality.XRAY.value}

    def structure(self, i: int) -> Any:
        """The cleaned :class:`gemmi.Structure` of entry ``i`` (loaded once per process, LRU-cached)."""
        from densharp.simulate.structure import load_structure

        return self._cached(i, lambda path: load_structure(path, seed=0)[0])

    def crystal(self, seed: int, crystal_index: int, crystal_cfg: CrystalConfig | None = None) -> dict[str, Any]:
        """The simulated crystal ``crystal_index`` of stream ``seed``, kept in this process's LRU cache.

        A dict with the prefiltered input and target cell maps (``input``, ``target``: (z, y, x) float32),
        ``d_input_A``, ``d_target_A``, ``voxel_size_A``, ``structure`` (corpus name), ``norm_box``, ``centres``
        (flat indices of molecule voxels) and ``meta`` (:attr:`~densharp.simulate.crystal.CrystalSim.meta`).
        """
        cfg = crystal_cfg or self.crystal_cfg
        key = (int(seed), int(crystal_index), cfg)
        hit = self._crystals.get(key)
        if hit is not None:
            self._crystals.move_to_end(key)
            return hit
        from densharp.simulate.crystal import CrystalOptions, simulate_crystal
        from densharp.simulate.degrade import draw_uniform

        i = self.choose(seed, crystal_index)
        rng = np.random.default_rng([int(seed), int(crystal_index), 0xC1A5])
        d_in = draw_uniform(rng, cfg.d_input_range_A)
        rule = cfg.conditioning
        v = rule.grid_voxel_A(d_in)
        d_t = rule.default_target_A(d_in, v)
        b_extra = draw_uniform(rng, cfg.b_extra_range_A2)
        sim = simulate_crystal(
            self.structure(i),
            d_in,
            rng,
            voxel_size_A=v,
            b_extra_A2=b_extra,
            target_d_min_A=d_t,
            options=CrystalOptions.from_config(cfg),
        )
        assert sim.target is not None
        inp_map = prefilter_input(sim.map, d_in)
        tgt = sim.target.data_zyx
        value = {
            "input": inp_map.data_zyx,
            "target": tgt,
            "d_input_A": float(d_in),
            "d_target_A": float(d_t),
            "voxel_size_A": float(np.mean(sim.map.voxel_size_xyz_A)),
            "structure": self.entries[i]["name"],
            "norm_box": map_norm_stats(inp_map, NormKind.ROBUST_MAP),
            # patch centres on the molecule: voxels above mean + 1 SD of the true density
            "centres": np.flatnonzero(tgt >= tgt.mean() + tgt.std()),
            "meta": sim.meta,
            # the whole cell maps, unfiltered input and target (calibration of the model's extrapolation)
            "cell_map": sim.map,
            "target_map": sim.target,
        }
        self._crystals[key] = value
        while len(self._crystals) > max(2, int(cfg.crystals_in_flight)):
            self._crystals.popitem(last=False)
        return value

    def pair(self, seed: int, index: int, crystal_cfg: CrystalConfig | None = None) -> dict[str, Any]:  # type: ignore[override]
        """The pair dict, with an optional per-call :class:`CrystalConfig` (validation bins)."""
        cfg = crystal_cfg or self.crystal_cfg
        c = self.crystal(seed, cfg.crystal_index(index), cfg)
        inp, tgt = c["input"], c["target"]
        rng = np.random.default_rng([int(seed), int(index), 0x9A7C])
        n = self.patch
        centres = c["centres"]
        if rng.random() < cfg.solvent_fraction or len(centres) == 0:
            centre = [int(rng.integers(sz)) for sz in tgt.shape]
        else:
            flat = int(centres[int(rng.integers(len(centres)))])
            centre = [int(x) for x in np.unravel_index(flat, tgt.shape)]
        start = tuple(x - n // 2 for x in centre)
        return {
            "input": wrap_patch(inp, start, n).astype(np.float32),  # type: ignore[arg-type]
            "target": wrap_patch(tgt, start, n).astype(np.float32),  # type: ignore[arg-type]
            "d_input_A": c["d_input_A"],
            "d_target_A": c["d_target_A"],
            "voxel_size_A": c["voxel_size_A"],
            "structure": c["structure"],
            "start_zyx": [int(x) for x in start],
            "grid_zyx": list(tgt.shape),
            "norm_box": c["norm_box"],
        }
