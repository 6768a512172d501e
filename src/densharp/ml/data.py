"""Training pairs as a reproducible stream: :class:`PairDataset` wraps a simulator function.

A *pair function* ``pair_fn(seed: int, index: int) -> dict`` returns one training pair: ``input`` and
``target`` (z, y, x) float32 patches of the same shape, and floats ``d_input_A``, ``d_target_A`` (resolutions,
Å) and ``voxel_size_A`` (Å). It must be deterministic in ``(seed, index)`` and picklable (a module-level
function or a :func:`functools.partial` of one) so DataLoader workers and DDP ranks can call it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from densharp.errors import InputError
from densharp.ml.normalise import apply_zscore, zscore_stats

PairFn = Callable[[int, int], dict[str, Any]]

#: length of :func:`cond_vector`'s output (the default ``cond_dim`` of the networks)
COND_DIM = 3


def cond_vector(d_input_A: float, d_target_A: float, voxel_size_A: float) -> np.ndarray:
    """Conditioning vector ``[1/d_input, 1/d_target, voxel_size]`` (1/Å, 1/Å, Å) as float32, shape (3,)."""
    if min(d_input_A, d_target_A, voxel_size_A) <= 0:
        raise InputError(
            f"resolutions and voxel size must be positive, got d_input={d_input_A}, d_target={d_target_A}, "
            f"voxel={voxel_size_A} Å"
        )
    return np.array([1.0 / d_input_A, 1.0 / d_target_A, voxel_size_A], dtype=np.float32)


def stream_seed(seed: int, rank: int) -> int:
    """The seed handed to ``pair_fn`` on a DDP rank: a 32-bit hash of (seed, rank), distinct per rank."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


class PairDataset(IterableDataset):
    """Infinite (or ``length``-long) stream of normalised training pairs for one DDP rank.

    Item ``k`` of the stream is ``pair_fn(stream_seed(seed, rank), start_index + k)``. With DataLoader workers,
    worker ``w`` of ``W`` produces the items ``k = w, w + W, ...``, and the DataLoader interleaves workers in
    turn, so the stream (and a run) is the same for any ``num_workers``; resuming at step ``s`` with
    ``start_index = s * batch_size`` continues the same stream.

    Each yielded item is a dict of tensors: ``input`` and ``target`` (1, z, y, x) float32, both z-scored with
    the *input's* mean and SD; ``cond`` (3,) from :func:`cond_vector`; ``norm_mean`` and ``norm_sd`` (scalars,
    the recorded normalisation); ``index``. The default collate stacks them into (N, 1, z, y, x) and (N, 3).
    """

    def __init__(
        self,
        pair_fn: PairFn,
        seed: int = 0,
        rank: int = 0,
        start_index: int = 0,
        length: int | None = None,
    ) -> None:
        super().__init__()
        self.pair_fn = pair_fn
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
            yield make_item(self.pair_fn(rank_seed, self.start_index + k), self.start_index + k)
            k += n_workers


def make_item(pair: dict[str, Any], index: int = 0) -> dict[str, torch.Tensor]:
    """Validate one ``pair_fn`` result, z-score both maps with the input's statistics, and make tensors."""
    for key in ("input", "target", "d_input_A", "d_target_A", "voxel_size_A"):
        if key not in pair:
            raise InputError(
                f"pair function result lacks {key!r}; it needs input, target, d_input_A, d_target_A, voxel_size_A"
            )
    x = np.asarray(pair["input"], dtype=np.float32)
    y = np.asarray(pair["target"], dtype=np.float32)
    if x.ndim != 3 or x.shape != y.shape:
        raise InputError(f"pair input/target must be (z, y, x) arrays of one shape, got {x.shape} and {y.shape}")
    stats = zscore_stats(x)
    cond = cond_vector(float(pair["d_input_A"]), float(pair["d_target_A"]), float(pair["voxel_size_A"]))
    return {
        "input": torch.from_numpy(apply_zscore(x, stats))[None],
        "target": torch.from_numpy(apply_zscore(y, stats))[None],
        "cond": torch.from_numpy(cond),
        "norm_mean": torch.tensor(stats["mean"], dtype=torch.float32),
        "norm_sd": torch.tensor(stats["sd"], dtype=torch.float32),
        "index": torch.tensor(index, dtype=torch.int64),
    }


def collate_pairs(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack items: ``input``/``target`` (N, 1, z, y, x), ``cond`` (N, 3), the rest (N,)."""
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}
