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


class TrainingValidation:
    """The evaluation ``densharp train`` runs at every ``eval_interval``.

    Simulated patches, perturbed boxes and real maps, the last two through the user's sharpening path with the
    model in training. Call it with the model; it returns flat floats for the training log (``rscc*`` of the simulated patches,
    ``perturbed_*``, ``real_*`` and ``select``, the mean of the three groups' scores that picks ``best.pt``), and
    keeps the full records of the last call in :attr:`details`.

    Parameters
    ----------
    sim_cases, predict
        :func:`make_validation_set` cases and the patch predictor (see :func:`evaluate_fn`).
    perturbed
        :func:`densharp.evaluate.perturbed.make_perturbed_set` items (may be empty).
    real_cases
        :class:`densharp.evaluate.realdata.RealCase` s with a fitted model (may be empty).
    sharpen_em, sharpen_mtz
        ``model -> fn``: the user's path with that model, for maps (``fn(map, d_A, d_target_A)``) and MTZ files
        (``fn(mtz_path, d_A)``).
    """

    def __init__(
        self,
        sim_cases: list[dict[str, Any]],
        predict: Callable[[Any, dict[str, Any]], np.ndarray],
        perturbed: list[dict[str, Any]],
        real_cases: list[Any],
        sharpen_em: Callable[[Any], Callable[..., Any]],
        sharpen_mtz: Callable[[Any], Callable[..., Any]],
    ) -> None:
        self.sim = evaluate_fn(sim_cases, predict)
        self.perturbed = perturbed
        self.real_cases = real_cases
        self.sharpen_em = sharpen_em
        self.sharpen_mtz = sharpen_mtz
        self.details: dict[str, Any] = {}

    def __call__(self, model: Any) -> dict[str, float]:
        """Validate ``model`` (in eval mode, called by the training loop)."""
        out = self.sim(model)
        groups = [out["rscc"]]
        self.details = {}
        if self.perturbed:
            from densharp.evaluate.perturbed import score_perturbed

            em = self.sharpen_em(model)
            res = score_perturbed(self.perturbed, lambda m, d: em(m, d, None))
            for name, s in res["summary"].items():
                out[f"perturbed_{name}"] = s["rscc"]
            out["perturbed_rscc"] = float(np.mean([s["rscc"] for s in res["summary"].values()]))
            out["perturbed_identity"] = float(np.mean([s["rscc_identity"] for s in res["summary"].values()]))
            out["perturbed_max_drop"] = float(res["max_drop"])
            out["perturbed_below_identity"] = float(len(res["below_identity"]))
            groups.append(out["perturbed_rscc"])
            self.details["perturbed"] = {k: v for k, v in res.items() if k != "rows"} | {"rows": res["rows"]}
        if self.real_cases:
            groups.append(self._real(model, out))
        out["select"] = float(np.mean(groups))
        return out

    def _real(self, model: Any, out: dict[str, float]) -> float:
        from densharp.errors import DensharpError
        from densharp.evaluate.realdata import score_em_case, score_xray_case

        scores, recs = [], []
        for case in self.real_cases:
            try:
                rec = self._score_real(case, model, score_em_case, score_xray_case)
            except DensharpError as exc:  # one unreadable case must not end a training run
                recs.append({"case": case.name, "error": str(exc)})
                continue
            if case.kind == "em":
                r, i = rec["methods"].get("model", {}), rec["methods"]["input"]
                r_d = rec["methods"].get("model@d", {})
                if "rscc_restore" in r and "rscc_restore" in r_d:
                    out[f"real_{case.name}_restore"] = r_d["rscc_restore"]
                    out[f"real_{case.name}_super"] = r["rscc_super"]
                    out[f"real_{case.name}_input_restore"] = i["rscc_restore"]
                    out[f"real_{case.name}_input_super"] = i["rscc_super"]
                    out[f"real_{case.name}_consistent"] = float(bool(r.get("consistency", {}).get("is_consistent")))
                    # the margin over the unchanged map, the harder of the two scores
                    scores.append(min(r_d["rscc_restore"] - i["rscc_restore"], r["rscc_super"] - i["rscc_super"]))
            else:
                for run in rec.get("runs", []):
                    r, i = run["methods"].get("model", {}), run["methods"]["input"]
                    key = next((k for k in ("rscc_data_full", "rscc_model_restore") if k in r), None)
                    if key is None:
                        continue
                    out[f"real_{case.name}_{run['d_A']:g}"] = r[key]
                    out[f"real_{case.name}_{run['d_A']:g}_input"] = i[key]
                    scores.append(r[key] - i[key])
            recs.append(rec)
        self.details["real"] = recs
        if scores:
            out["real_margin"] = float(np.mean(scores))
            # select on the model's margin over the input, mapped onto the simulated score's scale
            return out["rscc"] + out["real_margin"]
        return out["rscc"]

    def _score_real(self, case: Any, model: Any, score_em: Any, score_xray: Any) -> dict[str, Any]:
        if case.kind == "em":
            em = self.sharpen_em(model)
            # the default target (scored at the finer resolution) and the map's own resolution (scored there)
            methods = {"model": em, "model@d": lambda m, d, d_t=None: em(m, d, d)}
            return score_em(case, methods, keep_slices=False)
        return score_xray(case, {"model": self.sharpen_mtz(model)}, keep_slices=False)
