"""Benchmark paper-strip rendering, single-threaded: strips/s per core (10 s, two leads, 200 dpi).

Times :func:`pipelines.printout.record.render_strips` (baseline removal, plotted pixels, drawing on
the grid template, PNG encoding, the Arrow row) on consecutive strips of MIT-BIH records (or
synthetic signals with ``--synthetic``), for the clean variant and for each distortion set of
``params.yaml``, and the parts of a clean strip (plot, draw, PNG). CPU time of this process
(``time.process_time``: the per-core figure on a shared machine) and wall time; best of
``--repeats`` rounds after one warm-up strip.

Usage::

    MITDB_DIR=/work/shared/data/mitdb .venv/bin/python benchmarks/bench_paper.py
    .venv/bin/python benchmarks/bench_paper.py --synthetic --strips 20
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
import numpy as np  # noqa: E402
import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines.formats.paper import encode_strip  # noqa: E402
from pipelines.printout.record import PaperConfig, render_strips  # noqa: E402
from pipelines.printout.strip import draw_strip, plot_signals, remove_baseline  # noqa: E402

cv2.setNumThreads(1)


def _signals(synthetic: bool, strips: int) -> tuple[np.ndarray, tuple, tuple]:
    n = strips * 3600
    if synthetic or not os.environ.get("MITDB_DIR"):
        t = np.arange(n) / 360.0
        beat = np.exp(-0.5 * ((t % 0.8 - 0.4) / 0.012) ** 2)
        sig = np.stack([1.2 * beat, -0.6 * beat]).astype(np.float32)
        return sig, (np.zeros(0, np.int64), np.zeros(0, object)), (np.zeros(0, np.int64), np.zeros(0, object))
    from pipelines import read_record
    from pipelines.records.annotations import read_rhythms

    src = os.environ["MITDB_DIR"]
    a, b = read_record(src, "208", lead="MLII"), read_record(src, "208", lead="V1")
    return (np.stack([a.signal[:n], b.signal[:n]]), (a.ann_sample, a.ann_symbol), read_rhythms(src, "208"))


def _best(fn, repeats: int) -> tuple[float, float]:
    """Best (cpu, wall) seconds of ``fn()`` over ``repeats`` rounds."""
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--strips", type=int, default=30, help="strips per round")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--synthetic", action="store_true", help="synthetic signals instead of MIT-BIH 208")
    ap.add_argument("--clean-only", action="store_true", help="skip the distortion variants")
    ap.add_argument("--params", default=str(Path(__file__).resolve().parents[1] / "params.yaml"))
    args = ap.parse_args(argv)
    paper = yaml.safe_load(Path(args.params).read_text())["paper"]
    sig, beats, rhythms = _signals(args.synthetic, args.strips)
    starts = np.arange(args.strips) * 3600
    print(f"bench_paper: {args.strips} strips of 10 s, 2 leads, {paper['dpi']} dpi, PNG level {paper['png_level']}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, best of {args.repeats}")
    clean = PaperConfig.from_params({**paper, "variants": {}})
    render_strips("208", 360.0, sig, ["MLII", "V1"], starts[:1], beats, rhythms, clean)  # warm-up
    g = clean.geometry(2)
    p = plot_signals(remove_baseline(sig[:, :3600]), 360.0, g)
    img = draw_strip(p, ["MLII", "V1"], g)
    for name, fn in (("plot", lambda: plot_signals(remove_baseline(sig[:, :3600]), 360.0, g)),
                     ("draw", lambda: draw_strip(p, ["MLII", "V1"], g)),
                     ("png", lambda: encode_strip(img, clean.png_level))):
        cpu, _ = _best(lambda: [fn() for _ in range(10)], args.repeats)
        print(f"  part {name:5s}: {cpu / 10 * 1000:6.1f} ms CPU per strip")
    cpu, wall = _best(lambda: render_strips("208", 360.0, sig, ["MLII", "V1"], starts, beats, rhythms, clean),
                      args.repeats)
    print(f"  clean       : {args.strips / cpu:6.1f} strips/s per core (CPU), {args.strips / wall:6.1f} strips/s wall")
    for variant, spec in ({} if args.clean_only else paper.get("variants") or {}).items():
        cfg = PaperConfig.from_params({**paper, "variants": {variant: spec}})
        cpu_v, _ = _best(lambda: render_strips("208", 360.0, sig, ["MLII", "V1"], starts, beats, rhythms, cfg),
                         args.repeats)
        print(f"  + {variant:10s}: {args.strips / max(cpu_v - cpu, 1e-9):6.1f} strips/s per core for the variant alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
