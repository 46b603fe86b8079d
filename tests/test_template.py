"""Beat morphology (pipelines/signal/template.py): beats against their record's median beat, and absolute."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from pipelines import (MORPHOLOGY_COLUMNS, RELATIVE_COLUMNS, TEMPLATE_COLUMNS, TemplateSpec, template_features,
                       template_matrix)
from pipelines.core.errors import ConfigError
from pipelines.formats.beats import beats_table
from pipelines.records.reader import EcgRecord
from pipelines.signal.beats import SegmentConfig, segment_annotations, segment_detections
from pipelines.signal.template import MIN_BEATS

FS = 360.0


def _gauss(t: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - centre) / width) ** 2)


def _record_signal(n_beats: int = 40, wide_every: int = 8, seconds_per_beat: float = 0.8, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A record of narrow upright beats with a T wave; every ``wide_every``-th beat (from beat 3) wide,
    inverted and tall (a ventricular-like beat). Returns signal (mV), R samples, is_wide."""
    rng = np.random.default_rng(seed)
    step = int(seconds_per_beat * FS)
    r = (np.arange(n_beats) + 1) * step
    t = np.arange(int((n_beats + 1) * step)) / FS
    x = 0.01 * rng.standard_normal(t.size)
    wide = (np.arange(n_beats) % wide_every) == 3
    for p, w in zip(r / FS, wide):
        if w:
            x += -2.0 * _gauss(t, p, 0.04)
        else:
            x += 1.2 * _gauss(t, p, 0.012) + 0.25 * _gauss(t, p + 0.25, 0.05)
    return x, r, wide


def test_a_ventricular_like_beat_differs_from_its_record_template():
    x, r, wide = _record_signal()
    f = template_features(x, r, FS)
    assert sorted(f) == sorted(TEMPLATE_COLUMNS)
    assert all(v.shape == r.shape and v.dtype == np.float64 for v in f.values())
    ok = np.isfinite(f["tpl_corr_qrs"])
    normal, ectopic = ok & ~wide, ok & wide
    assert ectopic.sum() >= 3 and normal.sum() >= 20
    # the normal beats are the template: correlation near 1, small residual, ratios near 1 (log near 0)
    assert f["tpl_corr_qrs"][normal].min() > 0.98 and f["tpl_corr_qrs"][ectopic].max() < 0.2
    assert f["tpl_rms_qrs"][normal].max() < 0.1 < 0.3 < f["tpl_rms_qrs"][ectopic].min()
    assert np.abs(f["tpl_ptp"][normal]).max() < 0.1
    assert f["tpl_width"][ectopic].min() > 2.0 > 1.2 > f["tpl_width"][normal].max()
    assert f["tpl_min"][ectopic].max() < -1.0 < f["tpl_min"][normal].min()
    assert f["tpl_max"][normal].min() > 0.8


def test_relative_features_are_scale_free_and_all_deterministic():
    """Record-relative amplitudes are in units of the template's QRS peak-to-peak: a lead's gain does not
    matter to them; the absolute morphology samples scale with it, and the QRS width (ms) does not."""
    x, r, _ = _record_signal(seed=3)
    a, b = template_features(x, r, FS), template_features(3.0 * x, r, FS)
    for c in RELATIVE_COLUMNS + ("mor_qrs_ms",):
        np.testing.assert_allclose(a[c], b[c], rtol=1e-9, atol=1e-9, err_msg=c)
    for c in MORPHOLOGY_COLUMNS[:-1]:
        np.testing.assert_allclose(3.0 * a[c], b[c], rtol=1e-9, atol=1e-9, err_msg=c)
    again = template_features(x, r, FS)
    for c in TEMPLATE_COLUMNS:
        assert again[c].tobytes() == a[c].tobytes(), c


def test_absolute_morphology_samples_the_beat_in_mv():
    """mor_q* sample the band-passed beat over the QRS (R at mor_q3, 0 ms of -50..100), mor_t* over the T
    wave (a 0.25 mV bump 250 ms after R), mor_qrs_ms is the width in ms: wide for the ventricular-like beats."""
    x, r, wide = _record_signal()
    f = template_features(x, r, FS)
    ok = np.isfinite(f["mor_q3"])
    normal, ectopic = ok & ~wide, ok & wide
    assert list(MORPHOLOGY_COLUMNS) == [f"mor_q{i}" for i in range(10)] + [f"mor_t{i}" for i in range(9)] + ["mor_qrs_ms"]
    assert 0.8 < f["mor_q3"][normal].min() and f["mor_q3"][normal].max() < 1.3       # the 1.2 mV R, band-passed
    assert f["mor_q3"][ectopic].max() < -1.0                                           # the inverted wide beat
    assert np.abs(f["mor_q0"][normal]).max() < 0.2                                     # 50 ms before a narrow R
    t_peak = np.stack([f[f"mor_t{i}"] for i in range(9)])[:, normal].max(axis=0)
    assert 0.1 < t_peak.min() and t_peak.max() < 0.35
    assert f["mor_qrs_ms"][ectopic].min() > 2 * f["mor_qrs_ms"][normal].max()
    assert 5.0 < f["mor_qrs_ms"][normal].min()


def test_morphology_spans_are_checked():
    assert TemplateSpec.from_params({"morph_t_ms": [100, 300]}).morph_t_ms == (100.0, 300.0)
    with pytest.raises(ValueError, match="morph_qrs_ms"):
        TemplateSpec(morph_qrs_ms=(-240.0, 100.0))
    with pytest.raises(ValueError, match="morph_t_ms"):
        TemplateSpec(morph_t_ms=(300.0, 200.0))
    with pytest.raises(ConfigError, match="segment.template.morph_t_ms"):
        SegmentConfig.from_params({"template": {"morph_t_ms": [150.0, 450.0]}}, "annotations")


def test_beats_whose_window_leaves_the_record_are_null():
    x, r, _ = _record_signal(n_beats=12)
    spec = TemplateSpec()
    before, after = int(spec.before_ms * FS / 1000), int(spec.after_ms * FS / 1000)
    r = np.concatenate([[before - 1], r, [x.size - after + 1]])
    f = template_features(x, r, FS)
    assert np.isnan(f["tpl_corr"][[0, -1]]).all() and np.isfinite(f["tpl_corr"][1:-1]).all()


def test_too_few_beats_or_a_flat_lead_give_nulls():
    x, r, _ = _record_signal(n_beats=MIN_BEATS + 2)
    assert all(np.isnan(v).all() for v in template_features(x, r[:MIN_BEATS - 1], FS).values())
    assert all(np.isnan(v).all() for v in template_features(np.zeros_like(x), r, FS).values())
    assert all(v.size == 0 for v in template_features(x, np.zeros(0, np.int64), FS).values())


def test_unrecovered_samples_are_interpolated_not_spread():
    """A digitised signal has NaN gaps: they are filled before filtering, so the features stay finite."""
    x, r, _ = _record_signal()
    gappy = x.copy()
    gappy[r[5] + 100:r[5] + 110] = np.nan
    f, g = template_features(x, r, FS), template_features(gappy, r, FS)
    assert np.isfinite(g["tpl_corr"]).all()
    np.testing.assert_allclose(g["tpl_corr_qrs"][20:], f["tpl_corr_qrs"][20:], atol=1e-3)


def test_other_sampling_rates_give_the_same_picture():
    x, r, wide = _record_signal()
    t = np.arange(x.size) / FS
    fs2 = 250.0
    t2 = np.arange(int(t[-1] * fs2)) / fs2
    f = template_features(np.interp(t2, t, x), np.round(r / FS * fs2).astype(np.int64), fs2)
    ok = np.isfinite(f["tpl_corr_qrs"])
    assert f["tpl_corr_qrs"][ok & ~wide].min() > 0.95 and f["tpl_corr_qrs"][ok & wide].max() < 0.3


def test_template_matrix_fills_nulls_and_names_missing_columns():
    m = template_matrix({c: [1.0, None, np.inf] for c in TEMPLATE_COLUMNS})
    assert m.shape == (3, len(TEMPLATE_COLUMNS)) and m.dtype == np.float32
    assert m[0].tolist() == [1.0] * len(TEMPLATE_COLUMNS) and not m[1:].any()
    with pytest.raises(KeyError, match="no template columns \\['mor_qrs_ms'\\]"):
        template_matrix({c: [1.0] for c in TEMPLATE_COLUMNS[:-1]})


def test_spec_validation_in_code_and_in_params():
    assert TemplateSpec.from_params(None) == TemplateSpec()
    assert TemplateSpec.from_params({"band_hz": [1, 30]}).band_hz == (1.0, 30.0)
    with pytest.raises(ValueError, match="band_hz"):
        TemplateSpec(band_hz=(40.0, 0.5))
    with pytest.raises(ConfigError, match="segment.template.qrs_before_ms"):
        SegmentConfig.from_params({"template": {"qrs_before_ms": 240.0}}, "annotations")
    with pytest.raises(ConfigError, match="segment.template.band_hz"):
        SegmentConfig.from_params({"template": {"band_hz": [40, 0.5]}}, "annotations")
    with pytest.raises(ConfigError, match="segment.template"):
        SegmentConfig.from_params({"template": {"width_ms": 3}}, "annotations")


def test_segment_fills_template_columns_and_counts_the_nulls(tmp_path):
    x, r, wide = _record_signal(n_beats=30)
    symbols = np.where(wide, "V", "N").astype(object)
    rec = EcgRecord(name="t1", fs=FS, lead="MLII", signal=x.astype(np.float32), ann_sample=r,
                    ann_symbol=symbols)
    res = segment_annotations(rec, SegmentConfig.from_params({}, "annotations"))
    full = template_features(rec.signal, r, FS)
    kept = np.isin(r, res.r_sample)
    for c in TEMPLATE_COLUMNS:
        np.testing.assert_array_equal(res.template[c], full[c][kept])
    assert res.counts["template_missing"] == int(np.isnan(full["tpl_corr"][kept]).sum())
    det = segment_detections(rec, r, SegmentConfig.from_params({}, "christov"))
    np.testing.assert_array_equal(det.template["tpl_width"], full["tpl_width"][np.isin(r, det.r_sample)])
    table = beats_table([res])
    v = table.column("tpl_corr_qrs").to_numpy(zero_copy_only=False)
    np.testing.assert_allclose(v, full["tpl_corr_qrs"][kept].astype(np.float32))
    is_v = table.column("symbol").to_numpy(zero_copy_only=False) == "V"
    assert np.nanmax(v[is_v]) < 0.2 < 0.98 < np.nanmin(v[~is_v])
    assert SegmentConfig.from_params({}, "annotations").to_json()["template"] == TemplateSpec().to_json()


def test_params_yaml_template_section_is_the_default():
    from pathlib import Path

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    assert SegmentConfig.from_params(params["segment"], "annotations").template == TemplateSpec()
    assert params["train"]["template_features"] == list(RELATIVE_COLUMNS)    # inter-patient runs: relative only
    jun8 = params["train"]["runs"]["small_cnn-beat-jun8"]
    assert jun8["template_features"] == list(TEMPLATE_COLUMNS)                 # intra-patient: absolute too
