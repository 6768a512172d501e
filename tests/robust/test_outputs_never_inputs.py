"""Issue 14 item 4: an output can never be the same file as an input (path, symlink, hard link, ../ spelling)."""

from __future__ import annotations

import os

import pytest

from conftest import refused, run_cli, sha, snapshot
from densharp.errors import InputError
from densharp.io.atomic import check_outputs


@pytest.mark.parametrize("spelling", ["same", "symlink", "hardlink", "dotdot"])
def test_fsc_csv_onto_map_a_is_refused_even_with_overwrite(capsys, work, spelling):
    d = work["dir"]
    a = work["map"]
    out = {
        "same": a,
        "symlink": d / "link.csv",
        "hardlink": d / "hard.csv",
        "dotdot": d / "sub" / ".." / a.name,
    }[spelling]
    if spelling == "symlink":
        out.symlink_to(a)
    elif spelling == "hardlink":
        os.link(a, out)
    elif spelling == "dotdot":
        (d / "sub").mkdir()
    refused(capsys, d, 2, "fsc", a, work["h1"], "--csv", out, "--overwrite", contains=("same file as the input",))


@pytest.mark.parametrize(
    "which",
    ["simulate_model", "evaluate_target", "evaluate_json_input", "hallucination_model", "fsc_png_mask", "report_run"],
)
def test_every_command_refuses_an_input_as_output(capsys, work, which):
    d = work["dir"]
    argv = {
        "simulate_model": ["simulate", work["model"], "-o", work["model"], "--resolution", 4, "--overwrite"],
        "evaluate_target": ["evaluate", work["map"], "--target", work["target"], "--csv", work["target"]],
        "evaluate_json_input": ["evaluate", "--target", work["target"], "--input", work["map"],
                                "--input-resolution", 3.5, "--json", work["map"], "--overwrite"],
        "hallucination_model": ["hallucination", work["model"], "--resolution", 4, "--json", work["model"],
                                "--overwrite"],
        "fsc_png_mask": ["fsc", work["h1"], work["h2"], "--mask", work["map"], "--png", work["map"], "--overwrite"],
        "report_run": ["report", work["map"], "-o", work["map"], "--overwrite"],
    }[which]  # fmt: skip
    refused(capsys, d, 2, *argv, contains=("same file as the input",))


def test_check_outputs_api(tmp_path):
    a = tmp_path / "a.mrc"
    a.write_text("x")
    check_outputs([tmp_path / "b.mrc"], inputs=[a, None])  # fine
    with pytest.raises(InputError, match="same file as the input"):
        check_outputs([tmp_path / "." / "a.mrc"], overwrite=True, inputs=[a])
    (tmp_path / "l").symlink_to(a)
    with pytest.raises(InputError, match="same file as the input"):
        check_outputs([tmp_path / "b.mrc", tmp_path / "l"], overwrite=True, inputs=[a])
    # an input given through a symlink, the output by its real name
    with pytest.raises(InputError, match="same file as the input"):
        check_outputs([a], overwrite=True, inputs=[tmp_path / "l"])
    # a planned output that does not exist yet but resolves to an input's path
    (tmp_path / "d").mkdir()
    ghost = tmp_path / "d" / "g.mrc"
    (tmp_path / "gl").symlink_to(ghost)
    with pytest.raises(InputError, match="same file as the input"):
        check_outputs([tmp_path / "gl"], inputs=[ghost])
    assert sha(a) == sha(a)


def test_report_never_overwrites_existing_pngs_without_overwrite(capsys, work):
    pytest.importorskip("matplotlib")
    d = work["dir"]
    rc, _, err = run_cli(capsys, "evaluate", work["map"], "--target", work["target"], "--json", d / "run.json", "-q")
    assert rc == 0, err
    rc, _, err = run_cli(capsys, "report", d / "run.json", "-o", d / "r.html")
    assert rc == 0, err
    (d / "r.html").unlink()  # the HTML is gone, the PNGs of the last report remain
    pngs = sorted(p.name for p in d.glob("r_*.png"))
    assert pngs
    refused(capsys, d, 2, "report", d / "run.json", "-o", d / "r.html", contains=("r_", ".png", "--overwrite"))
    rc, _, err = run_cli(capsys, "report", d / "run.json", "-o", d / "r.html", "--overwrite")
    assert rc == 0, err
    assert sorted(p.name for p in d.glob("r_*.png")) == pngs
    assert not [n for n in snapshot(d) if ".partial-" in n or n.endswith(".lock")]


def test_train_never_writes_over_its_inputs(capsys, tmp_path):
    pytest.importorskip("torch")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "manifest.json").write_text("{}")
    refused(capsys, tmp_path, 2, "train", "--arch", "unet", "--corpus", corpus, "-o", corpus, "--overwrite",
            contains=("run folder", "same file as the input"))  # fmt: skip
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"total_steps": 1}')
    refused(capsys, tmp_path, 2, "train", "--arch", "unet", "--corpus", corpus, "-o", run, "--overwrite",
            "--config", run / "config.json", contains=("config.json", "same file as the input"))  # fmt: skip


def test_two_trainings_cannot_share_a_run_folder(capsys, tmp_path):
    pytest.importorskip("torch")
    from densharp.io.atomic import locked_outputs

    run = tmp_path / "run"
    with locked_outputs([run]):
        refused(capsys, tmp_path, 1, "train", "--arch", "unet", "--corpus", tmp_path, "-o", run,
                contains=(str(run), "another densharp run"))  # fmt: skip
