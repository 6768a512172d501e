"""``densharp sharpen`` under careless use (issue 14, items 1, 4, 5, 6, 10): an output is never an input, the output
set is all or nothing, shards cover every input (stepped SLURM arrays), limits are enforced, half maps are averaged
before a learned model."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import refused, run_cli, snapshot
from densharp.cli._batch import _die_with_parent, parse_shard
from densharp.errors import InputError


@pytest.mark.parametrize("which", ["map", "h1", "mask", "symlink", "hardlink"])
def test_an_output_equal_to_an_input_is_refused_even_with_overwrite(capsys, work, which):
    d = work["dir"]
    mask = d / "mask.mrc"
    from densharp.io.maps import read_map, write_map

    m = read_map(work["map"])
    write_map(mask, m.with_data(np.ones(m.shape_zyx, np.float32)))
    if which == "symlink":
        (d / "link.mrc").symlink_to(work["map"])
        out = d / "link.mrc"
    elif which == "hardlink":
        os.link(work["map"], d / "hard.mrc")
        out = d / "hard.mrc"
    else:
        out = {"map": work["map"], "h1": work["h1"], "mask": mask}[which]
    if which == "h1":
        argv = ["--half-maps", work["h1"], work["h2"], "--method", "fsc"]
    else:
        argv = [work["map"], "--method", "autob", "--resolution", 3.5] + (["--mask", mask] if which == "mask" else [])
    refused(capsys, d, 2, "sharpen", *argv, "-o", out, "--overwrite", contains=("input",))


def test_mtz_out_equal_to_the_input_mtz_is_refused(capsys, tmp_path):
    from densharp.simulate.crystal import simulate_crystal
    from synth import globule_structure

    sim = simulate_crystal(globule_structure(80, 6.0, seed=1), 3.0, np.random.default_rng(0), voxel_size_A=1.0)
    mtz = tmp_path / "data.mtz"
    sim.mtz.write_to_file(str(mtz))
    refused(capsys, tmp_path, 2, "sharpen", mtz, "--method", "autob", "-o", tmp_path / "o.ccp4", "--mtz-out", mtz,
            "--overwrite", contains=("input",))  # fmt: skip


def test_a_failure_while_writing_leaves_nothing(capsys, work, monkeypatch):
    d = work["dir"]
    before = snapshot(d)

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("densharp.io.atomic.write_text_atomic", broken)
    monkeypatch.setattr("densharp.cli.sharpen.write_text_atomic", broken, raising=False)
    rc, _, err = run_cli(capsys, "sharpen", work["map"], "--method", "autob", "--resolution", 3.5, "-o", d / "o.mrc")
    assert rc == 1 and "no space left" in err.strip().splitlines()[-1]
    assert snapshot(d) == before  # no map, no JSON, no temporaries


@pytest.mark.parametrize(
    "env, expect",
    [
        ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2",
          "SLURM_ARRAY_TASK_COUNT": "3"}, (2, 3)),
        ({"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_STEP": "3",
          "SLURM_ARRAY_TASK_COUNT": "4"}, (2, 4)),
        ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}, (1, 2)),
        ({}, (0, 1)),
    ],
)  # fmt: skip
def test_stepped_slurm_arrays_cover_every_input(monkeypatch, env, expect):
    for k in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP", "SLURM_ARRAY_TASK_COUNT"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert parse_shard(None) == expect
    if env.get("SLURM_ARRAY_TASK_STEP") == "2":  # --array=0-4:2: tasks 0, 2, 4 take inputs {0,3,..}, {1,4,..}, {2,..}
        shards = []
        for tid in (0, 2, 4):
            monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(tid))
            shards.append(parse_shard(None))
        assert sorted(i for i, _ in shards) == [0, 1, 2] and {n for _, n in shards} == {3}


def test_a_bad_slurm_task_id_is_one_line(capsys, work, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "abc")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    with pytest.raises(InputError, match="SLURM_ARRAY_TASK_ID"):
        parse_shard(None)
    out_dir = work["dir"] / "out"
    out_dir.mkdir()
    refused(capsys, work["dir"], 2, "sharpen", work["map"], work["target"], "--method", "autob", "--resolution", 3.5,
            "--out-dir", out_dir, contains=("SLURM_ARRAY_TASK_ID",))  # fmt: skip


def test_workers_ask_to_die_with_their_parent():
    _die_with_parent()  # prctl(PR_SET_PDEATHSIG) on Linux; must not raise anywhere


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--samples", 2], "--samples must be 1 or an even number >= 8"),
        (["--samples", 7], "--samples must be 1 or an even number >= 8"),
        (["--overlap", 0.999], "--overlap must be in [0, 0.9]"),
        (["--target-resolution", 150], "--target-resolution must be a resolution between 0 and 100"),
        (["--method", "bfactor"], "--b-factor"),
        (["--method", "fsc"], "half maps"),
    ],
)
def test_documented_limits_are_enforced(capsys, work, flags, words):
    refused(capsys, work["dir"], 2, "sharpen", work["map"], "--resolution", 3.5, *flags, "-o", work["dir"] / "o.mrc",
            contains=(words,))  # fmt: skip


def test_half_maps_with_a_learned_model_run_on_their_mean(capsys, work, tmp_path):
    pytest.importorskip("torch")
    from infer_synth import export_tiny, tiny_model

    w = tmp_path / "w.safetensors"
    export_tiny(tiny_model("unet"), w)
    out = work["dir"] / "post.mrc"
    rc, _, err = run_cli(capsys, "sharpen", "--half-maps", work["h1"], work["h2"], "--weights", w, "-o", out, "-q")
    assert rc == 0, err
    rec = json.loads((work["dir"] / "post.json").read_text())
    assert rec["resolution_source"] == "half-map FSC 0.143" and "mean of the two half maps" in rec["result"]["input"]


@pytest.mark.parametrize("kind", ["amplitudes", "intensities"])
def test_mtz_without_phases_is_one_line_naming_the_columns(capsys, tmp_path, kind):
    import gemmi

    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = gemmi.SpaceGroup("P 21 21 21")
    mtz.set_cell_for_all(gemmi.UnitCell(30, 34, 38, 90, 90, 90))
    mtz.add_dataset("obs")
    labels = ("FP", "SIGFP") if kind == "amplitudes" else ("IMEAN", "SIGIMEAN")
    mtz.add_column(labels[0], "F" if kind == "amplitudes" else "J")
    mtz.add_column(labels[1], "Q")
    hkl = np.array([[1, 2, 3], [2, 0, 1], [0, 3, 4]], dtype=np.float32)
    mtz.set_data(np.column_stack([hkl, np.ones((3, 2), np.float32)]))
    src = tmp_path / "obs.mtz"
    mtz.write_to_file(str(src))
    words = "amplitudes but no phases" if kind == "amplitudes" else "intensities only"
    refused(capsys, tmp_path, 2, "sharpen", src, "-o", tmp_path / "o.ccp4", contains=(words, labels[0], "phase"))
