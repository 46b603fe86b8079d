import importlib.util
import io
import os
import sys
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from pipelines.signal.christov import DEFAULT_PARAMS, ChristovParams, detect_r_peaks, refine_peaks
from pipelines.signal.labels import BEAT_SYMBOLS
from pipelines.signal.matching import detection_scores, match_beats
from tests.conftest import require
from tests._wfdb_records import synthetic_ecg

MITDB = os.environ.get("MITDB_DIR")
needs_mitdb = pytest.mark.skipif(not MITDB, reason="MITDB_DIR is not set")
integration = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]


def _check_all_found(peaks, truth, fs, within_ms=10.0):
    assert peaks.dtype == np.int64
    assert np.all(np.diff(peaks) > 0)
    assert peaks.size == truth.size
    assert np.max(np.abs(peaks - truth)) <= within_ms * fs / 1000.0


@pytest.mark.parametrize("fs", [360.0, 250.0, 1000.0])
@pytest.mark.parametrize("rr_s, n_beats", [(0.8, 12), (0.5, 40), (1.3, 15)])
def test_finds_every_beat_of_a_clean_synthetic_ecg(fs, rr_s, n_beats):
    sig, truth = synthetic_ecg(n_beats=n_beats, fs=fs, rr_s=rr_s, seed=int(fs) + n_beats)
    _check_all_found(detect_r_peaks(sig, fs), truth, fs)


@pytest.mark.parametrize("fs", [360.0, 250.0, 1000.0])
def test_negative_qrs_complexes_are_found_at_their_minimum(fs):
    sig, truth = synthetic_ecg(n_beats=20, fs=fs, seed=3)
    _check_all_found(detect_r_peaks(-sig, fs), truth, fs)


def test_baseline_wander_and_noise():
    fs = 360.0
    sig, truth = synthetic_ecg(n_beats=40, fs=fs, rr_s=0.75, seed=5)
    rng = np.random.default_rng(1)
    t = np.arange(sig.size) / fs
    sig = sig + 0.6 * np.sin(2 * np.pi * 0.3 * t) + 0.05 * rng.standard_normal(sig.size)
    _check_all_found(detect_r_peaks(sig, fs), truth, fs)


def _amplitude_step(after_mv, fs=360.0):
    big, truth = synthetic_ecg(n_beats=30, fs=fs, seed=7, amplitude_mv=2.0)
    small, _ = synthetic_ecg(n_beats=30, fs=fs, seed=7, amplitude_mv=after_mv)
    half = big.size // 2
    return np.concatenate([big[:half], small[half:]]), truth


def test_amplitude_changes_are_followed():
    fs = 360.0
    sig, truth = _amplitude_step(1.0)  # QRS slope halves mid-record
    _check_all_found(detect_r_peaks(sig, fs), truth, fs)
    sig, truth = _amplitude_step(0.5)  # ... drops to a quarter: M adapts only at detections
    peaks = detect_r_peaks(sig, fs)
    assert detection_scores(peaks, truth, 18)["fn"] <= 2
    _check_all_found(peaks[-10:], truth[-10:], fs)


def test_p_waves_just_before_the_qrs_are_not_beats():
    """Steep P waves 200 ms before each QRS (record 108's trap): the refractory spacing keeps the QRS."""
    fs = 360.0
    sig, truth = synthetic_ecg(n_beats=30, fs=fs, rr_s=0.9, seed=2)
    t = np.arange(sig.size)
    for r in truth:
        sig = sig + 0.7 * np.exp(-0.5 * ((t - r + 0.2 * fs) / (0.012 * fs)) ** 2)
    _check_all_found(detect_r_peaks(sig, fs), truth, fs)
    without = detect_r_peaks(sig, fs, params=DEFAULT_PARAMS.with_(min_spacing_ms=0.0))
    assert without.size > truth.size  # the rule is what removes them


def test_flutter_like_sine_gives_no_beats():
    fs = 360.0
    t = np.arange(int(20 * fs)) / fs
    flutter = np.sin(2 * np.pi * 4.5 * t)
    assert detect_r_peaks(flutter, fs).size == 0
    assert detect_r_peaks(flutter, fs, params=DEFAULT_PARAMS.with_(vf_max_fraction=1.0)).size > 50


def test_artefact_in_the_first_seconds_does_not_blind_the_detector():
    fs = 360.0
    sig, truth = synthetic_ecg(n_beats=20, fs=fs, seed=4)
    sig = sig.copy()
    sig[100:110] += np.linspace(0, 40.0, 10)  # a 40 mV step artefact inside the first 5 s
    peaks = detect_r_peaks(sig, fs)
    assert detection_scores(peaks, truth, int(0.05 * fs))["tp"] == truth.size


@pytest.mark.parametrize("signal", [np.zeros(0), np.zeros(5000), np.full(5000, 3.3), np.ones(100), np.ones(1)])
def test_empty_flat_or_short_signal_gives_no_peaks(signal):
    out = detect_r_peaks(signal, 360.0)
    assert out.dtype == np.int64 and out.size == 0


def test_very_short_signal_gives_no_peaks():
    sig, _ = synthetic_ecg(n_beats=3, fs=360.0)
    assert detect_r_peaks(sig[:150], 360.0).size == 0  # 0.42 s: shorter than MIN_DURATION_S


def test_nan_input_raises_value_error_naming_the_problem():
    sig, _ = synthetic_ecg(n_beats=5)
    sig[10] = np.nan
    sig[20] = np.inf
    with pytest.raises(ValueError, match="2 NaN or infinite samples"):
        detect_r_peaks(sig, 360.0)


@pytest.mark.parametrize("fs", [0.0, -360.0, float("nan"), "fast"])
def test_bad_sampling_rate_raises(fs):
    with pytest.raises(ValueError, match="sampling rate"):
        detect_r_peaks(np.zeros(1000), fs)


def test_multichannel_input_raises():
    with pytest.raises(ValueError, match="single lead"):
        detect_r_peaks(np.zeros((1000, 2)), 360.0)


def test_deterministic_and_dtype_independent():
    sig, _ = synthetic_ecg(n_beats=30, seed=9)
    a = detect_r_peaks(sig, 360.0)
    assert np.array_equal(a, detect_r_peaks(sig, 360.0))
    assert np.array_equal(a, detect_r_peaks(sig.astype(np.float32), 360.0))


def test_unrefined_output_refines_to_the_default_output():
    """segment refines the raw peaks itself (refine_ms=0 switches the detector's refinement off)."""
    sig, _ = synthetic_ecg(n_beats=25, seed=11)
    raw = detect_r_peaks(sig, 360.0, params=DEFAULT_PARAMS.with_(refine_ms=0.0))
    assert np.array_equal(refine_peaks(sig, raw, 360.0, half_width_ms=DEFAULT_PARAMS.refine_ms),
                          detect_r_peaks(sig, 360.0))


@pytest.mark.parametrize("change", [{"m_fraction": 0.0}, {"buffer": 1}, {"refractory_ms": 1500.0},
                                    {"powerline_hz": -50.0}])
def test_impossible_params_raise(change):
    with pytest.raises(ValueError, match="ChristovParams"):
        DEFAULT_PARAMS.with_(**change)


def test_paper_settings_still_detect_clean_beats():
    sig, truth = synthetic_ecg(n_beats=20, seed=12)
    _check_all_found(detect_r_peaks(sig, 360.0, params=ChristovParams.paper()), truth, 360.0)


# --- refine_peaks -----------------------------------------------------------------------------

def test_refine_moves_to_largest_deviation_from_baseline():
    x = np.full(2000, 0.5)
    x[1000] = 2.5   # +2.0 from the baseline
    x[1010] = -1.0  # -1.5 from the baseline
    x[1500] = -2.0  # a negative complex
    out = refine_peaks(x, [995, 1490], 360.0, half_width_ms=50.0)
    assert out.tolist() == [1000, 1500]
    assert out.dtype == np.int64


def test_refine_merges_duplicates_and_sorts():
    x = np.zeros(1000)
    x[500] = 1.0
    assert refine_peaks(x, [510, 490, 500, 505], 360.0).tolist() == [500]
    x[100] = 1.0
    assert refine_peaks(x, [505, 95], 360.0).tolist() == [100, 500]


def test_refine_half_width_limits_the_search():
    x = np.zeros(1000)
    x[500] = 1.0
    assert refine_peaks(x, [485], 360.0, half_width_ms=50.0).tolist() == [500]  # 18 samples reach 15 away
    assert refine_peaks(x, [485], 360.0, half_width_ms=20.0).tolist() != [500]  # 7 samples do not
    assert refine_peaks(x, [485], 360.0, half_width_ms=0.0).tolist() == [485]


def test_refine_clips_at_the_signal_ends():
    x = np.zeros(300)
    x[0], x[299] = 1.0, -1.0
    assert refine_peaks(x, [3, 296], 360.0).tolist() == [0, 299]


def test_refine_rejects_bad_peaks():
    x = np.zeros(100)
    assert refine_peaks(x, [], 360.0).size == 0
    with pytest.raises(ValueError, match="within"):
        refine_peaks(x, [100], 360.0)
    with pytest.raises(ValueError, match="within"):
        refine_peaks(x, [-1], 360.0)
    with pytest.raises(ValueError, match="whole sample"):
        refine_peaks(x, [1.5], 360.0)
    with pytest.raises(ValueError, match="half_width"):
        refine_peaks(x, [5], 360.0, half_width_ms=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        refine_peaks(np.full(100, np.nan), [5], 360.0)


# --- real records -----------------------------------------------------------------------------

def _record(name):
    from pipelines.records.reader import read_record

    rec = read_record(MITDB, name)
    ref = rec.ann_sample[np.isin(rec.ann_symbol.astype(str), BEAT_SYMBOLS)]
    return rec.signal, float(rec.fs), ref


@integration
@needs_mitdb
@pytest.mark.parametrize("name, min_se, min_ppv", [("100", 0.999, 0.999), ("119", 0.999, 0.998),
                                                   ("203", 0.98, 0.99), ("207", 0.99, 0.95)])
def test_real_records(name, min_se, min_ppv):
    signal, fs, ref = _record(name)
    s = detection_scores(detect_r_peaks(signal, fs), ref, round(0.150 * fs))
    assert s["sensitivity"] >= min_se and s["ppv"] >= min_ppv, s


@integration
@needs_mitdb
@pytest.mark.parametrize("name", ["100", "112"])
def test_agrees_with_biosppy_where_biosppy_works(name):
    """biosppy 2.2.4 christov_segmenter (with the fs + 1e-6 workaround) on the first 2 minutes."""
    require("biosppy")
    from biosppy.signals.ecg import christov_segmenter

    signal, fs, _ = _record(name)
    signal = signal[: int(120 * fs)].astype(np.float64)
    theirs = np.asarray(christov_segmenter(signal=signal, sampling_rate=fs + 1e-6)["rpeaks"], dtype=np.int64)
    theirs = refine_peaks(signal, theirs, fs)
    ours = refine_peaks(signal, detect_r_peaks(signal, fs), fs)
    matched = match_beats(theirs, ours, round(0.150 * fs)) >= 0
    assert theirs.size > 120
    assert matched.mean() >= 0.99
    assert abs(ours.size - theirs.size) <= 0.01 * theirs.size


@integration
@needs_mitdb
def test_benchmark_script_runs_on_one_record():
    spec = importlib.util.spec_from_file_location("bench_detector", REPO / "benchmarks" / "bench_detector.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up there
    try:
        spec.loader.exec_module(bench)
    finally:
        del sys.modules[spec.name]
    out = io.StringIO()
    with redirect_stdout(out):
        assert bench.main(["--records", "100", "--skip-biosppy", "--source", MITDB]) == 0
    text = out.getvalue()
    assert "| 100 | MLII | 2273 | 2273/0/0 100.00 100.00 | 0 |" in text
    assert "s per record" in text
