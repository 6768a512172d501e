"""Shared fixtures: small awkward maps (non-cubic box, anisotropic voxels, non-zero origin) built from atoms."""

from __future__ import annotations

import numpy as np
import pytest

from densharp.fourier import apply_bfactor, lowpass
from densharp.volume import DensityMap
from synth import density_map, globule_structure  # tests/ is on pytest's pythonpath

VOXEL_XYZ = (1.0, 1.1, 0.9)
SHAPE_ZYX = (48, 40, 44)
ORIGIN_XYZ = (-20.0, -22.0, -24.0)


@pytest.fixture(scope="session")
def atom_map() -> DensityMap:
    """Density of a 600-atom globule (B 20 Å²) on a 44×40×48 box, voxel (1.0, 1.1, 0.9) Å, origin (-20,-22,-24)."""
    st = globule_structure(600, 13.0, seed=1, b_iso=20.0)
    return density_map(st, VOXEL_XYZ, SHAPE_ZYX, ORIGIN_XYZ)


@pytest.fixture(scope="session")
def target_2A(atom_map: DensityMap) -> DensityMap:
    """The atom map band-limited at 2 Å (the high-resolution target)."""
    return lowpass(atom_map, 2.2)


@pytest.fixture(scope="session")
def blurred_35A(atom_map: DensityMap) -> DensityMap:
    """The atom map with an extra B of 100 Å², band-limited at 3.5 Å."""
    return lowpass(apply_bfactor(atom_map, 100.0), 3.5)


@pytest.fixture(scope="session")
def half_maps(blurred_35A: DensityMap) -> tuple[DensityMap, DensityMap]:
    """Two noisy copies of the 3.5 Å map with independent, band-limited noise."""
    rng = np.random.default_rng(7)
    sd = float(blurred_35A.data_zyx.std())

    def noisy() -> DensityMap:
        n = blurred_35A.with_data(rng.normal(0.0, 0.5 * sd, blurred_35A.shape_zyx).astype(np.float32))
        return blurred_35A.with_data(blurred_35A.data_zyx + lowpass(n, 2.4).data_zyx)

    return noisy(), noisy()
