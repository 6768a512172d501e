"""Hallucination checks: does a method paint density where the input has none.

**Omit test.** Part of the model is removed (one chain, or for a single-chain model a contiguous ~20 % of its
residues), the input map is simulated from the rest (blurred, with half-map noise), the method sharpens it, and

    invention score = (mean output in the omitted region − solvent baseline) / (mean output on the kept part − baseline)

0 means nothing was invented, 1 means density of full strength appeared where only the removed atoms were. Regions
come from atom positions on the map grid: *omitted* = within ``near_A`` (1.5 Å) of a removed atom and more than
``far_A`` (3 Å) from every kept atom; *kept* = within ``near_A`` of a kept atom and more than ``far_A`` from every
removed atom; *solvent* (baseline) = more than ``solvent_A`` (5 Å) from every atom.

**Noise tests.** A pure-noise input (white noise, low-passed at the input resolution) and a solvent-only input (the
half-map noise of the omit case without its signal) → output SD / input SD (near 0: suppressed, 1: passed through,
> 1: amplified).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gemmi
import numpy as np
from scipy.spatial import cKDTree

from densharp.conditioning import ConditioningRule
from densharp.errors import InputError
from densharp.evaluate.methods import run_method
from densharp.fourier import lowpass
from densharp.simulate.degrade import add_half_map_noise
from densharp.simulate.density import simulate_map
from densharp.volume import DensityMap

HALLUCINATION_SCHEMA = "densharp.hallucination/1"


def _xyz(st: gemmi.Structure) -> np.ndarray:
    return np.array([a.pos.tolist() for ch in st[0] for r in ch for a in r], dtype=np.float64).reshape(-1, 3)


def split_structure(
    st: gemmi.Structure, omit_chain: str | None = None, fraction: float = 0.2
) -> tuple[gemmi.Structure, gemmi.Structure, str]:
    """Split the first model into ``(kept, removed, description)``.

    With ``omit_chain`` that chain is removed; otherwise, with several chains, the last one; with one chain, the
    contiguous ``fraction`` of its residues centred in the middle of the chain.
    """
    chains = [ch.name for ch in st[0] if len(ch) > 0]
    if not chains:
        raise InputError("the model has no residues")
    kept, removed = st.clone(), st.clone()
    for s in (kept, removed):
        while len(s) > 1:
            del s[len(s) - 1]
    if omit_chain is not None or len(chains) > 1:
        name = omit_chain if omit_chain is not None else chains[-1]
        if name not in chains:
            raise InputError(f"chain {name!r} is not in the model (chains: {', '.join(chains)})")
        if len(chains) == 1:
            raise InputError(f"chain {name!r} is the only chain; omit part of it instead (leave out --omit)")
        for i in reversed(range(len(kept[0]))):
            if kept[0][i].name == name:
                del kept[0][i]
        for i in reversed(range(len(removed[0]))):
            if removed[0][i].name != name:
                del removed[0][i]
        desc = f"chain {name} removed ({sum(len(ch) for ch in removed[0])} residues)"
    else:
        n = len(kept[0][0])
        k = max(1, round(fraction * n))
        a = max(0, (n - k) // 2)
        del kept[0][0][a : a + k]
        rch = removed[0][0]
        del rch[a + k :]
        del rch[:a]
        desc = f"chain {chains[0]} residues {a + 1}-{a + k} of {n} removed (contiguous {k / n:.0%})"
    if not _xyz(kept).size or not _xyz(removed).size:
        raise InputError("the split left no atoms on one side; choose another chain")
    return kept, removed, desc


def distance_to_atoms(m: DensityMap, xyz_A: np.ndarray, upper_A: float = 20.0) -> np.ndarray:
    """Distance (Å) from every voxel centre of ``m`` to the nearest atom (capped at ``upper_A``), shape (z, y, x)."""
    nz, ny, nx = m.shape_zyx
    vx, vy, vz = m.voxel_size_xyz_A
    ox, oy, oz = m.origin_xyz_A
    z, y, x = np.meshgrid(oz + vz * np.arange(nz), oy + vy * np.arange(ny), ox + vx * np.arange(nx), indexing="ij")
    pts = np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)
    d, _ = cKDTree(xyz_A).query(pts, k=1, distance_upper_bound=upper_A)
    return np.minimum(d, upper_A).reshape(nz, ny, nx)


@dataclass
class OmitCase:
    """Everything an omit test needs, on one grid.

    ``input`` (and ``half1``/``half2``) are simulated from the kept atoms only; ``target`` is the kept atoms at
    ``d_target_A``; ``removed_signal`` is what the removed atoms would have added to the input (for fake methods
    and checks); the boolean regions define the invention score.
    """

    input: DensityMap
    half1: DensityMap
    half2: DensityMap
    target: DensityMap
    noise_only: tuple[DensityMap, DensityMap, DensityMap]
    removed_signal: DensityMap
    omitted_region: np.ndarray
    kept_region: np.ndarray
    solvent_region: np.ndarray
    d_input_A: float
    description: str


def make_omit_case(
    st: gemmi.Structure,
    d_input_A: float,
    voxel_size_A: float = 1.0,
    omit_chain: str | None = None,
    fraction: float = 0.2,
    b_extra_A2: float = 50.0,
    padding_A: float = 8.0,
    seed: int = 0,
    near_A: float = 1.5,
    far_A: float = 3.0,
    solvent_A: float = 5.0,
    max_box: int = 96,
) -> OmitCase:
    """Simulate the omit test for ``st`` (see module docstring); the box holds the whole model plus ``padding_A``."""
    kept, removed, desc = split_structure(st, omit_chain, fraction)
    xyz_all, xyz_k, xyz_r = _xyz(st), _xyz(kept), _xyz(removed)
    lo, hi = xyz_all.min(axis=0), xyz_all.max(axis=0)
    n_xyz = np.ceil((hi - lo + 2 * padding_A) / voxel_size_A).astype(int)
    n_xyz += n_xyz % 2
    if n_xyz.max() > max_box:
        raise InputError(
            f"the model needs a {tuple(int(v) for v in n_xyz)} box at {voxel_size_A} Å (limit {max_box}); "
            "use a smaller model, a larger voxel or omit from a smaller structure"
        )
    shape = (int(n_xyz[2]), int(n_xyz[1]), int(n_xyz[0]))
    centre = (lo + hi) / 2
    v = float(voxel_size_A)
    d_t = ConditioningRule().default_target_A(d_input_A, v)  # the cryo-EM models' default target

    def sim(s: gemmi.Structure, d: float, b: float) -> DensityMap:
        return simulate_map(s, v, d, b, padding_A=padding_A, shape_zyx=shape, center_xyz_A=centre)

    target = sim(kept, d_t, 0.0)
    signal = sim(kept, 2.2 * v, b_extra_A2)
    rng = np.random.default_rng(seed)
    full, h1, h2 = add_half_map_noise(signal, d_input_A, rng, cut_factor=1.0)
    sig_lp = lowpass(signal, d_input_A)
    noise_only = (
        full.with_data(full.data_zyx - sig_lp.data_zyx),
        h1.with_data(h1.data_zyx - signal.data_zyx),
        h2.with_data(h2.data_zyx - signal.data_zyx),
    )
    removed_signal = lowpass(sim(removed, 2.2 * v, b_extra_A2), d_input_A)
    dk = distance_to_atoms(full, xyz_k)
    dr = distance_to_atoms(full, xyz_r)
    omitted = (dr <= near_A) & (dk > far_A)
    kept_reg = (dk <= near_A) & (dr > far_A)
    solvent = (dk > solvent_A) & (dr > solvent_A)
    for name, reg in (("omitted", omitted), ("kept", kept_reg), ("solvent", solvent)):
        if not reg.any():
            raise InputError(f"the {name} region of the omit test is empty; use a larger part or more padding")
    return OmitCase(
        full, h1, h2, target, noise_only, removed_signal, omitted, kept_reg, solvent, float(d_input_A), desc
    )


def invention_score(out: DensityMap | np.ndarray, case: OmitCase) -> dict[str, float]:
    """Invention score of an output map on ``case``'s regions, with the three region means."""
    d = np.asarray(out.data_zyx if isinstance(out, DensityMap) else out, dtype=np.float64)
    base = float(d[case.solvent_region].mean())
    om = float(d[case.omitted_region].mean()) - base
    kp = float(d[case.kept_region].mean()) - base
    score = om / kp if kp > 0 else float("nan")
    return {"invention_score": score, "omitted_minus_solvent": om, "kept_minus_solvent": kp, "solvent_mean": base}


def pure_noise_input(like: DensityMap, d_A: float, seed: int = 0) -> tuple[DensityMap, DensityMap, DensityMap]:
    """White Gaussian noise low-passed at ``d_A`` (and two independent halves whose mean it is), SD of ``like``."""
    rng = np.random.default_rng([seed, 1])
    sd = float(like.data_zyx.std())
    halves = []
    for _ in range(2):
        n = lowpass(like.with_data(rng.standard_normal(like.shape_zyx).astype(np.float32)), d_A)
        halves.append(n.with_data(n.data_zyx * (sd * np.sqrt(2) / max(float(n.data_zyx.std()), 1e-12))))
    full = like.with_data(0.5 * (halves[0].data_zyx + halves[1].data_zyx))
    return full, halves[0], halves[1]


def _sd_ratio(name: str, inp: DensityMap, halves: tuple[DensityMap, DensityMap], target: DensityMap, d: float) -> Any:
    res = run_method(name, inp, d, half_maps=halves, target=target)
    if res.map is None:
        return None
    return round(float(res.map.data_zyx.std()) / max(float(inp.data_zyx.std()), 1e-12), 4)


def hallucination_check(case: OmitCase, methods: list[str], seed: int = 0) -> dict[str, Any]:
    """Invention score and noise-test SD ratios of every method on ``case`` (JSON-ready).

    The ``global-filter`` oracle is fitted against the kept-atoms target (the truth of this input).
    """
    noise = pure_noise_input(case.input, case.d_input_A, seed)
    out: dict[str, Any] = {
        "schema": HALLUCINATION_SCHEMA,
        "omitted": case.description,
        "d_input_A": round(case.d_input_A, 4),
        "regions_voxels": {
            "omitted": int(case.omitted_region.sum()),
            "kept": int(case.kept_region.sum()),
            "solvent": int(case.solvent_region.sum()),
        },
        "input": {k: round(v, 6) for k, v in invention_score(case.input, case).items()},
        "methods": {},
    }
    for name in methods:
        res = run_method(name, case.input, case.d_input_A, half_maps=(case.half1, case.half2), target=case.target)
        if res.map is None:
            out["methods"][name] = {"skipped": res.skipped}
            continue
        rec: dict[str, Any] = {k: round(v, 6) for k, v in invention_score(res.map, case).items()}
        rec["pure_noise_sd_ratio"] = _sd_ratio(name, noise[0], (noise[1], noise[2]), case.target, case.d_input_A)
        n0, n1, n2 = case.noise_only
        rec["solvent_only_sd_ratio"] = _sd_ratio(name, n0, (n1, n2), case.target, case.d_input_A)
        rec["runtime_s"] = round(res.runtime_s, 4)
        out["methods"][name] = rec
    return out


def format_hallucination(rec: dict[str, Any]) -> str:
    """Plain-text table of :func:`hallucination_check` output."""
    lines = [
        f"omit test: {rec['omitted']}; input resolution {rec['d_input_A']:g} Å",
        f"input itself: invention score {rec['input']['invention_score']:.3f}",
        f"{'method':<16}{'invention':>11}{'noise SD ratio':>16}{'solvent SD ratio':>18}",
    ]
    for name, r in rec["methods"].items():
        if r.get("skipped") is not None:
            lines.append(f"{name:<16}skipped: {r['skipped']}")
            continue

        def f(v: Any, w: int) -> str:
            return f"{'-':>{w}}" if v is None else f"{v:>{w}.3f}"

        lines.append(
            f"{name:<16}{f(r['invention_score'], 11)}{f(r['pure_noise_sd_ratio'], 16)}"
            f"{f(r['solvent_only_sd_ratio'], 18)}"
        )
    lines.append("invention: 0 = nothing painted where atoms were removed, 1 = full-strength density invented")
    return "\n".join(lines)
