"""Benchmark record reading and the ingest stage on MIT-BIH, pinned to one CPU core.

Prints, for the same run:

* ``read_record`` of one 30-min record (best and median of ``--repeat``) for 100 and 208
  (208 has the most annotations), against the target of 0.3 s;
* a full ``ingest`` (48 records: SHA-256, sizes, checksums, annotations, manifest) against the
  target of 10 s;
* the baseline: bare ``wfdb.rdrecord`` + ``wfdb.rdann`` of the same 48 records with no checks,
  and the ratio ingest / baseline (timings on a shared machine are noisy; the ratio is not).

Usage::

    MITDB_DIR=/work/shared/data/mitdb .venv/bin/python benchmarks/bench_ingest.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import wfdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipelines.records.reader import read_record  # noqa: E402
from pipelines.ingest import ingest  # noqa: E402
from pipelines.records.checksums import group_by_record, read_checksum_file  # noqa: E402
from pipelines.core.params import load_params  # noqa: E402


def _timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the first allowed)")
    args = parser.parse_args()
    source = os.environ.get("MITDB_DIR")
    if not source:
        print("skipped: set MITDB_DIR to the MIT-BIH copy", file=sys.stderr)
        return 0
    if hasattr(os, "sched_setaffinity"):
        cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    params = load_params(REPO / "params.yaml", "ingest")
    pins = group_by_record(read_checksum_file(REPO / params["checksums"]))
    names = sorted(pins)
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}, python {platform.python_version()}, "
          f"wfdb {wfdb.__version__}, pinned to 1 core, {os.cpu_count()} cores visible")

    for name in ("100", "208"):
        read_record(source, name, expected_sha256=pins[name])  # warm the page cache
        times = _timed(lambda: read_record(source, name, expected_sha256=pins[name]), args.repeat)
        print(f"read_record {name} (verify + read, 650,000 x 2 samples): best {min(times):.3f} s, "
              f"median {statistics.median(times):.3f} s (target < 0.3 s)")

    def baseline() -> None:
        for n in names:
            wfdb.rdrecord(os.path.join(source, n))
            wfdb.rdann(os.path.join(source, n), "atr")

    def full_ingest() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            ingest(params, Path(tmp) / "mitdb", params_dir=REPO, environ={"MITDB_DIR": source},
                   stream=io.StringIO())

    base, full = [], []
    for _ in range(max(1, args.repeat // 2)):  # interleaved, so that both see the same machine load
        base += _timed(baseline, 1)
        full += _timed(full_ingest, 1)
    print(f"baseline (bare wfdb.rdrecord + rdann, {len(names)} records, no checks): best {min(base):.2f} s")
    print(f"ingest ({len(names)} records, read + verify + manifest): best {min(full):.2f} s, "
          f"median {statistics.median(full):.2f} s (target < 10 s)")
    print(f"ratio ingest / baseline: {min(full) / min(base):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
