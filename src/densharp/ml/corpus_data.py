"""Training pairs and validation from a structure corpus (``densharp corpus fetch --to DIR``).

:class:`CorpusPairs` is a picklable ``pair_fn(seed, index) -> dict`` for :func:`densharp.ml.train.train`: it picks
a family (manifest ``cluster``) uniformly, then a structure of that family uniformly, simulates a pair with
:func:`densharp.simulate.pairs.make_pair` and cuts a patch with :func:`~densharp.simulate.pairs.random_patch`, all
from ``(seed, index)`` alone. Structures are loaded lazily in each process (DataLoader workers, DDP ranks) and kept
as :class:`~densharp.simulate.density.PreparedModel` in a small per-process cache.

:func:`make_validation_set` draws a fixed set of validation patches, spread over the resolution bins of
:data:`RESOLUTION_BINS_A`, and :func:`evaluate_fn` turns it into the ``evaluate(model)`` callback of ``train``:
masked RSCC against the target of the model's output, of the input itself (identity) and of auto-B sharpening.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from densharp.errors import InputError
from densharp.simulate.pairs import PairConfig, make_pair, random_patch

#: validation resolution bins (Å, d_input), reported as ``rscc_bin_<lo>-<hi>``
RESOLUTION_BINS_A: tuple[tuple[float, float], ...] = ((2.5, 3.5), (3.5, 5.0), (5.0, 8.0))


def bin_name(lo: float, hi: float) -> str:
    """``3.5-5`` style label of a resolution bin."""
    return f"{lo:g}-{hi:g}"


def read_corpus_manifest(corpus_dir: str | os.PathLike[str], split: str) -> list[dict[str, Any]]:
    """Entries of ``split`` in ``corpus_dir/manifest.json`` whose structure file exists, sorted by name.

    Each item has ``name``, ``cluster``, ``path`` (absolute) and ``atoms``.

    Raises
    ------
    InputError
        No manifest, or no usable structure in that split.
    """
    root = Path(corpus_dir)
    man = root / "manifest.json"
    if not man.is_file():
        raise InputError(f"{man}: corpus manifest not found; make the corpus with 'densharp corpus fetch --to {root}'")
    try:
        entries = json.loads(man.read_text(encoding="utf-8"))["entries"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise InputError(f"{man}: not a corpus manifest (no 'entries'); re-run 'densharp corpus fetch'") from None
    out = []
    for name, e in sorted(entries.items()):
        if e.get("split") != split:
            continue
        path = root / e.get("path", "")
        if path.is_file():
            out.append(
                {"name": name, "cluster": str(e.get("cluster", name)), "path": str(path), "atoms": e.get("atoms")}
            )
    if not out:
        raise InputError(f"{root}: no structure files for split {split!r}; check the corpus (densharp corpus fetch)")
    return out


class CorpusPairs:
    """Picklable pair function over one split of a corpus, balanced by family.

    Parameters
    ----------
    corpus_dir
        Corpus folder (with ``manifest.json`` and ``structures/``).
    split
        ``"train"``, ``"val"`` or ``"test"``.
    pair_cfg
        Simulation ranges; default :class:`PairConfig` with a box of ``patch + 16`` voxels.
    patch
        Patch edge (voxels) returned.
    patch_solvent_fraction
        Probability of a solvent patch in :func:`random_patch`.
    cache_size
        Prepared structures kept per process.
    """

    def __init__(
        self,
        corpus_dir: str | os.PathLike[str],
        split: str = "train",
        pair_cfg: PairConfig | None = None,
        patch: int = 32,
        patch_solvent_fraction: float = 0.1,
        cache_size: int = 16,
    ) -> None:
        self.corpus_dir = str(corpus_dir)
        self.split = split
        self.patch = int(patch)
        if pair_cfg is None:
            pair_cfg = PairConfig(box_zyx=(self.patch + 16,) * 3)
        if min(pair_cfg.box_zyx) < self.patch:
            raise InputError(f"patch {self.patch} is larger than the simulated box {pair_cfg.box_zyx}")
        self.pair_cfg = pair_cfg
        self.patch_solvent_fraction = float(patch_solvent_fraction)
        self.cache_size = int(cache_size)
        self.entries = read_corpus_manifest(corpus_dir, split)
        fams: dict[str, list[int]] = {}
        for i, e in enumerate(self.entries):
            fams.setdefault(e["cluster"], []).append(i)
        self.families = [fams[k] for k in sorted(fams)]
        self._cache: OrderedDict[str, Any] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()  # loaded lazily in each process
        return state

    def describe(self) -> dict[str, Any]:
        """Provenance record for checkpoints and config files."""
        return {
            "corpus_dir": self.corpus_dir,
            "split": self.split,
            "structures": len(self.entries),
            "families": len(self.families),
            "names": [e["name"] for e in self.entries],
            "patch": self.patch,
            "patch_solvent_fraction": self.patch_solvent_fraction,
        }

    def prepared(self, i: int) -> Any:
        """The :class:`PreparedModel` of entry ``i`` (loaded once per process, LRU-cached)."""
        from densharp.simulate.density import PreparedModel
        from densharp.simulate.structure import load_structure

        return self._cached(i, lambda path: PreparedModel(load_structure(path, seed=0)[0]))

    def _cached(self, i: int, load: Any) -> Any:
        """``load(path)`` of entry ``i``, kept in this process's LRU cache of ``cache_size`` entries."""
        name = self.entries[i]["name"]
        if name in self._cache:
            self._cache.move_to_end(name)
            return self._cache[name]
        value = load(self.entries[i]["path"])
        self._cache[name] = value
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return value

    def choose(self, seed: int, index: int) -> int:
        """Entry index for ``(seed, index)``: a uniform family, then a uniform member of it."""
        rng = np.random.default_rng([int(seed), int(index), 0x5EED])
        fam = self.families[int(rng.integers(len(self.families)))]
        return fam[int(rng.integers(len(fam)))]

    def pair(self, seed: int, index: int, pair_cfg: PairConfig | None = None) -> dict[str, Any]:
        """The pair dict, with an optional per-call :class:`PairConfig` (validation bins)."""
        cfg = pair_cfg or self.pair_cfg
        i = self.choose(seed, index)
        sim = make_pair(self.prepared(i), cfg, seed, index)
        rng = np.random.default_rng([int(seed), int(index), 0x9A7C])
        p = random_patch(sim, (self.patch,) * 3, rng, solvent_fraction=self.patch_solvent_fraction)
        return {
            "input": p.input.data_zyx.astype(np.float32),
            "target": p.target.data_zyx.astype(np.float32),
            "d_input_A": float(p.d_input_A),
            "d_target_A": float(p.d_target_A),
            "voxel_size_A": float(p.meta["voxel_size_A"]),
            "structure": self.entries[i]["name"],
        }

    def __call__(self, seed: int, index: int) -> dict[str, Any]:
        """``pair_fn(seed, index)``: see :meth:`pair`."""
        return self.pair(seed, index)


def _density_map(a: np.ndarray, voxel: float) -> Any:
    from densharp.volume import DensityMap

    return DensityMap(np.ascontiguousarray(a, dtype=np.float32), (voxel, voxel, voxel), (0.0, 0.0, 0.0))


def case_mask(target: np.ndarray, voxel: float) -> np.ndarray | None:
    """Molecule mask of a target patch: :func:`auto_molecule_mask`, else mean + 1 SD threshold, else none."""
    from densharp.filters.masks import auto_molecule_mask

    try:
        m = auto_molecule_mask(_density_map(target, voxel))
        if float(m.sum()) > 0:
            return m
    except InputError:
        pass
    thr = float(target.mean() + target.std())
    m = (target >= thr).astype(np.float32)
    return m if m.sum() > 0 else None


def make_validation_set(
    corpus_dir: str | os.PathLike[str],
    split: str = "val",
    n: int = 8,
    patch: int = 32,
    seed: int = 12345,
    pair_cfg: PairConfig | None = None,
) -> list[dict[str, Any]]:
    """``n`` fixed validation cases; case ``k`` draws its input resolution from bin ``k % 3``.

    Each case holds ``input``, ``target``, ``d_input_A``, ``d_target_A``, ``voxel_size_A``, ``structure``,
    ``bin``, the target ``mask`` and the baselines ``rscc_identity`` and ``rscc_autob`` (computed once here).
    """
    src = CorpusPairs(corpus_dir, split, pair_cfg=pair_cfg, patch=patch, patch_solvent_fraction=0.0)
    cases = []
    for k in range(int(n)):
        lo, hi = RESOLUTION_BINS_A[k % len(RESOLUTION_BINS_A)]
        c = src.pair(seed, k, replace(src.pair_cfg, d_input_range_A=(lo, hi), solvent_fraction=0.0))
        cases.append(add_baselines(c, lo, hi))
    return cases


def add_baselines(case: dict[str, Any], bin_lo_A: float, bin_hi_A: float) -> dict[str, Any]:
    """Add ``bin``, the target ``mask`` and the ``rscc_identity``/``rscc_autob`` baselines to a validation case."""
    from densharp.filters.sharpen import sharpen_autob
    from densharp.metrics.rscc import rscc

    v = case["voxel_size_A"]
    mask = case_mask(case["target"], v)
    try:
        sharp = sharpen_autob(_density_map(case["input"], v), max(case["d_input_A"], 2.0 * v)).map.data_zyx
    except InputError:
        sharp = case["input"]  # auto-B could not fit this patch: it leaves the map as is
    case.update(
        bin=bin_name(bin_lo_A, bin_hi_A),
        mask=mask,
        rscc_identity=rscc(case["input"], case["target"], mask),
        rscc_autob=rscc(sharp, case["target"], mask),
    )
    return case


def predict_patch(model: Any, case: dict[str, Any]) -> np.ndarray:
    """Model output for one case: z-score with the input's statistics, predict, invert (training convention)."""
    import torch

    from densharp.ml.data import cond_vector
    from densharp.ml.normalise import apply_zscore, invert_zscore, zscore_stats

    stats = zscore_stats(case["input"])
    dev = next(model.parameters()).device
    x = torch.from_numpy(apply_zscore(case["input"], stats))[None, None].to(dev)
    cond = torch.from_numpy(cond_vector(case["d_input_A"], case["d_target_A"], case["voxel_size_A"]))[None].to(dev)
    with torch.inference_mode():
        y = model.predict(x, cond).float()[0, 0].cpu().numpy()
    return invert_zscore(y, stats)


def evaluate_fn(cases: list[dict[str, Any]]) -> Any:
    """``evaluate(model) -> dict``: mean masked RSCC vs target of model, identity and auto-B, overall and per bin.

    Keys: ``rscc``, ``rscc_identity``, ``rscc_autob`` and, for each bin with cases, ``rscc_bin_<bin>``,
    ``rscc_identity_bin_<bin>``, ``rscc_autob_bin_<bin>``.
    """
    from densharp.metrics.rscc import rscc

    if not cases:
        raise InputError("validation set is empty; use --val-cases >= 1")

    def evaluate(model: Any) -> dict[str, float]:
        was_training = model.training
        model.eval()
        vals = [rscc(predict_patch(model, c), c["target"], c["mask"]) for c in cases]
        model.train(was_training)
        out: dict[str, float] = {}
        groups: list[tuple[str, list[int]]] = [("", list(range(len(cases))))]
        for b in dict.fromkeys(c["bin"] for c in cases):  # bins in order of first appearance (any modality)
            groups.append((f"_bin_{b}", [i for i, c in enumerate(cases) if c["bin"] == b]))
        for suffix, idx in groups:
            out[f"rscc{suffix}"] = float(np.mean([vals[i] for i in idx]))
            out[f"rscc_identity{suffix}"] = float(np.mean([cases[i]["rscc_identity"] for i in idx]))
            out[f"rscc_autob{suffix}"] = float(np.mean([cases[i]["rscc_autob"] for i in idx]))
        return out

    return evaluate
