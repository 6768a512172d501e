"""Energy score (CRPS) of VAE prior samples, and fine-tuning from existing weights (init_from)."""

import functools
import hashlib
import json

import pytest

torch = pytest.importorskip("torch")

from ml_synth import TINY_MODEL_KWARGS, blob_pair, tiny_train_config  # noqa: E402

from densharp.errors import CheckpointError, InputError  # noqa: E402
from densharp.ml.checkpoint import read_checkpoint  # noqa: E402
from densharp.ml.losses import energy_score  # noqa: E402
from densharp.ml.nets import build_model  # noqa: E402
from densharp.ml.train import TrainConfig, train  # noqa: E402

torch.set_num_threads(1)
PAIR = functools.partial(blob_pair, size=16)
VAE = TINY_MODEL_KWARGS["vae"]


def _cfg(**kw):
    return tiny_train_config("vae", **({"total_steps": 2} | kw))


def test_energy_score_of_identical_samples_is_the_l1_error():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(2, 1, 4, 5, 6, generator=g)
    p = torch.randn(2, 1, 4, 5, 6, generator=g)
    es = energy_score(torch.stack([p, p, p]), y)
    assert float(es) == pytest.approx(float((p - y).abs().mean()), rel=1e-6)


def test_energy_score_formula_for_two_samples():
    y = torch.tensor([0.0, 1.0]).view(1, 1, 1, 1, 2)
    s = torch.stack([torch.tensor([1.0, 1.0]).view(1, 1, 1, 1, 2), torch.tensor([-1.0, 3.0]).view(1, 1, 1, 1, 2)])
    # voxel 0: (|1|+|-1|)/2 - |2|/2 = 0; voxel 1: (0+2)/2 - |2|/2 = 0
    assert float(energy_score(s, y)) == pytest.approx(0.0, abs=1e-7)


def test_energy_score_prefers_calibrated_spread():
    """Target ~ N(0, 1) per voxel: samples from N(0, 1) beat a point at the mean and an over-wide sampler."""
    g = torch.Generator().manual_seed(1)
    shape = (4, 1, 16, 16, 16)
    y = torch.randn(shape, generator=g)
    calibrated = energy_score(torch.randn((8, *shape), generator=g), y)
    point = energy_score(torch.zeros((8, *shape)), y)
    too_wide = energy_score(3.0 * torch.randn((8, *shape), generator=g), y)
    # expectations: 1/sqrt(pi) = 0.564, sqrt(2/pi) = 0.798, and sqrt(10/pi) - 3/sqrt(pi) = 0.092 worse than 1.69
    assert float(calibrated) == pytest.approx(0.5642, abs=0.01)
    assert float(point) == pytest.approx(0.7979, abs=0.01)
    assert float(calibrated) < float(point) and float(calibrated) < float(too_wide)


def test_energy_score_rejects_bad_shapes():
    y = torch.zeros(1, 1, 2, 2, 2)
    with pytest.raises(InputError):
        energy_score(torch.zeros(1, 1, 1, 2, 2, 2), y)  # one sample
    with pytest.raises(InputError):
        energy_score(torch.zeros(2, 1, 1, 2, 2, 3), y)


def test_vae_prior_samples_have_gradients_to_the_prior_net():
    torch.manual_seed(0)
    m = build_model("vae", **VAE)
    torch.nn.init.normal_(m.head.weight, std=0.1)  # leave the identity start so z matters
    x, y = torch.randn(2, 1, 16, 16, 16), torch.randn(2, 1, 16, 16, 16)
    pred, _, samples = m(x, torch.rand(2, 3), y, prior_samples=3)
    assert samples.shape == (3, *x.shape) and pred.shape == x.shape
    assert not torch.equal(samples[0], samples[1])
    energy_score(samples, y).backward()
    assert m.prior_net.head.weight.grad is not None and float(m.prior_net.head.weight.grad.abs().sum()) > 0
    assert m.posterior_net.head.weight.grad is None  # the energy score only trains the prior path


def test_energy_weight_needs_a_vae():
    with pytest.raises(InputError, match="energy_weight"):
        TrainConfig(model_name="unet", energy_weight=1.0)
    with pytest.raises(InputError):
        TrainConfig(model_name="vae", energy_samples=1)


def test_training_with_energy_logs_spread_and_init_from_continues_from_weights(tmp_path):
    first = train(_cfg(energy_weight=1.0), PAIR, run_dir=tmp_path / "a")
    assert first["step"] == 2
    rec = json.loads((tmp_path / "a" / "train_log.jsonl").read_text().splitlines()[-1])
    assert {"energy", "sample_spread"} <= set(rec) and rec["sample_spread"] >= 0

    # init_from: zero optimiser steps would return the same weights; with lr 0 one step keeps them too
    src = tmp_path / "a" / "last.pt"
    res = train(_cfg(init_from=str(src), lr=0.0, total_steps=1, warmup_steps=0), PAIR, run_dir=tmp_path / "b")
    a = read_checkpoint(src)["state_dict"]
    b = read_checkpoint(tmp_path / "b" / "last.pt")["state_dict"]
    assert res["step"] == 1 and all(torch.equal(a[k], b[k]) for k in a)
    recorded = read_checkpoint(tmp_path / "b" / "last.pt")["train_config"]["init"]["sha256"]
    assert recorded == hashlib.sha256(src.read_bytes()).hexdigest()

    with pytest.raises(CheckpointError, match="model_kwargs"):
        train(_cfg(init_from=str(src), model_kwargs=VAE | {"latent_dim": 5}), PAIR, run_dir=tmp_path / "c")
