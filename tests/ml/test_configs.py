"""The training configs of the shipped weights (configs/train) load, are portable and rebuild their networks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from densharp.ml.nets import build_model  # noqa: E402
from densharp.ml.train import TrainConfig  # noqa: E402
from densharp.simulate.crystal_pairs import CrystalConfig  # noqa: E402
from densharp.simulate.pairs import PairConfig  # noqa: E402

CONFIGS = sorted((Path(__file__).parents[2] / "configs" / "train").glob("*.json"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_and_is_portable(path):
    d = json.loads(path.read_text())
    pair = d.pop("pair", {})
    arch = "vae" if path.stem.startswith("vae") else "report-vae" if path.stem.startswith("report") else "unet"
    cfg = TrainConfig.from_dict(d | {"model_name": arch})
    build_model(cfg.model_name, **cfg.model_kwargs)
    init = cfg.init_from
    assert init is None or not Path(init).is_absolute(), f"{path.name}: init_from must be a name or a run folder"
    assert init is None or init.startswith("runs/") or "/" not in init
    (CrystalConfig if "xray" in path.stem else PairConfig)(**{k: tuple(v) if isinstance(v, list) else v
                                                               for k, v in pair.items()})  # fmt: skip


def test_there_is_a_config_for_every_shipped_model():
    from densharp.ml.registry import shipped_registry

    stems = {p.stem for p in CONFIGS}
    for name in shipped_registry():
        assert name.replace("-", "_") in stems, f"no configs/train/{name.replace('-', '_')}.json"
