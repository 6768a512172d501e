"""Crystallographic (X-ray) training pairs: 2mFo-DFc-like unit-cell maps against the error-free model density.

:class:`CrystalPairs` is the X-ray counterpart of :class:`~densharp.simulate.corpus_pairs.CorpusPairs` (same
structure choice from ``(seed, index)``, same dict keys). For each pair it draws ``d_input`` in
:attr:`CrystalConfig.d_input_range_A`, the grid spacing of the conditioning rule (the grid ``densharp sharpen`` puts
MTZ input on), simulates the crystal with :func:`densharp.simulate.crystal.simulate_crystal` (P1 cell, X-ray form
factors, FOM-weighted phase errors, missing reflections) and takes as target the true model density on the same
cell grid, band-limited at the rule's default target. The patch is cut with periodic wrap (the cell is periodic),
centred on the molecule or, with probability ``solvent_fraction``, anywhere in the cell; ``norm_box`` holds the
statistics of the whole cell map (what a per-map model normalises with at inference).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from densharp.conditioning import ConditioningRule, prefilter_input
from densharp.errors import InputError
from densharp.modality import Modality
from densharp.normalisation import NormKind, norm_stats
from densharp.simulate.corpus_pairs import CorpusPairs


@dataclass(frozen=True)
class CrystalConfig:
    """Ranges of the X-ray pair simulation (the ``"pair"`` object of a train config in X-ray mode).

    Parameters
    ----------
    d_input_range_A
        Range of the map-coefficient resolution limit (Å).
    voxel_A
        Largest grid spacing (Å); the spacing is ``min(voxel_A, d_input/2.5)`` (:attr:`conditioning`).
    d_target_min_A
        Finest target resolution (Å).
    fom_low_range, fom_high_range, missing_fraction_range
        Passed to :func:`~densharp.simulate.crystal.simulate_crystal`.
    b_extra_range_A2
        Range of the extra B (Å²) on the input (the target keeps the atoms' own B).
    margin_A
        Gap between copies in a P1 box (structures without a usable CRYST1 cell).
    solvent_fraction
        Probability of a patch centred anywhere in the cell instead of on the molecule.
    """

    d_input_range_A: tuple[float, float] = (1.8, 4.0)
    voxel_A: float = 1.0
    d_target_min_A: float = 1.5
    fom_low_range: tuple[float, float] = (0.85, 0.97)
    fom_high_range: tuple[float, float] = (0.3, 0.6)
    missing_fraction_range: tuple[float, float] = (0.0, 0.15)
    b_extra_range_A2: tuple[float, float] = (0.0, 0.0)
    margin_A: float = 4.0
    solvent_fraction: float = 0.05

    def __post_init__(self) -> None:
        lo, hi = self.d_input_range_A
        if not 0 < lo <= hi:
            raise InputError(f"d_input_range_A must be 0 < lo <= hi, got {self.d_input_range_A}")
        if self.voxel_A <= 0:
            raise InputError(f"voxel_A must be positive, got {self.voxel_A}")

    @property
    def conditioning(self) -> ConditioningRule:
        """The grid and target rule of models trained on these pairs (recorded with their weights)."""
        return ConditioningRule.from_pair_config(asdict(self))


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
        As :class:`~densharp.simulate.corpus_pairs.CorpusPairs`.
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

    def describe(self) -> dict[str, Any]:
        """Provenance record (with the modality)."""
        return {**super().describe(), "modality": Modality.XRAY.value}

    def structure(self, i: int) -> Any:
        """The cleaned :class:`gemmi.Structure` of entry ``i`` (loaded once per process, LRU-cached)."""
        from densharp.simulate.structure import load_structure

        return self._cached(i, lambda path: load_structure(path, seed=0)[0])

    def pair(self, seed: int, index: int, crystal_cfg: CrystalConfig | None = None) -> dict[str, Any]:  # type: ignore[override]
        """The pair dict, with an optional per-call :class:`CrystalConfig` (validation bins)."""
        from densharp.simulate.crystal import simulate_crystal
        from densharp.simulate.degrade import draw_uniform

        cfg = crystal_cfg or self.crystal_cfg
        i = self.choose(seed, index)
        rng = np.random.default_rng([int(seed), int(index), 0xC1A5])
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
            fom_low_range=cfg.fom_low_range,
            fom_high_range=cfg.fom_high_range,
            missing_fraction_range=cfg.missing_fraction_range,
            margin_A=cfg.margin_A,
            target_d_min_A=d_t,
        )
        assert sim.target is not None
        inp_map = prefilter_input(sim.map, d_in)
        inp, tgt = inp_map.data_zyx, sim.target.data_zyx
        n = self.patch
        if rng.random() < cfg.solvent_fraction:
            centre = [int(rng.integers(s)) for s in tgt.shape]
        else:  # a voxel of the molecule: above mean + 1 SD of the true density
            idx = np.flatnonzero(tgt >= tgt.mean() + tgt.std())
            flat = int(idx[int(rng.integers(len(idx)))]) if len(idx) else int(rng.integers(tgt.size))
            centre = [int(c) for c in np.unravel_index(flat, tgt.shape)]
        start = tuple(c - n // 2 for c in centre)
        voxel = float(np.mean(sim.map.voxel_size_xyz_A))
        return {
            "input": wrap_patch(inp, start, n).astype(np.float32),  # type: ignore[arg-type]
            "target": wrap_patch(tgt, start, n).astype(np.float32),  # type: ignore[arg-type]
            "d_input_A": float(d_in),
            "d_target_A": float(d_t),
            "voxel_size_A": voxel,
            "structure": self.entries[i]["name"],
            "start_zyx": [int(s) for s in start],
            "grid_zyx": list(tgt.shape),
            "norm_box": norm_stats(inp, NormKind.ROBUST_MAP, inp_map.voxel_size_xyz_A),
        }
