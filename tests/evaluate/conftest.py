"""Fixtures for the evaluation tests: a two-chain helix model, a small (input, target, half maps) case."""

from __future__ import annotations

import numpy as np
import pytest

from densharp.fourier import apply_bfactor, lowpass
from densharp.volume import DensityMap
from synth import density_map, globule_structure, helix_structure


def two_chain_structure():
    """Two parallel 20-residue helices 10 Å apart, chains A and B."""
    st = helix_structure(20, seed=0)
    other = helix_structure(20, seed=1, center=(10.0, 0.0, 0.0))
    ch = other[0][0].clone()
    ch.name = "B"
    st[0].add_chain(ch)
    st.setup_entities()
    return st


@pytest.fixture(scope="session")
def two_chains():
    return two_chain_structure()


@pytest.fixture(scope="session")
def small_case() -> dict:
    """A 40³ globule case on 1 Å voxels: target at 2.2 Å, input blurred by B 80 and low-passed at 4 Å, half maps."""
    st = globule_structure(500, 12.0, seed=3, b_iso=20.0)
    atoms = density_map(st, (1.0, 1.0, 1.0), (40, 40, 40), (-20.0, -20.0, -20.0))
    target = lowpass(atoms, 2.2)
    signal = lowpass(apply_bfactor(atoms, 80.0), 4.0)
    rng = np.random.default_rng(11)
    sd = float(signal.data_zyx.std())

    def noisy() -> DensityMap:
        n = signal.with_data(rng.normal(0.0, 0.6 * sd, signal.shape_zyx).astype(np.float32))
        return signal.with_data(signal.data_zyx + lowpass(n, 3.0).data_zyx)

    h1, h2 = noisy(), noisy()
    inp = lowpass(h1.with_data(0.5 * (h1.data_zyx + h2.data_zyx)), 4.0)
    return {"input": inp, "target": target, "half_maps": (h1, h2), "d_input_A": 4.0}
