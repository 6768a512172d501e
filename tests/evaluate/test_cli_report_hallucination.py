"""CLI evaluate / hallucination / report, JSON round trip, and the omit test on a two-chain model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from densharp.cli import main
from densharp.evaluate import register_method
from densharp.evaluate.case import target_from_model
from densharp.evaluate.hallucination import (
    hallucination_check,
    invention_score,
    make_omit_case,
    pure_noise_input,
    split_structure,
)
from densharp.evaluate.methods import unregister_method
from densharp.io.evaluation import read_run_json, write_run_json
from densharp.io.maps import write_map
from densharp.metrics.rscc import rscc


@pytest.fixture
def case_files(tmp_path, small_case):
    paths = {}
    for name, m in (
        ("input", small_case["input"]),
        ("target", small_case["target"]),
        ("h1", small_case["half_maps"][0]),
        ("h2", small_case["half_maps"][1]),
        ("sharp", small_case["target"].with_data(0.8 * small_case["target"].data_zyx + small_case["input"].data_zyx)),
    ):
        paths[name] = tmp_path / f"{name}.mrc"
        write_map(paths[name], m)
    return paths


def test_evaluate_cli_json_csv_and_report(tmp_path, case_files, capsys):
    f = case_files
    js, cs, html = tmp_path / "run.json", tmp_path / "run.csv", tmp_path / "rep" / "report.html"
    argv = ["evaluate", str(f["sharp"]), "--target", str(f["target"]), "--input", str(f["input"])]
    argv += ["--input-resolution", "4", "--half-maps", str(f["h1"]), str(f["h2"]), "--json", str(js), "--csv", str(cs)]
    argv += ["--methods", "identity,autob,fsc,global-filter"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "sharp" in text and "global-filter" in text
    run = read_run_json(js)
    m = run["cases"][0]["methods"]
    assert set(m) == {"sharp", "identity", "autob", "fsc", "global-filter"}
    assert m["global-filter"]["rscc_box"] >= m["identity"]["rscc_box"]
    assert cs.read_text().splitlines()[0].startswith("case,method,")
    assert main(argv) == 2  # outputs exist: refused without --overwrite
    html.parent.mkdir()
    assert main(["report", str(js), "-o", str(html)]) == 0
    page = html.read_text()
    assert '<img src="data:image/png;base64,' in page
    pngs = sorted(p.name for p in html.parent.glob("*.png"))
    assert pngs == [
        "report_case0_fsc.png",
        "report_case0_halffsc.png",
        "report_case0_slices.png",
        "report_rscc_bins.png",
    ]


def test_run_json_round_trip(tmp_path, small_case):
    from densharp.evaluate import evaluate_case, summarize

    rec = evaluate_case("c", small_case["input"], small_case["target"], 4.0, ["identity", "autob"], slice_px=16)
    run = {"schema": "densharp.evaluate/1", "cases": [rec], "summary": summarize([rec])}
    p = tmp_path / "r.json"
    write_run_json(p, run)
    assert read_run_json(p) == json.loads(json.dumps(run))
    assert len(rec["slices"]["input"]["xy"]) <= 16
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "other"}')
    with pytest.raises(Exception, match="not a densharp evaluation record"):
        read_run_json(bad)


def test_evaluate_cli_target_from_model(tmp_path, two_chains, small_case):
    model = tmp_path / "two.pdb"
    two_chains.write_pdb(str(model))
    like = small_case["input"]
    t = target_from_model(two_chains, like, 3.0)
    assert t.same_grid(like) and float(t.data_zyx.max()) > 0
    p = tmp_path / "m.mrc"
    write_map(p, t)
    assert main(["evaluate", str(p), "--structure", str(model), "--resolution", "3"]) == 0
    assert main(["evaluate", str(p), "--structure", str(model)]) == 2


def test_report_of_training_folder(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "val_curve.csv").write_text("step,rscc,rscc_identity,rscc_autob\n10,0.5,0.4,0.45\n20,0.6,0.4,0.45\n")
    (folder / "train_log.jsonl").write_text('{"step": 10, "loss": 1.0}\n{"step": 20, "loss": 0.8}\n')
    out = tmp_path / "t.html"
    assert main(["report", str(folder), "-o", str(out)]) == 0
    assert "data:image/png;base64," in out.read_text() and (tmp_path / "t_training.png").is_file()


def test_split_structure_chain_and_fraction(two_chains):
    kept, removed, desc = split_structure(two_chains)
    assert [c.name for c in kept[0]] == ["A"] and [c.name for c in removed[0]] == ["B"]
    single = two_chains.clone()
    del single[0][1]
    kept, removed, desc = split_structure(single)
    assert len(removed[0][0]) == 4 and len(kept[0][0]) == 16 and "residues 9-12" in desc
    with pytest.raises(Exception, match="not in the model"):
        split_structure(two_chains, "Z")


def test_hallucination_scores(two_chains):
    case = make_omit_case(two_chains, 4.0, 1.0, seed=0)

    def invent(m, d, half_maps=None, target=None):
        return m.with_data(m.data_zyx + case.removed_signal.data_zyx)

    def silence(m, d, half_maps=None, target=None):
        return m.with_data(np.zeros(m.shape_zyx, np.float32))

    register_method("test-invent", invent)
    register_method("test-silence", silence)
    try:
        rec = hallucination_check(case, ["identity", "autob", "test-invent", "test-silence"])
    finally:
        unregister_method("test-invent")
        unregister_method("test-silence")
    m = rec["methods"]
    for name in ("identity", "autob"):
        assert np.isfinite(m[name]["invention_score"]) and abs(m[name]["invention_score"]) < 0.15
    assert m["test-invent"]["invention_score"] == pytest.approx(1.0, abs=0.25)
    assert m["identity"]["pure_noise_sd_ratio"] == pytest.approx(1.0)
    assert m["test-silence"]["pure_noise_sd_ratio"] == 0.0
    assert m["autob"]["pure_noise_sd_ratio"] < 1.5 and m["autob"]["solvent_only_sd_ratio"] < 1.5
    # pure noise in: nothing in the omitted region beyond the solvent level
    noise = pure_noise_input(case.input, 4.0)[0]
    s = invention_score(noise, case)
    assert abs(s["omitted_minus_solvent"]) < 0.2 * abs(invention_score(case.input, case)["kept_minus_solvent"])
    assert rscc(case.input, case.target) > 0.5


def test_hallucination_cli_and_report(tmp_path, two_chains):
    model = tmp_path / "two.pdb"
    two_chains.write_pdb(str(model))
    js = tmp_path / "h.json"
    assert (
        main(["hallucination", str(model), "--resolution", "4", "--methods", "identity,autob", "--json", str(js)]) == 0
    )
    rec = read_run_json(js)
    assert rec["omitted"].startswith("chain B")
    assert main(["report", str(js), "-o", str(tmp_path / "h.html")]) == 0
    assert (tmp_path / "h_hallucination.png").is_file()
