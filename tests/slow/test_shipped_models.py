"""Slow tier: the shipped cryo-EM models lift the bundled example (3A4R chain A, test split) as the demo shows."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")

from densharp.cli import main  # noqa: E402
from densharp.evaluate.metrics import target_mask  # noqa: E402
from densharp.io.maps import read_map  # noqa: E402
from densharp.metrics.rscc import rscc  # noqa: E402


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    d = tmp_path_factory.mktemp("example")
    src = resources.files("densharp").joinpath("data/examples/3a4rA.pdb.gz")
    with resources.as_file(src) as model:
        assert main(["simulate", str(model), "-o", str(d / "t.mrc"), "--resolution", "2", "-q"]) == 0
        assert main(["simulate", str(model), "-o", str(d / "in.mrc"), "--resolution", "3.5", "--b-factor", "100",
                     "--half-maps", "--seed", "1", "-q"]) == 0  # fmt: skip
    return d


@pytest.mark.parametrize("extra", [[], ["--method", "vae", "--samples", "8"]], ids=["default", "vae"])
def test_shipped_model_lifts_the_bundled_example(example, extra):
    out = example / f"out{len(extra)}.mrc"
    assert main(["sharpen", str(example / "in.mrc"), "--resolution", "3.5", "-o", str(out), "-q", *extra]) == 0
    target = read_map(example / "t.mrc")
    mask, _ = target_mask(target)
    before = rscc(read_map(example / "in.mrc"), target, mask)
    after = rscc(read_map(out), target, mask)
    assert after > before + 0.05, (before, after)
    assert np.isfinite(read_map(out).data_zyx).all()


def test_output_follows_the_requested_target_resolution(example):
    """Conditioning works: the spectrum follows ``--target-resolution`` and nothing beyond the target survives."""
    from densharp.fourier import resolution_shells, shell_amplitudes

    outs = {}
    for t in (2.2, 2.8, 3.5):
        out = example / f"t{t}.mrc"
        assert main(["sharpen", str(example / "in.mrc"), "--resolution", "3.5", "--target-resolution", str(t),
                     "-o", str(out), "-q"]) == 0  # fmt: skip
        outs[t] = read_map(out)
    shells = resolution_shells(outs[2.2].shape_zyx, outs[2.2].voxel_size_xyz_A)
    amp = {t: shell_amplitudes(m, shells)[1] for t, m in outs.items()}
    s = shells.centres_invA

    def band(t: float, lo_A: float, hi_A: float) -> float:
        sel = (s > 1.0 / lo_A) & (s <= 1.0 / hi_A)
        return float(amp[t][sel].sum())

    # each target keeps nothing beyond itself (the low-pass edge ends at 1.1/d_target), the finer ones do
    assert band(3.5, 3.1, 2.3) < 0.05 * band(2.2, 3.1, 2.3)
    assert band(2.8, 2.5, 2.3) < 0.05 * band(2.2, 2.5, 2.3)
    assert band(2.8, 3.1, 2.6) > 0.5 * band(2.2, 3.1, 2.6)  # ... while 2.8 Å keeps what lies inside it
    assert np.corrcoef(outs[2.2].data_zyx.ravel(), outs[3.5].data_zyx.ravel())[0, 1] < 0.99
