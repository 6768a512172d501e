"""Resolution-aware 3D U-Net with a residual identity output.

Input-size rule: every spatial size (D, H, W) = (z, y, x) must be a positive multiple of ``2**depth``
(each level halves the grid with a stride-2 convolution and the decoder doubles it back); otherwise
:class:`~densharp.errors.InputError`.

Conditioning: a small MLP (FiLM, Perez et al. 2018) maps ``cond`` (N, cond_dim), by default
``[1/d_input_A, 1/d_target_A, voxel_size_A]`` (see :func:`densharp.conditioning.cond_vector`), to a per-channel
scale and shift applied after the last GroupNorm of every block. Its last layer starts at zero, so
conditioning begins as a no-op; ``cond=None`` skips it.

Output: ``out = x + head(features)`` with a zero-initialised 1×1×1 head, so an untrained net is the identity
and training learns the correction to the input map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from densharp.errors import InputError
from densharp.ml.losses import LossSettings, extrapolation_band_loss, sharpening_loss
from densharp.ml.nets._blocks import MAX_CHANNELS, MAX_DEPTH, ConvBlock, FiLM, check_cond, check_input


@dataclass(frozen=True)
class UNet3dConfig:
    """Configuration of :class:`UNet3d` (all sizes in voxels/channels).

    Parameters
    ----------
    in_channels, out_channels
        Channels of the input and output maps (must match when ``residual``).
    base_channels
        Channels of the first level; level ``l`` has ``base_channels * 2**l``.
    depth
        Number of down-sampling steps; spatial sizes must be multiples of ``2**depth``.
    cond_dim
        Length of the conditioning vector (0 disables FiLM).
    film_hidden
        Hidden width of the FiLM MLP.
    residual
        Predict ``x + correction`` (identity at initialisation).
    """

    in_channels: int = 1
    out_channels: int = 1
    base_channels: int = 16
    depth: int = 3
    cond_dim: int = 3
    film_hidden: int = 32
    residual: bool = True

    def __post_init__(self) -> None:
        if not (1 <= self.depth <= MAX_DEPTH and 1 <= self.base_channels <= MAX_CHANNELS):
            raise InputError(f"unet: depth must be 1..{MAX_DEPTH} and base_channels 1..{MAX_CHANNELS}, got {self}")
        if not (1 <= self.in_channels <= 8 and 1 <= self.out_channels <= 8):
            raise InputError(f"unet: in/out channels must be 1..8, got {self}")
        if self.cond_dim < 0 or self.film_hidden < 1:
            raise InputError(f"unet: cond_dim must be >= 0 and film_hidden >= 1, got {self}")
        if self.residual and self.in_channels != self.out_channels:
            raise InputError("unet: residual output needs in_channels == out_channels")

    @property
    def size_multiple(self) -> int:
        """Every spatial size must be a multiple of this (``2**depth``)."""
        return 2**self.depth


class UNetBackbone(nn.Module):
    """Encoder-decoder with skip connections and FiLM; returns full-resolution features (N, base, D, H, W)."""

    def __init__(self, cfg: UNet3dConfig) -> None:
        super().__init__()
        self.cfg = cfg
        chans = [cfg.base_channels * 2**level for level in range(cfg.depth + 1)]
        self.enc = nn.ModuleList([ConvBlock(cfg.in_channels, chans[0])])
        self.enc.extend(ConvBlock(chans[level - 1], chans[level], stride=2) for level in range(1, cfg.depth + 1))
        self.up = nn.ModuleList(
            nn.ConvTranspose3d(chans[level + 1], chans[level], 2, stride=2) for level in reversed(range(cfg.depth))
        )
        self.dec = nn.ModuleList(ConvBlock(2 * chans[level], chans[level]) for level in reversed(range(cfg.depth)))
        film_channels = chans + [chans[level] for level in reversed(range(cfg.depth))]
        self.film = FiLM(cfg.cond_dim, film_channels, cfg.film_hidden) if cfg.cond_dim > 0 else None
        self.out_channels = chans[0]

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """(N, in_channels, D, H, W), cond (N, cond_dim) or None -> features (N, base_channels, D, H, W)."""
        check_input(x, self.cfg.in_channels, self.cfg.size_multiple, "unet")
        cond = check_cond(cond, x.shape[0], self.cfg.cond_dim, "unet")
        films: list[tuple[torch.Tensor, torch.Tensor] | None]
        if self.film is not None and cond is not None:
            films = list(self.film(cond.to(x.dtype)))
        else:
            films = [None] * (2 * self.cfg.depth + 1)
        skips = []
        h = x
        for i, block in enumerate(self.enc):
            h = block(h, films[i])
            skips.append(h)
        skips.pop()  # the bottleneck is not a skip
        for j, (up, block) in enumerate(zip(self.up, self.dec)):
            h = up(h)
            h = block(torch.cat([h, skips.pop()], dim=1), films[self.cfg.depth + 1 + j])
        return h


class UNet3d(nn.Module):
    """Resolution-aware 3D U-Net with residual identity output.

    ``forward(x, cond=None)`` maps (N, C_in, D, H, W) to (N, C_out, D, H, W), D/H/W = z/y/x, on the device and
    dtype of ``x``. Spatial sizes must be multiples of ``2**depth`` (:class:`InputError` otherwise).
    """

    name = "unet"

    def __init__(self, cfg: UNet3dConfig | None = None) -> None:
        super().__init__()
        self.config = cfg or UNet3dConfig()
        self.backbone = UNetBackbone(self.config)
        self.head = nn.Conv3d(self.backbone.out_channels, self.config.out_channels, 1)
        nn.init.zeros_(self.head.weight)
        assert self.head.bias is not None
        nn.init.zeros_(self.head.bias)

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Predict the sharpened patch; ``target`` is accepted (and ignored) for a uniform training interface."""
        out = self.head(self.backbone(x, cond))
        return x + out if self.config.residual else out

    def predict(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Deterministic prediction (same as ``forward``)."""
        return self.forward(x, cond)

    def training_loss(
        self,
        forward: Callable[..., Any],
        x: torch.Tensor,
        cond: torch.Tensor | None,
        target: torch.Tensor,
        settings: LossSettings,
        step: int,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Reconstruction + correlation loss, plus the extrapolation-band term when ``settings.band_weight`` > 0.

        ``forward`` is this module or its DDP wrapper (called under autocast).
        """
        pred = forward(x, cond)
        loss, parts = sharpening_loss(pred, target, recon=settings.recon, corr_weight=settings.corr_weight)
        if settings.band_weight > 0:
            if cond is None:
                raise InputError("band_weight needs the conditioning vector (input and target resolution, voxel)")
            band = extrapolation_band_loss(pred, target, cond)
            loss = loss + settings.band_weight * band
            parts = {**parts, "band": float(band.detach()), "loss": float(loss.detach())}
        return loss, parts
