"""Sliding-window inference over whole maps: overlapping tiles, Gaussian blending, host-side stitching.

Tiles are cut from the (z, y, x) map on the host and handed to a predictor in batches (which moves them to its
device); every output it returns (a map, its SD, ...) is blended back into host float32 buffers with the same
Gaussian weight per tile, in one pass, so device memory holds one batch only. Pure numpy: no torch import here.
"""

from __future__ import annotations

import enum
import itertools
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from densharp.errors import InputError

#: progress callback: (tiles_done, tiles_total) -> None
ProgressFn = Callable[[int, int], None]
#: largest tile overlap: 0.9 keeps the step at a tenth of a tile (a 48³ tile: step 4, ~1700 tiles per tile volume)
MAX_OVERLAP = 0.9


class PadMode(str, enum.Enum):
    """How a map smaller than a tile is padded (non-periodic mode only)."""

    REFLECT = "reflect"  # mirror the map (no edge step; numpy 'reflect', repeated when the pad is large)
    ZERO = "zero"  # pad with zeros (density of z-scored solvent is ~0 far from the molecule)


def gaussian_weight(patch_zyx: Sequence[int], sigma_scale: float = 0.125, floor: float = 1e-3) -> np.ndarray:
    """Separable Gaussian blending weight of shape ``patch_zyx``, peak 1 at the centre, at least ``floor``.

    ``sigma = sigma_scale * patch`` along each axis (MONAI's default). The floor keeps edge voxels, which may
    be covered by one tile only, from a zero weight.
    """
    w = np.ones((1, 1, 1), dtype=np.float64)
    for axis, p in enumerate(patch_zyx):
        c = (p - 1) / 2.0
        sigma = max(sigma_scale * p, 1e-6)
        g = np.exp(-0.5 * ((np.arange(p) - c) / sigma) ** 2)
        shape = [1, 1, 1]
        shape[axis] = p
        w = w * g.reshape(shape)
    w /= w.max()
    return np.maximum(w, floor).astype(np.float32)


def window_starts(n: int, patch: int, overlap: float, periodic: bool = False) -> list[int]:
    """Start indices of the windows along one axis of length ``n``.

    Step = ``max(1, floor(patch * (1 - overlap)))``. Non-periodic (``n >= patch``): the last window is
    snapped to the edge (start ``n - patch``). Periodic: windows start at ``0, step, ...`` below ``n`` and wrap
    across the edge, so every voxel is covered.
    """
    step = max(1, int(patch * (1.0 - overlap)))
    if periodic:
        return list(range(0, n, step)) if patch < n else [0]
    starts = list(range(0, n - patch + 1, step))
    if starts[-1] + patch < n:
        starts.append(n - patch)
    return starts


@dataclass
class TiledResult:
    """What :func:`sliding_window` returns: the blended output maps by name (float32, z, y, x) and the tiles run."""

    outputs: dict[str, np.ndarray]
    n_tiles: int

    @property
    def map(self) -> np.ndarray:
        """The single output of a predictor that returned one array (key ``"map"``)."""
        return self.outputs["map"]


def sliding_window(
    volume_zyx: np.ndarray,
    predict: Callable[[np.ndarray], np.ndarray | Mapping[str, np.ndarray]],
    patch_zyx: int | Sequence[int],
    overlap: float = 0.25,
    batch_size: int = 4,
    sigma_scale: float = 0.125,
    mask_zyx: np.ndarray | None = None,
    periodic: bool = False,
    progress: ProgressFn | bool | None = None,
    pad_mode: PadMode | str = PadMode.REFLECT,
) -> TiledResult:
    """Apply ``predict`` to overlapping tiles of a map and blend every output it returns, in one pass.

    Parameters
    ----------
    volume_zyx
        The map, shape (nz, ny, nx), any real dtype (used as float32). Any size, including smaller than a tile.
    predict
        Called on a float32 numpy batch (B, 1, pz, py, px); returns an array of that shape, or a mapping of names
        to such arrays (e.g. ``{"map": mean, "sd": sd}``); each is blended with the same weights. The caller
        handles devices, model mode, precision and conditioning.
    patch_zyx
        Tile size (z, y, x) in voxels (an int means a cube); must satisfy the network's size rule.
    overlap
        Fraction of a tile shared with its neighbour, in [0, 0.9].
    batch_size
        Tiles per ``predict`` call.
    sigma_scale
        Gaussian blending sigma as a fraction of the tile size (weights floored at 1e-3).
    mask_zyx
        Optional boolean (nz, ny, nx) map; tiles containing no True voxel are skipped, and voxels covered by no
        computed tile keep the input value (outputs other than the first: 0).
    periodic
        Treat the map as one periodic unit cell (crystal maps): tiles wrap across the edges and no padding is
        used, whatever the map size.
    progress
        ``True`` for a tqdm bar on a TTY, or a callable ``(done, total)``.
    pad_mode
        Non-periodic maps smaller than a tile along an axis are padded at the high end to one tile with
        ``"reflect"`` (default: mirror, no step at the edge) or ``"zero"``; the result is cropped back.

    Raises
    ------
    InputError
        Bad shapes or parameters, or ``predict`` returning the wrong shape.
    """
    vol = np.asarray(volume_zyx)
    if vol.ndim != 3 or min(vol.shape) < 1:
        raise InputError(f"sliding_window: expected a non-empty 3D (z, y, x) array, got shape {vol.shape}")
    vol = np.ascontiguousarray(vol, dtype=np.float32)
    patch = (int(patch_zyx),) * 3 if isinstance(patch_zyx, (int, np.integer)) else tuple(int(p) for p in patch_zyx)
    if len(patch) != 3 or min(patch) < 1:
        raise InputError(f"sliding_window: patch_zyx must be 3 positive ints, got {patch_zyx}")
    if not 0.0 <= overlap <= MAX_OVERLAP:
        raise InputError(f"sliding_window: overlap must be in [0, {MAX_OVERLAP}], got {overlap}")
    if batch_size < 1:
        raise InputError(f"sliding_window: batch_size must be >= 1, got {batch_size}")
    mask = None
    if mask_zyx is not None:
        mask = np.asarray(mask_zyx, dtype=bool)
        if mask.shape != vol.shape:
            raise InputError(f"sliding_window: mask shape {mask.shape} differs from map shape {vol.shape}")
    pad_mode = PadMode(pad_mode)

    shape = vol.shape
    if not periodic and any(n < p for n, p in zip(shape, patch)):
        pad = [(0, max(0, p - n)) for n, p in zip(shape, patch)]
        src = np.pad(vol, pad, mode="reflect" if pad_mode is PadMode.REFLECT else "constant")
        src_mask = None if mask is None else np.pad(mask, pad, mode="constant")
    else:
        src, src_mask = vol, mask
    work_shape = src.shape
    corners = tile_corners(work_shape, patch, overlap, periodic, src_mask)

    def index(corner: tuple[int, ...]) -> tuple[Any, ...]:
        if periodic:  # wrap indices; a tile may cover an axis more than once when the cell is small
            return np.ix_(*[(c + np.arange(p)) % n for c, p, n in zip(corner, patch, work_shape)])
        return tuple(slice(c, c + p) for c, p in zip(corner, patch))

    weight = gaussian_weight(patch, sigma_scale)
    # Host float32 buffers. float64 only where float32 sums would drift past ~1e-6 relative: periodic cells
    # smaller than a tile (one tile folds onto a voxel many times; buffers are tiny then) or very high overlap
    # (more than 64 tiles cover a voxel).
    steps = [max(1, int(p * (1.0 - overlap))) for p in patch]
    self_overlap = (periodic and any(p > n for n, p in zip(work_shape, patch))) or int(
        np.prod([-(-p // st) for p, st in zip(patch, steps)])
    ) > 64
    acc_dtype = np.float64 if self_overlap else np.float32
    acc: dict[str, np.ndarray] = {}
    wsum = np.zeros(work_shape, dtype=acc_dtype)
    total = len(corners)
    bar = _progress_bar(progress, total)

    for batch in _chunks(corners, batch_size):
        tiles = np.stack([src[index(c)] for c in batch])[:, None]
        pred = predict(tiles)
        named = {"map": pred} if not isinstance(pred, Mapping) else pred
        for name, arr in named.items():
            a = np.asarray(arr, dtype=np.float32)
            if a.shape != tiles.shape:
                raise InputError(f"sliding_window: predict returned {name} of shape {a.shape}, expected {tiles.shape}")
            buf = acc.setdefault(name, np.zeros(work_shape, dtype=acc_dtype))
            for c, p in zip(batch, a[:, 0]):
                if periodic:
                    np.add.at(buf, index(c), p * weight)  # add.at: repeated indices when a tile wraps onto itself
                else:
                    buf[index(c)] += p * weight
        for c in batch:
            if periodic:
                np.add.at(wsum, index(c), weight)
            else:
                wsum[index(c)] += weight
        if bar is not None:
            bar(len(batch), total)

    covered = wsum > 0
    safe = np.where(covered, wsum, 1.0)
    outputs: dict[str, np.ndarray] = {}
    for k, (name, buf) in enumerate(acc.items()):
        fill = src if k == 0 else np.zeros_like(src)
        res = np.where(covered, buf / safe, fill).astype(np.float32)
        outputs[name] = np.ascontiguousarray(res[: shape[0], : shape[1], : shape[2]])
    if not outputs:  # every tile skipped: the input is returned unchanged
        outputs["map"] = vol.copy()
    return TiledResult(outputs=outputs, n_tiles=total)


def tile_corners(
    shape_zyx: Sequence[int],
    patch_zyx: Sequence[int],
    overlap: float,
    periodic: bool = False,
    mask_zyx: np.ndarray | None = None,
) -> list[tuple[int, ...]]:
    """Corners of the tiles :func:`sliding_window` runs on a (padded) map of ``shape_zyx`` (masked ones skipped)."""
    starts = [window_starts(int(n), int(p), overlap, periodic) for n, p in zip(shape_zyx, patch_zyx)]
    corners = list(itertools.product(*starts))
    if mask_zyx is None:
        return corners
    out = []
    for c in corners:
        if periodic:
            idx: Any = np.ix_(*[(a + np.arange(p)) % n for a, p, n in zip(c, patch_zyx, shape_zyx)])
        else:
            idx = tuple(slice(a, a + p) for a, p in zip(c, patch_zyx))
        if mask_zyx[idx].any():
            out.append(c)
    return out


def _chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _progress_bar(progress: ProgressFn | bool | None, total: int) -> Callable[[int, int], None] | None:
    """Turn ``progress`` into an ``update(n_new, total)`` callable (or None)."""
    if progress is None or progress is False:
        return None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="tiles", unit="tile", disable=not sys.stderr.isatty(), leave=False)

        def update_bar(n: int, _total: int) -> None:
            bar.update(n)
            if bar.n >= _total:
                bar.close()

        return update_bar
    done = [0]
    fn = progress

    def update_fn(n: int, _total: int) -> None:
        done[0] += n
        fn(done[0], _total)

    return update_fn
