"""Every shipped weights file is registered, within PyPI-friendly size, and matches its pinned sha256."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest

torch = pytest.importorskip("torch")

from densharp.ml.checkpoint import load_shipped, shipped_models  # noqa: E402


def test_registry_files_exist_match_sha_and_load():
    folder = resources.files("densharp.ml").joinpath("weights")
    files = {p.name for p in folder.iterdir() if p.name.endswith(".safetensors")}
    models = shipped_models()
    assert files == {entry["file"] for entry in models.values()}
    for name, entry in models.items():
        data = folder.joinpath(entry["file"]).read_bytes()
        assert len(data) <= 25_000_000
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        model, meta = load_shipped(name)
        assert meta["training_domain"]["resolution_range_A"] and meta["training_domain"]["voxel_range_A"]
        assert sum(p.numel() for p in model.parameters()) > 0
