from __future__ import annotations

import gzip
import json
import pickle
from dataclasses import asdict, replace

import gemmi
import numpy as np
import pytest

from densharp.simulate.crystal_pairs import CrystalConfig, CrystalPairs, wrap_patch

KEYS = {"input", "target", "d_input_A", "d_target_A", "voxel_size_A", "structure", "start_zyx", "grid_zyx", "norm_box"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, helix_factory):
    """Three helices in the corpus layout: one with a P 21 21 21 crystal cell, two without a cell."""
    root = tmp_path_factory.mktemp("xcorpus")
    entries = {}
    for k, (split, cluster) in enumerate([("train", "1"), ("train", "2"), ("train", "3")]):
        st = helix_factory(10 + 2 * k, seed=k)
        if k == 0:
            st.cell = gemmi.UnitCell(22.0, 24.0, 28.0, 90, 90, 90)  # 74 Å³ per atom
            st.spacegroup_hm = "P 21 21 21"
        name = f"helix{k}"
        rel = f"structures/{split}/{name}.cif.gz"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(gzip.compress(st.make_mmcif_document().as_string().encode()))
        entries[name] = {"split": split, "cluster": cluster, "path": rel, "atoms": 5 * (10 + 2 * k)}
    (root / "manifest.json").write_text(json.dumps({"format_version": 1, "entries": entries}))
    return root


def _fast(**kw) -> CrystalConfig:
    return CrystalConfig(d_input_range_A=(2.5, 3.5), patches_per_crystal=4, crystals_in_flight=2, **kw)


def test_pairs_are_deterministic_in_seed_and_index_cached_or_not(corpus):
    cp = CrystalPairs(corpus, "train", crystal_cfg=_fast(), patch=16)
    a = cp(3, 5)
    assert set(a) == KEYS and a["input"].shape == a["target"].shape == (16, 16, 16)
    assert a["input"].dtype == a["target"].dtype == np.float32
    fresh = pickle.loads(pickle.dumps(cp))  # a new process: empty caches
    assert not fresh._crystals
    b = fresh(3, 5)
    for k in KEYS:
        if isinstance(a[k], np.ndarray):
            assert np.array_equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k
    assert np.array_equal(cp(3, 5)["input"], a["input"])  # served from the cache: the same
    assert not np.array_equal(cp(4, 5)["input"], a["input"])


def test_one_crystal_serves_several_different_patches(corpus):
    cfg = _fast()
    cp = CrystalPairs(corpus, "train", crystal_cfg=cfg, patch=16)
    block = [cfg.crystal_index(i) for i in range(16)]
    assert block == [0, 1] * 4 + [2, 3] * 4  # 2 crystals in flight, 4 patches each
    same = [i for i in range(8) if cfg.crystal_index(i) == 0]
    pairs = [cp(0, i) for i in same]
    assert len({(p["structure"], p["d_input_A"], tuple(p["grid_zyx"])) for p in pairs}) == 1
    assert len({tuple(p["start_zyx"]) for p in pairs}) > 1  # the patches differ
    assert len(cp._crystals) <= max(2, cfg.crystals_in_flight)
    # DataLoader workers whose number divides crystals_in_flight see disjoint crystals
    for workers in (1, 2):
        seen = [{cfg.crystal_index(i) for i in range(w, 64, workers)} for w in range(workers)]
        assert sum(len(s) for s in seen) == len(set().union(*seen))
    one = replace(cfg, patches_per_crystal=1)
    assert [one.crystal_index(i) for i in range(5)] == [0, 1, 2, 3, 4]


def test_patches_wrap_periodically_on_the_target_grid(corpus):
    cfg = _fast(solvent_fraction=0.0)
    cp = CrystalPairs(corpus, "train", crystal_cfg=cfg, patch=16)
    wrapped = 0
    for i in range(8):
        p = cp(1, i)
        c = cp.crystal(1, cfg.crystal_index(i))
        assert list(c["target"].shape) == p["grid_zyx"] and c["input"].shape == c["target"].shape
        assert np.array_equal(p["input"], wrap_patch(c["input"], tuple(p["start_zyx"]), 16))
        assert np.array_equal(p["target"], wrap_patch(c["target"], tuple(p["start_zyx"]), 16))
        wrapped += any(s < 0 or s + 16 > n for s, n in zip(p["start_zyx"], p["grid_zyx"]))
        assert np.corrcoef(p["input"].ravel(), p["target"].ravel())[0, 1] > 0.3
        assert p["d_target_A"] >= max(1.5, 2.2 * p["voxel_size_A"]) - 1e-6 and 2.5 <= p["d_input_A"] <= 3.5
        assert c["meta"]["kind"] in ("refinement", "experimental")
    assert wrapped > 0  # small cells: patches cross the cell edges
    g = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    w = wrap_patch(g, (-2, 4, 6), 8)
    assert w.shape == (8, 8, 8) and w[0, 0, 0] == g[3, 4, 6] and w[2, 2, 1] == g[0, 0, 0]


def test_corpus_cell_is_used_with_its_space_group(corpus):
    cfg = _fast()
    cp = CrystalPairs(corpus, "train", crystal_cfg=cfg, patch=16)
    metas = {}
    for c in range(12):
        cr = cp.crystal(0, c)
        metas.setdefault(cr["structure"], cr["meta"])
    assert metas["helix0"]["cell_source"] == "CRYST1" and metas["helix0"]["spacegroup"] == "P 21 21 21"
    assert {m["cell_source"] for k, m in metas.items() if k != "helix0"} <= {"packed", "P1 box"}


def test_config_is_recorded_as_json_and_keeps_the_conditioning_rule():
    cfg = CrystalConfig()
    assert cfg.d_input_range_A == (1.5, 4.0) and cfg.conditioning.d_per_voxel == 2.5
    rule = cfg.conditioning
    assert rule.grid_voxel_A(1.9) == pytest.approx(0.76) and rule.default_target_A(1.9, 0.76) == pytest.approx(1.672)
    record = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(cfg).items()}  # as densharp train records it
    text = json.dumps(record, allow_nan=False)
    back = CrystalConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(text).items()})
    assert back == cfg and hash(back) == hash(cfg)
    old = {"d_input_range_A": [1.8, 4.0], "voxel_A": 1.0, "d_target_min_A": 1.5, "fom_low_range": [0.85, 0.97],
           "fom_high_range": [0.3, 0.6], "missing_fraction_range": [0.0, 0.15], "b_extra_range_A2": [0.0, 0.0],
           "margin_A": 4.0, "solvent_fraction": 0.05}  # fmt: skip
    assert CrystalConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in old.items()}).voxel_A == 1.0
    assert "k_sol_range" in asdict(cfg)
    with pytest.raises(Exception, match="patches_per_crystal"):
        CrystalConfig(patches_per_crystal=0)
    with pytest.raises(Exception, match="range"):
        CrystalConfig(k_sol_range=(0.4, 0.3))
