"""Summaries over many cases: per resolution bin and overall, mean and median of a score and paired win rates.

Bins are by input resolution (:data:`RESOLUTION_BINS_A`; the one definition, also used by training validation). A *paired win* of
method M over baseline B on a case means M's score is strictly higher than B's on that same case; the win rate is
over the cases where both ran.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: input-resolution bins (Å) of cryo-EM benchmarks and validation
RESOLUTION_BINS_A: tuple[tuple[float, float], ...] = ((2.5, 3.5), (3.5, 5.0), (5.0, 8.0))
#: input-resolution bins (Å) of X-ray validation
XRAY_RESOLUTION_BINS_A: tuple[tuple[float, float], ...] = ((1.8, 2.5), (2.5, 3.2), (3.2, 4.0))
BASELINES: tuple[str, ...] = ("identity", "autob")
OVERALL = "all"


def bin_name(lo: float, hi: float) -> str:
    """``3.5-5`` style label of a bin."""
    return f"{lo:g}-{hi:g}"


def bin_of(d_input_A: float) -> str | None:
    """Label of the bin holding ``d_input_A`` (lower edge inclusive; 8 Å belongs to the last bin), else ``None``."""
    for i, (lo, hi) in enumerate(RESOLUTION_BINS_A):
        last = i == len(RESOLUTION_BINS_A) - 1
        if lo <= d_input_A < hi or (last and d_input_A == hi):
            return bin_name(lo, hi)
    return None


def _score(case: dict[str, Any], method: str, metric: str) -> float | None:
    rec = case.get("methods", {}).get(method)
    if not rec or rec.get("skipped") is not None or rec.get(metric) is None:
        return None
    return float(rec[metric])


def summarize(
    cases: list[dict[str, Any]], metric: str = "rscc_mask", baselines: tuple[str, ...] = BASELINES
) -> dict[str, Any]:
    """Per bin and overall: ``n``, ``mean``, ``median`` of ``metric`` per method and win rates vs ``baselines``.

    Returns ``{"metric", "baselines", "methods", "groups": {group: {method: {...}}}, "skipped": {method: reason}}``
    where groups are the bin labels that have cases plus ``"all"``; ``win_vs_<b>`` is ``None`` when no case has both.
    """
    methods: list[str] = []
    skipped: dict[str, str] = {}
    for c in cases:
        for name, rec in c.get("methods", {}).items():
            if name not in methods:
                methods.append(name)
            if rec.get("skipped") is not None:
                skipped.setdefault(name, str(rec["skipped"]))
    groups: dict[str, list[dict[str, Any]]] = {}
    for lo, hi in RESOLUTION_BINS_A:
        members = [c for c in cases if c.get("bin") == bin_name(lo, hi)]
        if members:
            groups[bin_name(lo, hi)] = members
    groups[OVERALL] = list(cases)
    out: dict[str, Any] = {"metric": metric, "baselines": list(baselines), "methods": methods, "groups": {}}
    for g, members in groups.items():
        gd: dict[str, Any] = {}
        for name in methods:
            vals = [v for v in (_score(c, name, metric) for c in members) if v is not None]
            row: dict[str, Any] = {
                "n": len(vals),
                "mean": round(float(np.mean(vals)), 6) if vals else None,
                "median": round(float(np.median(vals)), 6) if vals else None,
            }
            for b in baselines:
                scored = [(_score(c, name, metric), _score(c, b, metric)) for c in members]
                pairs = [(a, bb) for a, bb in scored if a is not None and bb is not None]
                row[f"win_vs_{b}"] = round(sum(a > bb for a, bb in pairs) / len(pairs), 4) if pairs else None
            gd[name] = row
        out["groups"][g] = gd
    if skipped:
        out["skipped"] = {k: v for k, v in skipped.items() if all(_score(c, k, metric) is None for c in cases)}
    return out


def table_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows (one per group × method) for CSV: group, method, n, mean, median, win_vs_<baseline>..."""
    rows = []
    for g, gd in summary["groups"].items():
        for name, r in gd.items():
            rows.append({"group": g, "method": name, **r})
    return rows


def format_table(summary: dict[str, Any]) -> str:
    """Plain-text table of :func:`summarize` output (one block per group)."""
    base = summary["baselines"]
    head = f"{'method':<16}{'n':>4}{'mean':>9}{'median':>9}" + "".join(f"{'win/' + b:>14}" for b in base)

    def f(v: Any, w: int, p: int = 4) -> str:
        return f"{'-':>{w}}" if v is None else f"{v:>{w}.{p}f}"

    lines = [f"{summary['metric']} (mean, median, paired win rate)"]
    for g, gd in summary["groups"].items():
        label = "all cases" if g == OVERALL else f"bin {g} Å"
        lines.append(f"-- {label}")
        lines.append(head)
        for name, r in gd.items():
            if r["n"] == 0:
                continue
            lines.append(
                f"{name:<16}{r['n']:>4}{f(r['mean'], 9)}{f(r['median'], 9)}"
                + "".join(f(r.get(f"win_vs_{b}"), 14, 2) for b in base)
            )
    for name, why in (summary.get("skipped") or {}).items():
        lines.append(f"skipped {name}: {why}")
    return "\n".join(lines)
