"""The spectrum of an ideal map, and the Guinier B it has: the residual B auto-B sharpens to.

An *ideal* map here is the noise-free density of a protein model with its atoms' own B-factors (the simulated
target of the quality benchmark). Its radially averaged amplitude still falls with resolution: atoms are not
points and are never perfectly ordered, and protein spectra dip near 10 Å and 5 Å. Flattening a map's *whole*
Guinier B (B_fit) therefore over-sharpens it: a well-resolved map (whose B is mostly this intrinsic fall-off) comes
out worse than it went in. Auto-B instead removes ``B_fit - B_ideal(fit range)``, the part of the fall-off an
ideal map at that resolution would not have (:func:`ideal_bfactor_A2`).

The table is the median log amplitude of 114 noise-free 64³ boxes (~1 Å voxels, 2 Å band limit) of 57 structures
of the corpus *train* split, each with its mean over 0.1–0.4 1/Å removed; it was made by
``benchmarks/make_ideal_spectrum.py`` (seed 777) and is never tuned on the val or test splits.
"""

from __future__ import annotations

import numpy as np

#: spatial frequencies (1/Å) of the table
IDEAL_S_INVA = (0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17, 0.18,
                0.19, 0.2, 0.21, 0.22, 0.23, 0.24, 0.25, 0.26, 0.27, 0.28, 0.29, 0.3, 0.31, 0.32, 0.33, 0.34, 0.35,
                0.36, 0.37, 0.38, 0.39, 0.4, 0.41, 0.42, 0.43, 0.44, 0.45)  # fmt: skip
#: ln of the radially averaged amplitude of an ideal map at those frequencies (arbitrary offset)
IDEAL_LN_AMPLITUDE = (3.2726, 2.5889, 2.0689, 1.6531, 1.4706, 1.3201, 1.1515, 1.0157, 0.9016, 0.7595, 0.6503,
                      0.5449, 0.4750, 0.4228, 0.3779, 0.3920, 0.4126, 0.4386, 0.4779, 0.4827, 0.4478, 0.3869,
                      0.2923, 0.1934, 0.0989, 0.0132, -0.0776, -0.1729, -0.2714, -0.3610, -0.4646, -0.5448,
                      -0.6397, -0.7294, -0.7994, -0.8563, -0.9163, -0.9811, -1.0392, -1.0878, -1.1283, -1.1767,
                      -1.2353, -1.2939)  # fmt: skip


def ideal_bfactor_A2(d_min_A: float, fit_low_A: float = 10.0) -> float:
    """Guinier B (Å²) of the ideal-map spectrum fitted between ``fit_low_A`` and ``d_min_A`` (as auto-B fits maps).

    The fit uses the table points inside the range (at least three; the range is widened symmetrically in s²
    when it holds fewer). Beyond the table (finer than 2.2 Å) the fit stops at its last point.
    """
    s = np.asarray(IDEAL_S_INVA)
    y = np.asarray(IDEAL_LN_AMPLITUDE)
    lo, hi = 1.0 / float(fit_low_A), min(1.0 / float(d_min_A), float(s[-1]))
    sel = (s >= lo - 1e-9) & (s <= hi + 1e-9)
    while sel.sum() < 3:
        lo, hi = lo - 0.005, hi + 0.005
        sel = (s >= lo - 1e-9) & (s <= hi + 1e-9)
    slope = np.polyfit(s[sel] ** 2, y[sel], 1)[0]
    return float(-4.0 * slope)
