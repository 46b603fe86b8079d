"""pipelines.signal.rhythm: RR columns and rhythm features."""
from __future__ import annotations

import numpy as np
import pytest

from pipelines import RHYTHM_FEATURES, RR_COLUMNS, DataError, rhythm_columns, rhythm_features, rr_intervals


def test_rr_columns_by_hand_two_records():
    r = np.array([100, 460, 820, 50, 410])           # record a: 1 s rhythm; record b: 2 beats
    rec = np.array(["a", "a", "a", "b", "b"])
    rr = rr_intervals(r, rec, 360.0)
    np.testing.assert_allclose(rr["rr_pre_ms"], [np.nan, 1000, 1000, np.nan, 1000])
    np.testing.assert_allclose(rr["rr_post_ms"], [1000, 1000, np.nan, 1000, np.nan])
    np.testing.assert_allclose(rr["rr_local_ms"], [np.nan, np.nan, 1000, np.nan, np.nan])
    np.testing.assert_allclose(rr["rr_record_ms"], [1000, 1000, 1000, 1000, 1000])


def test_local_mean_is_causal_and_limited_to_ten_intervals():
    rr_samples = np.r_[np.full(12, 360), 180, np.full(3, 720)]
    r = np.concatenate([[0], np.cumsum(rr_samples)])
    rr = rr_intervals(r, np.zeros(r.size, int), 360.0)
    # beat 13 follows the short interval: its local mean is the ten 1 s intervals before it
    assert rr["rr_pre_ms"][13] == pytest.approx(500.0)
    assert rr["rr_local_ms"][13] == pytest.approx(1000.0)
    # beat 14: intervals 4..13 -> nine of 1000 ms and one of 500 ms
    assert rr["rr_local_ms"][14] == pytest.approx((9 * 1000 + 500) / 10)
    # a future beat never changes a past value
    cut = rr_intervals(r[:14], np.zeros(14, int), 360.0)
    np.testing.assert_array_equal(cut["rr_local_ms"], rr["rr_local_ms"][:14])


def test_per_beat_sampling_rate():
    rr = rr_intervals(np.array([0, 250, 0, 360]), np.array([1, 1, 2, 2]), np.array([250.0, 250.0, 360.0, 360.0]))
    np.testing.assert_allclose(rr["rr_pre_ms"], [np.nan, 1000, np.nan, 1000])


def test_bad_sequences_name_the_record():
    with pytest.raises(DataError, match="^r7: R-peaks are not strictly increasing"):
        rr_intervals(np.array([10, 10]), np.array(["r7", "r7"]), 360.0)
    with pytest.raises(DataError, match="not contiguous"):
        rr_intervals(np.array([1, 2, 3]), np.array(["a", "b", "a"]), 360.0)


def test_features_are_log_ratios_with_missing_indicator():
    f = rhythm_features(np.array([500.0, np.nan]), np.array([1000.0, 800.0]), np.array([1000.0, np.nan]),
                        np.array([1000.0, 800.0]))
    assert f.dtype == np.float32 and f.shape == (2, len(RHYTHM_FEATURES))
    np.testing.assert_allclose(f[0], [np.log(0.5), 0, np.log(0.5), 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(f[1], [0, 0, 0, 0, 0, 1])   # missing terms are 0, flagged
    assert np.isfinite(f).all()


def test_rhythm_columns_names_missing_columns():
    with pytest.raises(KeyError, match="rr_local_ms"):
        rhythm_columns({"rr_pre_ms": [1.0], "rr_post_ms": [1.0], "rr_record_ms": [1.0]})
    table = {c: np.array([1000.0]) for c in RR_COLUMNS}
    np.testing.assert_array_equal(rhythm_columns(table), np.zeros((1, 6), np.float32))


def test_empty_input():
    rr = rr_intervals(np.array([], int), np.array([], object), 360.0)
    assert all(v.size == 0 for v in rr.values())
