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


def _failing_plan(tmp_path, m, d_A, **options):
    from densharp.sharpening import SharpenInputs, SharpenOptions, plan_for_model

    w = tmp_path / "w.safetensors"
    export_tiny(tiny_model("unet"), w)
    bad = LoadedModel(replace(load_tiny(w).card), _Destroyer(), "0")
    inputs = SharpenInputs.of_map(m)
    plan = plan_for_model(inputs, SharpenOptions(d_input_A=d_A, **options), bad.card)
    return replace(plan, choice="default"), inputs, bad


def test_a_failed_check_returns_the_input_when_auto_b_is_not_trusted(tmp_path):
    from densharp.fourier import lowpass
    from densharp.sharpening import UNCHANGED, run_sharpen

    # a map low-passed well short of its stated 4 Å: auto-B's Guinier fit meets the filter's cliff and is capped,
    # and a capped auto-B would boost that cliff 100x; the run returns the input as it is
    m = lowpass(blob_map((40, 40, 40)), 5.5, edge_width_invA=0.002)
    rng = np.random.default_rng(0)
    m = m.with_data(m.data_zyx + rng.normal(0, 1e-3 * float(m.data_zyx.std()), m.shape_zyx).astype(np.float32))
    plan, inputs, bad = _failing_plan(tmp_path, m, 4.0)
    out = run_sharpen(plan, inputs, bad)
    assert out.record["method"] == UNCHANGED and out.record["fallback"]["to"] == UNCHANGED
    assert "disagrees with the input" in out.record["fallback"]["reasons"][0]
    assert "capped" in out.record["fallback"]["reasons"][1]
    assert out.record["result"]["classical_tried"]["b_capped"] is True
    np.testing.assert_array_equal(out.map.data_zyx, m.data_zyx)
    assert out.map.same_grid(m)


def test_a_failed_check_returns_the_input_when_auto_b_cannot_run(tmp_path):
    from densharp.sharpening import UNCHANGED, run_sharpen

    # a Guinier fit range holding too few shells (here a fit start of 4.1 Å for a 4 Å map; in practice a small box
    # at low resolution): auto-B cannot run, and the fallback must not fail a run whose learned output was refused
    m = blob_map((40, 40, 40))
    plan, inputs, bad = _failing_plan(tmp_path, m, 4.0, fit_low_A=4.1)
    out = run_sharpen(plan, inputs, bad)
    assert out.record["method"] == UNCHANGED
    assert "too few resolution shells" in out.record["fallback"]["reasons"][1]
    np.testing.assert_array_equal(out.map.data_zyx, m.data_zyx)
