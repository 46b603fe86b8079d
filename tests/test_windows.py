"""Unit tests of pipelines.signal.windows: bounds computed by hand for each window kind."""
import numpy as np
import pytest

from pipelines.core.errors import ConfigError
from pipelines.signal.windows import (DROP_REASONS, WindowSpec, compute_windows, extract_windows, ms_to_samples,
                               window_offsets)

R = np.array([50, 300, 560, 800, 1100], dtype=np.int64)


def test_ms_to_samples_rounds_with_the_record_rate():
    assert ms_to_samples(55.6, 360.0) == 20          # Jun et al.: 20 samples at 360 Hz
    assert ms_to_samples(55.6, 250.0) == 14          # 13.9 -> 14
    assert ms_to_samples(150.0, 360.0) == 54
    assert ms_to_samples(2.5, 1000.0) == 3           # halves round up
    assert ms_to_samples(0.0, 360.0) == 0


def test_jun_window_bounds_by_hand():
    w = compute_windows(R, 360.0, "jun", n_samples=1200, jun_gap_ms=55.6)
    # gap = 20 samples: start = previous R + 20, end = next R - 20
    assert w.keep.tolist() == [False, True, True, True, False]
    assert w.start[w.keep].tolist() == [50 + 20, 300 + 20, 560 + 20]
    assert w.end[w.keep].tolist() == [560 - 20, 800 - 20, 1100 - 20]
    assert w.dropped() == {"edge": 2}


def test_jun_gap_follows_the_sampling_rate():
    # at 250 Hz, 55.6 ms is 14 samples
    w = compute_windows(R, 250.0, "jun", n_samples=1200, jun_gap_ms=55.6)
    assert w.start[w.keep].tolist() == [64, 314, 574]
    assert w.end[w.keep].tolist() == [546, 786, 1086]


def test_midpoint_window_bounds_by_hand():
    w = compute_windows(R, 360.0, "midpoint", n_samples=1200)
    # start = r - (r - r_prev) // 2, end = r + (r_next - r) // 2
    assert w.start[w.keep].tolist() == [300 - 250 // 2, 560 - 260 // 2, 800 - 240 // 2]
    assert w.end[w.keep].tolist() == [300 + 260 // 2, 560 + 240 // 2, 800 + 300 // 2]
    assert w.dropped() == {"edge": 2}


def test_midpoint_odd_gaps_floor_like_the_recipe():
    w = compute_windows(np.array([0, 7, 20]), 360.0, "midpoint", n_samples=30)
    assert (w.start[1], w.end[1]) == (7 - 3, 7 + 6)


def test_fixed_window_bounds_and_off_record_drops():
    w = compute_windows(R, 360.0, "fixed", n_samples=1200, fixed_before_ms=250.0, fixed_after_ms=400.0)
    # before = 90, after = 144 samples; 50 - 90 < 0 and 1100 + 144 > 1200 run off the record
    assert w.keep.tolist() == [False, True, True, True, False]
    assert w.start[w.keep].tolist() == [210, 470, 710]
    assert w.end[w.keep].tolist() == [444, 704, 944]
    assert w.dropped() == {"off_record": 2}


def test_fixed_keeps_first_and_last_beats_when_inside_the_record():
    w = compute_windows(np.array([100, 500]), 360.0, "fixed", n_samples=700,
                        fixed_before_ms=250.0, fixed_after_ms=400.0)
    assert w.keep.all() and w.dropped() == {}
    # a window ending exactly at the record's end is inside ([start, end) is half-open)
    w = compute_windows(np.array([556]), 360.0, "fixed", n_samples=700, fixed_before_ms=250, fixed_after_ms=400)
    assert w.keep.tolist() == [True] and w.end.tolist() == [700]


def test_too_short_when_neighbours_are_closer_than_the_gap():
    r = np.array([100, 400, 410, 700, 1000])
    w = compute_windows(r, 360.0, "jun", n_samples=1100)
    # beat 400: window [120, 390) does not hold its R-peak; beat 410: [420, 680) neither
    assert w.keep.tolist() == [False, False, False, True, False]
    assert w.dropped() == {"edge": 2, "too_short": 2}
    assert w.reason.tolist() == [1, 2, 2, 0, 1]
    assert DROP_REASONS[w.reason[1] - 1] == "too_short"


def test_dropped_windows_have_zero_bounds():
    w = compute_windows(R, 360.0, "midpoint", n_samples=1200)
    assert w.start[~w.keep].tolist() == [0, 0] and w.end[~w.keep].tolist() == [0, 0]


@pytest.mark.parametrize("kind", ["jun", "midpoint"])
@pytest.mark.parametrize("n", [0, 1, 2])
def test_sequences_too_short_for_any_window(kind, n):
    w = compute_windows(np.arange(n) * 300 + 10, 360.0, kind, n_samples=1000)
    assert not w.keep.any()
    assert sum(w.dropped().values()) == n


def test_bad_sequences_are_rejected():
    with pytest.raises(ValueError, match="strictly increasing"):
        compute_windows(np.array([10, 10, 20]), 360.0, "jun", n_samples=100)
    with pytest.raises(ValueError, match="lie in"):
        compute_windows(np.array([10, 200]), 360.0, "jun", n_samples=100)


def test_window_spec_validation():
    with pytest.raises(ConfigError, match="unknown window"):
        WindowSpec("hann")
    with pytest.raises(ConfigError, match="jun_gap_ms"):
        WindowSpec("jun", jun_gap_ms=-1)
    with pytest.raises(ConfigError, match="fixed_after_ms"):
        WindowSpec("fixed", fixed_after_ms=0)
    spec = WindowSpec.from_params({"window": "midpoint", "jun_gap_ms": 30})
    assert spec == WindowSpec("midpoint", 30, 250.0, 400.0)
    w1 = compute_windows(R, 360.0, WindowSpec("jun", jun_gap_ms=30.0), n_samples=1200)
    w2 = compute_windows(R, 360.0, "jun", n_samples=1200, jun_gap_ms=30.0)
    np.testing.assert_array_equal(w1.start, w2.start)


def test_extract_windows_matches_slicing():
    rng = np.random.default_rng(1)
    signal = rng.standard_normal(5000).astype(np.float32)
    r = np.sort(rng.choice(np.arange(10, 4990), 40, replace=False))
    w = compute_windows(r, 360.0, "midpoint", n_samples=signal.size)
    start, end = w.start[w.keep], w.end[w.keep]
    values, offsets = extract_windows(signal, start, end)
    assert values.dtype == np.float32 and offsets[-1] == values.size
    expected = [signal[s:e] for s, e in zip(start, end)]
    got = np.split(values, offsets[1:-1])
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_extract_windows_edge_cases():
    values, offsets = extract_windows(np.arange(5.0), np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    assert values.size == 0 and offsets.tolist() == [0]
    values, offsets = extract_windows(np.arange(5.0), np.array([0, 2]), np.array([5, 2]))
    assert values.tolist() == [0, 1, 2, 3, 4] and offsets.tolist() == [0, 5, 5]
    with pytest.raises(ValueError, match="lie in"):
        extract_windows(np.arange(5.0), np.array([3]), np.array([6]))
    with pytest.raises(ValueError, match="before start"):
        window_offsets(np.array([3]), np.array([2]))
