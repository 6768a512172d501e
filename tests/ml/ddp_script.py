"""Run by torchrun from test_ml_ddp.py: 2 DDP training steps (gloo on CPU), then save each rank's parameters."""

import functools
import sys

import torch
import torch.distributed as dist
from ml_synth import blob_pair

from densharp.ml.train import TrainConfig, train

if __name__ == "__main__":
    run_dir = sys.argv[1]
    torch.set_num_threads(1)
    cfg = TrainConfig(
        model_name="vae",
        model_kwargs={"base_channels": 4, "depth": 2, "encoder_channels": 4, "encoder_depth": 2, "latent_dim": 4},
        patch_size_zyx=(16, 16, 16),
        batch_size=2,
        total_steps=2,
        warmup_steps=1,
        precision="fp32",
        device="cpu",
        ckpt_interval=2,
        eval_interval=2,
    )
    res = train(cfg, functools.partial(blob_pair, size=16), run_dir=run_dir)
    state = {k: v.detach().cpu() for k, v in res["model"].state_dict().items()}
    torch.save({"world_size": res["world_size"], "state": state}, f"{run_dir}/rank{res['rank']}.pt")
    dist.destroy_process_group()
