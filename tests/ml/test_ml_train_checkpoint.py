import functools
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ml_synth import TINY_MODEL_KWARGS as TINY  # noqa: E402
from ml_synth import blob_pair  # noqa: E402
from ml_synth import tiny_train_config as _cfg  # noqa: E402

from densharp.errors import CheckpointError, InputError  # noqa: E402
from densharp.ml.checkpoint import export_weights, load_checkpoint, load_weights, read_checkpoint, save_checkpoint  # noqa: E402
from densharp.ml.data import PairDataset, collate_pairs  # noqa: E402
from densharp.ml.losses import LossSettings  # noqa: E402
from densharp.ml.nets import build_model  # noqa: E402
from densharp.ml.registry import file_card, shipped_card, shipped_registry  # noqa: E402
from densharp.ml.train import lr_at, make_optimizer, train  # noqa: E402

torch.set_num_threads(1)
PAIR = functools.partial(blob_pair, size=16)


def _batch(n=2):
    ds = PairDataset(PAIR, seed=0, length=n)
    return collate_pairs(list(ds))


@pytest.fixture(autouse=True)
def _deterministic():
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


def test_dataset_is_reproducible_and_normalised():
    a, b = _batch(3), _batch(3)
    assert a["input"].shape == (3, 1, 16, 16, 16) and a["cond"].shape == (3, 3)
    assert torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"])
    assert abs(float(a["input"][0].mean())) < 1e-4 and float(a["input"][0].std()) == pytest.approx(1.0, abs=1e-2)
    other_rank = collate_pairs(list(PairDataset(PAIR, seed=0, rank=1, length=3)))
    assert not torch.equal(a["input"], other_rank["input"])
    resumed = collate_pairs(list(PairDataset(PAIR, seed=0, start_index=1, length=2)))
    assert torch.equal(resumed["input"][0], a["input"][1])


def test_dataloader_workers_give_the_same_stream():
    from torch.utils.data import DataLoader

    ds = PairDataset(PAIR, seed=5, length=4)
    ref = torch.cat([b["input"] for b in DataLoader(ds, batch_size=1, collate_fn=collate_pairs)])
    par = torch.cat([b["input"] for b in DataLoader(ds, batch_size=1, num_workers=2, collate_fn=collate_pairs)])
    assert torch.equal(ref, par)


@pytest.mark.parametrize("name", ["unet", "vae", "report-vae"])
def test_one_step_lowers_the_loss(name):
    torch.manual_seed(0)
    model = build_model(name, **TINY[name]).eval()  # eval: deterministic latents, so the comparison is fair
    cfg = _cfg(name, lr=1e-2, weight_decay=0.0)
    opt = make_optimizer(model, cfg)
    b = _batch()

    def loss_now():  # each network owns its loss; the loop calls it the same way for all
        return model.training_loss(model, b["input"], b["cond"], b["target"], LossSettings(beta=0.01), 0)[0]

    before = loss_now()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss_now()
    assert after.item() < before.item()


@pytest.mark.parametrize("name", ["unet", "vae"])
def test_save_load_identical_outputs_weights_only(tmp_path, name):
    torch.manual_seed(0)
    model = build_model(name, **TINY[name])
    torch.nn.init.normal_(model.head.weight, std=0.1)  # not the identity, so the comparison means something
    opt = make_optimizer(model, _cfg(name))
    path = tmp_path / "m.pt"
    save_checkpoint(
        path,
        model,
        optimizer=opt,
        step=7,
        train_config=_cfg(name),
        voxel_size_A=np.float64(1.0),
        patch_size_zyx=(16, 16, 16),
        resolution_range_A=(2.0, 8.0),
        seed=0,
        argv=["x"],
        data_manifest={"pdb_ids": ["1abc"], "split_seed": np.int64(3)},
    )
    raw = torch.load(path, weights_only=True)
    assert raw["step"] == 7 and raw["model_name"] == name and raw["data_manifest"]["split_seed"] == 3
    loaded, ckpt = load_checkpoint(path)
    x, c = torch.randn(1, 1, 8, 8, 8), torch.rand(1, 3)
    with torch.no_grad():
        assert torch.equal(model.eval().predict(x, c), loaded.predict(x, c))
    assert ckpt["voxel_size_A"] == 1.0 and ckpt["train_config"]["model_name"] == name


def test_checkpoint_errors(tmp_path):
    model = build_model("unet", **TINY["unet"])
    path = tmp_path / "m.pt"
    save_checkpoint(path, model)
    ckpt = torch.load(path, weights_only=True)
    ckpt["model_kwargs"]["base_channels"] = 8
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "bad.pt")
    ckpt["format_version"] = 99
    torch.save(ckpt, tmp_path / "v99.pt")
    with pytest.raises(CheckpointError):
        read_checkpoint(tmp_path / "v99.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "missing.pt")
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_safetensors_round_trip_and_sha(tmp_path):
    torch.manual_seed(0)
    model = build_model("vae", **TINY["vae"])
    torch.nn.init.normal_(model.head.weight, std=0.1)
    pair = {"d_input_range_A": [2.5, 6.0], "voxel_A": 1.0, "d_target_min_A": 1.5}
    save_checkpoint(
        tmp_path / "m.pt",
        model,
        resolution_range_A=(2.5, 6.0),
        patch_size_zyx=(16, 16, 16),
        normalisation={"kind": "robust-map"},
        data_manifest={"modality": "xray", "pair_config": pair},
    )
    sha = export_weights(tmp_path / "m.pt", tmp_path / "w.safetensors")
    card = file_card(tmp_path / "w.safetensors")
    assert card.architecture == "vae" and card.modality.value == "xray" and card.resolution_range_A == (2.5, 6.0)
    assert card.normalisation.value == "robust-map" and card.conditioning.d_per_voxel == 2.5
    loaded, digest = load_weights(card)
    assert digest == sha
    x, c = torch.randn(1, 1, 8, 8, 8), torch.rand(1, 3)
    with torch.no_grad():
        assert torch.equal(model.eval().predict(x, c), loaded.predict(x, c))
    from dataclasses import replace

    with pytest.raises(CheckpointError, match="pinned"):
        load_weights(replace(card, sha256="0" * 64))
    with pytest.raises(InputError, match="not found"):
        file_card(tmp_path / "nothing.safetensors")


def test_shipped_registry_loader():
    assert isinstance(shipped_registry(), dict)
    with pytest.raises(InputError, match="unknown shipped model"):
        shipped_card("no-such-model")


def test_same_seed_same_first_loss(tmp_path):
    a = train(_cfg(total_steps=1), PAIR, run_dir=tmp_path / "a")
    b = train(_cfg(total_steps=1), PAIR, run_dir=tmp_path / "b")
    c = train(_cfg(total_steps=1, seed=1), PAIR, run_dir=tmp_path / "c")
    assert a["first_loss"] == b["first_loss"] != c["first_loss"]


def test_train_writes_checkpoints_log_and_resumes(tmp_path):
    evals = []

    def evaluate(model):
        assert not model.training and torch.is_inference_mode_enabled()
        evals.append(1)
        return {"rscc": 0.1 * len(evals)}

    cfg = _cfg("vae", total_steps=4, kl_anneal_steps=2, free_bits=0.01)
    res = train(cfg, PAIR, evaluate=evaluate, run_dir=tmp_path)
    assert res["step"] == 4 and (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()
    lines = [json.loads(s) for s in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4] and "val_rscc" in lines[1]
    assert torch.load(tmp_path / "best.pt", weights_only=True)["best_val"]["value"] == pytest.approx(0.2)

    more = train(
        _cfg("vae", total_steps=6, kl_anneal_steps=2, free_bits=0.01),
        PAIR,
        evaluate=evaluate,
        run_dir=tmp_path,
        resume=True,
    )
    assert more["step"] == 6
    ck = read_checkpoint(tmp_path / "last.pt")
    assert ck["step"] == 6 and ck["optimizer_state"]["state"]
    with pytest.raises(CheckpointError):
        train(_cfg("unet", total_steps=8), PAIR, run_dir=tmp_path, resume=True)


def test_resume_matches_uninterrupted_run(tmp_path):
    full = train(_cfg(total_steps=4, ckpt_interval=2), PAIR, run_dir=tmp_path / "full")
    train(_cfg(total_steps=2), PAIR, run_dir=tmp_path / "part")
    # same total_steps so the LR schedule is the same; resume from step 2
    part = train(_cfg(total_steps=4, ckpt_interval=2), PAIR, run_dir=tmp_path / "part", resume=True)
    assert part["step"] == full["step"] == 4
    a = read_checkpoint(tmp_path / "full" / "last.pt")["state_dict"]
    b = read_checkpoint(tmp_path / "part" / "last.pt")["state_dict"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_lr_schedule_and_bad_patch(tmp_path):
    cfg = _cfg(total_steps=10, warmup_steps=2, lr=1.0)
    assert lr_at(0, cfg) == 0.5 and lr_at(1, cfg) == 1.0 and lr_at(10, cfg) == pytest.approx(0.1)
    with pytest.raises(InputError):
        train(_cfg(patch_size_zyx=(8, 8, 8)), PAIR, run_dir=tmp_path)


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="no fast CPU bf16")
def test_bf16_training_runs(tmp_path):
    res = train(_cfg("vae", total_steps=2, precision="bf16"), PAIR, run_dir=tmp_path)
    assert res["precision"] == "bf16" and np.isfinite(res["loss"])


def _poisoned_pair(seed, index, bad=frozenset()):
    d = PAIR(seed, index)
    if index in bad:
        d["target"] = d["target"] * np.float32("nan")
    return d


def test_a_non_finite_batch_is_skipped_not_applied(tmp_path):
    """One batch with a NaN target leaves the weights finite (its update is skipped and counted)."""
    pair = functools.partial(_poisoned_pair, bad=frozenset({2, 3}))  # batch 2 of 2 pairs: the second step
    train(_cfg(total_steps=4), pair, run_dir=tmp_path)
    ck = read_checkpoint(tmp_path / "last.pt")
    assert all(torch.isfinite(v).all() for v in ck["state_dict"].values())
    lines = [json.loads(s) for s in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["skipped_steps"] for r in lines] == [0, 1, 1, 1]


def test_a_diverged_run_stops_with_a_clear_error(tmp_path):
    pair = functools.partial(_poisoned_pair, bad=frozenset(range(100)))
    with pytest.raises(RuntimeError, match="non-finite gradients"):
        train(_cfg(total_steps=30), pair, run_dir=tmp_path)


def test_scale_jitter_is_checked_and_reproducible(tmp_path):
    with pytest.raises(InputError, match="scale_jitter_log2"):
        _cfg(scale_jitter_log2=5.0)
    a = train(_cfg(total_steps=1, scale_jitter_log2=1.0), PAIR, run_dir=tmp_path / "a")
    b = train(_cfg(total_steps=1, scale_jitter_log2=1.0), PAIR, run_dir=tmp_path / "b")
    plain = train(_cfg(total_steps=1), PAIR, run_dir=tmp_path / "c")
    assert a["first_loss"] == b["first_loss"] != plain["first_loss"]
