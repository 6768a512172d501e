"""Training losses: L1 or MSE + (1 - Pearson correlation per patch) + beta * KL."""

from __future__ import annotations

import torch
import torch.nn.functional as nnf

from densharp.errors import InputError


def pearson_per_patch(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Pearson correlation of each patch, (N, C, D, H, W) x2 -> (N,), computed in float32."""
    p = pred.float().flatten(1)
    t = target.float().flatten(1)
    p = p - p.mean(1, keepdim=True)
    t = t - t.mean(1, keepdim=True)
    return (p * t).sum(1) / (p.norm(dim=1) * t.norm(dim=1) + eps)


def sharpening_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    kl: torch.Tensor | None = None,
    beta: float = 1.0,
    recon: str = "l1",
    corr_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts.

    ``loss = recon(pred, target) + corr_weight * mean(1 - pearson) + beta * kl``, with ``recon`` ``"l1"`` or
    ``"mse"`` (mean over voxels) on z-scored density; all in float32 whatever the autocast dtype.

    Returns
    -------
    (loss, parts)
        ``loss`` a scalar tensor; ``parts`` plain floats ``recon``, ``corr``, ``kl``, ``loss`` for logging.
    """
    if pred.shape != target.shape:
        raise InputError(f"loss: prediction shape {tuple(pred.shape)} differs from target {tuple(target.shape)}")
    p, t = pred.float(), target.float()
    if recon == "l1":
        rec = nnf.l1_loss(p, t)
    elif recon == "mse":
        rec = nnf.mse_loss(p, t)
    else:
        raise InputError(f"unknown reconstruction loss {recon!r}; choose 'l1' or 'mse'")
    corr = (1.0 - pearson_per_patch(p, t)).mean()
    loss = rec + corr_weight * corr
    kl_val = 0.0
    if kl is not None:
        loss = loss + beta * kl.float()
        kl_val = float(kl.detach())
    parts = {"loss": float(loss.detach()), "recon": float(rec.detach()), "corr": float(corr.detach()), "kl": kl_val}
    return loss, parts
