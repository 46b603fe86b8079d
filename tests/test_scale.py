"""pipelines.imaging.scale: images at fixed time (ms per pixel) and amplitude (mV or record units) scales."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pipelines.core.errors import ConfigError, DataError
from pipelines.imaging.raster import render_beats
from pipelines.imaging.scale import (ImageScale, amplitude_axis, beat_medians, record_amplitude, render_beats_scaled,
                                     time_axis)
from tests._wfdb_records import synthetic_ecg
from tests.test_raster import reference_render

FS = 360.0


def _pack(beats):
    beats = [np.asarray(b, dtype=np.float32) for b in beats]
    return np.concatenate(beats), np.r_[0, np.cumsum([b.size for b in beats])].astype(np.int64)


def _beat(seconds, r_frac=0.5, qrs_mv=1.2, baseline=0.0, fs=FS):
    """A clean beat window of ``seconds``: a Gaussian QRS at ``r_frac`` of it and a T wave; returns (beat, r)."""
    n = int(round(seconds * fs))
    r = int(r_frac * (n - 1))
    t = np.arange(n)
    beat = baseline + qrs_mv * np.exp(-0.5 * ((t - r) / (0.012 * fs)) ** 2)
    beat += 0.25 * np.exp(-0.5 * ((t - r - 0.25 * fs) / (0.04 * fs)) ** 2)
    return beat, r


def _ecg_beats(n=16, seed=0):
    """jun-like windows [R_prev + 20, R_next - 20) of a synthetic ECG, and each R's index in its window."""
    sig, peaks = synthetic_ecg(n_beats=n + 2, seed=seed, rr_s=0.75)
    beats = [sig[peaks[i - 1] + 20:peaks[i + 1] - 20] for i in range(1, n + 1)]
    return beats, np.array([peaks[i] - peaks[i - 1] - 20 for i in range(1, n + 1)])


def _inked_cols(img):
    return np.flatnonzero((img < 255).any(axis=0))


def _inked_rows(img, level=255):
    return np.flatnonzero((img < level).any(axis=1))


# --- the recipe stays byte-identical --------------------------------------------------------------------------------

@pytest.mark.parametrize("size, margin, width", [(128, 0.05, 1.5), (64, 0.0, 1.0), (96, 0.1, 2.5), (32, 0.02, 0.5)])
def test_default_scale_is_byte_identical_to_render_beats(size, margin, width):
    rng = np.random.default_rng(1)
    beats = _ecg_beats()[0] + [rng.normal(size=k) for k in (2, 3, 60, 117, 2500)] + [np.zeros(40), [1.0, -1.0]]
    values, offsets = _pack(beats)
    expected = render_beats(values, offsets, size=size, margin=margin, line_width=width)
    got = render_beats_scaled(values, offsets, size=size, margin=margin, line_width=width)
    assert np.array_equal(got, expected)
    # r_index / fs / amp are ignored by the recipe's scales
    r = np.zeros(len(beats), np.int64)
    assert np.array_equal(render_beats_scaled(values, offsets, r_index=r, fs=FS, size=size, margin=margin,
                                              line_width=width), expected)


# --- fixed time -----------------------------------------------------------------------------------------------------

def test_premature_beat_is_narrower_at_fixed_time_and_alike_when_stretched():
    normal, r_n = _beat(1.4)
    premature, r_p = _beat(0.98)
    values, offsets = _pack([normal, premature])
    r_index = np.array([r_n, r_p])
    stretched = render_beats_scaled(values, offsets)
    assert _inked_cols(stretched[0]).tolist() == _inked_cols(stretched[1]).tolist() == list(range(6, 122))
    spec = ImageScale(time="fixed", ms_per_px=12.0, r_column=0.5)
    fixed = render_beats_scaled(values, offsets, scale=spec, r_index=r_index, fs=FS)
    widths = [_inked_cols(img).size for img in fixed]
    # (L - 1) samples at 1000 / (360 * 12) px each: 116.4 and 81.4 px, plus the end columns
    assert widths in ([117, 82], [118, 82], [117, 83], [118, 83])
    assert widths[1] / widths[0] == pytest.approx(0.98 / 1.4, abs=0.02)
    # both start and end around the R-peak's column 64, blank image sides
    for img, beat, r in zip(fixed, (normal, premature), r_index):
        cols = _inked_cols(img)
        x_first = 64 - r * 1000 / (FS * 12)
        x_last = x_first + (len(beat) - 1) * 1000 / (FS * 12)
        assert cols[0] == math.floor(x_first) and cols[-1] == math.ceil(x_last) - 1


@pytest.mark.parametrize("r_column, ms_per_px", [(0.5, 12.0), (0.3, 5.0), (0.75, 8.0)])
def test_r_peak_sits_at_the_fixed_column(r_column, ms_per_px):
    beats, rs = zip(*(_beat(s, r_frac=f) for s, f in ((1.2, 0.5), (0.7, 0.3), (1.6, 0.7), (0.9, 0.45))))
    spec = ImageScale(time="fixed", ms_per_px=ms_per_px, r_column=r_column, amplitude="fixed")
    images = render_beats_scaled(*_pack(beats), scale=spec, r_index=np.array(rs), fs=FS)
    for img in images:
        top = _inked_rows(img, 128)[0]  # the R-peak is the highest point
        assert np.flatnonzero(img[top] < 128).mean() == pytest.approx(r_column * 128, abs=1.0)


def test_windows_longer_than_the_image_are_cut_at_its_sides():
    long_beat, r = _beat(3.0, r_frac=0.4)  # 3 s at 12 ms/px: 250 px, far wider than the image
    spec = ImageScale(time="fixed", ms_per_px=12.0, r_column=0.5)
    img = render_beats_scaled(*_pack([long_beat]), scale=spec, r_index=np.array([r]), fs=FS)[0]
    assert _inked_cols(img).tolist() == list(range(128))  # every column, none skipped
    # the drawn part is the window's samples within +-64 px of R: the same pixels as a window cut there
    px = 1000 / (FS * 12)
    a, b = math.floor(r - 64 / px) - 1, math.ceil(r + 64 / px) + 2
    cut = render_beats_scaled(*_pack([long_beat[a:b]]), scale=spec, r_index=np.array([r - a]), fs=FS)[0]
    assert np.abs(img.astype(int) - cut).max() <= 1


@pytest.mark.parametrize("spec, size", [
    (ImageScale(time="fixed", ms_per_px=12.0), 128),
    (ImageScale(time="fixed", ms_per_px=3.0, r_column=0.2), 64),     # long windows cut on both sides
    (ImageScale(time="fixed", ms_per_px=20.0, r_column=0.9), 96),    # narrow beats near the right edge
])
def test_fixed_time_matches_pixel_by_pixel_reference(spec, size):
    beats, rs = _ecg_beats(8)
    beats += [np.random.default_rng(2).normal(size=k) for k in (2, 3, 9, 700)]
    rs = np.r_[rs, 0, 2, 4, 350]
    images = render_beats_scaled(*_pack(beats), scale=spec, r_index=rs, fs=FS, size=size, margin=0.05)
    left, right = time_axis(spec, np.array([len(b) for b in beats]), size=size, margin=0.05, r_index=rs, fs=FS)
    for i, beat in enumerate(beats):
        expected = reference_render(np.asarray(beat, np.float32), size, (left[i], right[i]), 1.5,
                                    box=(0.05 * size, 0.95 * size))
        assert np.abs(images[i].astype(int) - expected).max() <= 1, f"beat {i}"


def test_per_beat_sampling_rates():
    beat_360, r = _beat(1.0, fs=360.0)
    beat_250, r_250 = _beat(1.0, fs=250.0)
    spec = ImageScale(time="fixed", ms_per_px=10.0)
    images = render_beats_scaled(*_pack([beat_360, beat_250]), scale=spec, r_index=np.array([r, r_250]),
                                 fs=np.array([360.0, 250.0]))
    assert _inked_cols(images[0]).tolist() == _inked_cols(images[1]).tolist()  # same duration, same width


# --- fixed and record amplitude -------------------------------------------------------------------------------------

def _height_above_baseline(img, spec, margin=0.05, size=128):
    """Rows from the baseline (median 0 mV) to the top of the ink."""
    top, bottom = margin * size, (1 - margin) * size
    low, high = spec.mv_range
    baseline_row = top + high * (bottom - top) / (high - low)
    return baseline_row - (_inked_rows(img, 128)[0] + 0.75)  # the ink's top row, less half the line width


def test_twice_the_amplitude_is_twice_as_tall_at_fixed_amplitude():
    small, r = _beat(1.0, qrs_mv=0.8)
    big = small * 2  # baseline (median) stays 0
    values, offsets = _pack([small, big])
    spec = ImageScale(amplitude="fixed", mv_range=(-1.0, 2.0))
    images = render_beats_scaled(values, offsets, scale=spec)
    h_small, h_big = (_height_above_baseline(img, spec) for img in images)
    px_per_mv = 0.9 * 128 / 3.0
    assert h_small == pytest.approx(0.8 * px_per_mv, abs=1.0) and h_big == pytest.approx(1.6 * px_per_mv, abs=1.0)
    assert h_big / h_small == pytest.approx(2.0, rel=0.05)
    assert np.array_equal(*render_beats_scaled(values, offsets))  # the recipe: the same image


def test_fixed_amplitude_is_measured_from_each_beats_median():
    beat, _ = _beat(1.0)
    shifted = beat + 0.7  # baseline wander
    values, offsets = _pack([beat, shifted])
    centred = render_beats_scaled(values, offsets, scale=ImageScale(amplitude="fixed"))
    assert np.abs(centred[0].astype(int) - centred[1]).max() <= 1
    absolute = render_beats_scaled(values, offsets, scale=ImageScale(amplitude="fixed", center=False))
    shift = _inked_rows(absolute[0], 128)[0] - _inked_rows(absolute[1], 128)[0]
    assert shift == pytest.approx(0.7 * 0.9 * 128 / 4.0, abs=1.0)  # 0.7 mV higher, at 28.8 px per mV


def test_amplitude_beyond_the_range_is_cut_at_the_image_edges():
    beat, r = _beat(1.0, qrs_mv=6.0)  # far above the 2.5 mV top of the range
    spec = ImageScale(amplitude="fixed")
    img = render_beats_scaled(*_pack([beat, -beat]), scale=spec)
    up, down = img
    assert (up[0] == 0).any() and (down[-1] == 0).any()  # the QRS runs off the top (bottom) edge
    # columns whose trace lies wholly above the image stay blank: a few around the R-peak's column
    # (the negated beat's gap is wider: 49.6 px below the baseline row 78.4, 78.4 px above it)
    gaps = [np.setdiff1d(np.arange(6, 122), _inked_cols(img)) for img in (up, down)]
    for gap, edge_row in zip(gaps, (up[0], down[-1])):
        assert 0 < gap.size <= 4 and gap.tolist() == list(range(gap[0], gap[-1] + 1)) and abs(gap.mean() - 64) < 1
        assert edge_row[gap[0] - 1] < 255 and edge_row[gap[-1] + 1] < 255  # strokes run into the edge beside them
    assert gaps[0].size < gaps[1].size
    # baseline row: median 0 mV at 0.05 * 128 + 2.5 * 28.8 = 78.4
    assert (up[77:80, 10] < 255).any() and (up[:70, 10] == 255).all()


@pytest.mark.parametrize("spec, size", [
    (ImageScale(amplitude="fixed", mv_range=(-0.5, 0.8)), 128),                       # clipped QRS
    (ImageScale(time="fixed", ms_per_px=6.0, amplitude="fixed", center=False), 64),
    (ImageScale(time="fixed", ms_per_px=9.0, amplitude="record", rel_range=(-0.8, 0.9)), 96),
])
def test_fixed_amplitude_matches_pixel_by_pixel_reference(spec, size):
    beats, rs = _ecg_beats(8)
    beats += [np.zeros(30), np.linspace(-3, 3, 400)]
    rs = np.r_[rs, 15, 200]
    values, offsets = _pack(beats)
    amp = np.full(len(beats), 0.9)
    images = render_beats_scaled(values, offsets, scale=spec, r_index=rs, fs=FS, amp=amp, size=size)
    left, right = time_axis(spec, np.diff(offsets), size=size, margin=0.05, r_index=rs, fs=FS)
    top, bottom = 0.05 * size, 0.95 * size
    low, high = spec.rel_range if spec.amplitude == "record" else spec.mv_range
    unit = 0.9 if spec.amplitude == "record" else 1.0
    for i, beat in enumerate(beats):
        beat = np.asarray(beat, np.float32)
        m = float(np.median(beat)) if spec.center or spec.amplitude == "record" else 0.0

        def y_of(v):
            return top + (high - (v - m) / unit) * (bottom - top) / (high - low)

        expected = reference_render(beat, size, (left[i], right[i]), 1.5, y_of=y_of)
        assert np.abs(images[i].astype(int) - expected).max() <= 1, f"beat {i}"


def test_record_amplitude_makes_records_of_any_gain_look_alike():
    beats, rs = _ecg_beats(6)
    record = np.array(["a"] * 6 + ["b"] * 6)
    values, offsets = _pack(beats + [b * 2.0 for b in beats])  # record b: the same heart at twice the gain
    r_index = np.r_[rs, rs]
    amp = record_amplitude(record, values, offsets, r_index)
    assert np.allclose(amp[6:], 2 * amp[:6]) and len(np.unique(amp[:6])) == 1
    spec = ImageScale(time="fixed", amplitude="record")
    images = render_beats_scaled(values, offsets, scale=spec, r_index=r_index, fs=FS, amp=amp)
    assert np.array_equal(images[:6], images[6:])
    fixed = render_beats_scaled(values, offsets, scale=ImageScale(time="fixed", amplitude="fixed"), r_index=r_index,
                                fs=FS)
    assert not np.array_equal(fixed[:6], fixed[6:])
    # the record's R amplitude (1 unit above the median) lands at rel 1.0: row top + (1.5 - 1) * H / 2.5
    r_row = 6.4 + 0.5 * 115.2 / 2.5
    for img in images:
        assert abs(_inked_rows(img, 128)[0] + 0.75 - r_row) <= 1.0


def test_record_amplitude_is_the_median_over_the_records_beats():
    rng = np.random.default_rng(4)
    beats = [rng.normal(size=int(k)) for k in rng.integers(5, 60, 40)]
    r_index = np.array([rng.integers(0, len(b)) for b in beats])
    record = rng.choice(np.array(["100", "101", "207"]), size=40)
    values, offsets = _pack(beats)
    amp = record_amplitude(record, values, offsets, r_index)
    peak = np.array([abs(np.float32(b[r]) - np.median(np.float32(b))) for b, r in zip(beats, r_index)])
    for name in np.unique(record):
        assert np.allclose(amp[record == name], np.median(peak[record == name]))
    perm = rng.permutation(40)  # independent of the beats' order
    values_p, offsets_p = _pack([beats[i] for i in perm])
    assert np.array_equal(record_amplitude(record[perm], values_p, offsets_p, r_index[perm]), amp[perm])


def test_beat_medians():
    beats = [[3.0, 1.0, 2.0], [5.0, 4.0], np.arange(101.0)]
    assert beat_medians(*_pack(beats)).tolist() == [2.0, 4.5, 50.0]


def test_amplitude_axis_formula():
    spec = ImageScale(amplitude="record", rel_range=(-1.0, 1.0))
    y0, gain = amplitude_axis(spec, np.array([0.2, 0.0]), size=100, margin=0.0, amp=np.array([1.0, 2.0]))
    # y = top + (hi - (v - m) / u) * H / (hi - lo): v = m -> row 50, v = m + u -> row 0
    for b, u, y, g in zip((0.2, 0.0), (1.0, 2.0), y0, gain):
        assert y - b * g == pytest.approx(50.0) and y - (b + u) * g == pytest.approx(0.0, abs=1e-5)


# --- determinism and batches ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", [ImageScale(time="fixed"), ImageScale(amplitude="fixed"),
                                  ImageScale(time="fixed", amplitude="record")])
def test_deterministic_batch_independent_and_dtype_free(spec):
    beats, rs = _ecg_beats(10)
    values, offsets = _pack(beats)
    amp = np.full(len(beats), 1.1)
    kwargs = dict(scale=spec, r_index=rs, fs=FS, amp=amp)
    whole = render_beats_scaled(values, offsets, **kwargs)
    assert np.array_equal(whole, render_beats_scaled(values, offsets, **kwargs))
    one_by_one = np.stack([render_beats_scaled(values, offsets[i:i + 2], scale=spec, r_index=rs[i:i + 1], fs=FS,
                                               amp=amp[i:i + 1])[0] for i in range(len(beats))])
    assert np.array_equal(whole, one_by_one)
    assert np.array_equal(whole, render_beats_scaled(values.astype(np.float64), offsets.astype(np.int32), scale=spec,
                                                     r_index=rs.astype(np.int32), fs=np.full(len(beats), FS),
                                                     amp=amp.astype(np.float32)))


def test_empty_batch():
    spec = ImageScale(time="fixed", amplitude="record")
    out = render_beats_scaled(np.zeros(0, np.float32), np.array([0]), scale=spec, r_index=np.zeros(0, np.int64),
                              fs=FS, amp=np.zeros(0))
    assert out.shape == (0, 128, 128)


# --- validation -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"time": "elastic"}, "render.scale.time"),
    ({"amplitude": "peak"}, "render.scale.amplitude"),
    ({"ms_per_px": 0}, "ms_per_px"), ({"ms_per_px": float("inf")}, "ms_per_px"), ({"ms_per_px": True}, "ms_per_px"),
    ({"r_column": 1.5}, "r_column"), ({"r_column": -0.1}, "r_column"),
    ({"mv_range": (2.0, 1.0)}, "mv_range"), ({"mv_range": (1.0,)}, "mv_range"), ({"rel_range": (0, float("nan"))},
                                                                                  "rel_range"),
    ({"center": "yes"}, "center"),
])
def test_bad_scales_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ImageScale(**kwargs)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"scale": ImageScale(time="fixed"), "fs": FS}, DataError, "r_index: is required"),
    ({"scale": ImageScale(time="fixed"), "r_index": np.array([5, 5])}, DataError, "fs: is required"),
    ({"scale": ImageScale(time="fixed"), "r_index": np.array([5, 5, 5]), "fs": FS}, DataError, "2 integers"),
    ({"scale": ImageScale(time="fixed"), "r_index": np.array([5.0, 5.0]), "fs": FS}, DataError, "integers"),
    ({"scale": ImageScale(time="fixed"), "r_index": np.array([5, 10]), "fs": FS}, DataError,
     "beat 1: R index 10 lies outside its 10 samples"),
    ({"scale": ImageScale(time="fixed"), "r_index": np.array([5, -1]), "fs": FS}, DataError, "beat 1: R index -1"),
    ({"scale": ImageScale(time="fixed"), "r_index": np.array([5, 5]), "fs": np.array([360.0, 0.0])}, DataError,
     "beat 1: fs must be positive"),
    ({"scale": ImageScale(time="fixed"), "r_index": np.array([5, 5]), "fs": np.array([360.0])}, DataError, "fs: must"),
    ({"scale": ImageScale(time="fixed"), "r_index": np.array([5, 5]), "fs": np.array([360.0, 1e-300])}, DataError,
     "beat 1: its samples span x = .* beyond the kernel's range"),
    ({"scale": ImageScale(amplitude="record")}, DataError, "amp: is required"),
    ({"scale": ImageScale(amplitude="record"), "amp": np.array([1.0, 1e-300])}, DataError, "beat 1: .* overflows"),
    ({"scale": ImageScale(amplitude="record"), "amp": np.array([1.0, np.nan])}, DataError, "beat 1: amp"),
    ({"scale": "fixed"}, ConfigError, "ImageScale"),
    ({"margin": 0.5}, ConfigError, "margin"),
    ({"line_width": 0}, ConfigError, "line_width"),
    ({"size": 1}, ConfigError, "size"),
])
def test_bad_inputs(kwargs, error, match):
    values, offsets = _pack([np.zeros(10), np.ones(10)])
    with pytest.raises(error, match=match):
        render_beats_scaled(values, offsets, **kwargs)


def test_bad_beats_are_data_errors():
    with pytest.raises(DataError, match="beat 0: has 1 sample"):
        render_beats_scaled(np.zeros(3, np.float32), np.array([0, 1, 3]), scale=ImageScale(amplitude="fixed"))


def test_record_amplitude_errors():
    values, offsets = _pack([np.zeros(10), np.r_[np.zeros(5), 1.0, np.zeros(4)]])
    with pytest.raises(DataError, match="record a: .* is 0"):
        record_amplitude(np.array(["a", "b"]), values, offsets, np.array([5, 5]))
    with pytest.raises(DataError, match="record: must hold one entry per beat"):
        record_amplitude(np.array(["a"]), values, offsets, np.array([5, 5]))
    with pytest.raises(DataError, match="R index 12"):
        record_amplitude(np.array(["a", "b"]), values, offsets, np.array([5, 12]))
