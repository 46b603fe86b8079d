"""Benchmark the classical digitiser: strips/s per core and the SNR it reaches, per distortion.

Draws ``--strips`` 10 s two-lead strips (200 dpi, the paper stage's defaults) from MIT-BIH records
with :mod:`pipelines.printout` (clean, and each default distortion set of ``params.yaml``), then
digitises every one with :func:`pipelines.digitizer.strip.digitize_strip` on one thread
(``cv2.setNumThreads(1)``, BLAS threads 1), timed by CPU time of this process
(``time.process_time``: the fair "per core" figure on a shared machine) and by wall time, after one
warm-up strip (numba compile). Prints strips/s per core and, per variant, the mean Challenge SNR
(raw and aligned) and R-peak Se/+P of the project's detector on the first lead.

Usage::

    MITDB_DIR=/work/shared/data/mitdb .venv/bin/python benchmarks/bench_digitize.py --strips 24
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.snr import align, compute_snr  # noqa: E402
from pipelines import detect_r_peaks, detection_scores, load_params  # noqa: E402
from pipelines.digitizer.strip import digitize_strip  # noqa: E402
from pipelines.formats.paper import encode_strip  # noqa: E402
from pipelines.printout.distort import apply_distortions, grid_colour_of, plan_distortions, strip_rng  # noqa: E402
from pipelines.printout.grid import page_geometry  # noqa: E402
from pipelines.printout.strip import draw_strip, plot_signals, remove_baseline  # noqa: E402

RECORDS = ("100", "101", "105", "106", "119", "200", "203", "208", "210", "213", "221", "233")
BEATS = set("NLRBAaJSVrFejnE/fQ?")


def strips(mitdb: Path, n: int):
    """``n`` (strip id, signals (2, 3600), beats in strip samples) spread over :data:`RECORDS`."""
    import wfdb
    out = []
    for i in range(n):
        rec = RECORDS[i % len(RECORDS)]
        start = 3600 * (5 + 17 * (i // len(RECORDS)))
        r = wfdb.rdrecord(str(mitdb / rec), sampfrom=start, sampto=start + 3600)
        ann = wfdb.rdann(str(mitdb / rec), "atr", sampfrom=start, sampto=start + 3599)
        beats = np.array([s - start for s, sym in zip(ann.sample, ann.symbol) if sym in BEATS], dtype=np.int64)
        out.append((f"{rec}-{start}", remove_baseline(r.p_signal.T), beats))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--strips", type=int, default=24)
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    mitdb = Path(os.environ.get("MITDB_DIR", "/work/shared/data/mitdb"))
    paper = load_params(args.params, "paper")
    variants = {"clean": {}, **paper["variants"]}
    g = page_geometry(seconds=paper["seconds"], n_leads=2, dpi=paper["dpi"])
    fs = 360.0
    data = strips(mitdb, args.strips)
    digitize_strip(encode_strip(draw_strip(plot_signals(data[0][1], fs, g), ["a", "b"], g)), 2, fs)  # warm-up
    total_cpu, total_wall, total_n = 0.0, 0.0, 0
    print(f"{'variant':12s} {'SNR dB':>7s} {'aligned':>7s} {'ok':>5s} {'Se %':>6s} {'+P %':>6s} {'strips/s/core':>13s}")
    for name, spec in variants.items():
        pngs, truths = [], []
        for sid, sig, beats in data:
            p = plot_signals(sig, fs, g)
            plan = plan_distortions(spec, strip_rng(paper["seed"], name, sid), (g.height, g.width), g.px_per_mm)
            img = draw_strip(p, ["MLII", "V"], g, grid_colour=grid_colour_of(plan, paper["grid_colour"]),
                             line_px=paper["line_px"])
            img, _, _ = apply_distortions(img, p.x, p.y, plan)
            pngs.append(encode_strip(img))
            truths.append((p.signal, beats))
        c0, w0 = time.process_time(), time.perf_counter()
        results = [digitize_strip(png, 2, fs) for png in pngs]
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        total_cpu, total_wall, total_n = total_cpu + cpu, total_wall + wall, total_n + len(pngs)
        snr, snr_al, tp, fp, fn = [], [], 0, 0, 0
        for r, (truth, beats) in zip(results, truths):
            for k in range(2):
                out = r.signals[k] if r.status == "ok" else np.full(truth.shape[1], np.nan)
                snr.append(compute_snr(truth[k], out))
                snr_al.append(compute_snr(truth[k], align(truth[k], out, fs)[0]))
            out0 = r.signals[0] if r.status == "ok" else np.zeros(truth.shape[1])
            s = detection_scores(detect_r_peaks(np.nan_to_num(out0), fs), beats, int(0.15 * fs))
            tp, fp, fn = tp + s["tp"], fp + s["fp"], fn + s["fn"]
        ok = sum(r.status == "ok" for r in results)
        print(f"{name:12s} {np.mean(snr):7.2f} {np.mean(snr_al):7.2f} {ok:3d}/{len(results):<2d}"
              f"{100 * tp / max(tp + fn, 1):6.2f} {100 * tp / max(tp + fp, 1):6.2f} {len(pngs) / cpu:13.1f}")
    print(f"all: {total_n} strips, {total_n / total_cpu:.1f} strips/s per core (CPU time), "
          f"{total_n / total_wall:.1f} strips/s wall, one thread")
    return 0


if __name__ == "__main__":
    sys.exit(main())
