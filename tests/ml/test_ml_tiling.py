"""The tiler (pure numpy): pointwise predictors reproduce the map, masks skip tiles, cells wrap, outputs blend."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from densharp.errors import InputError
from densharp.ml.tiling import gaussian_weight, sliding_window, window_starts

sizes = st.integers(1, 20)
patches = st.integers(1, 12)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(sizes, sizes, sizes),
    patch=st.tuples(patches, patches, patches),
    overlap=st.sampled_from([0.0, 0.25, 0.5, 0.75, 0.9]),
    periodic=st.booleans(),
    batch=st.integers(1, 5),
    pad=st.sampled_from(["reflect", "zero"]),
    seed=st.integers(0, 2**16),
)
def test_pointwise_predictors_reproduce_input(shape, patch, overlap, periodic, batch, pad, seed):
    vol = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    kw = dict(overlap=overlap, batch_size=batch, periodic=periodic, pad_mode=pad)
    ident = sliding_window(vol, lambda t: t, patch, **kw).map
    assert ident.shape == vol.shape and ident.dtype == np.float32
    np.testing.assert_allclose(ident, vol, atol=1e-5, rtol=0)
    both = sliding_window(vol, lambda t: {"map": t + 1, "sd": 0 * t + 2}, patch, **kw)
    np.testing.assert_allclose(both.outputs["map"], vol + 1, atol=1e-5, rtol=0)
    np.testing.assert_allclose(both.outputs["sd"], 2, atol=1e-5, rtol=0)  # blended in the same pass
    assert both.n_tiles >= 1


def test_progress_callback_counts_the_tiles():
    vol = np.arange(10 * 9 * 7, dtype=np.float32).reshape(10, 9, 7)
    calls = []
    res = sliding_window(vol, lambda t: t * 2, (4, 4, 4), overlap=0.5, progress=lambda d, n: calls.append((d, n)))
    np.testing.assert_allclose(res.map, 2 * vol, rtol=1e-6)
    assert calls[-1][0] == calls[-1][1] == res.n_tiles > 1


def test_mask_skips_tiles_and_keeps_input():
    vol = np.random.default_rng(0).normal(size=(32, 16, 16)).astype(np.float32)
    mask = np.zeros(vol.shape, dtype=bool)
    mask[2:5, 2:5, 2:5] = True
    n_tiles = []

    def predict(t):
        n_tiles.append(t.shape[0])
        return t + 1

    res = sliding_window(vol, predict, 8, overlap=0.0, batch_size=1, mask_zyx=mask)
    out = res.map
    assert sum(n_tiles) == 1 == res.n_tiles  # only the tile containing the mask
    np.testing.assert_allclose(out[:8, :8, :8], vol[:8, :8, :8] + 1, atol=1e-5)
    np.testing.assert_array_equal(out[8:], vol[8:])
    empty = sliding_window(vol, predict, 8, mask_zyx=np.zeros(vol.shape, dtype=bool))
    np.testing.assert_array_equal(empty.map, vol)
    assert empty.n_tiles == 0


def test_periodic_tiles_wrap_across_edges():
    # a predictor that sees a wrapped tile must find the map's neighbours across the edge
    vol = np.random.default_rng(1).normal(size=(12, 10, 8)).astype(np.float32)
    seen = []
    sliding_window(vol, lambda t: (seen.append(t.copy()), t)[1], (8, 8, 8), overlap=0.5, periodic=True)
    tiles = np.concatenate(seen)[:, 0]
    wrapped = np.take(np.take(np.take(vol, np.arange(8, 16) % 12, 0), np.arange(8) % 10, 1), np.arange(8) % 8, 2)
    assert any(np.array_equal(t, wrapped) for t in tiles)


def test_window_starts_snap_to_edge():
    assert window_starts(10, 4, 0.5) == [0, 2, 4, 6]
    assert window_starts(11, 4, 0.5) == [0, 2, 4, 6, 7]
    assert window_starts(10, 4, 0.5, periodic=True) == [0, 2, 4, 6, 8]
    w = gaussian_weight((5, 6, 7))
    assert w.shape == (5, 6, 7) and w.min() >= 1e-3 and w.max() == pytest.approx(1.0, abs=0.05)


def test_bad_arguments():
    vol = np.zeros((4, 4, 4), dtype=np.float32)
    with pytest.raises(InputError):
        sliding_window(vol, lambda t: t, 4, overlap=0.95)
    with pytest.raises(InputError):
        sliding_window(vol[0], lambda t: t, 4)
    with pytest.raises(InputError):
        sliding_window(vol, lambda t: t[:, :, :2], 4)
    with pytest.raises(InputError):
        sliding_window(vol, lambda t: t, 4, mask_zyx=np.ones((4, 4, 3), bool))
