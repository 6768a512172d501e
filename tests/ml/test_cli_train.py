"""End-to-end ``densharp train`` on a tiny synthetic corpus (3 small helices, written in the corpus layout)."""

from __future__ import annotations

import csv
import gzip
import json
import math
import pickle

import gemmi
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from densharp.cli import main  # noqa: E402
from densharp.evaluate.validation import evaluate_fn, make_validation_set  # noqa: E402
from densharp.ml.sharpen import predict_patch  # noqa: E402
from densharp.normalisation import NormKind  # noqa: E402
from densharp.simulate.corpus_pairs import CorpusPairs  # noqa: E402


def _predict(model, case):
    return predict_patch(model, case, NormKind.ROBUST_MAP)


torch.set_num_threads(1)


def _helix(n_res: int, seed: int) -> gemmi.Structure:
    rng = np.random.default_rng(seed)
    st = gemmi.Structure()
    model = gemmi.Model("1")
    chain = gemmi.Chain("A")
    for i in range(n_res):
        res = gemmi.Residue()
        res.name = "ALA"
        res.seqid = gemmi.SeqId(i + 1, " ")
        phi = math.radians(100.0 * i)
        for name, el, r, dphi in (("N", "N", 1.6, -0.45), ("CA", "C", 2.3, 0.0), ("C", "C", 1.7, 0.45)):
            a = gemmi.Atom()
            a.name, a.element, a.occ = name, gemmi.Element(el), 1.0
            a.pos = gemmi.Position(r * math.cos(phi + dphi), r * math.sin(phi + dphi), 1.5 * i)
            a.b_iso = float(rng.uniform(15, 40))
            res.add_atom(a)
        chain.add_residue(res)
    model.add_chain(chain)
    st.add_model(model)
    st.setup_entities()
    return st


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    entries = {}
    for k, (split, cluster) in enumerate([("train", "1"), ("train", "2"), ("val", "3")]):
        name = f"helix{k}"
        rel = f"structures/{split}/{name}.cif.gz"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        text = _helix(10 + 2 * k, k).make_mmcif_document().as_string()
        (root / rel).write_bytes(gzip.compress(text.encode()))
        entries[name] = {"split": split, "cluster": cluster, "path": rel, "atoms": 3 * (10 + 2 * k)}
    (root / "manifest.json").write_text(json.dumps({"format_version": 1, "entries": entries}))
    cfg = root / "tiny.json"
    cfg.write_text(json.dumps({"model_kwargs": {"base_channels": 4, "depth": 2}, "log_interval": 1}))
    return root, cfg


def _rows(out):
    with open(out / "val_curve.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _args(corpus, cfg, out, *extra):
    return [
        "train", "--arch", "unet", "--config", str(cfg), "--corpus", str(corpus), "-o", str(out),
        "--patch", "16", "--batch-size", "2", "--val-cases", "2", "--eval-interval", "2",
        "--device", "cpu", "--precision", "fp32", "--threads", "1", "--perturbed-cases", "0", "-q", *extra,
    ]  # fmt: skip


def test_corpus_pairs_deterministic_and_balanced(tiny_corpus):
    root, _ = tiny_corpus
    cp = CorpusPairs(root, "train", patch=16)
    assert len(cp.families) == 2
    a, b = cp(3, 5), pickle.loads(pickle.dumps(cp))(3, 5)  # picklable for DataLoader workers and DDP ranks
    assert a["input"].shape == (16, 16, 16) and np.array_equal(a["input"], b["input"])
    assert {cp.choose(0, i) for i in range(40)} == {0, 1}
    assert a["norm_box"] is not None and a["norm_box"].scale > 0  # the whole box's statistics (per-map models)
    cases = make_validation_set(root, "em", "val", n=3, patch=16)
    assert [c["bin"] for c in cases] == ["2.5-3.5", "3.5-5", "5-8"]
    from densharp.ml.nets import build_model

    res = evaluate_fn(cases, _predict)(build_model("unet", base_channels=4, depth=2))
    assert {"rscc", "rscc_identity", "rscc_autob", "rscc_bin_3.5-5"} <= set(res)


def test_cli_train_end_to_end_and_resume(tiny_corpus, tmp_path, capsys):
    root, cfg = tiny_corpus
    out = tmp_path / "run"
    assert main(_args(root, cfg, out, "--steps", "3", "--perturbed-cases", "1")) == 0
    details = [json.loads(x) for x in (out / "val_details.jsonl").read_text().splitlines()]
    assert {"perturbed_rscc", "perturbed_masked", "select"} <= set(details[-1]["metrics"])
    assert {r["perturbation"] for r in details[-1]["perturbed"]["rows"]} >= {"none", "unfiltered", "voxel-1.6"}
    for name in ("last.pt", "best.pt", "config.json", "train_log.jsonl", "val_curve.csv", "val_curve.png"):
        assert (out / name).is_file(), name
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["step"] == 3
    torch.load(out / "best.pt", weights_only=True)
    rows = _rows(out)
    assert [int(float(r["step"])) for r in rows] == [2, 3]
    assert all(r["rscc_identity"] and r["rscc_autob"] and r["rscc"] for r in rows)
    conf = json.loads((out / "config.json").read_text())
    assert conf["train_config"]["model_kwargs"] == {"base_channels": 4, "depth": 2}
    assert conf["train_config"]["total_steps"] == 3

    # an existing run folder is refused with one line
    capsys.readouterr()
    assert main(_args(root, cfg, out, "--steps", "3")) != 0
    err = capsys.readouterr().err
    assert "not empty" in err and len(err.strip().splitlines()) == 1

    # --resume continues the step count
    assert main(_args(root, cfg, out, "--steps", "5", "--resume")) == 0
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 5
    rows = _rows(out)
    assert [int(float(r["step"])) for r in rows] == [2, 3, 4, 5]

    # --overwrite starts again
    assert main(_args(root, cfg, out, "--steps", "2", "--overwrite")) == 0
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 2


# ------------------------------------------------------------------------------------------- X-ray mode
def test_crystal_pairs_deterministic_wrapped_and_correlated(tiny_corpus):
    from densharp.simulate.crystal_pairs import CrystalPairs, wrap_patch

    root, _ = tiny_corpus
    cp = CrystalPairs(root, "train", patch=16)
    a, b = cp(3, 5), pickle.loads(pickle.dumps(cp))(3, 5)
    assert a["input"].shape == a["target"].shape == (16, 16, 16)
    assert np.array_equal(a["input"], b["input"]) and np.array_equal(a["target"], b["target"])
    assert set(a) >= {"input", "target", "d_input_A", "d_target_A", "voxel_size_A"}
    assert 1.8 <= a["d_input_A"] <= 4.0 and a["d_target_A"] >= max(1.5, 2.2 * a["voxel_size_A"]) - 1e-6
    assert not np.array_equal(cp(3, 6)["input"], a["input"])
    # the helix cells are smaller than the patch on some axis: every patch wraps across the cell edge
    assert any(s < 0 or s + 16 > n for s, n in zip(a["start_zyx"], a["grid_zyx"]))
    for k in range(4):
        p = cp(0, k)
        assert np.corrcoef(p["input"].ravel(), p["target"].ravel())[0, 1] > 0.3
    g = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    w = wrap_patch(g, (-2, 4, 6), 8)
    assert w.shape == (8, 8, 8) and w[0, 0, 0] == g[3, 4, 6] and w[2, 2, 1] == g[0, 0, 0]
    cases = make_validation_set(root, "xray", "val", n=3, patch=16)
    assert [c["bin"] for c in cases] == ["1.8-2.5", "2.5-3.2", "3.2-4"]
    from densharp.ml.nets import build_model

    res = evaluate_fn(cases, _predict)(build_model("unet", base_channels=4, depth=2))
    assert {"rscc", "rscc_identity", "rscc_bin_2.5-3.2"} <= set(res)


def test_cli_train_xray(tiny_corpus, tmp_path):
    root, cfg = tiny_corpus
    out = tmp_path / "xray"
    assert main(_args(root, cfg, out, "--steps", "2", "--modality", "xray")) == 0
    conf = json.loads((out / "config.json").read_text())
    assert conf["modality"] == "xray" and conf["data"]["train"]["modality"] == "xray"
    assert "voxel_A" in conf["data"]["pair_config"] and conf["data"]["pair_config"]["conditioning"]["d_per_voxel"]
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["step"] == 2 and ck["data_manifest"]["modality"] == "xray"
    assert ck["resolution_range_A"] == [1.5, 4.0]  # CrystalConfig.d_input_range_A (issue 13)
    assert [int(float(r["step"])) for r in _rows(out)] == [2]
    details = json.loads((out / "val_details.jsonl").read_text().splitlines()[-1])
    gain = details["extrapolation_gain"]  # the extrapolation's measured gain, per u = d_input / d
    assert gain and all(0.0 <= g <= 2.0 for _, g in gain) and gain[0][0] == 1.0
    assert any(k.startswith("xgain_u") for k in details["metrics"])


def test_bench_perturbed_scores_every_perturbation_through_the_user_path(tiny_corpus, tmp_path, capsys):
    from bench_loader import load_benchmark  # tests/ is on pytest's pythonpath

    root, _ = tiny_corpus
    mod = load_benchmark("bench_perturbed")
    out = tmp_path / "out"
    assert mod.main(["--corpus", str(root), "--cases", "1", "--methods", "autob", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "=== autob" in text and "below identity:" in text
    rec = json.loads((out / "bench_perturbed.json").read_text())
    res = rec["methods"]["autob"]
    assert {r["perturbation"] for r in res["rows"]} == {
        "none", "unfiltered", "flattened", "over-sharpened", "weak-low-res", "masked", "anisotropic", "voxel-0.6",
        "voxel-1.6",
    }  # fmt: skip
    assert sum(res["methods_used"].values()) == 9 and np.isfinite([r["rscc"] for r in res["rows"]]).all()
    assert mod.main(["--corpus", str(root), "--methods", "nope", "--out", str(out)]) == 2
