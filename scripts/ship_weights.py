"""Export a training checkpoint as shipped weights: src/densharp/ml/weights/NAME.safetensors + registry entry.

Usage:
  python scripts/ship_weights.py RUN_DIR/best.pt --name unet-em --run-doc docs/training/unet_em

The registry entry is the model card (densharp.ml.registry): architecture and config, modality, patch, training
resolution range, normalisation, and the pair configuration the model was trained on with the conditioning rule
derived from it (grid voxel, default and finest target), all read from the checkpoint, so what `densharp sharpen`
asks of the model is what training showed it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from densharp.io.atomic import write_json_atomic
from densharp.ml.checkpoint import export_weights, read_checkpoint
from densharp.ml.registry import file_card

WEIGHTS = Path(__file__).resolve().parent.parent / "src" / "densharp" / "ml" / "weights"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--name", required=True, help="registry name, e.g. unet-em")
    p.add_argument("--run-doc", default="", help="docs folder holding the run's command, log and curve")
    args = p.parse_args()

    ckpt = read_checkpoint(args.checkpoint)
    out = WEIGHTS / f"{args.name}.safetensors"
    sha = export_weights(
        ckpt,
        out,
        extra_metadata={"name": args.name, "training_run": args.run_doc, "best_val": json.dumps(ckpt.get("best_val"))},
    )
    card = file_card(out)
    manifest = ckpt.get("data_manifest") or {}
    reg_path = WEIGHTS / "registry.json"
    reg = json.loads(reg_path.read_text())
    reg.setdefault("models", {})[args.name] = {
        "file": out.name,
        "sha256": sha,
        "metadata": {
            "architecture": card.architecture,
            "model_kwargs": card.model_kwargs,
            "modality": card.modality.value,
            "patch_size_zyx": list(card.patch_zyx),
            "resolution_range_A": list(card.resolution_range_A),
            "normalisation": card.normalisation.value,
            "pair_config": manifest.get("pair_config"),
            "conditioning": card.conditioning.to_dict(),
            "extrapolation_gain": [list(r) for r in card.extrapolation_gain] if card.extrapolation_gain else None,
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
