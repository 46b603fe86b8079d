"""pipelines.printout: exact pixel geometry, the drawing, the calibration pulse and the distortions."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines.printout.distort import DISTORTIONS, apply_distortions, plan_distortions, strip_rng
from pipelines.printout.grid import grid_template, page_geometry, quantise
from pipelines.printout.record import PaperConfig, render_strips, strip_rhythm, strip_starts
from pipelines.printout.strip import draw_strip, plot_signals, remove_baseline

# 254 dpi = 10 px per mm: at 25 mm/s and 250 Hz one sample is exactly 1 px, 1 mV is exactly 100 px
FS = 250.0


def _geometry(n_leads=1, seconds=2.0):
    return page_geometry(seconds=seconds, n_leads=n_leads, dpi=254.0)


def _dark(img, y, x):
    return img[np.round(y).astype(int), np.round(x).astype(int)].max(axis=-1)


def test_square_pulse_lands_on_exact_pixels_and_is_drawn_there():
    g = _geometry()
    n = int(2 * FS)
    sig = np.zeros((1, n), np.float32)
    sig[0, n // 4: n // 2] = 1.0                      # a 1 mV square pulse
    p = plot_signals(sig, FS, g)
    assert g.x_origin == 100.0 and g.baseline_y(0) == 200.0
    assert p.x[0].tolist() == (100.0 + np.arange(n)).tolist()
    assert p.y[0].tolist() == np.where(sig[0] > 0, 100.0, 200.0).tolist()
    img = draw_strip(p, ["II"], g)
    assert img.shape == (g.height, g.width, 3) == (400, 650, 3)
    # every plotted sample is inked (black trace, anti-aliased pen 2 px wide)
    assert _dark(img, p.y[0], p.x[0]).max() < 60
    # and the paper half-way between the two levels is not, away from the edges
    assert img[145, 163].min() > 150


def test_sine_round_trip_pixel_time_mv_pixel_is_exact():
    g = page_geometry(seconds=10, n_leads=2)          # the default 200 dpi page: 7.874 px per mm
    t = np.arange(3600) / 360.0
    sig = np.stack([np.sin(2 * np.pi * t), 0.5 * np.cos(2 * np.pi * 3 * t)]).astype(np.float32)
    p = plot_signals(sig, 360.0, g)
    for k in range(2):
        ppmm = 200 / 25.4
        want_x = quantise(quantise(10 * ppmm) + t * 25 * ppmm)
        want_y = quantise(g.baseline_y(k) - sig[k].astype(np.float64) * 10 * ppmm)
        assert np.array_equal(p.x[k], want_x) and np.array_equal(p.y[k], want_y)
        tt, vv = g.to_signal(p.x[k], p.y[k], k)
        back = g.to_pixels(tt, vv, k)
        assert np.array_equal(back[0], p.x[k]) and np.array_equal(back[1], p.y[k])
        assert np.abs(vv - sig[k]).max() <= 1 / 32 / (10 * ppmm) + 1e-9   # 1/32 px in mV
        assert np.abs(tt - t).max() <= 1 / 32 / (25 * ppmm) + 1e-9
    assert p.clipped.tolist() == [0, 0]


def test_calibration_pulse_box_and_ink():
    g = _geometry(n_leads=2)
    assert g.pulse_box(0) == (20.0, 100.0, 70.0, 200.0)      # rises at 2 mm, 0.2 s = 5 mm wide, 1 mV = 10 mm
    assert g.pulse_box(1) == (20.0, 400.0, 70.0, 500.0)
    img = draw_strip(plot_signals(np.zeros((2, 10), np.float32), FS, g), ["I", "II"], g)
    assert img[100, 25:65].max() < 60 and img[400, 25:65].max() < 60    # the pulse tops
    assert img[150, 20].max() < 60 and img[150, 70].max() < 60          # its rising and falling edges
    assert img[145, 45].min() > 150                                     # and paper inside


def test_grid_lines_every_mm_and_major_every_5mm():
    t = grid_template(_geometry(), "#f08080")
    row = t[3]                                         # a row between horizontal lines
    minor = np.flatnonzero((row == (248, 192, 192)).all(axis=1))
    major = np.flatnonzero((row == (240, 128, 128)).all(axis=1))
    assert minor[:4].tolist() == [10, 20, 30, 40]
    assert major[:4].tolist() == [0, 49, 50, 99]       # 0.2 mm = 2 px wide, centred on k * 50 px


def test_clipping_is_counted_and_the_signal_is_what_was_plotted():
    g = _geometry()
    sig = np.array([[0.0, 50.0, -50.0, 0.2]], np.float32)
    p = plot_signals(sig, FS, g)
    assert p.clipped.tolist() == [2]
    assert p.y[0].min() >= 0 and p.y[0].max() <= g.height - 1
    tt, vv = g.to_signal(p.x[0], p.y[0], 0)
    assert np.allclose(vv, p.signal[0], atol=1e-3) and p.signal[0, 3] == np.float32(0.2)


def test_baseline_removal_and_bad_signals():
    assert remove_baseline(np.array([[1.0, 3.0, 2.0]]), "median").tolist() == [[-1.0, 1.0, 0.0]]
    with pytest.raises(ValueError, match="NaN"):
        plot_signals(np.array([[0.0, np.nan]]), FS, _geometry())
    with pytest.raises(ValueError, match="expected"):
        plot_signals(np.zeros((2, 5)), FS, _geometry(n_leads=1))


def test_strip_starts_and_rhythm():
    assert strip_starts(3599, 360.0, 10.0).size == 0              # too short for one strip
    assert strip_starts(7300, 360.0, 10.0).tolist() == [0, 3600]
    assert strip_rhythm(np.array([500]), np.array(["(AFIB"], object), 0, 3600) == (None, [500], ["(AFIB"])


SPEC = {"grid_colour": {"colours": ["#00ff00"]}, "rotate": {"max_degrees": 3.0},
        "crease": {"darkness": 0.5, "width_mm": 1.0}, "lighting": {"strength": 0.3}, "blur": {"sigma_px": 1.0},
        "noise": {"sigma": 5.0}, "jpeg": {"quality": 60}}


def test_every_distortion_is_planned_recorded_and_seeded():
    plan = plan_distortions(SPEC, strip_rng(7, "v", "100-0"), (400, 350), 10.0)
    assert [p["name"] for p in plan] == list(DISTORTIONS)
    again = plan_distortions(SPEC, strip_rng(7, "v", "100-0"), (400, 350), 10.0)
    other = plan_distortions(SPEC, strip_rng(8, "v", "100-0"), (400, 350), 10.0)
    assert json.dumps(plan) == json.dumps(again) and json.dumps(plan) != json.dumps(other)
    rot = next(p for p in plan if p["name"] == "rotate")
    assert abs(rot["degrees"]) <= 3.0 and rot["max_degrees"] == 3.0 and len(rot["matrix"]) == 2
    with pytest.raises(ValueError, match="unknown distortion"):
        plan_distortions({"warp": {}}, strip_rng(0, "v", "x"), (10, 10), 1.0)


def test_distortions_are_deterministic_and_rotation_moves_the_plotted_pixels():
    g = _geometry(seconds=4.0)
    t = np.arange(int(4 * FS)) / FS
    p = plot_signals(np.sin(2 * np.pi * t)[None].astype(np.float32), FS, g)
    img = draw_strip(p, ["II"], g)
    plan = plan_distortions({"rotate": {"max_degrees": 5.0}}, strip_rng(1, "r", "s"), img.shape[:2], 10.0)
    out, x, y = apply_distortions(img, p.x, p.y, plan)
    out2, _, _ = apply_distortions(img, p.x, p.y, plan)
    assert np.array_equal(out, out2) and not np.array_equal(out, img)
    m = np.asarray(plan[0]["matrix"])
    assert np.allclose(x, m[0, 0] * p.x + m[0, 1] * p.y + m[0, 2])
    inside = (x > 1) & (x < img.shape[1] - 2) & (y > 1) & (y < img.shape[0] - 2)
    assert np.median(_dark(out, y[inside], x[inside])) < 100          # the ink followed the samples
    full = plan_distortions(SPEC, strip_rng(1, "all", "s"), img.shape[:2], 10.0)
    a, _, _ = apply_distortions(img, p.x, p.y, full)
    b, _, _ = apply_distortions(img, p.x, p.y, full)
    assert np.array_equal(a, b) and a.dtype == np.uint8 and a.shape == img.shape


def test_render_strips_rows_hold_the_ground_truth_of_each_variant():
    cfg = PaperConfig(dpi=100.0, variants={"blurry": {"blur": {"sigma_px": 1.0}}}, baseline="none")
    n = 3600
    sig = np.stack([np.sin(np.arange(2 * n) / 50), np.cos(np.arange(2 * n) / 50)]).astype(np.float32)
    beats = (np.array([100, 4000, 5000]), np.array(["N", "V", "+"], object))
    rhythms = (np.array([0, 4500]), np.array(["(N", "(AFIB"], object))
    out = render_strips("900", 360.0, sig, ["MLII", "V1"], np.array([0, n]), beats, rhythms, cfg)
    assert list(out) == ["clean", "blurry"]
    clean, blurry = out["clean"].to_pylist(), out["blurry"].to_pylist()
    assert [r["strip_id"] for r in clean] == ["900-0", "900-3600"]
    r = clean[1]
    assert r["beat_sample"] == [4000] and r["beat_symbol"] == ["V"] and r["beat_aami"] == ["V"]
    assert r["rhythm"] == "(N" and r["rhythm_sample"] == [4500] and r["rhythm_label"] == ["(AFIB"]
    assert np.array_equal(np.asarray(r["signal"][1], np.float32), sig[1, n:])
    assert r["distortions"] == "[]" and json.loads(blurry[1]["distortions"])[0]["name"] == "blur"
    assert blurry[1]["plotted_x"] == r["plotted_x"] and blurry[1]["image"] != r["image"]


def test_paper_params_are_strict_and_the_defaults_load():
    from pipelines.core.errors import ConfigError
    from pipelines.core.params import load_params, validate_params

    cfg = PaperConfig.from_params(load_params("params.yaml", "paper"))
    assert cfg.variant_names[0] == "clean" and "scan" in cfg.variants and cfg.dpi == 200.0
    assert set(cfg.variants["scan"]) == set(DISTORTIONS)
    for bad, key in (({"grid_colour": "red"}, "paper.grid_colour"),
                     ({"variants": {"x": {"warp": {"k": 1}}}}, "paper.variants.x.warp"),
                     ({"variants": {"x": {}}}, "paper.variants.x"),
                     ({"variants": {"Bad-Name": {"blur": {"sigma_px": 1.0}}}}, "paper.variants.Bad-Name"),
                     ({"variants": {"x": {"jpeg": {"quality": 0}}}}, "paper.variants.x.jpeg.quality")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            validate_params({"paper": bad})
