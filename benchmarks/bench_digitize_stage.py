"""The digitize stage as ``dvc repro`` runs it: wall time and peak memory of its process tree.

Runs ``python -m pipelines.digitize --params params.yaml --paper datasets/paper --out <scratch dir>`` (every
variant of ``digitize.variants``, the paper stage's output as input) in a subprocess and samples the RSS of
the driver, the dask fork server and its workers every 50 ms (:class:`bench_render_stage.TreeRss`). Prints the
stage's own summary line, the wall time, the peak RSS of the whole tree and of its largest process (the
issue's limit is 2 GB), and checks that the files equal ``datasets/digitized/`` (byte-identical rebuild).

Usage::

    python benchmarks/bench_digitize_stage.py [--paper datasets/paper] [--params params.yaml]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_render_stage import TreeRss  # noqa: E402


class LargestRss(TreeRss):
    """:class:`TreeRss` (peak RSS of the process tree, summed) that also keeps the largest single process's."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.largest = 0
        super().__init__(pid, interval)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.proc] + self.proc.children(recursive=True)
            except psutil.Error:
                procs = []
            total = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                self.largest = max(self.largest, rss)
            if total > self.peak:
                self.peak, self.peak_procs = total, len(procs)
            self._stop.wait(self.interval)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paper", default=str(ROOT / "datasets" / "paper"))
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--reference", default=str(ROOT / "datasets" / "digitized"),
                    help="the stage's committed output, compared byte for byte")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "digitized"
        cmd = [sys.executable, "-m", "pipelines.digitize", "--params", args.params, "--paper", args.paper,
               "--out", str(out)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        tree = LargestRss(proc.pid)
        _, err = proc.communicate()
        wall = time.perf_counter() - t0
        tree.stop()
        if proc.returncode:
            print(err, file=sys.stderr)
            return proc.returncode
        summary = [line for line in err.splitlines() if " done in " in line]
        files = sorted(p.name for p in out.glob("*.parquet"))
        ref = Path(args.reference)
        expected = sorted(p.name for p in ref.glob("*.parquet"))
        same = [f for f in files if (ref / f).is_file() and (ref / f).read_bytes() == (out / f).read_bytes()]
    print(summary[-1] if summary else "(no summary line)")
    print(f"wall {wall:.1f} s (the process: imports, worker pool, {len(files)} files written)")
    print(f"peak RSS: process tree {tree.peak / 2**30:.2f} GiB ({tree.peak_procs} processes), "
          f"largest process {tree.largest / 2**30:.2f} GiB (limit 2 GB)")
    print(f"byte-identical to {ref}: {len(same)}/{len(files)} files"
          + ("" if files == expected else f"; the reference has {expected}"))
    return 0 if files and files == expected and len(same) == len(files) else 1


if __name__ == "__main__":
    sys.exit(main())
