"""Metrics against analytic cases, the global-filter oracle, the method registry and the summary table."""

from __future__ import annotations

import numpy as np
import pytest

from densharp.evaluate import evaluate_case, register_method, run_method, score_map, summarize
from densharp.evaluate.methods import METHODS, parse_methods, unregister_method
from densharp.evaluate.metrics import MapScore
from densharp.evaluate.table import bin_of, format_table, table_rows
from densharp.filters.bfactor import guinier_fit
from densharp.filters.global_filter import apply_global_filter, global_filter_gains
from densharp.fourier import shell_amplitudes
from densharp.metrics.fsc import fsc_curve
from densharp.metrics.rscc import rscc
from densharp.volume import DensityMap


def gaussian_blob(b_A2: float, n: int = 40, voxel: float = 1.0) -> DensityMap:
    """exp(-r²/2σ²) with σ² = B/(8π²): its transform falls as exp(-B s²/4)."""
    sigma2 = b_A2 / (8 * np.pi**2)
    c = (np.arange(n) - n // 2) * voxel
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    return DensityMap(np.exp(-(x * x + y * y + z * z) / (2 * sigma2)).astype(np.float32), (voxel,) * 3)


def test_gaussian_blob_rscc_to_itself_is_one_and_spectrum_is_guinier():
    blob = gaussian_blob(60.0)
    sc = score_map(blob, blob)
    assert sc.rscc_box == pytest.approx(1.0, abs=1e-9)
    assert sc.rscc_mask == pytest.approx(1.0, abs=1e-9)
    assert np.all(sc.fsc.fsc[1:] > 0.999)
    s, amp = shell_amplitudes(blob)
    sel = (s > 0.05) & (s < 0.3)
    slope = np.polyfit(s[sel] ** 2, np.log(amp[sel]), 1)[0]
    assert -4 * slope == pytest.approx(60.0, rel=0.03)
    assert guinier_fit(blob, 3.0).b_A2 == pytest.approx(60.0, rel=0.03)


def test_fsc_of_independent_noise_is_within_three_over_root_n():
    rng = np.random.default_rng(5)
    a = DensityMap(rng.standard_normal((40, 40, 40)).astype(np.float32), (1.0, 1.0, 1.0))
    b = a.with_data(rng.standard_normal((40, 40, 40)).astype(np.float32))
    c = fsc_curve(a, b)
    k = slice(2, None)
    assert np.all(np.abs(c.fsc[k]) < 3.0 / np.sqrt(c.n_coeffs[k]))


def test_global_filter_is_identity_when_input_is_target(small_case):
    t = small_case["target"]
    out = apply_global_filter(t, t)
    np.testing.assert_allclose(out.data_zyx, t.data_zyx, atol=1e-4 * float(np.abs(t.data_zyx).max()))
    _, gains = global_filter_gains(t, t)
    assert np.all((np.abs(gains - 1) < 1e-5) | (gains == 0))


def test_global_filter_oracle_beats_identity_and_autob(small_case):
    rec = evaluate_case(
        "synthetic",
        small_case["input"],
        small_case["target"],
        small_case["d_input_A"],
        ["identity", "autob", "global-filter"],
        keep_slices=False,
    )
    r = {n: v["rscc_box"] for n, v in rec["methods"].items()}
    assert r["global-filter"] >= r["identity"] - 1e-6
    assert r["global-filter"] >= r["autob"] - 1e-6
    # least squares: no per-shell scaling of the input gets closer to the target than the oracle
    t = small_case["target"].data_zyx.astype(np.float64)
    o = apply_global_filter(small_case["input"], small_case["target"]).data_zyx
    for other in (small_case["input"].data_zyx, run_method("autob", small_case["input"], 4.0).map.data_zyx):
        scale = float((other * t).sum() / (other * other).sum())
        assert ((o - t) ** 2).sum() <= ((scale * other - t) ** 2).sum() * (1 + 1e-6)


def test_registry_fake_method_and_unavailable_learned(small_case, monkeypatch):
    monkeypatch.setattr("densharp.sharpening.learned_unavailable", lambda: "torch not installed")

    def fake(m, d, half_maps=None, target=None):
        from densharp.fourier import apply_bfactor

        return apply_bfactor(m, -40.0), m.with_data(np.ones(m.shape_zyx, np.float32))

    register_method("fake-b40", fake)
    try:
        assert parse_methods("identity,fake-b40") == ["identity", "fake-b40"]
        rec = evaluate_case(
            "c",
            small_case["input"],
            small_case["target"],
            4.0,
            ["identity", "autob", "fsc", "fake-b40", "unet", "vae"],
            half_maps=small_case["half_maps"],
        )
    finally:
        unregister_method("fake-b40")
    assert "fake-b40" not in METHODS
    m = rec["methods"]
    assert "learned sharpening unavailable: torch not installed" in m["unet"]["skipped"]
    assert m["vae"]["skipped"]
    assert m["fake-b40"]["has_sd"] is True and "sd:fake-b40" in rec["slices"]
    assert "half_fsc" in m["autob"] and "half_fsc" not in m["fsc"]  # fsc needs both halves: no model-free check
    assert rec["bin"] == "3.5-5"
    for r in (m["identity"], m["autob"], m["fsc"]):
        assert -1 <= r["rscc_mask"] <= 1 and r["d_fsc0143_A"] is not None
    with pytest.raises(Exception, match="unknown method"):
        parse_methods("identity,nope")


def test_summary_bins_means_and_win_rates():
    def case(d, vals):
        return {"bin": bin_of(d), "methods": {k: {"rscc_mask": v} for k, v in vals.items()} | {"x": {"skipped": "n/a"}}}

    cases = [
        case(3.0, {"identity": 0.5, "autob": 0.6, "m": 0.7}),
        case(3.2, {"identity": 0.5, "autob": 0.6, "m": 0.55}),
        case(6.0, {"identity": 0.3, "autob": 0.2, "m": 0.4}),
    ]
    s = summarize(cases)
    g = s["groups"]
    assert set(g) == {"2.5-3.5", "5-8", "all"}
    assert g["2.5-3.5"]["m"]["mean"] == pytest.approx(0.625)
    assert g["2.5-3.5"]["m"]["win_vs_identity"] == 1.0
    assert g["2.5-3.5"]["m"]["win_vs_autob"] == 0.5
    assert g["all"]["m"]["median"] == pytest.approx(0.55)
    assert g["all"]["x"]["n"] == 0 and s["skipped"] == {"x": "n/a"}
    assert bin_of(8.0) == "5-8" and bin_of(2.0) is None and bin_of(3.5) == "3.5-5"
    assert "win/autob" in format_table(s)
    assert len(table_rows(s)) == 3 * 4


def test_map_score_round_trip(small_case):
    sc = score_map(small_case["input"], small_case["target"], None, *small_case["half_maps"])
    back = MapScore.from_dict(sc.to_dict())
    assert back.to_dict() == sc.to_dict()
    assert rscc(small_case["input"], small_case["target"]) == pytest.approx(sc.rscc_box)
