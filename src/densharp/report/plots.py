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


def _save(fig, path: str | os.PathLike[str]) -> None:  # type: ignore[no-untyped-def]
    from densharp.io.atomic import atomic_path

    plt = _pyplot()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def save_slices_plot(
    path: str | os.PathLike[str], slices: dict[str, Any], rows: list[str], title: str = "", shared: tuple[str, ...] = ()
) -> None:
    """Central sections (from :func:`densharp.evaluate.case.central_slices`): one row per map, columns xy, xz, yz.

    Maps named in ``shared`` (e.g. input and outputs) use one colour scale (their joint 1st–99.5th percentiles);
    every other row (target, uncertainty) gets its own. Sections are drawn with row 0 at the bottom: ``xy`` has x
    to the right and y up, ``xz`` x right and z up, ``yz`` y right and z up.
    """
    import numpy as np

    plt = _pyplot()
    rows = [r for r in rows if r in slices]
    cols = ("xy", "xz", "yz")
    axes_lbl = {"xy": ("x", "y", "z"), "xz": ("x", "z", "y"), "yz": ("y", "z", "x")}
    joint = [np.asarray(slices[r][c]) for r in rows if r in shared for c in cols]
    lim = None
    if joint:
        allv = np.concatenate([a.ravel() for a in joint])
        lim = (float(np.percentile(allv, 1)), float(np.percentile(allv, 99.5)))
    fig, axs = plt.subplots(
        len(rows), 3, figsize=(7.5, 2.3 * len(rows) + 0.6), dpi=110, squeeze=False, layout="constrained"
    )
    for i, r in enumerate(rows):
        own = np.concatenate([np.asarray(slices[r][c]).ravel() for c in cols])
        vmin, vmax = lim if (r in shared and lim) else (float(np.percentile(own, 1)), float(np.percentile(own, 99.5)))
        cmap = "magma" if r.startswith("sd:") else "gray"
        for j, c in enumerate(cols):
            ax = axs[i, j]
            im = ax.imshow(np.asarray(slices[r][c]), origin="lower", cmap=cmap, vmin=vmin, vmax=vmax)
            h, v, fixed = axes_lbl[c]
            ax.set_xlabel(f"{h} →", fontsize=7, labelpad=1)
            label = f"{v} →"
            if j == 0:
                label = f"{r}{' (shared scale)' if r in shared else ''}\n{label}"
            ax.set_ylabel(label, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{c} section at central {fixed}", fontsize=8)
        fig.colorbar(im, ax=axs[i, :].tolist(), shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=9)
    from densharp.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def save_bin_bar_plot(
    path: str | os.PathLike[str], summary: dict[str, Any], stat: str = "mean", title: str = ""
) -> None:
    """Grouped bars of a summary (:func:`densharp.evaluate.table.summarize`): one group per bin, one bar per method."""
    import numpy as np

    plt = _pyplot()
    groups = list(summary["groups"])
    methods = [m for m in summary["methods"] if any(summary["groups"][g][m]["n"] for g in groups)]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(groups) * max(1, len(methods)) * 0.35 + 2), 3.6), dpi=120)
    w = 0.8 / max(1, len(methods))
    x = np.arange(len(groups))
    for k, m in enumerate(methods):
        vals = [summary["groups"][g][m][stat] for g in groups]
        ax.bar(x + k * w - 0.4 + w / 2, [np.nan if v is None else v for v in vals], w, label=m)
    ax.set_xticks(x)
    ax.set_xticklabels([g if g == "all" else f"{g} Å" for g in groups])
    ax.set_xlabel("input resolution bin")
    ax.set_ylabel(f"{summary['metric']} ({stat})")
    vals_all = [summary["groups"][g][m][stat] for g in groups for m in methods]
    vals_all = [v for v in vals_all if v is not None]
    if vals_all:
        ax.set_ylim(max(-1.0, min(vals_all) - 0.1), min(1.0, max(vals_all) + 0.05) if max(vals_all) <= 1 else None)
    ax.legend(fontsize=7, ncol=min(4, max(1, len(methods))), loc="upper center", bbox_to_anchor=(0.5, -0.18))
    if title:
        ax.set_title(title, fontsize=9)
    _save(fig, path)


def save_training_plot(
    path: str | os.PathLike[str], val_rows: list[dict[str, float]], loss_rows: list[dict[str, float]]
) -> None:
    """Training run: loss against step (left) and validation RSCC against step with its baselines (right)."""
    plt = _pyplot()
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    if loss_rows:
        steps = [r["step"] for r in loss_rows if "loss" in r]
        axs[0].plot(steps, [r["loss"] for r in loss_rows if "loss" in r], lw=0.8)
    axs[0].set_xlabel("step")
    axs[0].set_ylabel("training loss")
    if val_rows:
        steps = [r["step"] for r in val_rows]
        for key in [k for k in val_rows[0] if k.startswith("rscc") and "_bin_" not in k]:
            axs[1].plot(steps, [r.get(key) for r in val_rows], label=key, ls="-" if key == "rscc" else "--")
        axs[1].legend(fontsize=7)
    axs[1].set_xlabel("step")
    axs[1].set_ylabel("validation masked RSCC")
    _save(fig, path)


def save_hallucination_plot(path: str | os.PathLike[str], rec: dict[str, Any]) -> None:
    """Bars of invention score and noise SD ratios per method (a hallucination record)."""
    import numpy as np

    plt = _pyplot()
    names = [n for n, r in rec["methods"].items() if r.get("skipped") is None]
    keys = ("invention_score", "pure_noise_sd_ratio", "solvent_only_sd_ratio")
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=120)
    x = np.arange(len(names))
    for k, key in enumerate(keys):
        vals = [rec["methods"][n].get(key) for n in names]
        ax.bar(x + (k - 1) * 0.27, [np.nan if v is None else v for v in vals], 0.27, label=key)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x)
    ax.set_xticklabels(names)
    ax.legend(fontsize=7)
    ax.set_title(f"omit test: {rec['omitted']}", fontsize=8)
    _save(fig, path)


def save_section_grid(
    path: str | os.PathLike[str],
    slices: dict[str, Any],
    columns: list[str],
    title: str = "",
    dpi: int = 100,
    notes: dict[str, str] | None = None,
) -> None:
    """Sections of several maps side by side: one column per map, rows xy, xz, yz; write PNG atomically.

    ``slices`` maps a name to sections in the layout of :func:`densharp.evaluate.case.central_slices`. Every map
    gets its own grey scale (its 1st–99.5th percentiles over its three sections), so maps of different amplitude
    (input, sharpened outputs, model maps) can be compared by their features; voxels are drawn as they are
    (nearest-neighbour). ``notes`` adds a line under a column's name (e.g. the method the CLI used).
    """
    import numpy as np

    plt = _pyplot()
    columns = [c for c in columns if c in slices]
    rows = ("xy", "xz", "yz")
    axes_lbl = {"xy": ("x", "y", "z"), "xz": ("x", "z", "y"), "yz": ("y", "z", "x")}
    fig, axs = plt.subplots(3, len(columns), figsize=(1.75 * len(columns) + 0.4, 5.6), dpi=dpi, squeeze=False)
    for j, name in enumerate(columns):
        allv = np.concatenate([np.asarray(slices[name][r], dtype=np.float64).ravel() for r in rows])
        vmin, vmax = float(np.percentile(allv, 1)), float(np.percentile(allv, 99.5))
        for i, r in enumerate(rows):
            ax = axs[i, j]
            ax.imshow(
                np.asarray(slices[name][r]), origin="lower", cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest"
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                extra = (notes or {}).get(name)
                ax.set_title(name + (f"\n{extra}" if extra else ""), fontsize=7)
            if j == 0:
                h, v, fixed = axes_lbl[r]
                ax.set_ylabel(f"{r} (at {fixed})\n{v} ↑, {h} →", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    _save(fig, path)
