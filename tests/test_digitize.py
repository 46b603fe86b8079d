"""The classical digitiser (pipelines.digitizer) on strips drawn by pipelines.printout: round trips
on known shapes with exact sample positions, rotated and noisy pages, and bad input as failures."""
import cv2
import numpy as np
import pytest

from evaluation.snr import compute_snr
from pipelines.digitizer.grid import grid_pitch, masks, skew_degrees
from pipelines.digitizer.strip import FAILURES, DigitizeConfig, digitize_strip
from pipelines.formats.paper import encode_strip
from pipelines.printout.distort import apply_distortions, plan_distortions, strip_rng
from pipelines.printout.grid import page_geometry
from pipelines.printout.strip import draw_strip, plot_signals

FS = 360.0
N = 3600  # 10 s


def page(signals, spec=None, seconds=10.0, sid="t-0"):
    """(PNG bytes, plotted values) of a strip of ``signals`` (n_leads, n) mV, optionally distorted."""
    sig = np.asarray(signals, dtype=np.float32)
    g = page_geometry(seconds=seconds, n_leads=sig.shape[0])
    plotted = plot_signals(sig, FS, g)
    img = draw_strip(plotted, [f"L{k}" for k in range(sig.shape[0])], g)
    if spec:
        plan = plan_distortions(spec, strip_rng(0, "test", sid), img.shape[:2], g.px_per_mm)
        img, _, _ = apply_distortions(img, plotted.x, plotted.y, plan)
    return encode_strip(img), plotted.signal


@pytest.fixture(scope="module")
def real_sig(mitdb_dir):
    """Record 100, 10 s from 10 s, median-removed (as the paper stage plots it)."""
    import wfdb
    rec = wfdb.rdrecord(str(mitdb_dir / "100"), sampfrom=3600, sampto=7200)
    sig = rec.p_signal.T
    return sig - np.median(sig, axis=1, keepdims=True)


def test_sine_round_trip():
    t = np.arange(N) / FS
    sig = np.stack([0.8 * np.sin(2 * np.pi * 1.0 * t), 0.5 * np.sin(2 * np.pi * 0.5 * t + 1.0)])
    png, truth = page(sig)
    r = digitize_strip(png, 2, FS)
    assert r.status == "ok", r.detail
    assert abs(r.info["px_per_mm_x"] - 200 / 25.4) < 0.005 and abs(r.info["px_per_mm_y"] - 200 / 25.4) < 0.01
    for k in range(2):
        assert len(r.signals[k]) == N and np.isfinite(r.signals[k]).all()
        assert np.max(np.abs(r.signals[k] - truth[k])) < 0.03          # < 1/3 mm anywhere
        assert compute_snr(truth[k], r.signals[k]) > 30
    # the sine's crests fall on the exact samples: 0.25 s + k s (lead 0)
    crest = np.argmax(r.signals[0][:360])
    assert abs(int(crest) - 90) <= 2


def test_square_pulse_edges_at_exact_samples():
    sig = np.zeros((1, N))
    sig[0, 1000:1500] = 1.0
    png, truth = page(sig)
    r = digitize_strip(png, 1, FS)
    assert r.status == "ok", r.detail
    high = np.nonzero(r.signals[0] > 0.5)[0]
    # rising edge on its exact sample; the falling one within one sample (a vertical stroke's
    # position is known to a column: 0.55 sample at 360 Hz)
    assert high[0] == 1000 and 1498 <= high[-1] <= 1499
    assert np.abs(r.signals[0][1010:1490] - 1.0).max() < 0.02
    assert np.abs(r.signals[0][:990]).max() < 0.02


def test_real_beat_round_trip(real_sig):
    sig = real_sig
    png, truth = page(sig)
    r = digitize_strip(png, 2, FS)
    assert r.status == "ok", r.detail
    for k in range(2):
        assert compute_snr(truth[k], r.signals[k]) > 15
    # R peaks at the same samples (within one sample)
    from pipelines import detect_r_peaks
    ref = detect_r_peaks(truth[0], FS)
    got = detect_r_peaks(np.nan_to_num(r.signals[0]), FS)
    assert len(ref) == len(got) and np.abs(ref - got).max() <= 1


@pytest.mark.parametrize("spec, min_snr", [({"rotate": {"max_degrees": 3.0}}, 10.0),
                                           ({"noise": {"sigma": 8.0}}, 12.0),
                                           ({"lighting": {"strength": 0.4}}, 12.0)])
def test_distorted_pages(spec, min_snr, real_sig):
    sig = real_sig
    png, truth = page(sig, spec)
    r = digitize_strip(png, 2, FS)
    assert r.status == "ok", r.detail
    assert np.mean([compute_snr(truth[k], r.signals[k]) for k in range(2)]) > min_snr


def test_skew_is_measured_from_the_grid():
    g = page_geometry(seconds=10, n_leads=2)
    from pipelines.printout.grid import grid_template
    img = np.array(grid_template(g))
    m = cv2.getRotationMatrix2D(((g.width - 1) / 2, (g.height - 1) / 2), 1.7, 1.0)
    rot = cv2.warpAffine(img, m, (g.width, g.height), borderValue=(255, 255, 255))
    assert skew_degrees(masks(rot)[1]) == pytest.approx(1.7, abs=0.02)
    assert abs(skew_degrees(masks(img)[1])) < 0.02
    assert grid_pitch(masks(img)[1], axis=1).pitch == pytest.approx(g.px_per_mm, abs=0.002)


def _png(img):
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def test_bad_input_fails_with_a_reason(real_sig):
    sig = real_sig
    png, _ = page(sig)
    assert digitize_strip(b"not a png", 2, FS).status == "not_png"
    assert digitize_strip(_png(np.full((551, 2087, 3), 255, np.uint8)), 2, FS).status == "blank"
    assert digitize_strip(_png(np.full((551, 2087), 128, np.uint8)), 2, FS).status == "bad_mode"   # grey
    rgba = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert digitize_strip(_png(cv2.cvtColor(rgba, cv2.COLOR_BGR2BGRA)), 2, FS).status == "bad_mode"
    assert digitize_strip(_png(rgba[:20, :20]), 2, FS).status == "bad_size"
    # traces without any grid: black lines on white
    g = page_geometry(seconds=10, n_leads=2)
    plotted = plot_signals(sig.astype(np.float32), FS, g)
    no_grid = draw_strip(plotted, ["a", "b"], g, grid_colour="#ffffff")
    r = digitize_strip(encode_strip(no_grid), 2, FS)
    assert r.status == "no_grid" and "grid" in r.detail
    # one lead of the two missing: its row erased to the empty grid
    from pipelines.printout.grid import grid_template
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1].copy()
    img[276:] = np.array(grid_template(g))[276:]
    r = digitize_strip(encode_strip(img), 2, FS)
    assert r.status == "lead_missing" and r.signals == []
    assert set(FAILURES) >= {"not_png", "bad_mode", "bad_size", "blank", "no_grid", "lead_missing"}


def test_deterministic(real_sig):
    png, _ = page(real_sig, {"noise": {"sigma": 8.0}})
    a, b = digitize_strip(png, 2, FS), digitize_strip(png, 2, FS)
    assert all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a.signals, b.signals))


def test_measured_length_without_seconds(real_sig):
    png, truth = page(real_sig)
    r = digitize_strip(png, 2, FS, DigitizeConfig(seconds=None))
    assert r.status == "ok" and abs(len(r.signals[0]) - N) <= 2   # measured: +-2 samples (docs/digitize.md)


def test_a_lead_that_runs_onto_its_neighbour_is_followed_again():
    # lead 0's two deep S waves (2.95 mV, 60 ms down and 60 ms up) touch lead 1's trace 3 mV below:
    # the follower, at the touch, stayed on lead 1's ink (lead 1 read at -22 dB before the mend)
    t = np.arange(N) / FS
    lead0 = np.zeros(N)
    for c in (700, 1900):
        lead0[c - 22:c] = np.linspace(0.0, -2.95, 22)
        lead0[c:c + 22] = np.linspace(-2.95, 0.0, 22)
    png, truth = page(np.stack([lead0, 0.3 * np.sin(2 * np.pi * 1.3 * t)]))
    r = digitize_strip(png, 2, FS)
    assert r.status == "ok", r.detail
    assert r.info["untangled"] >= 1
    assert compute_snr(truth[0], r.signals[0]) > 25 and compute_snr(truth[1], r.signals[1]) > 25


def test_a_lead_clipped_at_the_page_edge_starts_on_its_own_ink():
    # lead 1 starts at -3.5 mV, clipped to the page's bottom edge, then stays 1.3 mV up: its row (the
    # ink's densest) is nearer lead 0's first ink than its own; it was followed from lead 0's trace
    # (223-162000 V1 read at -10 dB before the mend)
    t = np.arange(N) / FS
    lead1 = np.clip(-3.5 + 4.8 * (t - 3.5) / 0.5, -3.5, 1.3) + np.where(t > 4.0, 0.2 * np.sin(2 * np.pi * 1.1 * t), 0)
    png, truth = page(np.stack([0.4 * np.sin(2 * np.pi * 0.9 * t), lead1]))
    r = digitize_strip(png, 2, FS)
    assert r.status == "ok", r.detail
    assert compute_snr(truth[0], r.signals[0]) > 25 and compute_snr(truth[1], r.signals[1]) > 25


def test_steep_strokes_are_read_across_rows():
    # spikes of 2 mV up in 28 ms and down in 28 ms: each stroke rises 29 px per column, so the samples
    # on it come from the rows' sub-pixel centres (calibrate.stroke_points): 23.6 dB, where the
    # columns' two points per stroke alone gave 21.6 dB
    from pipelines.digitizer.calibrate import stroke_points
    sig = np.zeros(N)
    for c in range(300, N - 300, 400):
        sig[c - 10:c + 1] = np.linspace(0.0, 2.0, 11)
        sig[c:c + 11] = np.linspace(2.0, 0.0, 11)
    png, truth = page(sig[None, :])
    r = digitize_strip(png, 1, FS)
    assert r.status == "ok", r.detail
    assert compute_snr(truth[0], r.signals[0]) > 22.5
    # the points themselves: a steep anti-aliased line from (40.3, 5) to (42.1, 95), drawn with the pen
    img = np.full((100, 80, 3), 255, np.uint8)
    from pipelines.printout.strip import pen_offsets
    for dx, dy in pen_offsets(2):
        p = np.round((np.array([[40.3, 5.0], [42.1, 95.0]]) + (dx, dy)) * 16).astype(np.int32)
        cv2.polylines(img, [p.reshape(-1, 1, 2)], False, (0, 0, 0), 1, cv2.LINE_AA, shift=4)
    weight = masks(img)[2]
    top, bot = np.full(5, 20.0), np.full(5, 80.0)
    x, y = stroke_points(top, bot, weight, 39, 4.0)
    assert len(x) >= 50
    truth_x = 40.3 + (y - 5.0) / 90.0 * 1.8 - 39
    assert np.abs(x - truth_x).max() < 0.2 and np.abs(x - truth_x).mean() < 0.08


def test_stroke_points_edge_cases():
    from pipelines.digitizer.calibrate import stroke_points
    wt = np.zeros((12, 8), np.float32)
    wt[1:11, 3] = 1.0
    top = np.array([10., 10., 10., 1., 10., 10., 10., 10.])
    bot = top + 1
    bot[3] = 10.
    assert len(stroke_points(top, bot, wt, 0, 2.0)[0]) == 10
    wide = wt.copy()
    wide[1:11, 1:7] = 1.0                     # a row run 6 px wide (merged strokes): no point
    assert len(stroke_points(top, bot, wide, 0, 2.0)[0]) == 0
    for thick in (float("nan"), 0.5):         # no thickness measured: no points, no error
        assert len(stroke_points(top, bot, wt, 0, thick)[0]) == 0
    assert len(stroke_points(np.full(8, np.nan), np.full(8, np.nan), wt, 0, 2.0)[0]) == 0
    with pytest.raises(ValueError, match="outside the page"):
        stroke_points(top, bot, wt, 3, 2.0)   # columns 3..10 of an 8-column page
    edge = np.zeros((12, 8), np.float32)
    edge[1:11, 0] = 1.0                       # a stroke in the page's first column
    t0 = np.array([1., 10., 10.])
    assert stroke_points(t0, np.array([10., 11., 11.]), edge, 0, 2.0)[0].tolist() == [0.0] * 10


def test_trace_ends_and_start_row_at_the_page_edges():
    from pipelines.digitizer.strip import _start_row, trace_ends
    w = np.zeros((5, 12), np.float32)
    w[2, :] = 1.0                             # a trace from the first column to the last
    assert trace_ends(w, w > 0.2, 0, 11) == (-0.5, 11.5)
    w[2, 0] = 0.5
    assert trace_ends(w, w > 0.2, 0, 11) == (0.0, 11.5)
    t = np.zeros((10, 6), bool)
    t[1, :] = True                            # ink only in the upper band
    assert _start_row(t, 5, 10, 0, 7.0) == 7.0    # the lower band has none: its own row
