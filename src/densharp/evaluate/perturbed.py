"""Validation that a simulator cannot fool: held-out structures under the post-processing real maps carry.

Each case is a whole simulated box of a ``val`` structure (:func:`densharp.simulate.pairs.make_pair`, its input
resolution from one bin), degraded once more by each of :data:`PERTURBATIONS` — unfiltered to Nyquist, flattened
and over-sharpened spectra, weak low-resolution terms, solvent masked flat, anisotropic resolution (the same
post-processing the training pairs draw from, here at fixed strengths) and voxels resampled to 0.6 and 1.6 Å — and
sharpened through the user's path (a ``sharpen(map, d_input_A) -> DensityMap`` callable; training passes
:func:`densharp.sharpening.sharpen_map` with the model in training). Every output is scored (masked RSCC against the
target on its own grid) beside the unchanged input (identity) and the global-filter oracle; a perturbation scoring
below identity is flagged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from densharp.evaluate.metrics import target_mask
from densharp.evaluate.table import RESOLUTION_BINS_A, bin_name
from densharp.filters.global_filter import apply_global_filter
from densharp.fourier import fourier_resample
from densharp.metrics.rscc import rscc
from densharp.volume import DensityMap

#: perturbation -> PairConfig fields (fixed strengths), or ``{"voxel_A": v}`` (input and target resampled to v)
PERTURBATIONS: dict[str, dict[str, Any]] = {
    "none": {},
    "unfiltered": {"unfiltered_fraction": 1.0, "noise_floor_range": (0.1, 0.1)},
    "flattened": {"flat_fraction": 1.0},
    "over-sharpened": {"post_b_fraction": 1.0, "post_b_range_A2": (-60.0, -60.0)},
    "weak-low-res": {"low_res_fraction": 1.0, "low_res_gain_range": (0.35, 0.35)},
    "masked": {"mask_fraction": 1.0, "mask_dilate_range_A": (3.0, 3.0), "mask_soft_fraction": 0.0},
    "anisotropic": {"aniso_fraction": 1.0, "aniso_b_range_A2": (100.0, 100.0)},
    "voxel-0.6": {"voxel_A": 0.6},
    "voxel-1.6": {"voxel_A": 1.6},
}

SharpenFn = Callable[[DensityMap, float], DensityMap]


def _resampled(m: DensityMap, voxel_A: float) -> DensityMap:
    shape = tuple(max(8, round(n * v / voxel_A)) for n, v in zip(m.shape_zyx, m.voxel_size_zyx_A))
    vox_zyx = [n * v / nn for n, v, nn in zip(m.shape_zyx, m.voxel_size_zyx_A, shape)]
    data = fourier_resample(m.data_zyx, shape)  # type: ignore[arg-type]
    return DensityMap(data, (vox_zyx[2], vox_zyx[1], vox_zyx[0]), m.origin_xyz_A)


def make_perturbed_set(
    corpus_dir: str | os.PathLike[str],
    n: int = 3,
    box: int = 64,
    seed: int = 777,
    split: str = "val",
    perturbations: tuple[str, ...] = tuple(PERTURBATIONS),
) -> list[dict[str, Any]]:
    """``n`` val-split boxes (case ``k`` from bin ``k % 3``) under every perturbation.

    Each item: ``case`` (structure#k), ``perturbation``, ``bin``, ``d_input_A``, ``input``, ``target`` (maps on one
    grid), ``mask`` and the baselines ``rscc_identity`` and ``rscc_oracle`` (computed once here).
    """
    from densharp.simulate.corpus_pairs import CorpusPairs
    from densharp.simulate.pairs import PairConfig, make_pair

    base = PairConfig(box_zyx=(box,) * 3, voxel_size_range_A=(0.95, 1.05), solvent_fraction=0.0)
    src = CorpusPairs(corpus_dir, split, pair_cfg=base, patch=min(32, box))
    items = []
    for k in range(int(n)):
        lo, hi = RESOLUTION_BINS_A[k % len(RESOLUTION_BINS_A)]
        i = src.choose(seed, k)
        for name in perturbations:
            fields = dict(PERTURBATIONS[name])
            voxel = fields.pop("voxel_A", None)
            cfg = replace(base, d_input_range_A=(lo, hi * 0.999), **fields)
            pair = make_pair(src.prepared(i), cfg, seed, k)
            inp, tgt, d = pair.input, pair.target, float(pair.d_input_A)
            if voxel is not None:  # a coarser grid cannot state a resolution finer than 2.2 of its voxels
                inp, tgt, d = _resampled(inp, voxel), _resampled(tgt, voxel), max(d, 2.2 * voxel)
            mask, _ = target_mask(tgt)
            items.append(
                {
                    "case": f"{src.entries[i]['name']}#{k}",
                    "perturbation": name,
                    "bin": bin_name(lo, hi),
                    "d_input_A": d,
                    "input": inp,
                    "target": tgt,
                    "mask": mask,
                    "rscc_identity": rscc(inp, tgt, mask),
                    "rscc_oracle": rscc(apply_global_filter(inp, tgt), tgt, mask),
                }
            )
    return items


def score_perturbed(items: list[dict[str, Any]], sharpen: SharpenFn) -> dict[str, Any]:
    """Sharpen every item and score it.

    Returns per-item rows, per-perturbation means (method, identity, oracle), the cases scoring below identity and
    the largest drop of a perturbation from the unperturbed score of its case.
    """
    rows = []
    for it in items:
        out = sharpen(it["input"], it["d_input_A"])
        it["input"].check_same_grid(out, "the perturbed input and its output")
        rows.append(
            {
                "case": it["case"],
                "perturbation": it["perturbation"],
                "bin": it["bin"],
                "rscc": rscc(out, it["target"], it["mask"]),
                "rscc_identity": it["rscc_identity"],
                "rscc_oracle": it["rscc_oracle"],
            }
        )
    clean = {r["case"]: r["rscc"] for r in rows if r["perturbation"] == "none"}
    summary: dict[str, Any] = {}
    for name in dict.fromkeys(r["perturbation"] for r in rows):
        sel = [r for r in rows if r["perturbation"] == name]
        summary[name] = {k: float(np.mean([r[k] for r in sel])) for k in ("rscc", "rscc_identity", "rscc_oracle")}
        summary[name]["drop_from_unperturbed_max"] = max(
            (clean[r["case"]] - r["rscc"] for r in sel if r["case"] in clean), default=0.0
        )
    below = [f"{r['case']} {r['perturbation']}" for r in rows if r["rscc"] < r["rscc_identity"]]
    return {
        "rows": rows,
        "summary": summary,
        "below_identity": below,
        "max_drop": max(s["drop_from_unperturbed_max"] for s in summary.values()),
    }


def format_perturbed(result: dict[str, Any]) -> str:
    """Plain-text table of :func:`score_perturbed` output."""
    lines = [f"{'perturbation':<16}{'model':>8}{'identity':>10}{'oracle':>8}{'max drop':>10}"]
    for name, s in result["summary"].items():
        lines.append(
            f"{name:<16}{s['rscc']:8.4f}{s['rscc_identity']:10.4f}{s['rscc_oracle']:8.4f}"
            f"{s['drop_from_unperturbed_max']:10.4f}"
        )
    below = result["below_identity"]
    lines.append("below identity: " + (", ".join(below) if below else "none"))
    return "\n".join(lines)
