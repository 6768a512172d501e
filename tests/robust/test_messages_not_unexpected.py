"""Issue 14 item 9: refusals come with the estimate and the fix, never as 'unexpected ...'."""

from __future__ import annotations

import gzip
import json

import gemmi
import mrcfile
import numpy as np
import pytest

from conftest import refused, run_cli
from densharp.errors import InputError, MemoryLimitError
from densharp.resources import ENV_VAR, check_memory, memory_budget


@pytest.fixture
def small_budget(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "0.05")  # 50 MiB: every big case below is refused before allocating


def _header_only(path, n, mode=2):
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(np.zeros((2, 2, 2), np.float32))
        m.voxel_size = 1.0
    raw = bytearray(path.read_bytes()[:1024])
    raw[0:12] = np.array(n, np.int32).tobytes()
    raw[28:40] = np.array(n, np.int32).tobytes()  # MX, MY, MZ
    return bytes(raw)


def test_budget_rule_and_env_var(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "2")
    assert memory_budget()[0] == 2 * 2**30
    with pytest.raises(MemoryLimitError, match=r"needs about 3.0 GiB.*2.0 GiB allowed.*DENSHARP_MAX_MEMORY_GB=2.*fix"):
        check_memory(3 * 2**30, "step", "fix")
    monkeypatch.setenv(ENV_VAR, "lots")
    with pytest.raises(InputError, match="DENSHARP_MAX_MEMORY_GB='lots' is not a positive number"):
        memory_budget()
    monkeypatch.delenv(ENV_VAR)
    assert memory_budget()[0] > 0


def test_1200_cubed_map_refused_from_its_header(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "4")
    p = tmp_path / "big.mrc"
    with open(p, "wb") as fh:  # a sparse file of the full size: nothing is allocated on disk
        fh.write(_header_only(p, (1200, 1200, 1200)))
        fh.truncate(1024 + 1200**3 * 4)
    refused(capsys, tmp_path, 2, "sharpen", p, "--method", "autob", "--resolution", 4, "-o", tmp_path / "o.mrc",
            contains=(str(p), "1200×1200×1200", "GiB", "crop or bin"))  # fmt: skip
    rc, out, err = run_cli(capsys, "info", p)  # info still describes it, from the header
    assert rc == 0, err
    assert "statistics skipped" in out


def test_gzip_that_inflates_beyond_the_budget(capsys, tmp_path, small_budget):
    p = tmp_path / "bomb.mrc.gz"
    n = (256, 256, 256)  # 64 MiB of zeros that gzip to ~64 kB
    with gzip.open(p, "wb", compresslevel=1) as fh:
        fh.write(_header_only(p.with_suffix(""), n))
        fh.write(bytes(4 * 256 * 256 * 256))
    (tmp_path / "bomb.mrc").unlink()
    assert p.stat().st_size < 1e6
    refused(capsys, tmp_path, 2, "fsc", p, p, contains=(str(p), "256×256×256", "GiB"))


def _mtz(path, cell, f_value=10.0):
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = gemmi.SpaceGroup("P 1")
    mtz.set_cell_for_all(gemmi.UnitCell(*cell, 90, 90, 90))
    mtz.add_dataset("d")
    mtz.add_column("FWT", "F")
    mtz.add_column("PHWT", "P")
    hkl = [[h, k, m] for h in range(-3, 4) for k in range(-3, 4) for m in range(0, 4) if (h, k, m) != (0, 0, 0)]
    n = int(cell[0] / 2.5)  # reflections out to ~2.5 Å
    hkl = np.array([*hkl, [n, 0, 0], [0, n, 0], [0, 0, n]])
    data = np.column_stack([hkl, np.full(len(hkl), f_value), np.zeros(len(hkl))]).astype(np.float32)
    mtz.set_data(data)
    mtz.update_reso()
    mtz.write_to_file(str(path))
    return path


def test_mtz_with_a_huge_cell_refused_before_the_fft(capsys, tmp_path):
    p = _mtz(tmp_path / "huge.mtz", (2500.0, 2500.0, 2500.0))
    refused(capsys, tmp_path, 2, "sharpen", p, "--method", "autob", "-o", tmp_path / "o.ccp4",
            contains=(str(p), "2500", "GiB"))  # fmt: skip


def test_all_zero_mtz_says_it_is_empty_not_use_a_larger_box(capsys, tmp_path):
    p = _mtz(tmp_path / "zero.mtz", (30.0, 30.0, 30.0), f_value=0.0)
    line = refused(capsys, tmp_path, 2, "sharpen", p, "--method", "autob", "-o", tmp_path / "o.ccp4",
                   contains=(str(p), "FWT", "zero"))  # fmt: skip
    assert "larger box" not in line


@pytest.mark.parametrize("flags", [["--voxel-size", "0.02"], ["--padding", "10000"]])
def test_simulate_box_too_large_refused(capsys, work, flags):
    refused(capsys, work["dir"], 2, "simulate", work["model"], "-o", work["dir"] / "s.mrc", "--resolution", 4,
            *flags, contains=("GiB", flags[0]))  # fmt: skip


@pytest.mark.parametrize("cmd", ["simulate", "train", "sharpen", "hallucination"])
@pytest.mark.parametrize("seed", [str(2**70), "-1", "1.5"])
def test_seed_out_of_range(capsys, work, cmd, seed):
    d = work["dir"]
    argv = {
        "simulate": ["simulate", work["model"], "-o", d / "s.mrc", "--resolution", 4],
        "train": ["train", "--arch", "unet", "--corpus", d, "-o", d / "run"],
        "sharpen": ["sharpen", work["map"], "--method", "autob", "--resolution", 4, "-o", d / "o.mrc"],
        "hallucination": ["hallucination", work["model"], "--resolution", 4],
    }[cmd]
    refused(capsys, d, 2, *argv, f"--seed={seed}", contains=("--seed", "0 to 4294967295"))


@pytest.mark.parametrize(
    "record",
    [
        {"schema": "densharp.evaluate/1", "cases": [{"case": "x"}]},
        {"schema": "densharp.evaluate/1", "cases": ["not a dict"]},
        {"schema": "densharp.evaluate/1", "cases": [{"case": "x", "methods": {"m": {"fsc": "oops"}}}]},
        {"schema": "densharp.evaluate/1", "cases": [], "summary": {"metric": "rscc_mask", "groups": 3}},
        {"schema": "densharp.hallucination/1", "methods": {}},
    ],
)
def test_malformed_report_json(capsys, tmp_path, record):
    pytest.importorskip("matplotlib")
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(record))
    refused(capsys, tmp_path, 2, "report", p, "-o", tmp_path / "r.html", contains=(str(p), "malformed"))


@pytest.mark.parametrize(
    "name, text, words",
    [
        ("train_log.jsonl", '{"step": 1, "loss": 0.5}\n{not json\n{"step": 2, "loss": 0.4}\n', "line 2 is not JSON"),
        ("train_log.jsonl", '{"step": "one", "loss": 0.5}\n', "must be numbers"),
        ("val_curve.csv", "step,rscc\n1,abc\n", "not numeric"),
    ],
)
def test_malformed_training_logs(capsys, tmp_path, name, text, words):
    run = tmp_path / "run"
    run.mkdir()
    (run / name).write_text(text)
    refused(capsys, tmp_path, 2, "report", run, "-o", tmp_path / "r.html", contains=(name, words))


def test_computation_messages_name_the_file_and_the_cause(capsys, tmp_path, rng):
    small = tmp_path / "small.mrc"
    with mrcfile.new(small) as m:  # a 12 Å box: too few shells between 10 and 4 Å
        m.set_data(rng.normal(size=(12, 12, 12)).astype(np.float32))
        m.voxel_size = 1.0
    refused(capsys, tmp_path, 2, "sharpen", small, "--method", "autob", "--resolution", 4, "-o", tmp_path / "o.mrc",
            contains=(str(small), "too few resolution shells"))  # fmt: skip
    zero = tmp_path / "zero.mrc"
    with mrcfile.new(zero) as m:
        m.set_data(np.zeros((16, 16, 16), np.float32))
        m.voxel_size = 1.0
    refused(capsys, tmp_path, 2, "compare", zero, small, contains=(str(zero), "constant map"))


def test_maps_from_an_mtz_name_the_mtz_in_messages(tmp_path):
    from densharp.filters.bfactor import guinier_fit
    from densharp.io.mtz import mtz_map, read_mtz

    p = _mtz(tmp_path / "small.mtz", (12.0, 12.0, 12.0))
    m = mtz_map(read_mtz(p), "FWT", "PHWT", 1.0)
    assert m.source is not None and str(p) in m.source.path
    with pytest.raises(InputError, match=rf"^{tmp_path}/small.mtz \(FWT/PHWT\): too few resolution shells"):
        guinier_fit(m, 4.0)
