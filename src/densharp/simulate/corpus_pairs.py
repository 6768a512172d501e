"""Training pairs from a structure corpus (``densharp corpus fetch --to DIR``) as a reproducible stream.

:class:`CorpusPairs` is a picklable ``pair_fn(seed, index) -> dict`` for :func:`densharp.ml.train.train`: it picks
a family (manifest ``cluster``) uniformly, then a structure of that family uniformly, simulates a pair with
:func:`densharp.simulate.pairs.make_pair` and cuts a patch with :func:`~densharp.simulate.pairs.random_patch`, all
from ``(seed, index)`` alone. Structures are loaded lazily in each process (DataLoader workers, DDP ranks) and kept
as :class:`~densharp.simulate.density.PreparedModel` in a small per-process cache.

A pair dict holds ``input`` and ``target`` (z, y, x) float32 patches, ``d_input_A``, ``d_target_A``,
``voxel_size_A``, ``structure`` and ``norm_box`` (:class:`~densharp.normalisation.NormStats` of the whole simulated
input box, the statistics a per-map model normalises with, as at inference; ``None`` for boxes centred in
solvent). The input has been through
:func:`densharp.conditioning.prefilter_input`, as at inference.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from densharp.conditioning import prefilter_input
from densharp.errors import InputError
from densharp.normalisation import NormKind, map_norm_stats
from densharp.simulate.pairs import PairConfig, SimPair, make_pair, random_patch

#: environment variable naming the corpus folder for benchmarks and scripts (no machine-specific default)
CORPUS_ENV = "DENSHARP_CORPUS"


def corpus_root(path: str | os.PathLike[str] | None) -> Path:
    """The corpus folder: ``path`` if given, else ``$DENSHARP_CORPUS``.

    Raises
    ------
    InputError
        Neither is set.
    """
    if path is not None:
        return Path(path)
    env = os.environ.get(CORPUS_ENV)
    if not env:
        raise InputError(
            f"no corpus given: pass --corpus DIR or set {CORPUS_ENV} (make one with 'densharp corpus fetch')"
        )
    return Path(env)


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
        return training_item(sim, self.patch, self.patch_solvent_fraction, rng) | {"structure": self.entries[i]["name"]}

    def __call__(self, seed: int, index: int) -> dict[str, Any]:
        """``pair_fn(seed, index)``: see :meth:`pair`."""
        return self.pair(seed, index)


def training_item(sim: SimPair, patch: int, solvent_fraction: float, rng: np.random.Generator) -> dict[str, Any]:
    """The pair dict of a simulated box: the input as a model sees it at inference, normalised the same way.

    The whole box's input goes through :func:`~densharp.conditioning.prefilter_input` and its ``robust-map``
    statistics are taken (:func:`~densharp.normalisation.map_norm_stats`, what inference computes on a whole map);
    then a patch is cut. A box centred in solvent has no molecule to take the scale from: its ``norm_box`` is
    ``None`` (such pairs are normalised per patch).
    """
    sim = replace(sim, input=prefilter_input(sim.input, sim.d_input_A))
    norm = None if sim.meta.get("is_solvent_box") else map_norm_stats(sim.input, NormKind.ROBUST_MAP)
    p = random_patch(sim, (patch,) * 3, rng, solvent_fraction=solvent_fraction)
    return {
        "input": p.input.data_zyx.astype(np.float32),
        "target": p.target.data_zyx.astype(np.float32),
        "d_input_A": float(p.d_input_A),
        "d_target_A": float(p.d_target_A),
        "voxel_size_A": float(p.meta["voxel_size_A"]),
        "norm_box": norm,
    }
