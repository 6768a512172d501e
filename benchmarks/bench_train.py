"""Training and inference throughput (patches/s), fp32 vs bf16, for the U-Net and our VAE.

    PYTHONPATH=src python benchmarks/bench_train.py                 # 32³ and 64³, C=16 (default configs)
    PYTHONPATH=src python benchmarks/bench_train.py --sizes 32 --base-channels 8 --steps 3

Prints one line per (model, patch, precision): training patches/s (AdamW step, L1 + correlation (+ KL)) and
inference patches/s (``predict`` under ``inference_mode``).
"""

from __future__ import annotations

import argparse
import time

import torch

from densharp.ml.infer import autocast, bf16_supported
from densharp.ml.losses import sharpening_loss
from densharp.ml.nets import build_model, count_parameters
from densharp.ml.train import TrainConfig, make_optimizer


def bench(
    name: str, size: int, precision: str, base: int, batch: int, steps: int, device: torch.device
) -> tuple[float, float]:
    torch.manual_seed(0)
    model = build_model(name, base_channels=base).to(device)
    opt = make_optimizer(model, TrainConfig(model_name=name))
    x = torch.randn(batch, 1, size, size, size, device=device)
    y = torch.randn_like(x)
    cond = torch.rand(batch, 3, device=device)

    def step() -> None:
        with autocast(device, precision):
            out = model(x, cond, y) if name != "unet" else model(x, cond)
        pred, kl = out if isinstance(out, tuple) else (out, None)
        loss, _ = sharpening_loss(pred, y, kl)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    step()  # warm-up (oneDNN primitive creation)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    train_rate = steps * batch / (time.perf_counter() - t)

    model.eval()
    with torch.inference_mode(), autocast(device, precision):
        model.predict(x, cond)
        t = time.perf_counter()
        for _ in range(steps):
            model.predict(x, cond)
    infer_rate = steps * batch / (time.perf_counter() - t)
    return train_rate, infer_rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["unet", "vae"])
    p.add_argument("--sizes", nargs="+", type=int, default=[32, 64])
    p.add_argument("--base-channels", type=int, default=16)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    precisions = ["fp32"] + (["bf16"] if bf16_supported(device) else [])
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, batch {args.batch}")
    print(f"{'model':<6} {'params':>9} {'patch':>5} {'prec':>5} {'train patches/s':>16} {'infer patches/s':>16}")
    for name in args.models:
        n = count_parameters(build_model(name, base_channels=args.base_channels))
        for size in args.sizes:
            for prec in precisions:
                tr, inf = bench(name, size, prec, args.base_channels, args.batch, args.steps, device)
                print(f"{name:<6} {n:>9,d} {size:>4}³ {prec:>5} {tr:>16.2f} {inf:>16.2f}", flush=True)


if __name__ == "__main__":
    main()
