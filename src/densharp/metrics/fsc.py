"""Fourier shell correlation between two maps on one grid, and the resolution where it crosses a threshold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from densharp.fourier import Shells, map_resolution_shells, rfft_map
from densharp.volume import DensityMap


@dataclass(frozen=True)
class FSCCurve:
    """An FSC curve over resolution shells.

    Attributes
    ----------
    s_invA
        Shell centres in 1/Å (shell 0 is the origin term).
    fsc
        Correlation per shell, in [-1, 1].
    n_coeffs
        Fourier coefficients per shell (full grid); the noise level of an FSC value is about ``1/sqrt(n)``.
    """

    s_invA: np.ndarray
    fsc: np.ndarray
    n_coeffs: np.ndarray

    def resolution_at(self, threshold: float) -> float:
        """Resolution (Å) where the curve first falls below ``threshold``, linearly interpolated in 1/Å.

        The origin shell is skipped. If the curve never falls below the threshold, the finest shell's
        resolution (the Nyquist limit) is returned; :meth:`crosses` tells the two cases apart. If it is below the
        threshold from the first shell on, ``inf`` is returned.
        """
        f, s = self.fsc, self.s_invA
        for k in range(1, len(f)):
            if f[k] < threshold:
                if k == 1:
                    return float("inf")
                f0, f1 = f[k - 1], f[k]
                t = (f0 - threshold) / (f0 - f1) if f0 != f1 else 0.0
                s_cross = s[k - 1] + t * (s[k] - s[k - 1])
                return float(1.0 / s_cross)
        return float(1.0 / s[-1])

    def crosses(self, threshold: float) -> bool:
        """True if the curve falls below ``threshold`` at some shell past the origin."""
        return bool(np.any(self.fsc[1:] < threshold))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (resolution of each shell in Å included for plotting)."""
        with np.errstate(divide="ignore"):
            res = np.where(self.s_invA > 0, 1.0 / np.maximum(self.s_invA, 1e-12), np.inf)
        return {
            "s_invA": [round(float(v), 6) for v in self.s_invA],
            "resolution_A": [None if not np.isfinite(v) else round(float(v), 4) for v in res],
            "fsc": [round(float(v), 6) for v in self.fsc],
            "n_coeffs": [int(v) for v in self.n_coeffs],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FSCCurve:
        """Inverse of :meth:`to_dict`."""
        return cls(np.asarray(d["s_invA"], float), np.asarray(d["fsc"], float), np.asarray(d["n_coeffs"], int))


def fsc_curve(
    a: DensityMap,
    b: DensityMap,
    mask: np.ndarray | None = None,
    shells: Shells | None = None,
) -> FSCCurve:
    """FSC between two maps on the same grid.

    Parameters
    ----------
    a, b
        Maps on one grid (checked).
    mask
        Optional (z, y, x) weights in [0, 1] applied to both maps before the transform (soft masks avoid
        the ringing a hard edge adds).
    shells
        Precomputed shells for this grid (default: :func:`densharp.fourier.map_resolution_shells`, which respects
        a sheared cell's angles).
    """
    a.check_same_grid(b, "the two maps of an FSC")
    x, y = a.data_zyx, b.data_zyx
    if mask is not None:
        x = x * mask
        y = y * mask
    shells = shells or map_resolution_shells(a)
    fa, fb = rfft_map(x), rfft_map(y)
    num = shells.sum((fa * np.conj(fb)).real)
    da = shells.sum(np.abs(fa) ** 2)
    db = shells.sum(np.abs(fb) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        fsc = np.where((da > 0) & (db > 0), num / np.sqrt(da * db), 0.0)
    return FSCCurve(s_invA=shells.centres_invA.copy(), fsc=np.clip(fsc, -1.0, 1.0), n_coeffs=shells.count())


def full_map_fsc(half_map_fsc: np.ndarray) -> np.ndarray:
    """Full-map FSC from the half-map FSC (Rosenthal & Henderson 2003): ``2·FSC / (1 + FSC)``."""
    f = np.asarray(half_map_fsc, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(f > -1.0, 2.0 * f / (1.0 + f), -1.0)


def fsc_weights_cref(half_map_fsc: np.ndarray) -> np.ndarray:
    """Per-shell weights ``C_ref = sqrt(2·FSC / (1 + FSC))`` from the half-map FSC (negative FSC → 0)."""
    full = np.clip(full_map_fsc(np.clip(half_map_fsc, 0.0, 1.0)), 0.0, 1.0)
    return np.sqrt(full)
