"""Every shipped weights file is registered, within PyPI-friendly size, matches its pinned sha256 and loads; the
conditioning inference uses for each shipped model lies inside what it was trained on."""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from densharp.conditioning import ConditioningRule  # noqa: E402
from densharp.ml.registry import shipped_cards, shipped_registry  # noqa: E402
from densharp.ml.sharpen import load_model  # noqa: E402
from densharp.modality import Modality  # noqa: E402


def test_registry_files_exist_match_sha_and_load():
    folder = resources.files("densharp.ml").joinpath("weights")
    files = {p.name for p in folder.iterdir() if p.name.endswith(".safetensors")}
    reg = shipped_registry()
    assert files == {entry["file"] for entry in reg.values()}
    for name, card in shipped_cards().items():
        data = folder.joinpath(reg[name]["file"]).read_bytes()
        assert len(data) <= 25_000_000
        assert hashlib.sha256(data).hexdigest() == card.sha256
        loaded = load_model(card)
        assert loaded.sha256 == card.sha256 and sum(p.numel() for p in loaded.module.parameters()) > 0


@pytest.mark.parametrize("name", sorted(shipped_cards()))
def test_inference_conditioning_lies_inside_the_training_distribution(name):
    """For every input resolution of the domain and typical input voxels, the grid voxel and the default target
    inference uses are ones the training pairs (recorded pair config) produced."""
    card = shipped_cards()[name]
    pair = shipped_registry()[name]["metadata"]["pair_config"]
    trained = ConditioningRule.from_pair_config(pair)
    assert card.conditioning == trained  # the card's rule is the one derived from the recorded pair config
    lo, hi = card.resolution_range_A
    assert (lo, hi) == tuple(pair["d_input_range_A"])
    for d in np.linspace(lo, hi, 12):
        for v_in in (0.5, 0.83, 1.0, 1.34, 1.742, 2.64):
            v = trained.grid_voxel_A(d, v_in if card.modality is Modality.EM else None)
            if card.modality is Modality.EM:  # pairs drew voxels in this range, with d_input >= 2.2 voxels
                lo_v, hi_v = pair["voxel_size_range_A"]
                assert lo_v - 1e-9 <= v <= min(hi_v, d / 2.2) + 1e-9
            else:  # crystal pairs: spacing min(voxel_A, d / 2.5), as the MTZ grid
                assert v == pytest.approx(min(pair["voxel_A"], d / 2.5))
            d_t = card.conditioning.default_target_A(d, v)
            # the training target: max(d/2, d_target_min, 2.2·voxel) from the same rule
            assert d_t == pytest.approx(max(d / 2, pair["d_target_min_A"], 2.2 * v))
            assert d_t <= d + 1e-9
