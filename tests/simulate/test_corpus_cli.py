from __future__ import annotations

import hashlib
import json

import numpy as np

from densharp import corpus
from densharp.cli import main
from densharp.corpus import read_corpus_tsv, split_families


def test_packaged_splits_share_no_family():
    fam = split_families(read_corpus_tsv())
    assert fam["train"] and fam["val"] and fam["test"]
    assert not (fam["train"] & fam["val"]) and not (fam["train"] & fam["test"]) and not (fam["val"] & fam["test"])
    names = [e.name for e in read_corpus_tsv()]
    assert len(names) == len(set(n.lower() for n in names))


def _tsv(tmp_path, rows):
    head = "split\tcluster\tsource\tpackage\tmember\tsha256\n"
    p = tmp_path / "s.tsv"
    p.write_text(head + "".join("\t".join(r) + "\n" for r in rows))
    return p


def test_fetch_is_idempotent_and_reports_failures(tmp_path, monkeypatch, messy_text):
    PDB_MESSY = messy_text
    pkg = tmp_path / "pkg"
    (pkg / "data").mkdir(parents=True)
    (pkg / "data" / "m.pdb").write_text(PDB_MESSY)
    sha = hashlib.sha256(PDB_MESSY.encode()).hexdigest()
    calls = []

    def fake_download(e, cache):
        calls.append(e.package)
        return pkg

    monkeypatch.setattr(corpus, "_download_package", fake_download)
    tsv = _tsv(
        tmp_path,
        [
            ["train", "1", "pypi-sdist", "fake==1", "data/m.pdb", sha],
            ["val", "2", "pypi-sdist", "fake==1", "data/missing.pdb", sha],
            ["test", "3", "pypi-sdist", "fake==1", "data/m.pdb", "0" * 64],
        ],
    )
    dest = tmp_path / "out"
    rc = main(["corpus", "fetch", "--to", str(dest), "--tsv", str(tsv), "-q"])
    assert rc == 1
    assert calls == ["fake==1"]  # one download for every member of a package
    man = json.loads((dest / "manifest.json").read_text())
    assert list(man["entries"]) == ["m"]
    assert man["entries"]["m"]["atoms"] == 6 and man["entries"]["m"]["sha256"] == sha
    assert (dest / "structures" / "train" / "m.cif.gz").is_file()
    rep = corpus.fetch_corpus(dest, ["train"], tsv)
    assert rep.skipped == ["m"] and not rep.done and not rep.failed


def test_simulate_cli_writes_maps_and_refuses_overwrite(tmp_path, helix):
    model = tmp_path / "helix.pdb"
    helix.write_pdb(str(model))
    out = tmp_path / "sim.mrc"
    args = ["simulate", str(model), "-o", str(out), "--resolution", "4", "--half-maps", "--seed", "2", "-q"]
    assert main(args) == 0
    from densharp.io.maps import read_map
    from densharp.metrics.fsc import fsc_curve

    h1, h2 = read_map(tmp_path / "sim_half1.mrc"), read_map(tmp_path / "sim_half2.mrc")
    assert read_map(out).same_grid(h1)
    assert abs(fsc_curve(h1, h2).resolution_at(0.143) - 4) < 0.6
    meta = json.loads((tmp_path / "sim.json").read_text())
    assert meta["resolution_A"] == 4 and meta["cleaning"]["atoms"] == 60
    assert main(args) == 2
    assert not np.isnan(read_map(out).data_zyx).any()


def test_simulate_cli_crystal_mtz(tmp_path, helix):
    model = tmp_path / "helix.pdb"
    helix.write_pdb(str(model))
    rc = main(
        [
            "simulate",
            str(model),
            "-o",
            str(tmp_path / "x.mrc"),
            "--resolution",
            "2.5",
            "--modality",
            "xray",
            "--mtz",
            str(tmp_path / "x.mtz"),
            "--voxel-size",
            "0.8",
            "-q",
        ]
    )
    assert rc == 0 and (tmp_path / "x.mtz").is_file()
    assert (
        main(
            [
                "simulate",
                str(model),
                "-o",
                str(tmp_path / "y.mrc"),
                "--resolution",
                "3",
                "--mtz",
                str(tmp_path / "y.mtz"),
                "-q",
            ]
        )
        == 2
    )
