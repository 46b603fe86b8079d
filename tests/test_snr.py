"""The Challenge 2024 SNR (evaluation.snr) against hand-computed values, and its alignment step."""
import math

import numpy as np
import pytest

from evaluation.snr import align, compute_snr, shift, trim_signal


def test_snr_hand_computed():
    # signal power 1 + 1 + 4 + 0 = 6; error (1 - 2)^2 = 1 and NaN counted as 0 (0 - 0)
    assert compute_snr([1.0, -1.0, 2.0, 0.0], [1.0, -1.0, 1.0, np.nan]) == pytest.approx(10 * math.log10(6.0))
    # a constant error of 0.5 on a 1 mV square wave of 4 samples: 10 log10(4 / 1)
    assert compute_snr([1.0, -1.0, 1.0, -1.0], [1.5, -0.5, 1.5, -0.5]) == pytest.approx(6.0206, abs=1e-4)


def test_snr_nan_and_length_rules():
    # NaN in the label counts as 0; a short output is zero-padded, a long one truncated
    assert compute_snr([1.0, np.nan], [0.0, 5.0]) == pytest.approx(10 * math.log10(1.0 / (1.0 + 25.0)))
    assert compute_snr([1.0, 1.0], [1.0]) == pytest.approx(10 * math.log10(2.0))
    assert compute_snr([1.0, 1.0], [1.0, 1.0, 9.0]) == math.inf
    assert compute_snr([1.0, 1.0], [np.nan, np.nan]) == pytest.approx(0.0)  # nothing recovered: 0 dB
    assert trim_signal(np.array([1.0]), 3).tolist() == [1.0, 0.0, 0.0]


def test_align_finds_shift_and_offset_within_bounds():
    fs = 100.0
    x = np.sin(np.arange(500) / 7.0) + 0.3 * np.sin(np.arange(500) / 2.3)
    late = shift(x, 12) + 0.4
    out, lag, off = align(x, late, fs, max_shift_s=0.5, max_offset_mv=1.0)
    assert lag == -12 and off == pytest.approx(-0.4, abs=1e-9)
    assert compute_snr(x, out) > compute_snr(x, late) + 10
    # a shift beyond the bound (0.05 s = 5 samples) is not found; an offset beyond 1 mV is clipped
    _, lag2, _ = align(x, shift(x, 12), fs, max_shift_s=0.05)
    assert abs(lag2) <= 5
    _, _, off3 = align(x, x + 3.0, fs)
    assert off3 == pytest.approx(-1.0)
