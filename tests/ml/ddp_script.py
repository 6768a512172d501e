"""Run by torchrun from test_ml_ddp.py: 2 DDP training steps (gloo on CPU), then save each rank's parameters."""

import functools
import sys

import torch
import torch.distributed as dist
from ml_synth import blob_pair, tiny_train_config

from densharp.ml.train import train

if __name__ == "__main__":
    run_dir = sys.argv[1]
    torch.set_num_threads(1)
    cfg = tiny_train_config("vae", total_steps=2, lr=1e-3)
    res = train(cfg, functools.partial(blob_pair, size=16), run_dir=run_dir)
    state = {k: v.detach().cpu() for k, v in res["model"].state_dict().items()}
    torch.save({"world_size": res["world_size"], "state": state}, f"{run_dir}/rank{res['rank']}.pt")
    dist.destroy_process_group()
