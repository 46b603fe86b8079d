"""Benchmark the ``raster`` engine's scales in one run: the recipe (stretch) against fixed time/amplitude.

Prints beats/s, single-threaded, of :func:`pipelines.imaging.raster.render_beats` (the recipe) and of
:func:`pipelines.imaging.scale.render_beats_scaled` with the recipe's scales and with each fixed
scale (``time="fixed"``, 12 ms/px, R at mid-width; ``amplitude="fixed"`` -1.5..2.5 mV; ``record``),
plus the rate of :func:`pipelines.imaging.scale.record_amplitude` (once per table), and each
rate's ratio to the recipe. Every figure is the best of ``--repeats`` rounds, the variants taken
in turn within each round, by CPU time (``time.process_time``) and wall time; the first call of each
variant (kernel load) is not timed. Ratios compare figures from this same run only.

Usage::

    MITDB_DIR=/work/shared/data/mitdb .venv/bin/python benchmarks/bench_scale.py            # 8 records
    .venv/bin/python benchmarks/bench_scale.py --synthetic --beats 8000
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.imaging.raster import render_beats  # noqa: E402
from pipelines.imaging.scale import ImageScale, record_amplitude, render_beats_scaled  # noqa: E402
from pipelines.signal.labels import BEAT_SYMBOLS  # noqa: E402

DEFAULT_RECORDS = ("100", "106", "119", "200", "207", "208", "222", "232")
FS = 360.0


def load_mitdb(mitdb_dir: str, records, gap: int = 20):
    """jun windows [R_prev + gap, R_next - gap) of MLII, with each R's index in its window and its record."""
    import wfdb

    beats, r_index, names = [], [], []
    for name in records:
        rec = wfdb.rdrecord(str(Path(mitdb_dir) / name))
        lead = rec.sig_name.index("MLII") if "MLII" in rec.sig_name else 0
        sig = rec.p_signal[:, lead].astype(np.float32)
        ann = wfdb.rdann(str(Path(mitdb_dir) / name), "atr")
        r = np.asarray(ann.sample)[np.isin(ann.symbol, BEAT_SYMBOLS)]
        starts, ends, peaks = r[:-2] + gap, r[2:] - gap, r[1:-1]
        keep = (ends - starts >= 2) & (starts <= peaks) & (peaks < ends)
        beats += [sig[a:b] for a, b in zip(starts[keep], ends[keep])]
        r_index += (peaks - starts)[keep].tolist()
        names += [name] * int(keep.sum())
    return beats, np.array(r_index, np.int64), np.array(names)


def synthetic(n: int, seed: int = 0):
    """ECG-like beats of 0.6..2 s at 360 Hz (QRS at 40 %), two "records" of different gain."""
    rng = np.random.default_rng(seed)
    beats, r_index = [], []
    for length in rng.integers(216, 720, n):
        t = np.arange(length)
        r = int(0.4 * length)
        beats.append((rng.uniform(0.8, 2.0) * np.exp(-0.5 * ((t - r) / 4.3) ** 2)
                      + 0.3 * np.exp(-0.5 * ((t - r - 90) / 14.0) ** 2) + 0.02 * rng.standard_normal(length))
                     .astype(np.float32))
        r_index.append(r)
    return beats, np.array(r_index, np.int64), np.where(np.arange(n) % 2, "a", "b")


def timed(fn):
    """CPU and wall seconds of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.process_time() - c, time.perf_counter() - w


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mitdb", default=os.environ.get("MITDB_DIR"), help="MIT-BIH directory (default $MITDB_DIR)")
    parser.add_argument("--records", nargs="*", default=list(DEFAULT_RECORDS))
    parser.add_argument("--synthetic", action="store_true", help="synthetic beats instead of MIT-BIH")
    parser.add_argument("--beats", type=int, default=8000, help="beats drawn per variant")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    if args.synthetic or not args.mitdb:
        source = "synthetic ECG-like beats, 0.6..2 s"
        beats, r_index, record = synthetic(args.beats)
    else:
        source = f"MIT-BIH {args.mitdb}: records {' '.join(args.records)} (MLII, jun windows R-1 + 20 .. R+1 - 20)"
        beats, r_index, record = load_mitdb(args.mitdb, args.records)
        pick = np.linspace(0, len(beats) - 1, min(args.beats, len(beats))).round().astype(np.int64)
        beats, r_index, record = [beats[i] for i in pick], r_index[pick], record[pick]
    values = np.concatenate(beats)
    offsets = np.r_[0, np.cumsum([b.size for b in beats])].astype(np.int64)
    n = len(beats)
    amp = record_amplitude(record, values, offsets, r_index)
    fixed_time = dict(r_index=r_index, fs=FS)
    variants = {
        "render_beats (recipe)": lambda: render_beats(values, offsets),
        "scaled: recipe scales": lambda: render_beats_scaled(values, offsets),
        "scaled: time fixed, amplitude beat": lambda: render_beats_scaled(
            values, offsets, scale=ImageScale(time="fixed"), **fixed_time),
        "scaled: time stretch, amplitude fixed": lambda: render_beats_scaled(
            values, offsets, scale=ImageScale(amplitude="fixed")),
        "scaled: time fixed, amplitude fixed": lambda: render_beats_scaled(
            values, offsets, scale=ImageScale(time="fixed", amplitude="fixed"), **fixed_time),
        "scaled: time fixed, amplitude record": lambda: render_beats_scaled(
            values, offsets, scale=ImageScale(time="fixed", amplitude="record"), amp=amp, **fixed_time),
        "record_amplitude (per table)": lambda: record_amplitude(record, values, offsets, r_index),
    }
    for fn in variants.values():  # load the compiled kernels and touch the output memory once
        fn()
    results = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            results[name].append(timed(fn))
    print(f"{source}; {n} beats of {int(np.median(np.diff(offsets)))} samples (median), 128 px, one thread")
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"numpy {np.__version__}; best of {args.repeats}")
    base = n / min(c for c, _ in results["render_beats (recipe)"])
    print(f"{'variant':40s} {'beats/s (CPU)':>14s} {'beats/s (wall)':>15s} {'vs recipe':>10s}")
    for name, runs in results.items():
        cpu, wall = min(c for c, _ in runs), min(w for _, w in runs)
        print(f"{name:40s} {n / cpu:14,.0f} {n / wall:15,.0f} {n / cpu / base:9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
