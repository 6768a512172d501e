"""The training loop: one readable function, :func:`train` (nanoGPT style).

Single process: ``train(cfg, pair_fn, evaluate, run_dir)``. Data parallel: launch the same script with
``torchrun --standalone --nproc-per-node N script.py``; :func:`train` reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``
from the environment, uses gloo on CPU and nccl on CUDA, gives every rank its own data stream, and lets rank 0
alone log, evaluate and write checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from densharp.errors import CheckpointError, InputError
from densharp.ml.checkpoint import read_checkpoint, save_checkpoint
from densharp.ml.data import PairDataset, PairFn, collate_pairs
from densharp.ml.infer import autocast, resolve_device, resolve_precision
from densharp.ml.losses import LossSettings
from densharp.ml.nets import build_model, count_parameters, model_kwargs
from densharp.normalisation import NormKind

log = logging.getLogger(__name__)
#: consecutive steps with non-finite gradients after which training stops (each one is skipped, not applied)
MAX_BAD_STEPS = 10

#: ``evaluate(model) -> {"metric": value, ...}``; called on rank 0 with the bare model in eval mode under
#: ``torch.inference_mode()``
EvaluateFn = Callable[[nn.Module], Mapping[str, float]]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved in every checkpoint).

    Parameters
    ----------
    model_name, model_kwargs
        Registry name (``"unet"``, ``"vae"``, ``"report-vae"``) and config fields of the network.
    lr, min_lr_ratio, weight_decay, warmup_steps, total_steps
        AdamW with linear warm-up over ``warmup_steps`` then cosine decay to ``lr * min_lr_ratio`` at
        ``total_steps``; weight decay only on conv/linear weights.
    grad_clip
        Global gradient-norm clip (0 disables).
    batch_size
        Patches per step *per rank*.
    patch_size_zyx
        Patch size the pair function must produce (checked on the first batch).
    precision
        ``"fp32"``, ``"bf16"``, ``"fp16"`` (CUDA only, with a GradScaler) or ``"auto"`` (bf16 where supported).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``; under DDP on CUDA each rank uses ``cuda:LOCAL_RANK``.
    num_workers
        DataLoader worker processes (0: produce pairs in the training process).
    log_interval, eval_interval, ckpt_interval
        Steps between log lines, evaluations (best.pt) and last.pt checkpoints.
    max_time_s
        Stop (with a checkpoint) after this many seconds of training; ``None`` for no limit.
    seed
        Seeds model init (all ranks alike) and the data streams (per rank).
    recon_loss, corr_weight
        Reconstruction loss (``"l1"``/``"mse"``) and weight of ``1 - Pearson``.
    beta, kl_anneal_steps, free_bits
        VAE KL weight, linear KL annealing from 0 over ``kl_anneal_steps``, free bits (nats per latent dim).
    energy_weight, energy_samples
        Weight of the energy score (:func:`~densharp.ml.losses.energy_score`) of ``energy_samples`` decodings
        drawn from the VAE's *prior*, which trains the spread of its samples (the uncertainty map) to match the
        real uncertainty; 0 disables. ``"vae"`` only.
    scale_jitter_log2
        Multiply each normalised pair (input and target alike) by ``2**u``, ``u`` uniform in ±this: the network
        cannot key its correction to the map's absolute level after normalisation (0: off). Drawn from
        ``(seed, step, rank)``, so resuming repeats it.
    band_weight
        Weight of :func:`~densharp.ml.losses.extrapolation_band_loss` (the Fourier band between the input's and
        the target's resolution, scored alone); 0 disables. ``"unet"`` only.
    init_from
        Start from these weights instead of a random init: a shipped model name, a run folder (its ``best.pt``),
        a checkpoint (``.pt``) or a ``.safetensors`` file; its architecture must equal
        ``model_name``/``model_kwargs``. The step count, optimizer and schedule start afresh (fine-tuning); ignored
        when resuming. The sha256 of what was read is recorded.
    normalisation
        How inputs are normalised (:class:`~densharp.normalisation.NormKind`): ``"robust-map"`` (statistics of the
        whole simulated map, as at inference) or the legacy ``"zscore-patch"``. Recorded with the weights.
    best_metric, best_mode
        Key of ``evaluate``'s result that selects ``best.pt``, and whether higher (``"max"``) is better.
    threads
        ``torch.set_num_threads`` for this process (``None``: leave as is, which respects OMP_NUM_THREADS).
    """

    model_name: str = "unet"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    weight_decay: float = 1e-2
    warmup_steps: int = 100
    total_steps: int = 10_000
    grad_clip: float = 1.0
    batch_size: int = 4
    patch_size_zyx: tuple[int, int, int] = (32, 32, 32)
    precision: str = "auto"
    device: str = "auto"
    num_workers: int = 0
    log_interval: int = 10
    eval_interval: int = 500
    ckpt_interval: int = 500
    max_time_s: float | None = None
    seed: int = 0
    recon_loss: str = "l1"
    corr_weight: float = 1.0
    beta: float = 1.0
    kl_anneal_steps: int = 0
    free_bits: float = 0.0
    energy_weight: float = 0.0
    energy_samples: int = 2
    band_weight: float = 0.0
    scale_jitter_log2: float = 0.0
    init_from: str | None = None
    normalisation: str = "robust-map"
    best_metric: str = "rscc"
    best_mode: str = "max"
    threads: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "patch_size_zyx", tuple(int(s) for s in self.patch_size_zyx))
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs))
        if self.total_steps < 1 or self.batch_size < 1 or self.warmup_steps < 0:
            raise InputError(f"train: total_steps and batch_size must be >= 1 and warmup_steps >= 0, got {self}")
        if min(self.log_interval, self.eval_interval, self.ckpt_interval) < 1:
            raise InputError("train: log_interval, eval_interval and ckpt_interval must be >= 1")
        if self.energy_weight < 0 or self.energy_samples < 2:
            raise InputError(f"train: energy_weight must be >= 0 and energy_samples >= 2, got {self}")
        if self.energy_weight > 0 and self.model_name != "vae":
            raise InputError(f"train: energy_weight needs a sampling model ('vae'), not {self.model_name!r}")
        if not 0 <= self.scale_jitter_log2 <= 3:
            raise InputError(f"train: scale_jitter_log2 must be in [0, 3], got {self.scale_jitter_log2}")
        if self.band_weight < 0 or (self.band_weight > 0 and self.model_name != "unet"):
            raise InputError(f"train: band_weight must be >= 0 and is implemented for 'unet' only, got {self}")
        if self.best_mode not in ("max", "min"):
            raise InputError(f"train: best_mode must be 'max' or 'min', got {self.best_mode!r}")
        object.__setattr__(self, "normalisation", NormKind.parse(self.normalisation).value)

    @property
    def loss_settings(self) -> LossSettings:
        """The loss weights handed to the network's ``training_loss``."""
        return LossSettings(
            recon=self.recon_loss,
            corr_weight=self.corr_weight,
            beta=self.beta,
            kl_anneal_steps=self.kl_anneal_steps,
            free_bits=self.free_bits,
            energy_weight=self.energy_weight,
            energy_samples=self.energy_samples,
            band_weight=self.band_weight,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (tuples as lists) for checkpoints and JSON."""
        d = dataclasses.asdict(self)
        d["patch_size_zyx"] = list(self.patch_size_zyx)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`InputError`."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(f"train config: unknown keys {sorted(unknown)}")
        return cls(**dict(d))


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up, then cosine decay to ``lr * min_lr_ratio``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    min_lr = cfg.lr * cfg.min_lr_ratio
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - min_lr)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on conv/linear weights only (not on biases, norms or FiLM offsets' biases)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99))


def init_weights(model: nn.Module, cfg: TrainConfig) -> dict[str, Any]:
    """Load ``cfg.init_from`` into ``model``; return ``{"source", "sha256"}`` of what was read (for checkpoints).

    ``init_from`` is a shipped model name, a run folder (its ``best.pt``), a checkpoint (``.pt``) or a
    ``.safetensors`` file; the network it holds must be exactly ``model`` (name and config).
    """
    import hashlib

    from densharp.ml.checkpoint import load_checkpoint
    from densharp.ml.registry import file_card, shipped_card
    from densharp.ml.sharpen import load_model

    src = str(cfg.init_from)
    path = Path(src)
    if path.is_dir():
        path = path / "best.pt"
    if path.suffix == ".pt":
        source, _ = load_checkpoint(path)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        card = file_card(path) if path.suffix == ".safetensors" else shipped_card(src)
        loaded = load_model(card)  # shipped names are checked against their pinned sha256 here
        source, sha = loaded.module, loaded.sha256
    if source.name != cfg.model_name or model_kwargs(source) != model_kwargs(model):
        raise CheckpointError(
            f"{src}: holds {source.name} {model_kwargs(source)}, but the config asks for {cfg.model_name} "
            f"{model_kwargs(model)}; set model_kwargs to match the weights you start from"
        )
    model.load_state_dict(source.state_dict())
    return {"source": src, "sha256": sha}


def _dist_setup(device_name: str) -> tuple[int, int, torch.device]:
    """Start torch.distributed if launched by torchrun with WORLD_SIZE > 1; return (rank, world, device)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, resolve_device(device_name)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def train(
    cfg: TrainConfig,
    pair_fn: PairFn,
    evaluate: EvaluateFn | None = None,
    run_dir: str | os.PathLike[str] = "run",
    *,
    resume: bool = False,
    data_manifest: Mapping[str, Any] | None = None,
    resolution_range_A: tuple[float, float] | None = None,
    voxel_size_A: float | None = None,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """Train a network on pairs from ``pair_fn`` and write ``last.pt``, ``best.pt`` and ``train_log.jsonl``.

    Parameters
    ----------
    cfg
        The run's configuration.
    pair_fn
        Picklable ``pair_fn(seed, index) -> dict`` (see :mod:`densharp.ml.data`).
    evaluate
        Optional validation callback ``evaluate(model) -> {name: value}``; its ``cfg.best_metric`` entry selects
        ``best.pt``. Called every ``eval_interval`` steps and at the end, on rank 0.
    run_dir
        Output folder (created). With ``resume=True`` and ``run_dir/last.pt`` present, the run continues from
        it: weights, optimizer, step count (hence LR schedule) and data stream position.
    data_manifest, resolution_range_A, voxel_size_A, argv
        Provenance stored in the checkpoints.

    Returns
    -------
    dict
        ``step`` (steps done in total), ``loss`` (last training loss), ``first_loss`` (this call's first),
        ``best_val``, ``elapsed_s``, ``patches_per_s``, ``precision``, ``device``, ``n_params``, ``run_dir``,
        ``rank``, ``world_size`` and ``model`` (the trained bare module, on its device). Under DDP the process
        group stays initialised for the caller (``torch.distributed.destroy_process_group()`` when done).
    """
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    rank, world, device = _dist_setup(cfg.device)
    is_main = rank == 0
    precision = resolve_precision(cfg.precision, device)
    run_path = Path(run_dir)
    if is_main:
        run_path.mkdir(parents=True, exist_ok=True)

    # Same seed on every rank for the model init (DDP also broadcasts rank 0's weights); the data streams
    # differ per rank through PairDataset's (seed, rank) hash.
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    model = build_model(cfg.model_name, **cfg.model_kwargs).to(device)
    optimizer = make_optimizer(model, cfg)
    start_step = 0
    best_val: dict[str, Any] | None = None

    last_path = run_path / "last.pt"
    resuming = resume and last_path.exists()
    init_record = None
    if cfg.init_from and not resuming:
        init_record = init_weights(model, cfg)
        if is_main:
            log.info("initialised from %s (sha256 %s)", cfg.init_from, init_record["sha256"])
    if resuming:
        ckpt = read_checkpoint(last_path, map_location="cpu")
        if ckpt["model_name"] != cfg.model_name or ckpt["model_kwargs"] != model_kwargs(model):
            raise CheckpointError(
                f"{last_path}: holds {ckpt['model_name']} {ckpt['model_kwargs']}, but the config asks for "
                f"{cfg.model_name} {model_kwargs(model)}; use a new run folder or the same model settings"
            )
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer_state"])
        start_step = int(ckpt["step"])
        best_val = ckpt.get("best_val")
        if is_main:
            log.info("resumed %s at step %d", last_path, start_step)

    ddp_model: nn.Module = model
    if world > 1:
        ddp_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    # The data stream resumes where the checkpoint left it: item k of rank r is pair_fn(hash(seed, r), k).
    dataset = PairDataset(
        pair_fn, seed=cfg.seed, rank=rank, start_index=start_step * cfg.batch_size, normalisation=cfg.normalisation
    )
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        collate_fn=collate_pairs,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.num_workers > 0,
    )
    batches = iter(loader)
    # fp16 needs loss scaling against underflow; bf16 has fp32's exponent range and does not.
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None

    n_params = count_parameters(model)
    losses = cfg.loss_settings
    net: Any = model  # a densharp network: it owns its training_loss
    log_file = run_path / "train_log.jsonl"
    t0 = time.perf_counter()
    t_interval, patches_interval = t0, 0
    first_loss: float | None = None
    parts: dict[str, float] = {}
    step = start_step

    def checkpoint(path: Path, step_done: int) -> None:
        save_checkpoint(
            path,
            model,
            optimizer=optimizer,
            step=step_done,
            best_val=best_val,
            train_config=cfg.to_dict()
            | {"precision_resolved": precision, "world_size": world}
            | ({"init": init_record} if init_record else {}),
            normalisation={"kind": cfg.normalisation},
            voxel_size_A=voxel_size_A,
            patch_size_zyx=cfg.patch_size_zyx,
            resolution_range_A=resolution_range_A,
            data_manifest=data_manifest,
            seed=cfg.seed,
            argv=argv,
        )

    def run_eval(step_done: int) -> dict[str, float]:
        nonlocal best_val
        if evaluate is None:
            return {}
        model.eval()  # the bare module: no DDP collectives on rank 0 alone
        with torch.inference_mode():
            metrics = {k: float(v) for k, v in evaluate(model).items()}
        model.train()
        value = metrics.get(cfg.best_metric)
        if value is not None:
            better = best_val is None or (
                value > best_val["value"] if cfg.best_mode == "max" else value < best_val["value"]
            )
            if better:
                best_val = {"metric": cfg.best_metric, "value": value, "step": step_done, "metrics": metrics}
                checkpoint(run_path / "best.pt", step_done)
        return metrics

    bar = None
    if is_main:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=cfg.total_steps, initial=start_step, desc="train", unit="step", disable=not sys.stderr.isatty()
        )
        log.info(
            "training %s (%d parameters) on %s, %s, world size %d", cfg.model_name, n_params, device, precision, world
        )

    model.train()
    bad_steps = skipped_steps = 0
    while step < cfg.total_steps:
        # LR from the step count alone, so resuming continues the schedule exactly.
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = next(batches)
        x = batch["input"].to(device, non_blocking=True)
        y = batch["target"].to(device, non_blocking=True)
        cond = batch["cond"].to(device, non_blocking=True)
        if cfg.scale_jitter_log2 > 0:
            g = torch.Generator().manual_seed(int(cfg.seed) * 1_000_003 + step * world + rank)
            u = (torch.rand(x.shape[0], generator=g) * 2 - 1) * cfg.scale_jitter_log2
            k = torch.exp2(u).to(device).view(-1, *([1] * (x.dim() - 1)))
            x, y = x * k, y * k
        if step == start_step and tuple(x.shape[2:]) != cfg.patch_size_zyx:
            raise InputError(
                f"train: pair function gave patches {tuple(x.shape[2:])}, config says {cfg.patch_size_zyx}"
            )

        # Forward and loss under autocast; the losses cast to float32 themselves. Each network owns its loss.
        with autocast(device, precision):
            loss, parts = net.training_loss(ddp_model, x, cond, y, losses, step)
        if first_loss is None:
            first_loss = parts["loss"]

        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()  # DDP all-reduces (averages) gradients across ranks here
        # the norm (clipped when grad_clip > 0) is that of the all-reduced gradients, so every rank agrees on it
        grad_norm = torch.nn.utils.clip_grad_norm_(
            model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
        )
        if scaler is not None:
            scaler.step(optimizer)  # the scaler skips non-finite steps itself
            scaler.update()
        elif bool(torch.isfinite(grad_norm)):
            optimizer.step()
            bad_steps = 0
        else:
            # one bad batch must not poison the weights: skip its update; many in a row mean the run has diverged
            optimizer.zero_grad(set_to_none=True)
            bad_steps += 1
            skipped_steps += 1
            if is_main:
                log.warning("step %d: non-finite gradients (loss %s); update skipped", step + 1, parts["loss"])
            if bad_steps >= MAX_BAD_STEPS:
                raise RuntimeError(
                    f"train: {bad_steps} steps in a row had non-finite gradients (last at step {step + 1}); the run "
                    f"has diverged: resume from {run_dir}/last.pt with a lower learning rate or check the pairs"
                )
        parts = {**parts, "skipped_steps": float(skipped_steps)}
        step += 1
        patches_interval += x.shape[0] * world
        if bar is not None:
            bar.update(1)

        # Stop on the time budget; all ranks must agree or the next all-reduce would hang.
        stop = cfg.max_time_s is not None and time.perf_counter() - t0 > cfg.max_time_s
        if world > 1:
            flag = torch.tensor([1.0 if stop else 0.0], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item() > 0)
        last = stop or step >= cfg.total_steps

        if is_main:
            metrics = run_eval(step) if (step % cfg.eval_interval == 0 or last) else {}
            if step % cfg.log_interval == 0 or metrics or last:
                now = time.perf_counter()
                rate = patches_interval / max(now - t_interval, 1e-9)
                t_interval, patches_interval = now, 0
                record = {
                    "step": step,
                    "lr": lr,
                    **parts,
                    "patches_per_s": rate,
                    "elapsed_s": now - t0,
                    **{f"val_{k}": v for k, v in metrics.items()},
                }
                with open(log_file, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record) + "\n")
                log.info("step %d loss %.4f lr %.2e %.1f patches/s %s", step, parts["loss"], lr, rate, metrics or "")
            if step % cfg.ckpt_interval == 0 or last:
                checkpoint(last_path, step)
        if world > 1:
            dist.barrier()  # nobody races ahead while rank 0 evaluates or writes
        if stop:
            break

    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t0
    return {
        "step": step,
        "loss": parts.get("loss"),
        "first_loss": first_loss,
        "best_val": best_val,
        "elapsed_s": elapsed,
        "patches_per_s": (step - start_step) * cfg.batch_size * world / max(elapsed, 1e-9),
        "precision": precision,
        "device": str(device),
        "n_params": n_params,
        "run_dir": str(run_path),
        "rank": rank,
        "world_size": world,
        "model": model,
    }
