"""Robustness suite (issue 14): hostile and careless input never loses a file, never writes garbage, and always
ends in one clear line. Every failure case checks the message, the exit code, that nothing was written or left
behind (the folder is listed) and that the inputs are untouched (sha256 before and after)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from densharp.cli import main
from densharp.io.maps import write_map
from synth import globule_structure


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _fingerprint(p: Path) -> str:
    st = p.lstat()
    if st.st_size > (64 << 20):  # huge sparse test files: size, inode and mtime instead of reading gigabytes
        return f"size {st.st_size} ino {st.st_ino} mtime {st.st_mtime_ns}"
    return sha(p)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) with its sha256: the 'nothing changed' check."""
    return {
        str(p.relative_to(folder)): _fingerprint(p) for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()
    }


def run_cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def error_line(err: str) -> str:
    """The one ``error:`` line, which must be the last line printed; returns it."""
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, err
    assert lines[-1] == errors[0], err
    assert "unexpected" not in errors[0], err
    return errors[0]


def refused(capsys, folder: Path, rc_expected: int, *argv, contains: tuple[str, ...] = ()) -> str:
    """Run ``argv``; assert exit code, one error line naming ``contains``, and the folder unchanged."""
    before = snapshot(folder)
    rc, _, err = run_cli(capsys, *argv)
    line = error_line(err)
    assert rc == rc_expected, err
    for c in contains:
        assert c in line, line
    assert snapshot(folder) == before, "files were written, removed or changed"
    return line


@pytest.fixture
def work(tmp_path, blurred_35A, half_maps, target_2A):
    """A folder with awkward-geometry maps (permuted axes, anisotropic voxels, non-zero origin) and a model."""
    paths = {}
    for name, m in {"map": blurred_35A, "h1": half_maps[0], "h2": half_maps[1], "target": target_2A}.items():
        p = tmp_path / f"{name}.mrc"
        write_map(p, replace(m, axis_order_crs=(3, 1, 2)))
        paths[name] = p
    st = globule_structure(200, 9.0, seed=5)
    st.setup_entities()
    paths["model"] = tmp_path / "model.pdb"
    st.write_pdb(str(paths["model"]))
    paths["dir"] = tmp_path
    return paths


@pytest.fixture
def rng():
    return np.random.default_rng(0)
