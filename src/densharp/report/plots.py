"""Plots drawn from JSON-ready dicts, so figures can be redrawn without recomputing (matplotlib Agg)."""

from __future__ import annotations

import os
from typing import Any

from densharp.errors import InputError


def _pyplot():  # type: ignore[no-untyped-def]
    try:
        import matplotlib
    except ImportError:
        raise InputError("plots need matplotlib: pip install 'densharp[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_fsc_plot(path: str | os.PathLike[str], curves: dict[str, dict[str, Any]], title: str = "") -> None:
    """Plot FSC curves (dicts from :meth:`FSCCurve.to_dict`) against 1/Å, with a top axis in Å; write PNG atomically."""
    from densharp.io.atomic import atomic_path

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for label, c in curves.items():
        ax.plot(c["s_invA"][1:], c["fsc"][1:], label=label)
    for thr, style in ((0.5, ":"), (0.143, "--")):
        ax.axhline(thr, color="grey", ls=style, lw=0.8)
        ax.text(0.0, thr + 0.01, f"{thr}", color="grey", fontsize=7)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC")
    ax.set_ylim(-0.1, 1.02)
    top = ax.secondary_xaxis("top", functions=(lambda x: 1 / x.clip(1e-6), lambda x: 1 / x.clip(1e-6)))
    smax = max(max(c["s_invA"]) for c in curves.values())
    ticks = [t for t in (20, 10, 8, 6, 5, 4, 3, 2.5, 2, 1.5) if 1 / t <= smax]
    top.set_xticks(ticks)
    top.set_xticklabels([f"{t:g}" for t in ticks])
    top.set_xlabel("resolution (Å)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9, pad=28)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
