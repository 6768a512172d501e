"""Validation during training: fixed simulated patches of held-out structures, scored against their targets.

:func:`make_validation_set` draws ``n`` fixed patches of the ``val`` split, spread over the resolution bins of the
modality (:data:`densharp.evaluate.table.RESOLUTION_BINS_A` or :data:`~densharp.evaluate.table.XRAY_RESOLUTION_BINS_A`),
with the target's molecule mask (:func:`densharp.evaluate.metrics.target_mask`) and the identity and auto-B baselines
computed once by the registered methods (:mod:`densharp.evaluate.methods`). :func:`evaluate_fn` turns the set into
the ``evaluate(model)`` callback of :func:`densharp.ml.train.train`: mean masked RSCC of the model, identity and
auto-B, overall and per bin.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from densharp.errors import InputError
from densharp.evaluate.methods import run_method
from densharp.evaluate.metrics import target_mask
from densharp.evaluate.table import RESOLUTION_BINS_A, XRAY_RESOLUTION_BINS_A, bin_name
from densharp.metrics.rscc import rscc
from densharp.modality import Modality
from densharp.volume import DensityMap


def _patch_map(a: np.ndarray, voxel_A: float) -> DensityMap:
    return DensityMap(np.ascontiguousarray(a, dtype=np.float32), (voxel_A,) * 3, (0.0, 0.0, 0.0))


def make_validation_set(
    corpus_dir: str | os.PathLike[str],
    modality: Modality | str = Modality.EM,
    split: str = "val",
    n: int = 8,
    patch: int = 32,
    seed: int = 12345,
    pair_cfg: Any = None,
) -> list[dict[str, Any]]:
    """``n`` fixed validation cases; case ``k`` draws its input resolution from bin ``k % n_bins``.

    ``pair_cfg`` is a :class:`~densharp.simulate.pairs.PairConfig` (EM) or
    :class:`~densharp.simulate.crystal_pairs.CrystalConfig` (X-ray); bins outside its input range are clipped to
    it. Each case is a pair dict plus ``bin``, ``mask`` and the baselines ``rscc_identity`` and ``rscc_autob``.
    """
    from densharp.simulate.corpus_pairs import CorpusPairs
    from densharp.simulate.crystal_pairs import CrystalConfig, CrystalPairs
    from densharp.simulate.pairs import PairConfig

    mod = Modality.parse(modality)
    src: Any
    if mod is Modality.XRAY:
        base = replace(pair_cfg or CrystalConfig(), solvent_fraction=0.0)
        src = CrystalPairs(corpus_dir, split, crystal_cfg=base, patch=patch)
        bins_all = XRAY_RESOLUTION_BINS_A
    else:
        base = replace(pair_cfg or PairConfig(box_zyx=(patch + 16,) * 3), solvent_fraction=0.0)
        src = CorpusPairs(corpus_dir, split, pair_cfg=base, patch=patch, patch_solvent_fraction=0.0)
        bins_all = RESOLUTION_BINS_A
    lo_r, hi_r = base.d_input_range_A
    bins = [(max(lo, lo_r), min(hi, hi_r)) for lo, hi in bins_all if lo < hi_r and hi > lo_r] or [(lo_r, hi_r)]
    cases = []
    for k in range(int(n)):
        lo, hi = bins[k % len(bins)]
        cases.append(add_baselines(src.pair(seed, k, replace(base, d_input_range_A=(lo, hi))), lo, hi))
    return cases


def add_baselines(case: dict[str, Any], bin_lo_A: float, bin_hi_A: float) -> dict[str, Any]:
    """Add ``bin``, the target ``mask`` and the ``rscc_identity``/``rscc_autob`` baselines to a validation case."""
    v = float(case["voxel_size_A"])
    inp, tgt = _patch_map(case["input"], v), _patch_map(case["target"], v)
    mask, _ = target_mask(tgt)
    scores = {}
    for name in ("identity", "autob"):
        out = run_method(name, inp, float(case["d_input_A"])).map
        assert out is not None
        scores[name] = rscc(out, tgt, mask)
    case.update(
        bin=bin_name(bin_lo_A, bin_hi_A), mask=mask, rscc_identity=scores["identity"], rscc_autob=scores["autob"]
    )
    return case


def evaluate_fn(cases: list[dict[str, Any]], predict: Callable[[Any, dict[str, Any]], np.ndarray]) -> Any:
    """``evaluate(model) -> dict``: mean masked RSCC vs target of model, identity and auto-B, overall and per bin.

    ``predict(model, case)`` returns the model's output for a case in map units (the training loop passes
    :func:`densharp.ml.sharpen.predict_patch`, which normalises as the model was trained). Keys: ``rscc``,
    ``rscc_identity``, ``rscc_autob`` and, for each bin with cases, ``rscc_bin_<bin>``,
    ``rscc_identity_bin_<bin>``, ``rscc_autob_bin_<bin>``.
    """
    if not cases:
        raise InputError("validation set is empty; use --val-cases >= 1")

    def evaluate(model: Any) -> dict[str, float]:
        vals = [rscc(predict(model, c), c["target"], c["mask"]) for c in cases]
        out: dict[str, float] = {}
        groups: list[tuple[str, list[int]]] = [("", list(range(len(cases))))]
        for b in dict.fromkeys(c["bin"] for c in cases):  # bins in order of first appearance
            groups.append((f"_bin_{b}", [i for i, c in enumerate(cases) if c["bin"] == b]))
        for suffix, idx in groups:
            out[f"rscc{suffix}"] = float(np.mean([vals[i] for i in idx]))
            out[f"rscc_identity{suffix}"] = float(np.mean([cases[i]["rscc_identity"] for i in idx]))
            out[f"rscc_autob{suffix}"] = float(np.mean([cases[i]["rscc_autob"] for i in idx]))
        return out

    return evaluate
