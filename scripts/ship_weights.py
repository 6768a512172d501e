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


def calibrate(ckpt: dict, corpus: Path) -> list[list[float]]:
    """The extrapolation gain of the checkpoint's model on 8 val crystals (densharp.evaluate.validation)."""
    from densharp.evaluate.validation import extrapolation_gain
    from densharp.ml.checkpoint import _rebuild
    from densharp.ml.registry import training_card
    from densharp.ml.sharpen import LoadedModel, sharpen_learned
    from densharp.modality import Modality
    from densharp.normalisation import NormKind
    from densharp.simulate.crystal_pairs import CrystalConfig, CrystalPairs

    pair = {k: tuple(v) if isinstance(v, list) else v for k, v in ckpt["data_manifest"]["pair_config"].items()}
    pair.pop("conditioning", None)
    cfg = CrystalConfig(**pair)
    model = _rebuild(ckpt["model_name"], ckpt["model_kwargs"], ckpt["state_dict"], "checkpoint")
    card = training_card(ckpt["model_name"], ckpt["model_kwargs"], Modality.XRAY, tuple(ckpt["patch_size_zyx"]),
                         tuple(ckpt["resolution_range_A"]), cfg.conditioning, NormKind.parse(ckpt["normalisation"]))  # fmt: skip
    loaded = LoadedModel(card, model, "checkpoint")
    val = CrystalPairs(corpus, "val", crystal_cfg=cfg, patch=card.patch_zyx[0])
    crystals = [val.crystal(777, k) for k in range(8)]
    gain = extrapolation_gain(
        crystals, lambda m, d, d_t: sharpen_learned(m, loaded, d, d_target_A=d_t, periodic=True).map
    )
    print("extrapolation gain (u, g):", [[round(u, 3), round(g, 3)] for u, g in gain])
    return gain


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--name", required=True, help="registry name, e.g. unet-em")
    p.add_argument("--run-doc", default="", help="docs folder holding the run's command, log and curve")
    p.add_argument(
        "--calibrate",
        type=Path,
        metavar="CORPUS",
        help="X-ray models: measure the extrapolation gain again on the corpus' val crystals (as training does)",
    )
    args = p.parse_args()

    ckpt = read_checkpoint(args.checkpoint)
    if args.calibrate is not None:
        ckpt = dict(ckpt)
        best = dict(ckpt.get("best_val") or {})
        metrics = {k: v for k, v in (best.get("metrics") or {}).items() if not k.startswith("xgain_u")}
        for u, g in calibrate(ckpt, args.calibrate):
            metrics[f"xgain_u{u:.3f}"] = g
        ckpt["best_val"] = best | {"metrics": metrics, "gain_calibrated_at_export": True}
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
