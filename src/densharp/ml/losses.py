"""Training losses: L1 or MSE + (1 - Pearson correlation per patch) + beta * KL, and the energy score of samples.

Each network composes these in its own ``training_loss(forward, x, cond, target, settings, step)``, so the
training loop has no per-architecture branches; :class:`LossSettings` carries the weights from the train config.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as nnf

from densharp.errors import InputError


@dataclass(frozen=True)
class LossSettings:
    """Loss weights of a run (fields of :class:`~densharp.ml.train.TrainConfig`).

    ``recon`` (``"l1"``/``"mse"``) and ``corr_weight`` (weight of ``1 - Pearson``) for every network; ``beta``,
    ``kl_anneal_steps`` and ``free_bits`` for the VAEs; ``energy_weight`` and ``energy_samples`` for the energy
    score of prior samples (``"vae"``); ``band_weight`` for :func:`extrapolation_band_loss` (0: off).
    """

    recon: str = "l1"
    corr_weight: float = 1.0
    beta: float = 1.0
    kl_anneal_steps: int = 0
    free_bits: float = 0.0
    energy_weight: float = 0.0
    energy_samples: int = 2
    band_weight: float = 0.0

    def beta_at(self, step: int) -> float:
        """KL weight at ``step`` (0-based): linear annealing from 0 over ``kl_anneal_steps``."""
        if self.kl_anneal_steps <= 0:
            return self.beta
        return self.beta * min(1.0, (step + 1) / self.kl_anneal_steps)


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


def energy_score(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-voxel energy score (CRPS) of ``k >= 2`` samples against the target, averaged over voxels.

    ``samples`` is (k, N, C, D, H, W), ``target`` (N, C, D, H, W). With the unbiased estimator
    ``ES = mean_i |s_i - y| - 1/(2 k (k-1)) * sum_{i != j} |s_i - s_j|``, the expectation is minimised exactly
    when the samples are drawn from the true conditional distribution of the target (a strictly proper
    scoring rule for each voxel's marginal), so it trains a sampler's spread to be calibrated: identical
    samples reduce it to the L1 error, spread is rewarded only where the target really is uncertain.
    Computed in float32.
    """
    if samples.dim() != target.dim() + 1 or samples.shape[1:] != target.shape or samples.shape[0] < 2:
        raise InputError(
            f"energy score: need samples (k>=2, *target.shape), got {tuple(samples.shape)} for {tuple(target.shape)}"
        )
    s, t = samples.float(), target.float()
    k = s.shape[0]
    fit = (s - t.unsqueeze(0)).abs().mean()
    spread = s.new_zeros(())
    for i in range(k):
        for j in range(i + 1, k):
            spread = spread + (s[i] - s[j]).abs().mean()
    # sum over ordered pairs i != j is twice the sum over i < j
    return fit - spread / (k * (k - 1))


def extrapolation_band_loss(pred: torch.Tensor, target: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """Mean over patches of ``1 - corr`` of the Fourier coefficients between ``1/d_input`` and ``1/d_target``.

    The band the network must *extrapolate* (nothing of it is in the input after the prefilter) is a small part of
    a patch's real-space variance, so L1 and Pearson on the whole patch barely weigh it; this term scores it alone
    (complex correlation: phases and relative amplitudes inside the band). ``cond`` is the (N, 3) conditioning
    ``[1/d_input, 1/d_target, voxel]`` (1/Å, 1/Å, Å; :func:`densharp.conditioning.cond_vector`). Patches whose band
    is empty on their grid contribute 0. Computed in float32.
    """
    p, t = pred.float(), target.float()
    shape = p.shape[-3:]
    fz = torch.fft.fftfreq(shape[0], device=p.device)
    fy = torch.fft.fftfreq(shape[1], device=p.device)
    fx = torch.fft.rfftfreq(shape[2], device=p.device)
    s_vox = torch.sqrt(fz[:, None, None] ** 2 + fy[None, :, None] ** 2 + fx[None, None, :] ** 2)  # cycles/voxel
    s = s_vox[None] / cond[:, 2].float().reshape(-1, 1, 1, 1)  # 1/Å per patch
    band = (s > cond[:, 0].float().reshape(-1, 1, 1, 1)) & (s <= cond[:, 1].float().reshape(-1, 1, 1, 1))
    fp = torch.fft.rfftn(p.reshape(-1, *shape), dim=(-3, -2, -1))
    ft = torch.fft.rfftn(t.reshape(-1, *shape), dim=(-3, -2, -1))
    channels = p.shape[1]
    band = band.repeat_interleave(channels, dim=0).float()
    cross = (fp * ft.conj()).real * band
    num = cross.flatten(1).sum(1)
    power_p = ((fp.abs() ** 2) * band).flatten(1).sum(1)
    power_t = ((ft.abs() ** 2) * band).flatten(1).sum(1)
    has = (band.flatten(1).sum(1) > 0) & (power_t > 0)
    # patches without a band (or a target without power in it: solvent) score 1 through a safe branch, since
    # torch.where passes NaN gradients from the branch it does not select; the floor (0.1 % of the target's band
    # power) keeps a prediction with next to no power in the band at corr ~ 0 with bounded gradients
    power_t = torch.where(has, power_t, torch.ones_like(power_t))
    num = torch.where(has, num, torch.zeros_like(num))
    den = torch.sqrt(power_p * power_t + 1e-20) + 1e-3 * power_t
    corr = torch.where(has, num / den, torch.ones_like(num))
    return (1.0 - corr).mean()
