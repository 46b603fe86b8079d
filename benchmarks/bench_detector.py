"""Benchmark the Christov R-peak detector against biosppy's on MIT-BIH, in the same run.

For every record (MLII where present, else channel 0, read and verified by
``pipelines.records.reader.read_record``), the reference is every beat annotation (symbols in
``pipelines.signal.labels.BEAT_SYMBOLS``) and a detection matches within 150 ms, one-to-one
(``pipelines.signal.matching``). Prints:

* per record: reference beats, our TP/FP/FN/Se/+P (and how many of our false positives lie in
  ventricular flutter/fibrillation episodes, annotations ``[`` to ``]``), biosppy's
  TP/FP/FN/Se/+P, seconds for each;
* totals for both detectors, mean seconds per record for both (wall clock, and the process's CPU
  time, which a busy machine inflates less), and the speed ratios;
* with ``--ablation``: our totals with each deviation from Christov (2004) undone, one at a time,
  and with all of them undone (the figures quoted in ``pipelines/christov.py``);
* with ``--rates 250,1000``: our totals on the records resampled to other sampling rates
  (``scipy.signal.resample_poly``; reference beats rescaled), to show the detector does not depend
  on the rate.

biosppy 2.2.4 ``christov_segmenter`` is called with ``sampling_rate=fs + 1e-6``: as shipped,
``int(0.350 * 360)`` is 125, not 126, so its two 50 ms windows differ by one sample and its
threshold creeps upwards (it then finds ~26 % of the beats).

Both detectors run one after the other in one process, on one core (BLAS/OpenMP threads pinned
to 1 before NumPy is imported). Timings on a shared machine are noisy: compare the ratio.

Usage::

    MITDB_DIR=/work/shared/data/mitdb .venv/bin/python benchmarks/bench_detector.py \\
        [--records 100,203] [--skip-biosppy] [--ablation] [--rates 250,1000]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from fractions import Fraction  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.signal import resample_poly  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipelines.core.progress import Progress  # noqa: E402
from pipelines.records.reader import read_record, resolve_source  # noqa: E402
from pipelines.signal.christov import DEFAULT_PARAMS, ChristovParams, detect_r_peaks  # noqa: E402
from pipelines.signal.labels import BEAT_SYMBOLS  # noqa: E402
from pipelines.signal.matching import detection_scores, match_beats  # noqa: E402

MITDB_RECORDS = (
    "100", "101", "102", "103", "104", "105", "106", "107", "108", "109", "111", "112", "113", "114", "115",
    "116", "117", "118", "119", "121", "122", "123", "124", "200", "201", "202", "203", "205", "207", "208",
    "209", "210", "212", "213", "214", "215", "217", "219", "220", "221", "222", "223", "228", "230", "231",
    "232", "233", "234",
)
TOLERANCE_MS = 150.0

#: Each deviation from the paper undone on its own, then all of them (see pipelines/christov.py).
ABLATIONS: dict[str, ChristovParams] = {
    "shipped": DEFAULT_PARAMS,
    "m_fraction 0.6 (paper)": DEFAULT_PARAMS.with_(m_fraction=0.6),
    "no minimum peak spacing": DEFAULT_PARAMS.with_(min_spacing_ms=0.0),
    "no lower limit on newM5": DEFAULT_PARAMS.with_(m_low_limit=0.0),
    "initial M from the 5 s maximum (paper)": DEFAULT_PARAMS.with_(m_init_median=False),
    "no flutter guard": DEFAULT_PARAMS.with_(vf_max_fraction=1.0),
    "no R term (paper has it)": DEFAULT_PARAMS.with_(r_term=False),
    "paper settings (all undone)": ChristovParams.paper(),
    "shipped + 0.5 Hz drift high-pass (not shipped)": DEFAULT_PARAMS.with_(drift_hz=0.5),
}


@dataclass
class Totals:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    fp_in_vf: int = 0
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)

    def add(self, scores: dict, seconds: tuple[float, float] | None = None) -> None:
        self.tp += scores["tp"]
        self.fp += scores["fp"]
        self.fn += scores["fn"]
        if seconds is not None:
            self.seconds.append(seconds[0])
            self.cpu_seconds.append(seconds[1])

    def timing(self, digits: int = 3) -> str:
        return (f"{np.mean(self.seconds):.{digits}f} s per record (max {np.max(self.seconds):.{digits}f}), "
                f"CPU {np.mean(self.cpu_seconds):.{digits}f} s (max {np.max(self.cpu_seconds):.{digits}f})")

    @property
    def se(self) -> float:
        return 100.0 * self.tp / max(self.tp + self.fn, 1)

    @property
    def ppv(self) -> float:
        return 100.0 * self.tp / max(self.tp + self.fp, 1)

    def line(self) -> str:
        return f"TP {self.tp} FP {self.fp} FN {self.fn}  Se {self.se:.2f} %  +P {self.ppv:.2f} %"


def _scores_cell(s: dict) -> str:
    return f"{s['tp']}/{s['fp']}/{s['fn']} {100 * s['sensitivity']:.2f} {100 * s['ppv']:.2f}"


def _timed(fn, *args, **kwargs):
    """``fn``'s result and its (wall-clock, CPU) seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - wall, time.process_time() - cpu)


def biosppy_christov(signal: np.ndarray, fs: float) -> np.ndarray:
    """biosppy 2.2.4's Christov segmenter with the sampling-rate workaround."""
    from biosppy.signals.ecg import christov_segmenter

    return np.asarray(christov_segmenter(signal=signal, sampling_rate=fs + 1e-6)["rpeaks"], dtype=np.int64)


def load(source: str, name: str) -> tuple[np.ndarray, float, str, np.ndarray, np.ndarray]:
    """Signal (float64 mV), fs, lead name, reference beats, and a mask of the samples inside
    ventricular flutter/fibrillation episodes (annotations ``[`` to ``]``)."""
    rec = read_record(source, name)
    symbols = rec.ann_symbol.astype(str)
    ref = rec.ann_sample[np.isin(symbols, BEAT_SYMBOLS)]
    in_vf = np.zeros(rec.signal.size, dtype=bool)
    for start, end in zip(rec.ann_sample[symbols == "["], rec.ann_sample[symbols == "]"]):
        in_vf[start:end + 1] = True
    return rec.signal.astype(np.float64), float(rec.fs), rec.lead, ref, in_vf


def false_positives_in_vf(peaks: np.ndarray, ref: np.ndarray, tol: int, in_vf: np.ndarray) -> int:
    """How many unmatched detections lie inside flutter/fibrillation episodes."""
    unmatched = peaks[match_beats(peaks, ref, tol) < 0]
    return int(np.count_nonzero(in_vf[unmatched]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", default="all", help="comma-separated record names, or 'all' (default)")
    ap.add_argument("--source", default=None,
                    help="WFDB directory (default: $MITDB_DIR, else datasets/raw/mitdb/files)")
    ap.add_argument("--skip-biosppy", action="store_true", help="time and score our detector only")
    ap.add_argument("--ablation", action="store_true", help="also score the detector with each deviation undone")
    ap.add_argument("--rates", default="", help="also score at these sampling rates, e.g. 250,1000")
    args = ap.parse_args(argv)
    source = args.source or str(resolve_source(REPO / "datasets" / "raw" / "mitdb"))
    if not (Path(source) / "100.hea").is_file() and args.records == "all":
        ap.error(f"no MIT-BIH records in {source}: set MITDB_DIR or pass --source")
    names = (MITDB_RECORDS if args.records == "all"
             else tuple(r.strip() for r in args.records.split(",") if r.strip()))
    rates = [float(r) for r in args.rates.split(",") if r.strip()]

    print(f"# Christov R-peak detector on MIT-BIH ({len(names)} records), tolerance {TOLERANCE_MS:.0f} ms")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, "
          f"numpy {np.__version__}; load average at start {os.getloadavg()[0]:.1f}; one core per detector")
    print()
    print("| record | lead | beats | ours TP/FP/FN Se% +P% | ours FP in VF | biosppy (fs+1e-6) TP/FP/FN Se% +P% "
          "| ours s | ours CPU s | biosppy s | biosppy CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    ours, theirs = Totals(), Totals()
    ablation = {label: Totals() for label in ABLATIONS} if args.ablation else {}
    resampled = {rate: Totals() for rate in rates}
    progress = Progress("records", total=len(names), stream=sys.stderr, interval=10.0)
    for name in names:
        signal, fs, lead, ref, in_vf = load(source, name)
        tol = int(round(TOLERANCE_MS * fs / 1000.0))
        peaks, t_ours = _timed(detect_r_peaks, signal, fs)
        s_ours = detection_scores(peaks, ref, tol)
        ours.add(s_ours, t_ours)
        fp_vf = false_positives_in_vf(peaks, ref, tol, in_vf)
        ours.fp_in_vf += fp_vf
        if args.skip_biosppy:
            cell_b, t_b = "-", (float("nan"), float("nan"))
        else:
            bpeaks, t_b = _timed(biosppy_christov, signal, fs)
            s_b = detection_scores(bpeaks, ref, tol)
            theirs.add(s_b, t_b)
            cell_b = _scores_cell(s_b)
        print(f"| {name} | {lead} | {ref.size} | {_scores_cell(s_ours)} | {fp_vf} | {cell_b} | {t_ours[0]:.3f} "
              f"| {t_ours[1]:.3f} | {t_b[0]:.2f} | {t_b[1]:.2f} |", flush=True)
        for label, totals in ablation.items():
            totals.add(detection_scores(detect_r_peaks(signal, fs, params=ABLATIONS[label]), ref, tol))
        for rate, totals in resampled.items():
            ratio = Fraction(rate / fs).limit_denominator(1000)
            sig_r = resample_poly(signal, ratio.numerator, ratio.denominator)
            ref_r = np.round(ref * rate / fs).astype(np.int64)
            t_r = int(round(TOLERANCE_MS * rate / 1000.0))
            peaks_r, secs = _timed(detect_r_peaks, sig_r, rate)
            totals.add(detection_scores(peaks_r, ref_r, t_r), secs)
        progress.update(1, note=name)
    progress.done(f"ours {ours.line()}")

    print()
    print(f"ours (pipelines.signal.christov):      {ours.line()};  {ours.timing()}")
    print(f"  {ours.fp_in_vf} of our FP lie inside ventricular flutter/fibrillation episodes")
    if theirs.seconds:
        print(f"biosppy christov (fs + 1e-6):   {theirs.line()};  {theirs.timing(2)}")
        print(f"speed: ours is {np.mean(theirs.seconds) / np.mean(ours.seconds):.1f}x faster than biosppy in "
              f"wall-clock time, {np.mean(theirs.cpu_seconds) / np.mean(ours.cpu_seconds):.1f}x in CPU time "
              f"(all records: biosppy {np.sum(theirs.seconds):.1f} s, ours {np.sum(ours.seconds):.1f} s)")
    if ablation:
        print()
        print("| variant | TP | FP | FN | Se % | +P % |")
        print("|---|---|---|---|---|---|")
        for label, totals in ablation.items():
            print(f"| {label} | {totals.tp} | {totals.fp} | {totals.fn} | {totals.se:.2f} | {totals.ppv:.2f} |")
    for rate, totals in resampled.items():
        print(f"resampled to {rate:g} Hz: {totals.line()};  {totals.timing()}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
