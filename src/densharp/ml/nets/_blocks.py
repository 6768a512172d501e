"""Building blocks shared by the 3D networks: FiLM conditioning, conv blocks, size checks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from densharp.errors import InputError

#: bounds on network size accepted from configs and weights metadata (a crafted file cannot ask for more)
MAX_CHANNELS = 256
MAX_DEPTH = 6
MAX_LATENT = 1024


def num_groups(channels: int, max_groups: int = 8) -> int:
    """Largest group count <= ``max_groups`` that divides ``channels`` (GroupNorm needs a divisor)."""
    for g in range(min(max_groups, channels), 0, -1):
        if channels % g == 0:
            return g
    return 1


def check_input(x: torch.Tensor, in_channels: int, multiple: int, net: str) -> None:
    """Raise :class:`InputError` unless ``x`` is (N, in_channels, D, H, W) with D, H, W multiples of ``multiple``."""
    if x.ndim != 5 or x.shape[1] != in_channels:
        raise InputError(f"{net}: expected input shape (N, {in_channels}, D, H, W), got {tuple(x.shape)}")
    bad = [int(s) for s in x.shape[2:] if s % multiple != 0 or s < multiple]
    if bad:
        raise InputError(
            f"{net}: spatial size {tuple(int(s) for s in x.shape[2:])} must be a positive multiple of {multiple} "
            f"on every axis (2^depth); pad or choose a patch size such as {multiple * max(1, 32 // multiple)}"
        )


def check_cond(cond: torch.Tensor | None, n: int, cond_dim: int, net: str) -> torch.Tensor | None:
    """Validate a conditioning tensor of shape (N, cond_dim); ``None`` stays ``None``."""
    if cond is None or cond_dim == 0:
        return None
    if cond.ndim != 2 or cond.shape[0] != n or cond.shape[1] != cond_dim:
        raise InputError(f"{net}: expected cond shape ({n}, {cond_dim}), got {tuple(cond.shape)}")
    return cond


class FiLM(nn.Module):
    """Map a conditioning vector to per-channel (scale, shift) pairs for a list of blocks.

    The last layer is zero-initialised, so an untrained FiLM is the identity (scale 1, shift 0).

    Parameters
    ----------
    cond_dim
        Length of the conditioning vector (e.g. ``[1/d_input, 1/d_target, voxel_size]``: 1/Å, 1/Å, Å).
    channels
        Channel count of each modulated block, in order.
    hidden
        Width of the hidden layer.
    """

    def __init__(self, cond_dim: int, channels: Sequence[int], hidden: int = 32) -> None:
        super().__init__()
        self.channels = list(channels)
        last = nn.Linear(hidden, 2 * sum(self.channels))
        nn.init.zeros_(last.weight)  # conditioning starts as a no-op
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(nn.Linear(cond_dim, hidden), nn.SiLU(), last)

    def forward(self, cond: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Return one ``(scale, shift)`` pair per block, each of shape (N, C_block, 1, 1, 1)."""
        out = self.net(cond)
        pairs = []
        i = 0
        for c in self.channels:
            gamma = out[:, i : i + c]
            beta = out[:, i + c : i + 2 * c]
            i += 2 * c
            pairs.append(((1.0 + gamma)[:, :, None, None, None], beta[:, :, None, None, None]))
        return pairs


class ConvBlock(nn.Module):
    """Two 3×3×3 convolutions, each followed by GroupNorm (optionally FiLM-modulated) and SiLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1)
        self.norm1 = nn.GroupNorm(num_groups(c_out), c_out)
        self.conv2 = nn.Conv3d(c_out, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(num_groups(c_out), c_out)
        self.act = nn.SiLU()
        self.out_channels = c_out

    def forward(self, x: torch.Tensor, film: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """(N, c_in, D, H, W) -> (N, c_out, D/stride, H/stride, W/stride)."""
        h = self.act(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        if film is not None:
            scale, shift = film
            h = h * scale + shift
        return self.act(h)


class StridedEncoder(nn.Module):
    """Strided-conv encoder ending in global average pooling: (N, c_in, D, H, W) -> (N, C_last).

    Each level halves the spatial size (3×3×3 conv, stride 2) and doubles the channels, so the dimensionality
    is reduced before the small latent heads.
    """

    def __init__(self, c_in: int, base_channels: int, depth: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = c_in
        for level in range(depth):
            c_out = base_channels * 2**level
            layers += [
                nn.Conv3d(c, c_out, 3, stride=2, padding=1),
                nn.GroupNorm(num_groups(c_out), c_out),
                nn.SiLU(),
            ]
            c = c_out
        self.net = nn.Sequential(*layers)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode and average over space."""
        return self.net(x).mean(dim=(2, 3, 4))


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """Analytic KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)) per dimension, shape (N, L), in nats."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0)
