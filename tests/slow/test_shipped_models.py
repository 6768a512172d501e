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
