"""Benchmark the beat renderers and the nine crops, single-threaded, in one run.

Prints beats/s of the ``raster`` engine (its compiled kernel, and the NumPy reference that draws
the same pixels), of the ``matplotlib`` engine (the recipe, one reused
figure) and of the literal recipe (a new figure + savefig PNG + imread per beat), their ratios,
for reference a per-beat ``cv2.polylines`` loop, the batched design (beats tiled on a canvas,
one ``cv2.polylines`` call per 128 beats) and the floor (allocating and filling the output
array, no drawing: the bound for any engine), crops/s of ``nine_crops`` (linear and lanczos,
per-crop resize vs batches stacked in the channel axis), and the raster/recipe agreement on the
same beats.

Everything runs on one thread (OMP/OpenBLAS/MKL threads 1, ``cv2.setNumThreads(1)``). Every
figure is the best of ``--repeats`` rounds, the engines measured in turn within each round, by
CPU time of this process (``time.process_time``; the fair "per core" figure on a shared machine)
and by wall time. Ratios compare figures from this same run only. Before the timed rounds one
full-size batch is drawn and dropped, so that the rounds reuse memory the process has touched
before (the steady state of a render worker; first-touch page faults are expensive on a VM).

Usage::

    MITDB_DIR=/work/shared/data/mitdb .venv/bin/python benchmarks/bench_render.py              # 20,000 beats
    MITDB_DIR=/work/shared/data/mitdb .venv/bin/python benchmarks/bench_render.py --beats 4096  # one stage chunk
    .venv/bin/python benchmarks/bench_render.py --synthetic
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

import cv2  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.imaging import crops as crops_mod  # noqa: E402
from pipelines.imaging import raster
from pipelines.imaging import recipe  # noqa: E402
from pipelines.signal.labels import BEAT_SYMBOLS  # noqa: E402
from tests._raster_reference import render_beats_numpy  # noqa: E402  (the NumPy reference, test-only)

#: The ``raster`` engine's trace box at its default 5 % margin, for the calls that take a box.
DEFAULT_BOX = (0.05 * 128, 0.05 * 128, 0.95 * 128, 0.95 * 128)

DEFAULT_RECORDS = ("100", "105", "106", "108", "109", "118", "119", "200", "203", "207", "208", "214", "222", "231",
                   "232", "233")


def load_mitdb_beats(mitdb_dir: str, records, gap: int = 20):
    """All reference beats of ``records``: MLII, jun windows [prev R + gap, next R - gap).

    Returns the beats and the record of each.
    """
    import wfdb

    beats, names = [], []
    for name in records:
        rec = wfdb.rdrecord(str(Path(mitdb_dir) / name))
        lead = rec.sig_name.index("MLII") if "MLII" in rec.sig_name else 0
        sig = rec.p_signal[:, lead].astype(np.float32)
        ann = wfdb.rdann(str(Path(mitdb_dir) / name), "atr")
        r = np.asarray(ann.sample)[np.isin(ann.symbol, BEAT_SYMBOLS)]
        starts, ends = r[:-2] + gap, r[2:] - gap
        keep = ends - starts >= 2
        beats += [sig[a:b] for a, b in zip(starts[keep], ends[keep])]
        names += [name] * int(keep.sum())
    return beats, names


def synthetic_beats(n: int, seed: int = 0):
    """ECG-like beats (QRS spike, P and T waves, noise) of 450..750 samples."""
    rng = np.random.default_rng(seed)
    beats = []
    for length in rng.integers(450, 750, n):
        t = np.linspace(-1, 1, length)
        qrs = rng.uniform(0.8, 2.0) * np.exp(-(t / rng.uniform(0.01, 0.04)) ** 2)
        beats.append((qrs + 0.15 * np.exp(-((t + 0.35) / 0.06) ** 2) + 0.3 * np.exp(-((t - 0.4) / 0.1) ** 2)
                      + 0.02 * rng.standard_normal(length)).astype(np.float32))
    return beats


def pack(beats):
    return np.concatenate(beats), np.r_[0, np.cumsum([b.size for b in beats])].astype(np.int64)


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.process_time() - c, time.perf_counter() - w


def polylines_loop(values, offsets, size=128, margin=0.05):
    """Reference: a Python loop of cv2.polylines (anti-aliased, 1 px, 4 fractional bits) per beat."""
    out = np.full((offsets.size - 1, size, size), 255, np.uint8)
    lo, hi = margin * size, (1 - margin) * size
    for i in range(offsets.size - 1):
        b = values[offsets[i]:offsets[i + 1]]
        x = np.linspace(lo, hi, b.size)
        span = float(b.max() - b.min()) or 1.0
        y = lo + (b.max() - b) * ((hi - lo) / span)
        pts = (np.stack([x, y], axis=1) * 16).astype(np.int32)
        cv2.polylines(out[i], [pts], False, 0, 1, cv2.LINE_AA, shift=4)
    return out


def output_floor(n, size=128, chunk=128):
    """Reference: only allocate the ``(n, size, size)`` uint8 output and fill it white, chunk by chunk.

    No drawing at all: an upper bound on the rate of any engine that returns a fresh image array
    (writing 16 KB per beat into newly mapped memory is most of its cost).
    """
    out = np.empty((n, size, size), np.uint8)
    for a in range(0, n, chunk):
        out[a:a + chunk].fill(255)
    return out


def polylines_tiled(values, offsets, size=128, margin=0.05, points=128, tiles=(8, 16), thickness=1):
    """Reference: the batched ``cv2.polylines`` design (tiled canvas, one OpenCV call per canvas).

    Every beat is resampled to ``points`` points (one vectorised linear interpolation for the whole
    batch; sharp peaks between the new points are cut), scaled by its own min/max into the image
    minus ``margin``, written as fixed-point (4 fractional bits) coordinates into its tile of a
    ``tiles[0] x tiles[1]`` canvas of ``size`` px tiles, and all polylines of a canvas are drawn by
    ONE ``cv2.polylines(..., thickness, LINE_AA, shift=4)`` call; the canvas becomes images with one
    reshape/transpose copy. The margin keeps the anti-aliased line (1 or 2 px) inside its tile.
    """
    values, offsets = raster.check_beats(values, offsets)
    n = offsets.size - 1
    rows, cols = tiles
    per = rows * cols
    lo, hi = margin * size, (1 - margin) * size
    lengths = np.diff(offsets)
    t = np.linspace(0.0, 1.0, points)[None, :] * (lengths - 1)[:, None]
    j = np.minimum(t.astype(np.int64), (lengths - 2)[:, None])
    frac = (t - j).astype(np.float32)
    j += offsets[:-1, None]
    y = values[j] + frac * (values[j + 1] - values[j])
    vmax = np.maximum.reduceat(values, offsets[:-1])
    vmin = np.minimum.reduceat(values, offsets[:-1])
    span = np.where(vmax > vmin, vmax - vmin, 1.0)
    k = np.arange(n) % per
    pts = np.empty((n, points, 2), np.int32)
    pts[..., 0] = np.round((np.linspace(lo, hi, points)[None, :] + ((k % cols) * size)[:, None]) * 16)
    py = lo + (vmax[:, None] - y) * ((hi - lo) / span)[:, None]
    pts[..., 1] = np.round((py + ((k // cols) * size)[:, None]) * 16)
    out = np.empty((n, size, size), np.uint8)
    canvas = np.empty((rows * size, cols * size), np.uint8)
    for a in range(0, n, per):
        b = min(a + per, n)
        canvas.fill(255)
        cv2.polylines(canvas, pts[a:b], False, 0, thickness, cv2.LINE_AA, 4)
        out[a:b] = canvas.reshape(rows, size, cols, size).transpose(0, 2, 1, 3).reshape(per, size, size)[:b - a]
    return out


def crops_channel_stacked(images, interpolation="linear", crop=96, offsets=(0, 16, 32), chunk=128):
    """The alternative to nine_crops' per-crop loop: images stacked in the channel axis (<= 128 in OpenCV 5)."""
    flag = crops_mod.INTERPOLATIONS[interpolation]
    n, size = images.shape[0], images.shape[1]
    windows = crops_mod.crop_windows(size, crop=crop, offsets=offsets)
    out = np.empty((n, len(windows), size, size), np.uint8)
    for a in range(0, n, chunk):
        stack = np.ascontiguousarray(images[a:a + chunk].transpose(1, 2, 0))
        for k, (rows, cols) in enumerate(windows):
            res = cv2.resize(stack[rows, cols], (size, size), interpolation=flag)
            out[a:a + chunk, k] = res.reshape(size, size, -1).transpose(2, 0, 1)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mitdb", default=os.environ.get("MITDB_DIR"), help="MIT-BIH directory (default $MITDB_DIR)")
    parser.add_argument("--records", nargs="*", default=list(DEFAULT_RECORDS))
    parser.add_argument("--synthetic", action="store_true", help="synthetic beats instead of MIT-BIH")
    parser.add_argument("--beats", type=int, default=20000, help="beats for the raster engine")
    parser.add_argument("--mpl-beats", type=int, default=300, help="beats for the matplotlib engine")
    parser.add_argument("--literal-beats", type=int, default=20, help="beats for the literal recipe")
    parser.add_argument("--crop-images", type=int, default=1000, help="images for the nine crops")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    matplotlib.use("Agg")

    if args.synthetic or not args.mitdb:
        source = "synthetic ECG-like beats"
        pool = synthetic_beats(args.beats)
        pool_records = ["synthetic"] * len(pool)
    else:
        source = f"MIT-BIH {args.mitdb}: records {' '.join(args.records)} (MLII, jun windows R-1 + 20 .. R+1 - 20)"
        pool, pool_records = load_mitdb_beats(args.mitdb, args.records)
    # An even spread over the pool (all records), repeated if the pool is smaller than asked.
    pick = np.linspace(0, len(pool) - 1, args.beats).round().astype(int)
    beats = [pool[i] for i in pick]
    values, offsets = pack(beats)
    mpl_idx = np.linspace(0, len(beats) - 1, args.mpl_beats).round().astype(int)
    mpl_values, mpl_offsets = pack([beats[i] for i in mpl_idx])
    mpl_records = np.asarray([pool_records[pick[i]] for i in mpl_idx])
    lit_beats = [beats[i] for i in np.linspace(0, len(beats) - 1, args.literal_beats).round().astype(int)]

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; Python {platform.python_version()}, numpy {np.__version__}, "
          f"OpenCV {cv2.__version__}, matplotlib {matplotlib.__version__}; single thread")
    print(f"beats: {source}; {len(beats):,} beats, mean {np.diff(offsets).mean():.0f} samples")

    best = {}

    def record(name, n, cpu, wall):
        b = best.setdefault(name, [n, float("inf"), float("inf")])
        b[1], b[2] = min(b[1], cpu), min(b[2], wall)

    # Warm-up: imports and caches, and one full-size batch so that every timed round gets memory the
    # process has used before (the steady state of a render worker that draws chunk after chunk;
    # the first touch of never-used memory costs several times more on this VM).
    raster.render_beats(values, offsets)
    recipe.render_beats(mpl_values, mpl_offsets[:3])
    n_loop, n_tiled, n_thick = (min(k, len(beats)) for k in (2000, 4096, 1024))
    polylines_tiled(values[:offsets[n_tiled]], offsets[:n_tiled + 1])
    for _ in range(args.repeats):
        images, c, w = timed(lambda: raster.render_beats(values, offsets))
        record("raster engine (default)", len(beats), c, w)
        _, c, w = timed(lambda: render_beats_numpy(values, offsets, size=128, box=DEFAULT_BOX))
        record("raster NumPy reference (same pixels)", len(beats), c, w)
        mpl_images, c, w = timed(lambda: recipe.render_beats(mpl_values, mpl_offsets))
        record("matplotlib engine (recipe, reused figure)", args.mpl_beats, c, w)
        _, c, w = timed(lambda: polylines_loop(values[:offsets[n_loop]], offsets[:n_loop + 1]))
        record("reference: cv2.polylines loop per beat", n_loop, c, w)
        _, c, w = timed(lambda: polylines_tiled(values[:offsets[n_tiled]], offsets[:n_tiled + 1]))
        record("reference: cv2.polylines tiled, 1 call/128", n_tiled, c, w)
        _, c, w = timed(lambda: polylines_tiled(values[:offsets[n_thick]], offsets[:n_thick + 1], thickness=2))
        record("reference: the same, thickness 2", n_thick, c, w)
        _, c, w = timed(lambda: output_floor(len(beats)))
        record("floor: allocate + fill output, no drawing", len(beats), c, w)
    _, c, w = timed(lambda: [recipe.render_beat_literal(b) for b in lit_beats])
    record("literal recipe (new figure + PNG + imread)", len(lit_beats), c, w)

    print("\nrendering 128 x 128 beat images (best of %d; beats/s by CPU time | wall time):" % args.repeats)
    rates = {k: (n / cpu, n / wall) for k, (n, cpu, wall) in best.items()}
    for name, (rc, rw) in rates.items():
        print(f"  {name:45s} {rc:>11,.0f} | {rw:>11,.0f} beats/s  ({best[name][0]:,} beats)")
    r_cpu, r_wall = rates["raster engine (default)"]
    m_cpu, m_wall = rates["matplotlib engine (recipe, reused figure)"]
    l_cpu, l_wall = rates["literal recipe (new figure + PNG + imread)"]
    print(f"  ratio raster / matplotlib engine:      {r_cpu / m_cpu:8,.0f}x (CPU) {r_wall / m_wall:8,.0f}x (wall)")
    n_cpu, n_wall = rates["raster NumPy reference (same pixels)"]
    print(f"  ratio raster / its NumPy reference:    {r_cpu / n_cpu:8,.1f}x (CPU) {r_wall / n_wall:8,.1f}x (wall)")
    print(f"  ratio raster / literal recipe:         {r_cpu / l_cpu:8,.0f}x (CPU) {r_wall / l_wall:8,.0f}x (wall)")
    print(f"  ratio matplotlib engine / literal:     {m_cpu / l_cpu:8,.1f}x (CPU) {m_wall / l_wall:8,.1f}x (wall)")
    f_cpu, f_wall = rates["floor: allocate + fill output, no drawing"]
    print(f"  ratio floor (no drawing) / matplotlib: {f_cpu / m_cpu:8,.0f}x (CPU) {f_wall / m_wall:8,.0f}x (wall)")
    verdict = "met" if r_cpu >= 20000 else "NOT met"
    verdict_ratio = "met" if r_cpu / m_cpu >= 300 else "NOT met"
    print(f"  raster engine per core: {r_cpu:,.0f} beats/s (target >= 20,000: {verdict}); "
          f"{r_cpu / m_cpu:,.0f}x the matplotlib engine (target >= 300x: {verdict_ratio})")

    box = recipe.recipe_box(128)
    framed = raster.render_beats_box(mpl_values, mpl_offsets, size=128, box=box, line_width=1.0)
    agree = recipe.engine_agreement(mpl_images, framed, box=box)
    print(f"\nagreement on these {args.mpl_beats} beats (raster drawn in the recipe's frame, recipe_box):")
    print(f"  trace row per column within 2 px: {agree['columns_within']:.2%} of {agree['columns']:,} columns "
          f"(mean |diff| {agree['mean_abs_row_diff']:.2f} px); recipe ink on raster ink: "
          f"{agree['recipe_ink_on_raster_ink']:.2%}")
    print(f"  where the raster trace is <= 6 px tall (all but steep strokes): {agree['flat_columns_within']:.2%} "
          "within 2 px")
    per_record = {name: recipe.engine_agreement(mpl_images[mpl_records == name], framed[mpl_records == name],
                                                box=box)["columns_within"] for name in dict.fromkeys(mpl_records)}
    lo, hi = min(per_record, key=per_record.get), max(per_record, key=per_record.get)
    print(f"  per record ({len(per_record)} records, ~{args.mpl_beats // len(per_record)} beats each): "
          f"{per_record[lo]:.1%} ({lo}) .. {per_record[hi]:.1%} ({hi})")

    crop_src = images[np.linspace(0, len(images) - 1, args.crop_images).round().astype(int)]
    cbest = {}
    for _ in range(args.repeats):
        for interp in ("linear", "lanczos"):
            for how, fn in (("per-crop resize (nine_crops)", crops_mod.nine_crops),
                            ("channel-stacked batches", crops_channel_stacked)):
                out, c, w = timed(lambda: fn(crop_src, interpolation=interp))
                key = (interp, how)
                prev = cbest.get(key, (float("inf"), float("inf"), out))
                cbest[key] = (min(prev[0], c), min(prev[1], w), out)
    print(f"\nnine crops of {len(crop_src):,} images (96 x 96 -> 128 x 128; best of {args.repeats}; CPU | wall):")
    for (interp, how), (c, w, out) in cbest.items():
        same = np.array_equal(out, cbest[(interp, "per-crop resize (nine_crops)")][2])
        print(f"  {interp:8s} {how:30s} {9 * len(crop_src) / c:>9,.0f} | {9 * len(crop_src) / w:>9,.0f} crops/s  "
              f"({len(crop_src) / c:,.0f} images/s){'' if same else '  [pixels differ]'}")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
