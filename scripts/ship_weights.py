"""Export a training checkpoint as shipped weights: src/densharp/ml/weights/NAME.safetensors + registry entry.

Usage:
  python scripts/ship_weights.py RUN_DIR/best.pt --name unet-em --run-doc docs/training/unet_em

The training domain written into the metadata is what `densharp sharpen` checks inputs against: modality,
resolution range (from the checkpoint), voxel range (the PairConfig range the pairs were drawn from) and the noise
model. ``voxel_size_A`` is the nominal voxel (Å) inputs are resampled to when they fall outside the voxel range.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from densharp.io.atomic import write_json_atomic
from densharp.ml.checkpoint import export_weights, read_checkpoint

WEIGHTS = Path(__file__).resolve().parent.parent / "src" / "densharp" / "ml" / "weights"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--name", required=True, help="registry name, e.g. unet-em")
    p.add_argument(
        "--modality", default=None, help="cryo-em or x-ray; default: the checkpoint's data modality (else cryo-em)"
    )
    p.add_argument("--voxel-range", nargs=2, type=float, default=(0.9, 1.2), metavar=("LO", "HI"))
    p.add_argument("--voxel-size", type=float, default=1.0, help="nominal voxel (Å) for resampling")
    p.add_argument(
        "--noise-model",
        default="simulated half-map noise shaped like the signal spectrum, FSC 0.143 at the stated resolution; "
        "global + smoothly varying local B",
    )
    p.add_argument("--run-doc", default="", help="docs folder holding the run's command, log and curve")
    args = p.parse_args()

    ckpt = read_checkpoint(args.checkpoint)
    if args.modality is None:
        args.modality = str((ckpt.get("data_manifest") or {}).get("modality") or "cryo-em")
    ckpt["voxel_size_A"] = float(args.voxel_size)
    out = WEIGHTS / f"{args.name}.safetensors"
    sha = export_weights(
        ckpt,
        out,
        modality=args.modality,
        voxel_range_A=list(args.voxel_range),
        noise_model=args.noise_model,
        extra_metadata={"name": args.name, "training_run": args.run_doc, "best_val": json.dumps(ckpt.get("best_val"))},
    )
    reg_path = WEIGHTS / "registry.json"
    reg = json.loads(reg_path.read_text())
    reg.setdefault("models", {})[args.name] = {
        "file": out.name,
        "sha256": sha,
        "metadata": {
            "architecture": ckpt["model_name"],
            "modality": args.modality,
            "resolution_range_A": ckpt.get("resolution_range_A"),
            "voxel_range_A": list(args.voxel_range),
            "patch_size_zyx": ckpt.get("patch_size_zyx"),
            "step": ckpt.get("step"),
            "best_val": ckpt.get("best_val"),
            "training_run": args.run_doc,
            "size_bytes": out.stat().st_size,
        },
    }
    write_json_atomic(reg_path, reg)
    print(f"{out} ({out.stat().st_size / 1e6:.1f} MB) sha256 {sha}")


if __name__ == "__main__":
    main()
