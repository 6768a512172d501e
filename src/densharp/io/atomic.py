"""Output safety: up-front checks, atomic writes and atomic *sets* of outputs.

Three layers, each usable alone:

- :func:`check_outputs` checks, before any computation, that every planned output can be written: the folder
  exists and is writable, the name is not a folder, it does not exist (unless ``overwrite``) and — always, even
  with ``overwrite`` — it is **not the same file as an input** (compared by ``st_dev``/``st_ino``, so symlinks and
  hard links count, and by resolved path for outputs that do not exist yet).
- :func:`atomic_path` writes one file through a temporary beside it and renames it into place.
- :class:`OutputSet` makes a run's whole output set atomic::

      with OutputSet([out, sidecar, log], overwrite=args.overwrite, inputs=[args.map, args.mask]) as outs:
          ...                                   # compute; nothing is visible yet
          write_map(out, m)                     # staged: goes to outs.temp(out), renamed at the end
          write_json_atomic(sidecar, record)    # staged too (any atomic_path writer inside the block is)

  On entry it takes an exclusive lock per output (a second run writing one of them gets a one-line
  :class:`~densharp.errors.OutputBusyError`), re-checks the outputs under the lock and removes stale temporaries
  of killed processes. On a clean exit it renames every staged file into place, the primary output last; if that
  fails or is interrupted it undoes the renames (restoring any file it replaced), so a run leaves either the
  complete set or the folder as it was. On an exception nothing is renamed and every temporary is removed.

Temporaries are named ``.NAME.partial-HHHH-PID-RAND`` (``HHHH`` a hash of the host name), so a later run can tell
the leftovers of a dead process (same host, PID gone) from those of a live one; names too long for NAME_MAX are
shortened with a hash, so any legal output name works.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import json
import math
import os
import re
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from densharp.errors import DensharpError, InputError, OutputBusyError, OutputExistsError, OutputWriteError

PathLike = str | os.PathLike[str]

#: longest file name (bytes) most file systems allow
NAME_MAX = 255
#: output names longer than this (bytes) get a shortened, hashed prefix in their temporaries and lock file
_PREFIX_MAX = 200
#: legacy temporaries (``.NAME.partial-XXXXXXXX``, no PID) older than this are removed as stale
_LEGACY_STALE_S = 24 * 3600.0

_HOST = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:4]
_PARTIAL_RE = re.compile(r"\.partial-(?P<host>[0-9a-f]{4})-(?P<pid>\d+)-[0-9a-f]+(\.bak)?$")
_LEGACY_RE = re.compile(r"\.partial-[0-9a-f]{8}$")

#: files renamed into place in this process since :func:`reset_written` (for honest interrupt messages)
_WRITTEN: list[Path] = []
_ACTIVE: contextvars.ContextVar[tuple[OutputSet, ...]] = contextvars.ContextVar("densharp_output_sets", default=())


# ----------------------------------------------------------------------------------------------- bookkeeping
def reset_written() -> None:
    """Forget the record of written outputs (the CLI calls this at the start of every command)."""
    _WRITTEN.clear()


def written_paths() -> list[Path]:
    """Outputs renamed into place since :func:`reset_written`, in order."""
    return list(_WRITTEN)


def _mark_written(path: Path) -> None:
    _WRITTEN.append(path)


# ----------------------------------------------------------------------------------------------- names
def _prefix(final: Path) -> str:
    """The part of the temporary/lock name derived from the output name, short enough for NAME_MAX."""
    name = final.name
    raw = os.fsencode(name)
    if len(raw) <= _PREFIX_MAX:
        return name
    digest = hashlib.sha1(raw).hexdigest()[:10]
    cut = raw[: _PREFIX_MAX - 12]
    while cut:  # do not split a multi-byte character
        try:
            head = cut.decode("utf-8")
            break
        except UnicodeDecodeError:
            cut = cut[:-1]
    else:
        head = ""
    return f"{head}~{digest}"


def temp_name(final: PathLike, kind: str = "") -> Path:
    """A fresh temporary path beside ``final`` (``.NAME.partial-HOST-PID-RAND``, at most NAME_MAX bytes)."""
    f = Path(final)
    return f.with_name(f".{_prefix(f)}.partial-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}{kind}")


def lock_name(final: PathLike) -> Path:
    """The lock file of output ``final`` (``.NAME.lock`` beside it)."""
    f = Path(final)
    return f.with_name(f".{_prefix(f)}.lock")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def clean_stale_temporaries(final: PathLike) -> list[Path]:
    """Remove temporaries of ``final`` left by dead processes on this host; return what was removed.

    Temporaries of live processes (and of other hosts, whose PIDs cannot be checked) are left alone; legacy
    temporaries without a PID are removed once they are a day old.
    """
    f = Path(final)
    folder = f.parent if str(f.parent) else Path(".")
    head = f".{_prefix(f)}.partial-"
    removed: list[Path] = []
    try:
        names = [n for n in os.listdir(folder) if n.startswith(head)]
    except OSError:
        return removed
    now = time.time()
    for n in names:
        p = folder / n
        tail = n[len(head) - len(".partial-") :]
        m = _PARTIAL_RE.search(tail)
        stale = False
        if m:
            stale = m.group("host") == _HOST and not _pid_alive(int(m.group("pid")))
        elif _LEGACY_RE.search(tail):
            with contextlib.suppress(OSError):
                stale = now - p.lstat().st_mtime > _LEGACY_STALE_S
        if stale:
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


# ----------------------------------------------------------------------------------------------- checks
def _file_id(path: PathLike) -> tuple[int, int] | None:
    try:
        st = os.stat(path)  # follows symlinks: a link to an input is the input
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _resolved(path: PathLike) -> Path:
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):  # symlink loop
        return Path(os.path.abspath(path))


def check_not_an_input(out: PathLike, inputs: Iterable[PathLike | None], what: str = "output") -> None:
    """Refuse an output that is the same file as one of ``inputs`` (by identity, or by resolved path if absent).

    Raises
    ------
    InputError
        ``out`` names an input (directly, through a symlink or as a hard link), whatever ``--overwrite`` says.
    """
    o = Path(out)
    oid = _file_id(o)
    ores = _resolved(o)
    for inp in inputs:
        if inp is None:
            continue
        i = Path(inp)
        iid = _file_id(i)
        same = (oid is not None and oid == iid) or ores == _resolved(i)
        if same:
            how = "" if str(o) == str(i) else " (a link to it, or the same path)"
            raise InputError(
                f"{o}: the {what} is the same file as the input {i}{how}; writing it would destroy the input, "
                "so it is refused even with --overwrite: choose another output name"
            )


def check_outputs(
    paths: Iterable[PathLike | None],
    overwrite: bool = False,
    inputs: Iterable[PathLike | None] = (),
) -> list[Path]:
    """Check, before any computation, that every planned output can be written.

    Parameters
    ----------
    paths
        Planned output files (``None`` entries are skipped).
    overwrite
        Allow replacing existing outputs (never an input).
    inputs
        The run's input files (``None`` entries skipped); an output that is one of them is refused.

    Returns
    -------
    list of Path
        The outputs, in order.

    Raises
    ------
    OutputExistsError
        An output exists and ``overwrite`` is false.
    InputError
        An output is an input (by file identity), the folder is missing or not writable, two outputs collide, or
        the path is a folder.
    """
    ins = [i for i in inputs if i is not None]
    seen: dict[Path, Path] = {}
    seen_ids: dict[tuple[int, int], Path] = {}
    out: list[Path] = []
    for p in paths:
        if p is None:
            continue
        path = Path(p)
        if not path.name or path.name in (".", ".."):
            raise InputError(f"{path}: is not a file name; give a file name for the output")
        if len(os.fsencode(path.name)) > NAME_MAX:
            raise InputError(
                f"{path.name[:40]}...: output name is {len(os.fsencode(path.name))} bytes, longer than the "
                f"{NAME_MAX} bytes file systems allow; choose a shorter name"
            )
        resolved = _resolved(path)
        pid = _file_id(path)
        if resolved in seen or (pid is not None and pid in seen_ids):
            other = seen.get(resolved) or seen_ids.get(pid)  # type: ignore[arg-type]
            raise InputError(f"{path}: the same output is planned twice ({other}); choose distinct output names")
        seen[resolved] = path
        if pid is not None:
            seen_ids[pid] = path
        check_not_an_input(path, ins)
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"{path}: output folder {parent} does not exist; create it first (mkdir -p {parent})")
        if not os.access(parent, os.W_OK):
            raise InputError(f"{path}: output folder {parent} is not writable; choose another output path")
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not a file; give a file name for the output")
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path}: output exists; pass --overwrite to replace it or choose another name")
        out.append(path)
    return out


# ----------------------------------------------------------------------------------------------- one file
def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_error(final: Path, exc: OSError) -> OutputWriteError:
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        why, fix = "no space left on the device (disk full or quota)", "free some space or write elsewhere"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        why, fix = "permission denied or read-only file system", "choose a writable folder"
    elif code == errno.ENAMETOOLONG:
        why, fix = "file name too long", "choose a shorter output name"
    else:
        why, fix = exc.strerror or str(exc), "check the output folder"
    return OutputWriteError(f"{final}: cannot write the output ({why}); nothing was written there: {fix}")


def _active_set_for(final: Path) -> OutputSet | None:
    for s in reversed(_ACTIVE.get()):
        if s.plans(final):
            return s
    return None


def readable_path(path: PathLike) -> Path:
    """Where to read back an output written earlier in this run.

    Inside an active :class:`OutputSet` that is its staged temporary (not renamed yet); else the path itself.
    """
    p = Path(path)
    owner = _active_set_for(p)
    if owner is not None:
        tmp = owner.staged_temp(p)
        if tmp is not None:
            return tmp
    return p


@contextlib.contextmanager
def atomic_path(final: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success it replaces ``final`` atomically, on error it is removed.

    The temporary lives in the same folder so :func:`os.replace` is atomic, and the old file (if any) is never
    deleted first. Inside an :class:`OutputSet` that plans ``final``, the temporary belongs to the set and is
    renamed with the rest of the set when it completes. An ``OSError`` while writing (disk full, ...) becomes a
    one-line :class:`~densharp.errors.OutputWriteError` naming ``final``.
    """
    final_path = Path(final)
    owner = _active_set_for(final_path)
    if owner is not None:
        with owner.staged(final_path) as tmp:
            yield tmp
        return
    clean_stale_temporaries(final_path)
    tmp = temp_name(final_path)
    try:
        try:
            yield tmp
            _fsync_file(tmp)
            os.replace(tmp, final_path)
        except OSError as exc:
            if isinstance(exc, DensharpError):
                raise
            raise _write_error(final_path, exc) from exc
        _mark_written(final_path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically; non-finite numbers become ``null`` (see :func:`json_text`)."""
    write_text_atomic(path, json_text(obj))


def json_safe(obj: Any, where: str = "", replaced: dict[str, str] | None = None) -> Any:
    """``obj`` with every NaN/±Infinity float replaced by ``None``; ``replaced`` collects ``{key path: value}``.

    JSON has no NaN or Infinity (``json.dumps`` writes them anyway, which other parsers reject).
    """
    import enum

    import numpy as np

    if replaced is None:
        replaced = {}
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        if math.isfinite(v):
            return v
        replaced[where or "."] = str(v)
        return None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist(), where, replaced)
    if isinstance(obj, dict):
        return {k: json_safe(v, f"{where}.{k}" if where else str(k), replaced) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, f"{where}[{i}]", replaced) for i, v in enumerate(obj)]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return json_safe(obj.value, where, replaced)
    return obj


def json_text(obj: Any, indent: int | None = 2) -> str:
    """Strict JSON text of ``obj`` (never NaN/Infinity).

    Non-finite numbers become ``null``; when ``obj`` is a dict, the key ``"null_values"`` then lists each replaced
    field with the value it had (``"inf"``, ``"nan"``), so a reader can tell a missing value from an infinite one.
    """
    replaced: dict[str, str] = {}
    safe = json_safe(obj, "", replaced)
    if replaced and isinstance(safe, dict):
        safe = {**safe, "null_values": {**(safe.get("null_values") or {}), **replaced}}
    return json.dumps(safe, indent=indent, sort_keys=False, allow_nan=False, default=_json_default) + "\n"


def _json_default(o: Any) -> Any:
    # numpy scalars and arrays, Paths and enums appear in metadata; turn them into plain JSON types.
    import enum

    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, enum.Enum):
        return o.value
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ----------------------------------------------------------------------------------------------- output sets
class _Lock:
    """An exclusive ``flock`` on ``.NAME.lock`` beside an output, with the holder's PID written in it."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.path = lock_name(final)
        self.fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = ""
                with contextlib.suppress(OSError, ValueError):
                    holder = os.pread(fd, 200, 0).decode("ascii", "replace").split()[0]
                os.close(fd)
                raise OutputBusyError(
                    f"{self.final}: another densharp run{f' (PID {holder})' if holder else ''} is writing this "
                    "output now; wait for it to finish or choose another output name"
                ) from None
            except OSError:  # no flock on this file system: fall back to no lock rather than fail
                os.close(fd)
                with contextlib.suppress(OSError):
                    self.path.unlink()
                return
            # the file may have been unlinked by its previous holder between our open and flock: retry
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode("ascii", "replace"), 0)
                self.fd = fd
                return
            os.close(fd)
        raise OutputBusyError(f"{self.final}: could not lock the output (lock file keeps changing); try again")

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # unlink while still holding the lock; later openers see a fresh file
        os.close(self.fd)
        self.fd = None


class OutputSet:
    """The outputs of one run, written as a set: all of them or none become visible.

    Parameters
    ----------
    paths
        Every output the run may write (``None`` entries skipped). Only those written (through :meth:`temp`,
        :meth:`staged` or any :func:`atomic_path` writer inside the ``with`` block) are renamed into place; a
        planned output never written is simply absent.
    overwrite
        Replace existing outputs (``--overwrite``); inputs are never replaced.
    inputs
        The run's input files, for :func:`check_outputs`' identity check.
    primary
        The output renamed last (default: the first path), so its presence means the set is complete.
    lock
        Take an exclusive lock per output for the duration of the block (default true).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with OutputSet([d / "a.txt", d / "a.json"]) as outs:
    ...     _ = outs.temp(d / "a.json").write_text("{}")
    ...     _ = outs.temp(d / "a.txt").write_text("x")
    >>> sorted(p.name for p in d.iterdir())
    ['a.json', 'a.txt']
    """

    def __init__(
        self,
        paths: Sequence[PathLike | None],
        overwrite: bool = False,
        inputs: Iterable[PathLike | None] = (),
        primary: PathLike | None = None,
        lock: bool = True,
    ) -> None:
        self.paths = [Path(p) for p in paths if p is not None]
        self.overwrite = overwrite
        self.inputs = [Path(i) for i in inputs if i is not None]
        self.primary = Path(primary) if primary is not None else (self.paths[0] if self.paths else None)
        if self.primary is not None and self.primary not in self.paths:
            self.paths.append(self.primary)
        self._lock = lock
        self._locks: list[_Lock] = []
        self._temps: dict[Path, Path] = {}
        self._keys = {self._key(p): p for p in self.paths}
        self._token: contextvars.Token[tuple[OutputSet, ...]] | None = None
        self.committed: list[Path] = []

    # ---- bookkeeping
    @staticmethod
    def _key(p: Path) -> Path:
        return _resolved(p.parent if str(p.parent) else Path(".")) / p.name

    def plans(self, path: PathLike) -> bool:
        """True if ``path`` is one of this set's outputs."""
        return self._key(Path(path)) in self._keys

    def _final(self, path: PathLike) -> Path:
        k = self._key(Path(path))
        if k not in self._keys:
            raise ValueError(f"{path} is not one of this output set's planned outputs {[str(p) for p in self.paths]}")
        return self._keys[k]

    # ---- context
    def __enter__(self) -> OutputSet:
        check_outputs(self.paths, overwrite=self.overwrite, inputs=self.inputs)
        try:
            if self._lock:
                for p in self.paths:
                    lk = _Lock(p)
                    lk.acquire()
                    self._locks.append(lk)
            # under the lock: outputs may have appeared since the first check (a run that just finished)
            check_outputs(self.paths, overwrite=self.overwrite, inputs=self.inputs)
            for p in self.paths:
                clean_stale_temporaries(p)
        except BaseException:
            self._release()
            raise
        self._token = _ACTIVE.set((*_ACTIVE.get(), self))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        owner = self._owner_of(exc) if isinstance(exc, OSError) else None
        try:
            if self._token is not None:
                _ACTIVE.reset(self._token)
                self._token = None
            if exc_type is None:
                self.commit()
        finally:
            self.discard()
            self._release()
        if owner is not None:
            raise _write_error(owner, exc) from exc  # type: ignore[arg-type]

    def _owner_of(self, exc: OSError) -> Path | None:
        """The output an OSError from the ``with`` block was writing, or ``None`` if it is not about our outputs."""
        names = [Path(f) for f in (exc.filename, getattr(exc, "filename2", None)) if f]
        if names:
            for n in names:
                for final, tmp in list(self._temps.items()) + [(p, p) for p in self.paths]:
                    if n.name in (tmp.name, final.name) and self._key(n.parent / final.name) == self._key(final):
                        return final
            return None
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):  # no file named: a write ran out of room
            return self._last or self.primary
        return None

    def _release(self) -> None:
        for lk in reversed(self._locks):
            lk.release()
        self._locks.clear()

    # ---- staging
    _last: Path | None = None

    def temp(self, path: PathLike) -> Path:
        """The temporary that stands for planned output ``path`` (the same one on every call for that output)."""
        final = self._final(path)
        self._last = final
        if final not in self._temps:
            self._temps[final] = temp_name(final)
        return self._temps[final]

    def staged_temp(self, path: PathLike) -> Path | None:
        """The temporary already written for ``path``, or ``None``."""
        tmp = self._temps.get(self._final(path))
        return tmp if tmp is not None and tmp.exists() else None

    @contextlib.contextmanager
    def staged(self, path: PathLike) -> Iterator[Path]:
        """Context form of :meth:`temp`: on an exception inside it the temporary is removed at once."""
        tmp = self.temp(path)
        final = self._final(path)
        try:
            yield tmp
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            self._temps.pop(final, None)
            if isinstance(exc, OSError):
                raise _write_error(final, exc) from exc
            raise

    def discard(self) -> None:
        """Remove every temporary not yet renamed (called on any failure; harmless after a commit)."""
        for tmp in self._temps.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._temps.clear()

    def commit(self) -> list[Path]:
        """Rename every staged file into place (primary last); undo all of it if any step fails or is interrupted.

        SIGINT/SIGTERM are held back while renaming (in the main thread), so an interrupt lands before the first
        rename or after the last. Returns the outputs now in place.
        """
        staged = [p for p in self.paths if p in self._temps]
        missing = [p for p in staged if not self._temps[p].exists()]
        if missing:
            raise OutputWriteError(f"{missing[0]}: its temporary file was never written; nothing was written")
        order = [p for p in staged if p != self.primary] + [p for p in staged if p == self.primary]
        for p in order:
            self._last = p
            try:
                _fsync_file(self._temps[p])
            except OSError as exc:
                raise _write_error(p, exc) from exc
        blocked = _block_signals()
        done: list[tuple[Path, Path | None]] = []
        try:
            for p in order:
                self._last = p
                tmp = self._temps[p]
                backup = None
                if os.path.lexists(p):
                    if not self.overwrite:
                        raise OutputExistsError(
                            f"{p}: output appeared while this run was computing (written by another program); "
                            "nothing was written: rerun with --overwrite or choose another name"
                        )
                    backup = temp_name(p, kind=".bak")
                    try:
                        os.link(p, backup, follow_symlinks=False)
                    except OSError:
                        backup = None  # no hard links here: the old file cannot be restored on failure
                    try:
                        os.replace(tmp, p)
                    except BaseException:
                        if backup is not None:
                            with contextlib.suppress(OSError):
                                backup.unlink()
                        raise
                else:
                    _rename_noclobber(tmp, p)
                done.append((p, backup))
                del self._temps[p]
            for folder in {p.parent for p, _ in done}:
                _fsync_dir(folder if str(folder) else Path("."))
        except BaseException as exc:
            for p, backup in reversed(done):
                with contextlib.suppress(OSError):
                    if backup is not None:
                        os.replace(backup, p)
                    else:
                        p.unlink()
            if isinstance(exc, OSError) and not isinstance(exc, DensharpError):
                raise _write_error(self._last or order[-1], exc) from exc
            raise
        else:
            for _, backup in done:
                if backup is not None:
                    with contextlib.suppress(OSError):
                        backup.unlink()
            for p, _ in done:
                _mark_written(p)
            self.committed = [p for p, _ in done]
        finally:
            _unblock_signals(blocked)
        return list(self.committed)


@contextlib.contextmanager
def locked_outputs(paths: Iterable[PathLike]) -> Iterator[None]:
    """Hold the exclusive output locks of ``paths`` (as :class:`OutputSet` does) without staging any file.

    For runs that write their files progressively (training checkpoints) but must not share them with another run.

    Raises
    ------
    OutputBusyError
        Another run holds one of the locks.
    """
    locks: list[_Lock] = []
    try:
        for p in paths:
            lk = _Lock(Path(p))
            lk.acquire()
            locks.append(lk)
        yield
    finally:
        for lk in reversed(locks):
            lk.release()


def _rename_noclobber(tmp: Path, final: Path) -> None:
    """Move ``tmp`` to ``final`` only if ``final`` does not exist (atomic with hard links, else check + replace)."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise OutputExistsError(
            f"{final}: output appeared while this run was computing; nothing was written: rerun with --overwrite"
        ) from None
    except OSError:
        if os.path.lexists(final):
            raise OutputExistsError(
                f"{final}: output appeared while this run was computing; nothing was written"
            ) from None
        os.replace(tmp, final)
        return
    os.unlink(tmp)


def _block_signals() -> set[int] | None:
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        return None
    sigs = {signal.SIGINT, signal.SIGTERM}
    try:
        return set(signal.pthread_sigmask(signal.SIG_BLOCK, sigs))
    except (OSError, ValueError):
        return None


def _unblock_signals(previous: set[int] | None) -> None:
    if previous is None:
        return
    with contextlib.suppress(OSError, ValueError):
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
