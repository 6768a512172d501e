"""Simulated training data: model density, degradations, (input, target, half-map) pairs, crystal maps.

Everything here is pure (no file writes) and seeded; only :func:`load_structure` reads a file.
"""

from __future__ import annotations

from densharp.simulate.crystal import CrystalSim, simulate_crystal
from densharp.simulate.density import Modality, PreparedModel, simulate_map
from densharp.simulate.pairs import PairConfig, SimPair, make_pair, random_patch
from densharp.simulate.structure import load_structure

__all__ = [
    "CrystalSim",
    "Modality",
    "PairConfig",
    "PreparedModel",
    "SimPair",
    "load_structure",
    "make_pair",
    "random_patch",
    "simulate_crystal",
    "simulate_map",
]
