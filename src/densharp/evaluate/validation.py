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


#: edges of the relative-resolution bins ``u = d_input / d`` the extrapolation gain is measured in
GAIN_U_EDGES: tuple[float, ...] = (1.0, 1.1, 1.25, 1.4, 1.6, 1.8, 2.0, 2.5)
#: largest extrapolation gain used (see :func:`extrapolation_gain`)
MAX_GAIN = 2.0


def extrapolation_gain(crystals: list[dict[str, Any]], predict: Callable[..., DensityMap]) -> list[list[float]]:
    """The least-squares gain of a model's reflections beyond the data's resolution, per ``u = d_input / d``.

    For simulated crystals (``cell_map``, ``target_map``, ``d_input_A``, ``d_target_A``), ``predict(map, d_in,
    d_t)`` gives the model's map of the cell; in each ``u`` bin with ``d_target <= d < d_input`` the gain is
    ``Σ Re(F_model · conj F_true) / Σ |F_model|²`` (clipped to [0, 2]; above 1 where the network's extrapolation is
    correct but too weak, as regression to the mean makes it): the weight that makes the extrapolated
    reflections closest to the truth (:mod:`densharp.reflections` multiplies them by it). Returns ``(u, g)`` rows.
    """
    from densharp.fourier import map_frequency_grid_invA, rfft_map

    edges = np.asarray(GAIN_U_EDGES)
    num = np.zeros(len(edges) - 1)
    den = np.zeros(len(edges) - 1)
    for c in crystals:
        out = predict(c["cell_map"], c["d_input_A"], c["d_target_A"])
        f_o, f_t = rfft_map(out.data_zyx), rfft_map(c["target_map"].data_zyx)
        s = map_frequency_grid_invA(c["target_map"])
        u = c["d_input_A"] * s
        ok = (u >= 1.0) & (s <= 1.0 / c["d_target_A"])
        k = np.digitize(u[ok], edges) - 1
        valid = (k >= 0) & (k < len(num))
        fo, ft = f_o[ok][valid], f_t[ok][valid]
        num += np.bincount(k[valid], weights=(fo * np.conj(ft)).real, minlength=len(num))[: len(num)]
        den += np.bincount(k[valid], weights=np.abs(fo) ** 2, minlength=len(num))[: len(num)]
    mids = 0.5 * (edges[:-1] + edges[1:])
    rows = [[float(u), float(np.clip(n / d, 0.0, MAX_GAIN))] for u, n, d in zip(mids, num, den) if d > 0]
    return [[1.0, rows[0][1]], *rows] if rows else []


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
        The user's path with a model, for maps (``model -> fn(map, d_A, d_target_A)``) and MTZ files
        (``(model, gain table) -> fn(mtz_path, d_A)``).
    calibration
        X-ray: simulated crystals and ``model -> predict(map, d_in, d_t)`` (the model's raw cell map) for
        :func:`extrapolation_gain`, measured at every call and used for the real MTZ cases.
    """

    def __init__(
        self,
        sim_cases: list[dict[str, Any]],
        predict: Callable[[Any, dict[str, Any]], np.ndarray],
        perturbed: list[dict[str, Any]],
        real_cases: list[Any],
        sharpen_em: Callable[[Any], Callable[..., Any]],
        sharpen_mtz: Callable[[Any, Any], Callable[..., Any]],
        calibration: tuple[list[dict[str, Any]], Callable[[Any], Callable[..., DensityMap]]] | None = None,
    ) -> None:
        self.sim = evaluate_fn(sim_cases, predict)
        self.perturbed = perturbed
        self.real_cases = real_cases
        self.sharpen_em = sharpen_em
        self.sharpen_mtz = sharpen_mtz
        self.calibration = calibration
        self.gain: list[list[float]] | None = None
        self.details: dict[str, Any] = {}

    def __call__(self, model: Any) -> dict[str, float]:
        """Validate ``model`` (in eval mode, called by the training loop)."""
        out = self.sim(model)
        groups = [out["rscc"]]
        self.details = {}
        if self.calibration is not None:  # X-ray: how much of the model's extrapolation to trust, measured now
            crystals, predictor = self.calibration
            self.gain = extrapolation_gain(crystals, predictor(model))
            for u, g in self.gain:
                out[f"xgain_u{u:.3f}"] = g
            self.details["extrapolation_gain"] = self.gain
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
                    r = run["methods"].get("model", {})
                    i = r.get("input_on_this_grid") or run["methods"]["input"]  # the same grid and references
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
        return score_xray(case, {"model": self.sharpen_mtz(model, self.gain)}, keep_slices=False)
