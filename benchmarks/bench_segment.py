"""Benchmark the segment stage on all 48 MIT-BIH records, both methods, and verify its beat counts.

Prints, for the same run:

* ``annotations`` and ``christov`` stage runs, each the CLI in a fresh interpreter as DVC runs it
  (start-up + read + verify + segment + write Parquet + report) with all cores: wall time, beats/s,
  CPU seconds (this process's children, workers included), and the sum of both against the
  target of 30 s;
* two baselines measured in the same run, and the ratios to them (timings on a shared machine are
  noisy; the ratios much less so):
  - the same ``annotations`` stage with one worker (the speed-up from parallel records);
  - a naive recipe-style segmenter: ``wfdb.rdrecord``/``rdann`` with no verification, a Python loop
    slicing each beat, a pandas DataFrame written to Parquet;
* the check of the annotations method's per-symbol totals against the reference (109,494 beats)
  less only the edge beats (first and last beat of each record), as a table;
* the christov method's detection scores (TP, FP, FN, Se, +P at 150 ms) and unlabelled beats.

Usage::

    MITDB_DIR=/work/shared/data/mitdb .venv/bin/python benchmarks/bench_segment.py [--raw datasets/raw/mitdb]

``--raw`` is an ingest output (with ``manifest.json``); when it has none, the 48 records are ingested
into a temporary directory first (not timed). Exit status 1 when a count check fails.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import wfdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipelines.records.reader import load_manifest, resolve_source  # noqa: E402
from pipelines.signal.labels import BEAT_SYMBOLS  # noqa: E402

#: Reference beat annotations of MIT-BIH (all 48 records), per symbol.
REFERENCE = {"N": 75052, "L": 8075, "R": 7259, "V": 7130, "/": 7028, "A": 2546, "f": 982, "F": 803, "j": 229,
             "a": 150, "E": 106, "J": 83, "Q": 33, "e": 16, "S": 2}
REFERENCE_TOTAL = 109494
TARGET_S = 30.0


def _ingest(tmp: Path) -> Path:
    from pipelines.ingest import ingest
    from pipelines.core.params import load_params

    params = load_params(REPO / "params.yaml", "ingest")
    out = tmp / "raw"
    ingest(params, out, params_dir=REPO, environ=dict(os.environ), stream=io.StringIO())
    return out


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its finished children (the pool workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _stage(method: str, raw: Path, tmp: Path, workers: int | None) -> tuple[float, float, dict]:
    """Run the stage's CLI as DVC does (a fresh interpreter, imports included); wall and CPU s."""
    out, report = tmp / f"{method}-{workers}.parquet", tmp / f"{method}-{workers}.json"
    cmd = [sys.executable, "-m", "pipelines.segment", "--method", method, "--params", str(REPO / "params.yaml"),
           "--raw", str(raw), "--out", str(out), "--report", str(report)]
    if workers:
        cmd += ["--workers", str(workers)]
    cpu, start = _cpu(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"segment --method {method} failed:\n{proc.stderr}")
    return wall, _cpu() - cpu, json.loads(report.read_text())


def _naive(source: Path, names: list[str], out: Path) -> tuple[float, float, int]:
    """The recipe's way: unverified reads, one Python iteration per beat, a DataFrame, Parquet."""
    cpu, start = _cpu(), time.perf_counter()
    rows = []
    for name in names:
        rec = wfdb.rdrecord(str(source / name))
        ch = rec.sig_name.index("MLII") if "MLII" in rec.sig_name else 0
        sig = rec.p_signal[:, ch].astype(np.float32)
        ann = wfdb.rdann(str(source / name), "atr")
        beats = [(s, y) for s, y in zip(ann.sample, ann.symbol) if y in BEAT_SYMBOLS]
        for j in range(1, len(beats) - 1):
            r, sym = beats[j]
            s, e = beats[j - 1][0] + 20, beats[j + 1][0] - 20
            rows.append({"beat_id": f"{name}-{r}", "record": name, "r_sample": int(r), "symbol": sym,
                         "start": int(s), "end": int(e), "signal": sig[s:e]})
    df = pd.DataFrame(rows)
    df.to_parquet(out, compression="zstd", index=False)
    return time.perf_counter() - start, _cpu() - cpu, len(rows)


def _check_counts(report: dict) -> bool:
    total = report["total"]
    edge = total.get("dropped_symbols", {}).get("edge", {})
    print("\nannotations method: beats per symbol vs the reference less the edge beats")
    print(f"| symbol | reference | edge | expected | segment | ok |\n|---|---:|---:|---:|---:|---|")
    ok = True
    for sym in sorted(REFERENCE, key=lambda s: -REFERENCE[s]):
        expected = REFERENCE[sym] - edge.get(sym, 0)
        got = total["symbols"].get(sym, 0)
        ok &= got == expected and total["reference_symbols"].get(sym) == REFERENCE[sym]
        print(f"| {sym} | {REFERENCE[sym]:,} | {edge.get(sym, 0)} | {expected:,} | {got:,} | "
              f"{'yes' if got == expected else 'NO'} |")
    n_edge = sum(edge.values())
    print(f"| all | {REFERENCE_TOTAL:,} | {n_edge} | {REFERENCE_TOTAL - n_edge:,} | {total['beats']:,} | "
          f"{'yes' if total['beats'] == REFERENCE_TOTAL - n_edge else 'NO'} |")
    extra = set(total["symbols"]) - set(REFERENCE)
    other_drops = {k: v for k, v in total["dropped"].items() if k != "edge"}
    ok &= (total["reference_beats"] == REFERENCE_TOTAL and not extra and not other_drops
           and n_edge == 2 * total["records"])
    if other_drops or extra:
        print(f"unexpected: drops {other_drops}, symbols {sorted(extra)}")
    print(f"edge beats: {n_edge} (2 per record x {total['records']} records); other drops: "
          f"{other_drops or 'none'}; check: {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", default=str(REPO / "datasets/raw/mitdb"), help="ingest output with manifest.json")
    parser.add_argument("--workers", type=int, default=None, help="workers of the timed runs (default: all cores)")
    parser.add_argument("--no-baselines", action="store_true", help="skip the one-worker and naive baselines")
    args = parser.parse_args()
    if not os.environ.get("MITDB_DIR") and not (Path(args.raw) / "manifest.json").is_file():
        print("set MITDB_DIR to the MIT-BIH copy (or pass --raw with an ingested copy)", file=sys.stderr)
        return 2
    workers = args.workers or os.cpu_count()
    print(f"machine: {platform.machine()}, python {platform.python_version()}, {os.cpu_count()} cores, "
          f"numpy {np.__version__}, pyarrow {pa.__version__}, wfdb {wfdb.__version__}; "
          f"load average {os.getloadavg()[0]:.1f} at start")

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        raw = Path(args.raw)
        if not (raw / "manifest.json").is_file():
            raw = _ingest(tmp)
        manifest = load_manifest(raw)
        names = sorted(manifest["records"])
        print(f"records: {len(names)} from {resolve_source(raw)}; workers: {workers}\n")

        print("| run | workers | beats | wall s | beats/s | CPU s |\n|---|---:|---:|---:|---:|---:|")
        walls, cpus, reports = {}, {}, {}
        for method in ("annotations", "christov"):
            wall, cpu, report = _stage(method, raw, tmp, workers)
            walls[method], cpus[method], reports[method] = wall, cpu, report
            beats = report["total"]["beats"]
            print(f"| segment --method {method} | {workers} | {beats:,} | {wall:.2f} | {beats / wall:,.0f} | "
                  f"{cpu:.2f} |", flush=True)
        both, both_cpu = walls["annotations"] + walls["christov"], cpus["annotations"] + cpus["christov"]
        if not args.no_baselines:
            wall1, cpu1, rep1 = _stage("annotations", raw, tmp, 1)
            print(f"| segment --method annotations (baseline: 1 worker) | 1 | {rep1['total']['beats']:,} | "
                  f"{wall1:.2f} | {rep1['total']['beats'] / wall1:,.0f} | {cpu1:.2f} |", flush=True)
            wall_n, cpu_n, n_naive = _naive(resolve_source(raw), names, tmp / "naive.parquet")
            print(f"| naive recipe-style loop, jun windows (baseline) | 1 | {n_naive:,} | {wall_n:.2f} | "
                  f"{n_naive / wall_n:,.0f} | {cpu_n:.2f} |")
            print(f"\nspeed-up from {workers} workers (wall): {wall1 / walls['annotations']:.2f}x; annotations "
                  f"stage vs naive loop: {wall_n / walls['annotations']:.2f}x wall, {cpu_n / cpus['annotations']:.2f}x "
                  f"CPU ({wall_n / wall1:.2f}x wall with 1 worker, which also verifies SHA-256 and checksums)")
        print(f"both methods, 48 records: {both:.2f} s wall (target <= {TARGET_S:.0f} s: "
              f"{'met' if both <= TARGET_S else 'NOT met'}), {both_cpu:.2f} CPU s "
              f"(lower bound of the wall time on {os.cpu_count()} idle cores: {both_cpu / os.cpu_count():.2f} s); "
              f"load average now {os.getloadavg()[0]:.1f}")

        ok = _check_counts(reports["annotations"])
        classes = pd.read_parquet(tmp / f"annotations-{workers}.parquet", columns=["aami", "jun8"])
        for col in ("aami", "jun8"):
            counts = classes[col].value_counts(dropna=False)
            print(f"annotations by {col}: " + ", ".join(f"{'null' if pd.isna(k) else k} {v:,}"
                                                         for k, v in counts.items()))
        t = reports["christov"]["total"]
        print(f"\nchristov: {t['detections']:,} detections, TP {t['tp']:,}, FP {t['fp']:,}, FN {t['fn']:,}, "
              f"Se {100 * t['sensitivity']:.2f}%, +P {100 * t['ppv']:.2f}% "
              f"(tolerance {reports['christov']['tolerance_ms']:g} ms); {t['beats']:,} beats kept, "
              f"{t['unlabelled']:,} without a reference beat (null labels); dropped {t['dropped']}")
        print("christov beats by symbol: " + ", ".join(f"{k} {v:,}" for k, v in
                                                         sorted(t["symbols"].items(), key=lambda kv: -kv[1])))
        worst = sorted(reports["christov"]["records"].items(), key=lambda kv: kv[1]["sensitivity"] or 0)[:3]
        print("christov lowest sensitivity: " + ", ".join(
            f"{k} Se {100 * v['sensitivity']:.2f}% +P {100 * v['ppv']:.2f}%" for k, v in worst))
        print(f"load average {os.getloadavg()[0]:.1f} at end")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
