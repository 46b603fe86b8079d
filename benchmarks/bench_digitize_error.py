"""Where the digitiser's error on clean strips comes from, measured against the paper stage's ground truth.

Reads the clean variant's ground truth (``datasets/paper/clean``: ``signal``, ``plotted_x``) and the digitize
stage's output (``datasets/digitized/clean.parquet``) and prints:

1. the mean Challenge SNR per lead, and the same after the best fractional time shift of each lead found
   *with the truth* (an upper bound of what a perfect time origin would give; 20 samples trimmed at each end
   for the shift; leads below 5 dB, which follow the wrong trace, left out and counted);
2. the leads that score worst (the wrong-trace cases), and the squared error split by the plotted trace's
   slope (the steep QRS strokes hold most of it);
3. on every ``--step``-th strip, digitised again with :func:`pipelines.digitizer.strip.trace_ends` observed:
   each trace end against the truth's first/last plotted x (px), the error of their centre (which places the
   time origin), and how the two leads' centre errors correlate (why one shared origin helps less than half).

Usage::

    python benchmarks/bench_digitize_error.py [--paper datasets/paper/clean]
        [--digitized datasets/digitized/clean.parquet] [--step 3]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pipelines.digitizer.strip as strip  # noqa: E402
from evaluation.snr import compute_snr  # noqa: E402
from pipelines.formats.paper import read_paper  # noqa: E402

SHIFTS = np.arange(-1.0, 1.0001, 0.05)     # samples
TRIM = 20


def fractional_shift(y: np.ndarray, s: float) -> np.ndarray:
    """``y`` delayed by ``s`` samples (FFT phase shift)."""
    f = np.fft.rfftfreq(len(y))
    return np.fft.irfft(np.fft.rfft(y) * np.exp(-2j * np.pi * f * s), len(y))


SLOPES = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, np.inf)   # |dy/dx| of the plotted trace, px per px


def snr_bounds(truth: list[dict], digitized: dict) -> None:
    snr, trimmed, shifted, worst, wrong = [], [], [], [], 0
    err_by_slope, n_by_slope = np.zeros(len(SLOPES) - 1), np.zeros(len(SLOPES) - 1)
    for row in truth:
        for k, lead in enumerate(row["leads"]):
            x = np.asarray(row["signal"][k], np.float64)
            y = digitized.get((row["strip_id"], lead))
            y = np.full(len(x), np.nan) if y is None else np.asarray(y, np.float64)[:len(x)]
            s = compute_snr(x, y)
            snr.append(s)
            worst.append((s, row["strip_id"], lead))
            if s < 5 or not np.isfinite(y).all():
                wrong += 1
                continue
            trimmed.append(compute_snr(x[TRIM:-TRIM], y[TRIM:-TRIM]))
            slope = np.abs(np.gradient(np.asarray(row["plotted_y"][k]), np.asarray(row["plotted_x"][k])))
            where = np.clip(np.digitize(slope, SLOPES) - 1, 0, len(SLOPES) - 2)
            err_by_slope += np.bincount(where, weights=(y - x) ** 2, minlength=len(SLOPES) - 1)
            n_by_slope += np.bincount(where, minlength=len(SLOPES) - 1)
            shifted.append(max(compute_snr(x[TRIM:-TRIM], fractional_shift(y, -d)[TRIM:-TRIM]) for d in SHIFTS))
    print(f"clean leads: {len(snr)}; mean SNR {np.mean(snr):.2f} dB")
    print(f"  without the {wrong} leads below 5 dB, ends trimmed: {np.mean(trimmed):.2f} dB; with the truth's "
          f"best time shift per lead: {np.mean(shifted):.2f} dB (upper bound of a perfect time origin)")
    print("  worst leads: " + ", ".join(f"{sid} {lead} {s:.1f} dB" for s, sid, lead in sorted(worst)[:5]))
    share = err_by_slope / err_by_slope.sum()
    print("  squared error by the plotted trace's slope (px per px; leads >= 5 dB): " + ", ".join(
        f"{lo:g}-{hi:g}: {n / n_by_slope.sum():.1%} of samples, {e:.1%} of error"
        for lo, hi, n, e in zip(SLOPES[:-1], SLOPES[1:], n_by_slope, share)))


def end_errors(truth: list[dict], step: int) -> None:
    seen: list[tuple[float, float]] = []
    original = strip.trace_ends

    def observed(*args, **kwargs):
        ends = original(*args, **kwargs)
        seen.append(ends)
        return ends

    strip.trace_ends = observed
    left, right, centre = [], [], []
    try:
        for row in truth[::step]:
            seen.clear()
            res = strip.digitize_strip(row["image"]["bytes"], len(row["leads"]), float(row["fs"]))
            if res.status != "ok" or len(seen) != len(row["leads"]):
                continue
            c = []
            for k, (lo, hi) in enumerate(seen):
                px = row["plotted_x"][k]
                left.append(lo - px[0])
                right.append(hi - px[-1])
                c.append(0.5 * (lo + hi) - 0.5 * (px[0] + px[-1]))
            centre.append(c)
    finally:
        strip.trace_ends = original
    left, right, centre = np.array(left), np.array(right), np.array(centre)
    print(f"trace ends of {len(left)} leads (every {step}th strip), px against the truth's plotted x:")
    print(f"  left end: median {np.median(left):+.2f}, sd {left.std():.2f}; right end: median {np.median(right):+.2f}, "
          f"sd {right.std():.2f}; their centre: sd {centre.std():.2f}")
    if centre.ndim == 2 and centre.shape[1] == 2:
        print(f"  correlation of the two leads' centre errors: {np.corrcoef(centre[:, 0], centre[:, 1])[0, 1]:.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paper", default=str(ROOT / "datasets/paper/clean"))
    ap.add_argument("--digitized", default=str(ROOT / "datasets/digitized/clean.parquet"))
    ap.add_argument("--step", type=int, default=3)
    args = ap.parse_args(argv)
    truth = read_paper(args.paper, columns=["strip_id", "leads", "fs", "signal", "image", "plotted_x",
                                            "plotted_y"]).to_pylist()
    digitized = {(r["strip_id"], r["lead"]): r["signal"] for r in pq.read_table(args.digitized).to_pylist()}
    snr_bounds(truth, digitized)
    end_errors(truth, args.step)
    return 0


if __name__ == "__main__":
    sys.exit(main())
