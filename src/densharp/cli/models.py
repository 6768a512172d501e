"""List the trained models shipped inside the package: their cards (training domain, rules) and checksums.

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
    """Print the shipped model cards (no torch needed)."""
    from densharp.ml.registry import shipped_cards
    from densharp.sharpening import learned_unavailable

    cards = shipped_cards()
    if args.json:
        from densharp.io.atomic import json_text

        print(json_text({name: c.record() | {"file": c.path} for name, c in cards.items()}), end="")
        return 0
    if not cards:
        print("no trained models are shipped in this version; classical methods (autob, bfactor, fsc) are available")
        return 0
    why = learned_unavailable()
    if why is not None:
        print(f"note: these models cannot run here: {why}")
    for name, c in sorted(cards.items()):
        r = c.conditioning
        print(f"{name}: {c.architecture}, {c.modality.value}, sha256 {(c.sha256 or '')[:16]}…")
        print(f"  {'resolution_range_A':20s} {c.resolution_range_A[0]:g}–{c.resolution_range_A[1]:g}")
        print(f"  {'grid voxel (Å)':20s} {r.voxel_range_A[0]:g}–{r.voxel_range_A[1]:g}" +
              (f" (d/{r.d_per_voxel:g})" if r.d_per_voxel else ""))  # fmt: skip
        print(
            f"  {'default target':20s} max({r.target_per_d:g}·d, {r.d_target_min_A:g} Å, {r.target_voxel_factor:g}·voxel)"
        )
        print(f"  {'patch, normalisation':20s} {'x'.join(map(str, c.patch_zyx))}, {c.normalisation.value}")
    return 0
