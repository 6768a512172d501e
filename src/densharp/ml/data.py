"""Training pairs as a reproducible stream: :class:`PairDataset` wraps a simulator function.

A *pair function* ``pair_fn(seed: int, index: int) -> dict`` returns one training pair: ``input`` and
``target`` (z, y, x) float32 patches of the same shape, floats ``d_input_A``, ``d_target_A`` (resolutions, Å) and
``voxel_size_A`` (Å), and optionally ``norm_box`` (:class:`~densharp.normalisation.NormStats` of the whole map the
patch was cut from, which a per-map model normalises with). It must be deterministic in ``(seed, index)`` and
picklable (a module-level function or a :func:`functools.partial` of one) so DataLoader workers and DDP ranks can
call it. The simulators in :mod:`densharp.simulate` provide such functions.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from densharp.conditioning import cond_vector
from densharp.errors import InputError
from densharp.normalisation import NormKind, norm_stats, normalise

PairFn = Callable[[int, int], dict[str, Any]]


def stream_seed(seed: int, rank: int) -> int:
    """The seed handed to ``pair_fn`` on a DDP rank: a 32-bit hash of (seed, rank), distinct per rank."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


class PairDataset(IterableDataset):
    """Infinite (or ``length``-long) stream of normalised training pairs for one DDP rank.

    Item ``k`` of the stream is ``pair_fn(stream_seed(seed, rank), start_index + k)``. With DataLoader workers,
    worker ``w`` of ``W`` produces the items ``k = w, w + W, ...``, and the DataLoader interleaves workers in
    turn, so the stream (and a run) is the same for any ``num_workers``; resuming at step ``s`` with
    ``start_index = s * batch_size`` continues the same stream.

    Each yielded item is a dict of tensors: ``input`` and ``target`` (1, z, y, x) float32, both normalised with
    the *input's* statistics under ``normalisation`` (:func:`make_item`); ``cond`` (3,) from
    :func:`~densharp.conditioning.cond_vector`; ``norm_offset`` and ``norm_scale`` (scalars); ``index``. The
    default collate stacks them into (N, 1, z, y, x) and (N, 3).
    """

    def __init__(
        self,
        pair_fn: PairFn,
        seed: int = 0,
        rank: int = 0,
        start_index: int = 0,
        length: int | None = None,
        normalisation: NormKind | str = NormKind.ROBUST_MAP,
    ) -> None:
        super().__init__()
        self.pair_fn = pair_fn
        self.normalisation = NormKind.parse(normalisation)
        self.seed = int(seed)
        self.rank = int(rank)
        self.start_index = int(start_index)
        self.length = length

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        # torch's own RNG in the worker is seeded from (seed, rank, worker) too, for any randomness in pair_fn
        # that uses torch rather than its seed argument.
        torch.manual_seed(zlib.crc32(f"{self.seed}/{self.rank}/{worker}".encode()))
        rank_seed = stream_seed(self.seed, self.rank)
        k = worker
        while self.length is None or k < self.length:
            yield make_item(self.pair_fn(rank_seed, self.start_index + k), self.start_index + k, self.normalisation)
            k += n_workers


def make_item(
    pair: dict[str, Any], index: int = 0, normalisation: NormKind | str = NormKind.ROBUST_MAP
) -> dict[str, torch.Tensor]:
    """Validate one ``pair_fn`` result, normalise both maps with the input's statistics, and make tensors.

    A per-map kind uses the pair's ``norm_box`` (the whole map's statistics, as at inference); a per-patch kind,
    or a pair without ``norm_box``, the input patch's own z-score.
    """
    for key in ("input", "target", "d_input_A", "d_target_A", "voxel_size_A"):
        if key not in pair:
            raise InputError(
                f"pair function result lacks {key!r}; it needs input, target, d_input_A, d_target_A, voxel_size_A"
            )
    x = np.asarray(pair["input"], dtype=np.float32)
    y = np.asarray(pair["target"], dtype=np.float32)
    if x.ndim != 3 or x.shape != y.shape:
        raise InputError(f"pair input/target must be (z, y, x) arrays of one shape, got {x.shape} and {y.shape}")
    kind = NormKind.parse(normalisation)
    stats = pair.get("norm_box") if kind.per_map else None
    if stats is None:
        stats = norm_stats(x, NormKind.ZSCORE_PATCH)
    cond = cond_vector(float(pair["d_input_A"]), float(pair["d_target_A"]), float(pair["voxel_size_A"]))
    return {
        "input": torch.from_numpy(normalise(x, stats))[None],
        "target": torch.from_numpy(normalise(y, stats))[None],
        "cond": torch.from_numpy(cond),
        "norm_offset": torch.tensor(stats.offset, dtype=torch.float32),
        "norm_scale": torch.tensor(stats.scale, dtype=torch.float32),
        "index": torch.tensor(index, dtype=torch.int64),
    }


def collate_pairs(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack items: ``input``/``target`` (N, 1, z, y, x), ``cond`` (N, 3), the rest (N,)."""
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}
