"""The founding report's 3D VAE, rebuilt as described, kept to show its failure mode.

Encoder (strided 3D convolutions) -> flatten -> fully connected to ``mu``/``logvar`` -> latent ->
fully connected -> decoder (transposed convolutions) back to the input size. **No skip connections**, so every
detail must squeeze through the latent bottleneck, and no residual path, so an untrained model is far from the
identity. The output is linear (no sigmoid: z-scored density is unbounded).

Input-size rule: the input must be exactly ``input_size_zyx`` (the fully connected layers fix it), and each
entry must be a positive multiple of ``2**depth``; otherwise :class:`~densharp.errors.InputError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from densharp.errors import InputError
from densharp.ml.losses import LossSettings, sharpening_loss
from densharp.ml.nets._blocks import MAX_CHANNELS, MAX_DEPTH, MAX_LATENT, gaussian_kl


@dataclass(frozen=True)
class ReportVAEConfig:
    """Configuration of :class:`ReportVAE`.

    Parameters
    ----------
    in_channels
        Channels of the input map (output has the same).
    input_size_zyx
        The one accepted patch size (z, y, x), voxels.
    base_channels
        Channels after the first strided conv; doubled at each level.
    depth
        Number of stride-2 convolutions in the encoder (and transposed ones in the decoder).
    latent_dim
        Size of the latent vector.
    """

    in_channels: int = 1
    input_size_zyx: tuple[int, int, int] = (32, 32, 32)
    base_channels: int = 16
    depth: int = 3
    latent_dim: int = 64

    def __post_init__(self) -> None:
        # accept lists (JSON round trips) but store a tuple so the config stays hashable
        object.__setattr__(self, "input_size_zyx", tuple(int(s) for s in self.input_size_zyx))
        m = 2**self.depth
        if len(self.input_size_zyx) != 3 or any(s < m or s % m for s in self.input_size_zyx):
            raise InputError(f"report-vae: input_size_zyx {self.input_size_zyx} must be 3 positive multiples of {m}")
        if not (1 <= self.latent_dim <= MAX_LATENT and 1 <= self.base_channels <= MAX_CHANNELS):
            raise InputError(f"report-vae: latent_dim 1..{MAX_LATENT}, base_channels 1..{MAX_CHANNELS}, got {self}")
        if not 1 <= self.depth <= MAX_DEPTH or max(self.input_size_zyx) > 256:
            raise InputError(f"report-vae: depth 1..{MAX_DEPTH} and input sizes up to 256, got {self}")


class ReportVAE(nn.Module):
    """Plain 3D VAE without skips: ``forward(x, cond=None, target=None, free_bits=0.0) -> (pred, kl)``.

    ``x`` is (N, C, D, H, W) with (D, H, W) == ``input_size_zyx``; ``pred`` has the same shape and ``kl`` is a
    scalar: KL(q(z|x) || N(0, I)) summed over latent dimensions and averaged over the batch, each dimension's
    batch mean clamped below at ``free_bits`` nats. ``cond`` and ``target`` are ignored (interface uniformity).
    In training mode ``z`` is sampled; in eval mode ``z = mu``.
    """

    name = "report-vae"

    def __init__(self, cfg: ReportVAEConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = cfg or ReportVAEConfig()
        enc: list[nn.Module] = []
        c = cfg.in_channels
        for level in range(cfg.depth):
            c_out = cfg.base_channels * 2**level
            enc += [nn.Conv3d(c, c_out, 4, stride=2, padding=1), nn.ReLU()]
            c = c_out
        self.encoder = nn.Sequential(*enc)
        self.bottom_shape = (c, *(s // 2**cfg.depth for s in cfg.input_size_zyx))
        flat = math.prod(self.bottom_shape)
        self.fc_mu = nn.Linear(flat, cfg.latent_dim)
        self.fc_logvar = nn.Linear(flat, cfg.latent_dim)
        self.fc_dec = nn.Linear(cfg.latent_dim, flat)
        dec: list[nn.Module] = []
        for level in reversed(range(cfg.depth)):
            c_out = cfg.base_channels * 2 ** (level - 1) if level > 0 else cfg.base_channels
            dec += [nn.ConvTranspose3d(c, c_out, 4, stride=2, padding=1), nn.ReLU()]
            c = c_out
        self.decoder = nn.Sequential(*dec)
        self.out = nn.Conv3d(c, cfg.in_channels, 3, padding=1)  # linear output

    def _check(self, x: torch.Tensor) -> None:
        cfg = self.config
        if x.ndim != 5 or x.shape[1] != cfg.in_channels or tuple(x.shape[2:]) != cfg.input_size_zyx:
            raise InputError(
                f"report-vae: expected input (N, {cfg.in_channels}, {', '.join(map(str, cfg.input_size_zyx))}), "
                f"got {tuple(x.shape)}; its fully connected layers fix the patch size"
            )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, D, H, W) -> (mu, logvar), each (N, latent_dim)."""
        self._check(x)
        h = self.encoder(x).flatten(1)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, latent_dim) -> (N, C, D, H, W)."""
        h = self.fc_dec(z).view(z.shape[0], *self.bottom_shape)
        return self.out(self.decoder(h))

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None = None,
        target: torch.Tensor | None = None,
        free_bits: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(prediction, kl)``; see the class docstring."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        zeros = torch.zeros_like(mu, dtype=torch.float32)  # the prior is N(0, 1)
        kl_per_dim = gaussian_kl(mu.float(), logvar.float(), zeros, zeros)
        kl = torch.clamp(kl_per_dim.mean(0), min=free_bits).sum()
        return self.decode(z), kl

    def training_loss(
        self,
        forward: Callable[..., Any],
        x: torch.Tensor,
        cond: torch.Tensor | None,
        target: torch.Tensor,
        settings: LossSettings,
        step: int,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """ELBO: reconstruction + correlation + β·KL to N(0, I); ``forward`` is this module or its DDP wrapper."""
        beta = settings.beta_at(step)
        pred, kl = forward(x, cond, target, free_bits=settings.free_bits)
        loss, parts = sharpening_loss(
            pred, target, kl, beta=beta, recon=settings.recon, corr_weight=settings.corr_weight
        )
        return loss, parts | {"beta": beta}

    def predict(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Deterministic reconstruction through ``z = mu``."""
        mu, _ = self.encode(x)
        return self.decode(mu)
