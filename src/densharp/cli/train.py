"""Train a sharpening network on pairs simulated from a structure corpus.

Writes RUN_DIR/config.json (resolved config, argv, versions), last.pt and best.pt (selected by validation RSCC),
train_log.jsonl, val_curve.csv (step, model, identity and auto-B RSCC) and val_curve.png.
--config FILE.json holds TrainConfig fields (and optionally "pair": PairConfig fields, or CrystalConfig fields with
--modality xray); flags override it. --modality xray trains on crystallographic pairs (2mFo-DFc-like unit-cell maps
with phase errors against the true model density; densharp.simulate.crystal_pairs). The configs of the shipped
models are in configs/train/.

Examples:
  densharp train --arch unet --corpus corpus -o runs/unet --steps 2000 --patch 32
  densharp train --arch unet --corpus corpus -o runs/unet --steps 4000 --resume
  densharp train --arch unet --config configs/train/unet_em.json --corpus corpus -o runs/unet_em
  densharp train --arch unet --modality xray --corpus corpus -o runs/unet_xray --steps 2000 --patch 32
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from densharp.cli._args import seed_int
from densharp.errors import InputError

log = logging.getLogger("densharp")

#: files this command writes in RUN_DIR (removed by --overwrite)
RUN_FILES = (
    "config.json", "last.pt", "best.pt", "train_log.jsonl", "val_curve.csv", "val_curve.png", "val_details.jsonl"
)  # fmt: skip

#: flag dest -> TrainConfig field
FLAG_FIELDS = {
    "steps": "total_steps",
    "batch_size": "batch_size",
    "lr": "lr",
    "precision": "precision",
    "device": "device",
    "threads": "threads",
    "max_time": "max_time_s",
    "eval_interval": "eval_interval",
    "seed": "seed",
}


def add_args(p: argparse.ArgumentParser) -> None:
    """Register ``train`` arguments."""
    p.add_argument("--arch", required=True, choices=("unet", "vae", "report-vae"), help="network architecture")
    p.add_argument(
        "--modality",
        choices=("em", "xray"),
        default="em",
        help="training pairs: cryo-EM maps (em) or crystallographic unit-cell maps (xray); default %(default)s",
    )
    p.add_argument("--config", type=Path, metavar="FILE.json", help="JSON with TrainConfig fields (+ optional 'pair')")
    p.add_argument("--corpus", type=Path, required=True, metavar="DIR", help="corpus from 'densharp corpus fetch'")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="RUN_DIR", help="run folder")
    p.add_argument("--steps", type=int, help="total optimiser steps (default 10000)")
    p.add_argument("--batch-size", type=int, help="patches per step (default 4)")
    p.add_argument("--patch", type=int, help="patch edge in voxels (default 32)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 1e-3)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), help="default auto")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default auto")
    p.add_argument("--threads", type=int, help="torch threads of this process")
    p.add_argument("--max-time", type=float, metavar="S", help="stop (with a checkpoint) after S seconds")
    p.add_argument("--eval-interval", type=int, help="steps between validations (default 500)")
    p.add_argument("--val-cases", type=int, default=24, help="validation patches (default %(default)s)")
    p.add_argument(
        "--perturbed-cases",
        type=int,
        default=3,
        help="val boxes sharpened under each real-map perturbation at every evaluation (0: off; default %(default)s)",
    )
    p.add_argument(
        "--realdata",
        type=Path,
        metavar="DIR",
        help="real maps (fetch_real.py output) validated at every evaluation (default: $DENSHARP_REALDATA, else off)",
    )
    p.add_argument(
        "--realdata-cases",
        metavar="NAMES",
        help="comma-separated parts of the real case names to validate on (default: every usable case)",
    )
    p.add_argument("--seed", type=seed_int, help="seed of model init and data stream, 0 to 2³²−1 (default 0)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    p.add_argument("--overwrite", action="store_true", help="delete this command's files in RUN_DIR first")


def resolve_config(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """TrainConfig from the config file and flags, and the PairConfig overrides (``"pair"``)."""
    from densharp.ml.train import TrainConfig

    base: dict[str, Any] = {}
    if args.config is not None:
        try:
            base = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{args.config}: cannot read config JSON ({exc}); give a JSON object") from None
        if not isinstance(base, dict):
            raise InputError(f"{args.config}: config must be a JSON object of TrainConfig fields")
    pair = dict(base.pop("pair", None) or {})
    base["model_name"] = args.arch
    for dest, fld in FLAG_FIELDS.items():
        v = getattr(args, dest)
        if v is not None:
            base[fld] = v
    if args.patch is not None:
        base["patch_size_zyx"] = [args.patch] * 3
    if args.eval_interval is not None and "ckpt_interval" not in base:
        base["ckpt_interval"] = args.eval_interval
    if "total_steps" in base and "warmup_steps" not in base:
        base["warmup_steps"] = min(100, max(1, int(base["total_steps"]) // 10))
    try:
        cfg = TrainConfig.from_dict(base)
    except TypeError as exc:
        raise InputError(f"train config: {exc}") from None
    if len(set(cfg.patch_size_zyx)) != 1:
        raise InputError(f"train: patches must be cubes, got {cfg.patch_size_zyx}")
    return cfg, pair


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse a non-empty RUN_DIR unless resuming or overwriting; --overwrite removes this command's files."""
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"{run_dir}: exists and is not a folder; choose another -o RUN_DIR")
    if run_dir.is_dir() and any(run_dir.iterdir()) and not (resume or overwrite):
        raise InputError(f"{run_dir}: run folder exists and is not empty; pass --resume, --overwrite or a new -o")
    if overwrite and not resume:
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)


def val_history(log_file: Path) -> list[dict[str, float]]:
    """Validation rows (step, model, identity, auto-B RSCC) from ``train_log.jsonl``; last record per step wins."""
    rows: dict[int, dict[str, float]] = {}
    if not log_file.is_file():
        return []
    try:
        lines = log_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{log_file}: cannot read the training log ({exc}); move it away and rerun") from None
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines):  # a run killed mid-write leaves a partial last line
                continue
            raise InputError(f"{log_file}: line {i} is not JSON; fix or remove that line") from None
        if isinstance(rec, dict) and "val_rscc" in rec:
            try:
                rows[int(rec["step"])] = {
                    "step": int(rec["step"]),
                    **{k[4:]: float(v) for k, v in rec.items() if k.startswith("val_rscc")},
                }
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(
                    f"{log_file}: line {i}: malformed validation record ({exc}); fix or remove it"
                ) from None
    return [rows[s] for s in sorted(rows)]


def write_val_curve(run_dir: Path, rows: list[dict[str, float]]) -> None:
    """``val_curve.csv`` (all RSCC columns) and ``val_curve.png`` (model, identity dashed, auto-B dotted)."""
    from densharp.evaluate.table import RESOLUTION_BINS_A, XRAY_RESOLUTION_BINS_A, bin_name
    from densharp.io.atomic import atomic_path, write_text_atomic

    cols = ["step", "rscc", "rscc_identity", "rscc_autob"]
    for lo, hi in (*RESOLUTION_BINS_A, *XRAY_RESOLUTION_BINS_A):
        cols += [f"rscc{kind}_bin_{bin_name(lo, hi)}" for kind in ("", "_identity", "_autob")]
    present = {k for r in rows for k in r}
    cols = [c for c in cols if c in present or c in cols[:4]] + sorted(present - set(cols))
    lines = [",".join(cols)] + [",".join(f"{r[c]:.6g}" if c in r else "" for c in cols) for r in rows]
    write_text_atomic(run_dir / "val_curve.csv", "\n".join(lines) + "\n")
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(steps, [r["rscc"] for r in rows], "o-", color="C0", label="model")
    ax.axhline(rows[-1]["rscc_identity"], color="k", ls="--", label="identity (input)")
    ax.axhline(rows[-1]["rscc_autob"], color="C3", ls=":", label="auto-B")
    ax.set_xlabel("step")
    ax.set_ylabel("masked RSCC vs target (validation)")
    ax.set_title(run_dir.name)
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(run_dir / "val_curve.png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _validation(args: argparse.Namespace, cfg: Any, pair_cfg: Any, modality: Any, norm: Any, cases: list) -> Any:
    """Simulated patches, perturbed boxes (EM) and real maps, the last two through the user's path."""
    import os

    from densharp.evaluate.validation import TrainingValidation
    from densharp.ml.registry import training_card
    from densharp.ml.sharpen import LoadedModel, predict_patch
    from densharp.modality import Modality
    from densharp.sharpening import sharpen_map, sharpen_mtz

    card = training_card(cfg.model_name, cfg.model_kwargs, modality, cfg.patch_size_zyx,
                         tuple(pair_cfg.d_input_range_A), pair_cfg.conditioning, norm)  # fmt: skip
    perturbed: list = []
    if args.perturbed_cases > 0 and modality is Modality.EM:
        from densharp.evaluate.perturbed import make_perturbed_set

        perturbed = make_perturbed_set(args.corpus, n=args.perturbed_cases)
    real: list = []
    root = args.realdata or os.environ.get("DENSHARP_REALDATA")
    if root:
        from densharp.evaluate.realdata import load_cases

        kind = "em" if modality is Modality.EM else "xray"
        names = [n.strip() for n in args.realdata_cases.split(",")] if args.realdata_cases else None
        real = [c for c in load_cases(root, kinds=(kind,), names=names) if kind == "xray" or c.has_model]
        log.info("real-map validation: %s", ", ".join(c.name for c in real) or "no usable case")

    def em(model: Any) -> Any:
        loaded = LoadedModel(card, model, "in training")
        return lambda m, d, d_t=None: sharpen_map(m, d, loaded=loaded, d_target_A=d_t, device=cfg.device).map

    def mtz(model: Any, gain: Any) -> Any:
        from dataclasses import replace

        from densharp.io.mtz import pick_map_columns, read_mtz

        xcard = replace(card, extrapolation_gain=tuple(map(tuple, gain)) if gain else None)
        loaded = LoadedModel(xcard, model, "in training")

        def fn(path: Path, d: float) -> Any:
            data = read_mtz(path)
            return sharpen_mtz(data, pick_map_columns(data, None), d, loaded=loaded, device=cfg.device).map

        return fn

    calibration = None
    if modality is Modality.XRAY:
        from densharp.ml.sharpen import sharpen_learned
        from densharp.simulate.crystal_pairs import CrystalPairs

        val = CrystalPairs(args.corpus, "val", crystal_cfg=pair_cfg, patch=cfg.patch_size_zyx[0])
        crystals = [val.crystal(777, k) for k in range(max(3, min(8, args.val_cases // 3)))]

        def raw(model: Any) -> Any:
            loaded = LoadedModel(card, model, "in training")
            return lambda m, d, d_t: sharpen_learned(m, loaded, d, d_target_A=d_t, periodic=True, device=cfg.device).map

        calibration = (crystals, raw)
    return TrainingValidation(
        cases, lambda model, case: predict_patch(model, case, norm), perturbed, real, em, mtz, calibration
    )


def run(args: argparse.Namespace) -> int:
    """Resolve the config, build data and validation, train, write the curves."""
    from densharp.optional import require_ml

    require_ml("training")
    from densharp.io.atomic import check_not_an_input, locked_outputs
    from densharp.modality import Modality
    from densharp.simulate.crystal_pairs import CrystalConfig
    from densharp.simulate.pairs import PairConfig

    if args.val_cases < 1:
        raise InputError("--val-cases must be >= 1")

    run_dir = Path(args.out)
    for name in RUN_FILES:
        check_not_an_input(run_dir / name, [args.config], what=f"run file {name}")
    check_not_an_input(run_dir, [args.corpus], what="run folder")
    cfg, pair_over = resolve_config(args)
    patch = cfg.patch_size_zyx[0]
    modality = Modality.parse(args.modality)
    xray = modality is Modality.XRAY
    pair_cls: Any = CrystalConfig if xray else PairConfig
    if not xray:
        pair_over.setdefault("box_zyx", [patch + 16] * 3)
    try:
        pair_cfg = pair_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in pair_over.items()})
    except TypeError as exc:
        raise InputError(f"train config 'pair' ({pair_cls.__name__}): {exc}") from None
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"{run_dir}: exists and is not a folder; choose another -o RUN_DIR")
    run_dir.absolute().parent.mkdir(parents=True, exist_ok=True)
    with locked_outputs([run_dir]):  # lock file .RUN_DIR.lock beside the folder: one training per run folder
        return _train(args, cfg, pair_cfg, run_dir, modality, patch)


def _train(args: argparse.Namespace, cfg: Any, pair_cfg: Any, run_dir: Path, modality: Any, patch: int) -> int:
    from densharp.cli._args import provenance
    from densharp.evaluate.validation import make_validation_set
    from densharp.io.atomic import write_json_atomic
    from densharp.ml.train import train
    from densharp.modality import Modality
    from densharp.normalisation import NormKind
    from densharp.simulate.corpus_pairs import CorpusPairs
    from densharp.simulate.crystal_pairs import CrystalPairs

    xray = modality is Modality.XRAY
    prepare_run_dir(run_dir, args.resume, args.overwrite)

    pairs: Any
    if xray:
        pairs = CrystalPairs(args.corpus, "train", crystal_cfg=pair_cfg, patch=patch)
    else:
        pairs = CorpusPairs(args.corpus, "train", pair_cfg=pair_cfg, patch=patch)
    cases = make_validation_set(args.corpus, modality, "val", n=args.val_cases, patch=patch, seed=12345,
                                pair_cfg=pair_cfg)  # fmt: skip
    norm = NormKind.parse(cfg.normalisation)
    pair_record = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(pair_cfg).items()}
    data_manifest = {
        "modality": modality.value,
        "train": pairs.describe(),
        "val": {
            "split": "val",
            "cases": len(cases),
            "seed": 12345,
            "structures": sorted({c["structure"] for c in cases}),
        },
        "pair_config": pair_record | {"conditioning": pair_cfg.conditioning.to_dict()},
    }
    argv = ["densharp", *sys.argv[1:]]
    write_json_atomic(
        run_dir / "config.json",
        {
            "train_config": cfg.to_dict(),
            "data": data_manifest,
            "val_cases": args.val_cases,
            "modality": modality.value,
            "resume": bool(args.resume),
            "provenance": provenance(),
        },
    )
    validation = _validation(args, cfg, pair_cfg, modality, norm, cases)

    def evaluate(model: Any) -> dict[str, float]:
        metrics = validation(model)
        with open(run_dir / "val_details.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"metrics": metrics, **validation.details}, default=float) + "\n")
        return metrics

    result = train(
        cfg,
        pairs,
        evaluate,
        run_dir,
        resume=args.resume,
        data_manifest=data_manifest,
        resolution_range_A=tuple(pair_cfg.d_input_range_A),
        argv=argv,
    )
    rows = val_history(run_dir / "train_log.jsonl")
    write_val_curve(run_dir, rows)
    last = rows[-1] if rows else {}
    print(
        f"trained {cfg.model_name} to step {result['step']} in {result['elapsed_s']:.0f} s "
        f"({result['patches_per_s']:.1f} patches/s); validation RSCC model {last.get('rscc', float('nan')):.4f}, "
        f"identity {last.get('rscc_identity', float('nan')):.4f}, auto-B {last.get('rscc_autob', float('nan')):.4f}; "
        f"outputs in {run_dir}"
    )
    return 0
