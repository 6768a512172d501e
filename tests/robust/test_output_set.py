"""Issue 14 item 5: the output set is atomic (all or nothing), locked, self-cleaning; SIGTERM acts like Ctrl-C;
a write failure (disk full) is one line naming the file."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys

import pytest

from conftest import error_line, refused, run_cli, snapshot
from densharp.errors import OutputBusyError, OutputExistsError, OutputWriteError
from densharp.io import atomic
from densharp.io.atomic import NAME_MAX, OutputSet, temp_name


def _sim(work, out, *extra):
    return ["simulate", work["model"], "-o", out, "--resolution", 4, "--voxel-size", 1.5, "--padding", 4, *extra]


def test_output_set_commits_all_files_primary_last(tmp_path):
    order = []
    real = atomic._rename_noclobber

    def spy(tmp, final):
        order.append(final.name)
        real(tmp, final)

    outs_paths = [tmp_path / "map.mrc", tmp_path / "map.json", tmp_path / "map.log"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(atomic, "_rename_noclobber", spy)
        with OutputSet(outs_paths, primary=outs_paths[0]) as outs:
            for p in outs_paths:
                outs.temp(p).write_text(p.name)
            assert snapshot(tmp_path).keys() == {f".{p.name}.lock" for p in outs_paths} | {
                outs.temp(p).name for p in outs_paths
            }  # nothing visible yet
    assert order == ["map.json", "map.log", "map.mrc"]
    assert sorted(snapshot(tmp_path)) == ["map.json", "map.log", "map.mrc"]  # no temporaries, no locks


def test_failure_inside_the_block_leaves_nothing(tmp_path):
    paths = [tmp_path / "a.mrc", tmp_path / "a.json"]
    with pytest.raises(RuntimeError), OutputSet(paths) as outs:
        outs.temp(paths[1]).write_text("{}")
        raise RuntimeError("boom")
    assert snapshot(tmp_path) == {}


@pytest.mark.parametrize("overwrite", [False, True])
def test_failure_during_commit_rolls_back(tmp_path, overwrite):
    paths = [tmp_path / "a.mrc", tmp_path / "a.json", tmp_path / "a.log"]
    if overwrite:
        for p in paths:
            p.write_text("old " + p.name)
    before = snapshot(tmp_path)
    calls = {"n": 0}
    real_replace, real_nc = os.replace, atomic._rename_noclobber

    def flaky(fn):
        def inner(src, dst, *a, **k):
            if str(src).find(".partial-") >= 0 and not str(src).endswith(".bak"):
                calls["n"] += 1
                if calls["n"] == 2:
                    raise OSError(errno.ENOSPC, "No space left on device", str(dst))
            return fn(src, dst, *a, **k)

        return inner

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(atomic.os, "replace", flaky(real_replace))
        mp.setattr(atomic, "_rename_noclobber", flaky(real_nc))
        with pytest.raises(OutputWriteError, match="no space left"), OutputSet(paths, overwrite=overwrite) as outs:
            for p in paths:
                outs.temp(p).write_text("new " + p.name)
    assert snapshot(tmp_path) == before  # old files back (or nothing), no temporaries, no backups, no locks


def test_second_run_on_the_same_output_is_refused(capsys, work):
    out = work["dir"] / "s.mrc"
    with OutputSet([out]):  # another run holds the output
        line = refused(capsys, work["dir"], 1, *_sim(work, out), contains=(str(out), "another densharp run"))
    assert str(os.getpid()) in line
    with pytest.raises(OutputBusyError), OutputSet([out]), OutputSet([out]):
        pass


def test_lock_held_by_another_process(tmp_path):
    out = tmp_path / "x.mrc"
    code = (
        "import sys, time; from densharp.io.atomic import OutputSet\n"
        f"with OutputSet([{str(out)!r}]):\n    print('locked', flush=True); time.sleep(30)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        with pytest.raises(OutputBusyError, match=f"PID {p.pid}"), OutputSet([out]):
            pass
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
    with OutputSet([out]) as outs:  # a killed holder's lock is free again (flock)
        outs.temp(out).write_text("x")
    assert sorted(snapshot(tmp_path)) == ["x.mrc"]


def test_output_appearing_while_computing_is_not_clobbered(tmp_path):
    out = tmp_path / "x.mrc"
    with pytest.raises(OutputExistsError, match="appeared"), OutputSet([out]) as outs:
        outs.temp(out).write_text("mine")
        out.write_text("someone else's")
    assert out.read_text() == "someone else's"
    assert sorted(snapshot(tmp_path)) == ["x.mrc"]


def test_stale_temporaries_of_dead_processes_are_cleaned(capsys, work):
    d = work["dir"]
    out = d / "s.mrc"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = temp_name(out).name.replace(f"-{os.getpid()}-", f"-{dead.pid}-")
    live = temp_name(out).name  # this process: alive, must be kept
    (d / stale).write_text("left by a killed run")
    (d / live).write_text("in flight")
    rc, _, err = run_cli(capsys, *_sim(work, out, "-q"))
    assert rc == 0, err
    names = set(snapshot(d))
    assert stale not in names and live in names
    assert {"s.mrc", "s.json"} <= names
    assert not [n for n in names if n.endswith(".lock")]


def test_a_legal_249_byte_name_works(capsys, work):
    d = work["dir"]
    name = "m" * (249 - len(".mrc")) + ".mrc"
    assert len(name.encode()) == 249
    rc, _, err = run_cli(capsys, *_sim(work, d / name, "-q"))
    assert rc == 0, err
    assert (d / name).is_file()
    assert all(len(n.encode()) <= NAME_MAX for n in os.listdir(d))
    assert len(temp_name(d / name).name.encode()) <= NAME_MAX


def test_sigterm_is_handled_like_ctrl_c(capsys, work, monkeypatch):
    import densharp.simulate.density as density

    def killed(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)  # a scheduler's time limit, mid-computation
        raise AssertionError("SIGTERM was not handled")

    monkeypatch.setattr(density, "simulate_map", killed)
    line = refused(capsys, work["dir"], 1, *_sim(work, work["dir"] / "s.mrc", "--half-maps"))
    assert line == "error: terminated (SIGTERM); no output was written"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


def test_interrupt_message_is_honest_about_what_was_written(tmp_path):
    from densharp.cli import Terminated, _interrupted_message

    atomic.reset_written()
    assert _interrupted_message(KeyboardInterrupt()) == "error: interrupted; no output was written"
    with OutputSet([tmp_path / "a.txt"]) as outs:
        outs.temp(tmp_path / "a.txt").write_text("a")
    msg = _interrupted_message(Terminated())
    assert msg.startswith("error: terminated (SIGTERM) after writing") and "a.txt" in msg


def test_disk_full_is_one_line_naming_the_file(capsys, work, monkeypatch):
    real = atomic._fsync_file

    def full(path):
        if ".s.json.partial-" in path.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path)

    monkeypatch.setattr(atomic, "_fsync_file", full)
    line = refused(capsys, work["dir"], 1, *_sim(work, work["dir"] / "s.mrc"), contains=("s.json", "no space left"))
    assert "nothing was written" in line


def test_oserror_outside_an_output_set_is_one_line(capsys, work, monkeypatch):
    import densharp.simulate.structure as structure

    def broken(*a, **k):
        raise OSError(errno.EIO, "Input/output error", str(work["model"]))

    monkeypatch.setattr(structure, "load_structure", broken)
    line = refused(capsys, work["dir"], 1, *_sim(work, work["dir"] / "s.mrc"), contains=(str(work["model"]),))
    assert "Input/output error" in line
    assert "s.mrc" not in line  # not blamed on the output
    error_line(line)


def test_disk_full_while_writing_a_map_names_the_map(capsys, work, monkeypatch):
    import mrcfile

    real_new = mrcfile.new

    def full(name, *a, **k):
        if ".s_half2.mrc.partial-" in str(name):
            raise OSError(errno.ENOSPC, "No space left on device", str(name))
        return real_new(name, *a, **k)

    monkeypatch.setattr(mrcfile, "new", full)
    line = refused(
        capsys, work["dir"], 1, *_sim(work, work["dir"] / "s.mrc", "--half-maps"), contains=("s_half2.mrc", "no space")
    )
    assert ".partial-" not in line
