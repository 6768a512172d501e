"""List the trained models shipped inside the package, with their metadata and checksums.

Examples:
  densharp models
  densharp models --json
"""

from __future__ import annotations

import argparse


def add_args(p: argparse.ArgumentParser) -> None:
    """Register ``models`` arguments."""
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    """Print the shipped-weights registry."""
    from densharp.optional import require_ml

    require_ml("the shipped models")
    from densharp.ml.checkpoint import shipped_models

    models = shipped_models()
    if args.json:
        from densharp.io.atomic import json_text

        print(json_text(models), end="")
        return 0
    if not models:
        print("no trained models are shipped in this version; classical methods (autob, bfactor, fsc) are available")
        return 0
    for name, entry in sorted(models.items()):
        meta = entry.get("metadata", {})
        print(f"{name}: {entry['file']}  sha256 {entry['sha256'][:16]}…")
        for key in ("architecture", "modality", "resolution_range_A", "voxel_range_A", "noise_model"):
            if key in meta:
                print(f"  {key:20s} {meta[key]}")
    return 0
