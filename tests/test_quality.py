"""Tests of pipelines.signal.quality: flat, saturated and implausible beat windows."""
from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.errors import ConfigError
from pipelines.signal.quality import (
    QUALITY_REASONS, QualitySpec, beat_quality, lead_is_flat, reason_counts, screen_beats, select_windows,
)
from pipelines.signal.windows import extract_windows
from tests._wfdb_records import synthetic_ecg


def _ragged(*windows) -> tuple[np.ndarray, np.ndarray]:
    values = np.concatenate([np.asarray(w, dtype=np.float32) for w in windows])
    offsets = np.r_[0, np.cumsum([len(w) for w in windows])]
    return values, offsets


def _names(codes) -> list[str]:
    return [QUALITY_REASONS[c - 1] if c else "ok" for c in codes]


def test_clean_synthetic_beats_are_all_kept():
    sig, peaks = synthetic_ecg(n_beats=20)
    values, offsets = extract_windows(sig.astype(np.float32), peaks - 100, peaks + 150)
    codes = beat_quality(values, offsets, adc_limits_mv=(-5.12, 5.115), saturated_samples=1)
    assert codes.dtype == np.uint8 and codes.shape == (20,) and not codes.any()


def test_flat_threshold_is_peak_to_peak():
    values, offsets = _ragged([3.0] * 10, [3.0, 3.04] * 5, [3.0, 3.06] * 5, [np.nan] * 4)
    assert _names(beat_quality(values, offsets, flat_mv=0.05)) == ["flat", "flat", "ok", "flat"]


def test_implausible_amplitude_is_above_max_mv():
    values, offsets = _ragged([0.0, 14.9], [0.0, 15.1], [-8.0, 8.0])
    assert _names(beat_quality(values, offsets, max_mv=15.0)) == ["ok", "implausible_amplitude",
                                                                   "implausible_amplitude"]


def test_saturation_counts_samples_at_either_limit():
    lo, hi = np.float32(-1024 / 200), np.float32(1023 / 200)
    values, offsets = _ragged([0, 1, hi, hi, 0.5], [lo, lo, lo, 1.0], [0, 1, hi, 0.2], [0, hi + 1, 1])
    codes = beat_quality(values, offsets, adc_limits_mv=(float(lo), float(hi)), saturated_samples=2)
    assert _names(codes) == ["saturated", "saturated", "ok", "ok"]
    # beyond the limit counts too, and the check is off without limits or a sample count
    codes = beat_quality(values, offsets, adc_limits_mv=(float(lo), float(hi)), saturated_samples=1)
    assert _names(codes) == ["saturated"] * 4
    assert not beat_quality(values, offsets, saturated_samples=1).any()
    assert not beat_quality(values, offsets, adc_limits_mv=(float(lo), float(hi))).any()


def test_a_clipped_flat_window_is_saturated_first():
    values, offsets = _ragged([5.115] * 6)
    assert _names(beat_quality(values, offsets, adc_limits_mv=(-5.12, 5.115), saturated_samples=3)) == ["saturated"]
    assert _names(beat_quality(values, offsets, adc_limits_mv=(-5.12, 5.115))) == ["flat"]


def test_empty_and_malformed_offsets():
    assert beat_quality(np.zeros(0, np.float32), np.array([0])).shape == (0,)
    with pytest.raises(ValueError, match="non-empty windows"):
        beat_quality(np.zeros(3, np.float32), np.array([0, 0, 3]))
    with pytest.raises(ValueError):
        beat_quality(np.zeros(3, np.float32), np.array([0, 2]))


def test_select_windows_keeps_the_chosen_rows():
    values, offsets = _ragged([1, 2], [3], [4, 5, 6])
    v, o = select_windows(values, offsets, np.array([False, True, True]))
    assert v.tolist() == [3, 4, 5, 6] and o.tolist() == [0, 1, 4]
    v, o = select_windows(values, offsets, np.zeros(3, bool))
    assert v.size == 0 and o.tolist() == [0]


def test_lead_is_flat():
    assert lead_is_flat(np.zeros(1000)) and lead_is_flat(np.full(10, 2.5)) and lead_is_flat(np.zeros(0))
    assert not lead_is_flat(synthetic_ecg(4)[0])


def test_screen_beats_aligns_reasons_with_every_beat():
    sig, peaks = synthetic_ecg(n_beats=6)
    sig = sig.astype(np.float32)
    sig[peaks[2] - 60: peaks[2] + 60] = 0.0           # beat 2 flattened
    window_keep = np.array([False, True, True, True, True, False])  # beats 0 and 5 dropped by windows
    starts, ends = peaks[window_keep] - 50, peaks[window_keep] + 50
    values, offsets = extract_windows(sig, starts, ends)
    res = screen_beats(window_keep, values, offsets, sig, 360.0, QualitySpec())
    assert res.keep.tolist() == [False, True, False, True, True, False]
    assert _names(res.reason) == ["ok", "ok", "flat", "ok", "ok", "ok"]
    assert res.dropped() == {"flat": 1} and not res.flat_lead
    want_v, want_o = extract_windows(sig, peaks[res.keep] - 50, peaks[res.keep] + 50)
    np.testing.assert_array_equal(res.values, want_v)
    np.testing.assert_array_equal(res.offsets, want_o)


def test_screen_beats_names_a_flat_lead():
    sig = np.zeros(3000, np.float32)
    values, offsets = extract_windows(sig, np.array([100, 900]), np.array([400, 1200]))
    res = screen_beats(np.array([True, True]), values, offsets, sig, 360.0, QualitySpec())
    assert res.flat_lead and res.dropped() == {"flat": 2} and not res.keep.any() and res.values.size == 0


def test_reason_counts_leaves_out_zero_reasons():
    assert reason_counts(np.array([0, 0], np.uint8)) == {}
    assert reason_counts(np.array([1, 3, 3], np.uint8)) == {"saturated": 1, "implausible_amplitude": 2}


def test_quality_spec_params():
    spec = QualitySpec.from_params({"quality": {"flat_mv": 0.1, "max_mv": 12, "saturated_ms": 20}})
    assert spec.to_json() == {"flat_mv": 0.1, "max_mv": 12, "saturated_ms": 20}
    assert spec.saturated_samples(360.0) == 7 and not spec.is_default
    assert QualitySpec.from_params({}).is_default and QualitySpec.from_params({"quality": None}).is_default
    assert QualitySpec(saturated_ms=0.1).saturated_samples(360.0) == 1
    for bad, message in [({"flat_mv": -1}, "flat_mv"), ({"max_mv": "big"}, "max_mv"),
                         ({"saturated_ms": float("nan")}, "saturated_ms"), ({"flat_mv": True}, "flat_mv"),
                         ({"flat_mv": 2, "max_mv": 1}, "must exceed"), ({"flat": 1}, "unknown key")]:
        with pytest.raises(ConfigError, match=message):
            QualitySpec.from_params({"quality": bad})
    with pytest.raises(ConfigError, match="expected a mapping"):
        QualitySpec.from_params({"quality": [1]})
