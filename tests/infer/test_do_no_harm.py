"""The contract holds at inference: normalisation as in training, resampling that round-trips, and a destructive
model caught by the consistency check (classical fallback), while a good one passes."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from densharp.conditioning import prefilter_input  # noqa: E402
from densharp.fourier import fourier_resample  # noqa: E402
from densharp.ml.sharpen import LoadedModel  # noqa: E402
from densharp.normalisation import NormKind, map_norm_stats  # noqa: E402
from densharp.sharpening import sharpen_map  # noqa: E402
from infer_synth import blob_map, export_tiny, load_tiny, tiny_model  # noqa: E402


def test_training_and_inference_normalise_identically():
    from densharp.simulate.corpus_pairs import training_item
    from densharp.simulate.pairs import PairConfig, make_pair
    from synth import globule_structure

    sim = make_pair(globule_structure(300, 10.0, seed=3), PairConfig(box_zyx=(40, 40, 40), solvent_fraction=0.0), 1, 2)
    seen = prefilter_input(sim.input, sim.d_input_A)  # what inference feeds the model, and normalises
    item = training_item(sim, 32, 0.0, np.random.default_rng(0))
    assert item["norm_box"] == map_norm_stats(seen, NormKind.ROBUST_MAP)


@pytest.mark.parametrize("shape", [(20, 24, 28), (21, 17, 30)])
def test_fourier_resampling_round_trips(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(np.float32)
    up = fourier_resample(x, tuple(2 * n for n in shape))
    np.testing.assert_allclose(fourier_resample(up, shape), x, atol=1e-4)


class _Destroyer(torch.nn.Module):
    """A deliberately destructive 'model': returns noise unrelated to its input."""

    name = "destroyer"

    def predict(self, x, cond=None):
        g = torch.Generator().manual_seed(0)
        return torch.randn(x.shape, generator=g)


def test_consistency_check_rejects_a_destructive_model_and_passes_a_good_one(tmp_path):
    w = tmp_path / "w.safetensors"
    export_tiny(tiny_model("unet"), w)
    good = load_tiny(w)
    m = blob_map((40, 40, 40))
    ok = sharpen_map(m, 4.0, loaded=good)
    assert ok.record["result"]["consistency"]["is_consistent"]
    bad = LoadedModel(replace(good.card), _Destroyer(), "0")
    # as in `densharp sharpen`: the plan of a shipped-looking model, so a failing output falls back
    from densharp.sharpening import SharpenInputs, SharpenOptions, plan_for_model, run_sharpen

    inputs = SharpenInputs.of_map(m)
    plan = replace(plan_for_model(inputs, SharpenOptions(d_input_A=4.0), bad.card), choice="default")
    out = run_sharpen(plan, inputs, bad)
    assert out.record["method"] == "autob" and "disagrees with the input" in out.record["fallback"]["reasons"][0]
    assert out.record["result"]["consistency_of_learned"]["is_consistent"] is False
    forced = run_sharpen(replace(plan, options=SharpenOptions(d_input_A=4.0, force=True)), inputs, bad)
    assert forced.record["method"] == "unet"  # --force keeps it, with the verdict recorded
    assert json.dumps(forced.record["result"]["consistency"])
