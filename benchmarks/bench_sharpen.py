"""End-to-end learned sharpening: wall time and peak memory of ``densharp sharpen`` on a simulated map.

A blob map (random Gaussian 'atoms', B ≈ 30 Å² equivalent width) of N³ voxels at 1 Å is written to a temporary
folder and sharpened by ``densharp sharpen MAP --resolution 3.5`` in a fresh process per configuration, so each
peak RSS (getrusage maxrss, read from the JSON sidecar) belongs to that run alone. The wall time includes start-up,
reading, the model, tiling and writing. The model is the shipped ``unet-em`` when installed, else an untrained
default-size U-Net (base 16, depth 3, patch 48³) exported to the temporary folder; the output says which.

Run: python benchmarks/bench_sharpen.py                       # 256³, fp32 and bf16
     python benchmarks/bench_sharpen.py --sizes 256 512 --device cuda
     python benchmarks/bench_sharpen.py --sizes 64 --precisions fp32   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def blob_map(n: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """N³ voxels at 1 Å: Gaussian blobs (sigma 1.2 Å) at random points filling the central 70 % of the box."""
    from scipy.ndimage import gaussian_filter

    from densharp.volume import DensityMap

    rng = np.random.default_rng(seed)
    data = np.zeros((n, n, n), np.float32)
    lo, hi = int(0.15 * n), int(0.85 * n)
    n_atoms = int(0.09 * (hi - lo) ** 3)  # ~ protein atom density at 1 Å voxels
    idx = rng.integers(lo, hi, size=(n_atoms, 3))
    np.add.at(data, (idx[:, 0], idx[:, 1], idx[:, 2]), 1.0)
    data = gaussian_filter(data, 1.2, output=np.float32)
    data += rng.normal(0, 0.1 * float(data.std()), data.shape).astype(np.float32)
    return DensityMap(data, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))


def model_args(tmp: Path) -> tuple[list[str], str]:
    """CLI arguments selecting the model, and a description of it."""
    from densharp.ml.checkpoint import export_weights
    from densharp.ml.nets import build_model, model_kwargs
    from densharp.ml.registry import shipped_registry

    if "unet-em" in shipped_registry():
        return ["--model", "unet-em"], "shipped unet-em"
    model = build_model("unet")
    ckpt = {
        "model_name": "unet",
        "model_kwargs": model_kwargs(model),
        "state_dict": model.state_dict(),
        "patch_size_zyx": [48, 48, 48],
        "resolution_range_A": [2.5, 8.0],
        "data_manifest": {"modality": "em", "pair_config": {"voxel_size_range_A": [0.9, 1.2], "d_target_min_A": 2.0}},
    }
    path = tmp / "untrained_unet.safetensors"
    export_weights(ckpt, path)
    return ["--weights", str(path)], "UNTRAINED default U-Net (base 16, depth 3, patch 48³; no shipped unet-em)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256], help="box edges in voxels (default 256)")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()

    from densharp.io.maps import write_map

    with tempfile.TemporaryDirectory(prefix="bench_sharpen_") as td:
        tmp = Path(td)
        margs, desc = model_args(tmp)
        print(f"model: {desc}; device {args.device}; threads {args.threads or 'default'}")
        print(f"{'size':>6} {'precision':>9} {'wall_s':>8} {'sharpen_s':>9} {'tiles':>6} {'peak_RSS_MiB':>12}  status")
        for n in args.sizes:
            src = tmp / f"blob{n}.mrc"
            write_map(src, blob_map(n))
            for prec in args.precisions:
                out = tmp / f"out{n}_{prec}.mrc"
                cmd = [sys.executable, "-m", "densharp", "sharpen", str(src), *margs, "--resolution", "3.5",
                       "--precision", prec, "--device", args.device, "--batch-size", str(args.batch_size),
                       "-o", str(out), "--overwrite", "-q"]  # fmt: skip
                if args.threads:
                    cmd += ["--threads", str(args.threads)]
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
                wall = time.perf_counter() - t0
                if proc.returncode != 0:
                    msg = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
                    print(f"{n:>6} {prec:>9} {wall:8.1f} {'-':>9} {'-':>6} {'-':>12}  {msg}")
                    continue
                rec = json.loads(out.with_suffix(".json").read_text())
                lm = rec["result"]["learned"]
                print(
                    f"{n:>6} {prec:>9} {wall:8.1f} {lm['runtime_s']:9.1f} {lm['tiles']:>6} "
                    f"{rec['peak_rss_MiB']:12.0f}  ok ({lm['device']}, {lm['precision']})"
                )


if __name__ == "__main__":
    main()
