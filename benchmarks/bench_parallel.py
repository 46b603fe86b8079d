"""Is a task slower inside a dask worker than in a plain process? The digitiser's tasks, timed four ways.

The same batches of paper strips (``digitize.batch_strips`` each, from ``datasets/paper/clean``) are digitised
(:func:`pipelines.digitize.digitize_task`):

* ``in-process``: one after the other in this process;
* ``pool``: a ``multiprocessing`` pool of ``--workers`` processes (fork server);
* ``dask default``: a ``LocalCluster`` of ``--workers`` one-thread processes with dask's own nanny
  environment (``MALLOC_TRIM_THRESHOLD_=65536`` among it);
* ``dask project``: the same cluster with :data:`pipelines.core.parallel.LOCAL_CLUSTER_CONFIG` (what the
  stages use).

Each way runs in a fresh interpreter (``--only``): glibc reads ``MALLOC_TRIM_THRESHOLD_`` once, at process
start, and a fork server started by one way would hand its environment to the workers of the next.
Prints each task's own time (measured inside the task) and the wall time of the batch, and the ratio of the
mean task time to the in-process one. Task times, not wall times, show a per-task slowdown: on 2 cores
the wall time also carries the cluster's start-up.

Usage::

    python benchmarks/bench_parallel.py [--paper datasets/paper/clean] [--tasks 8] [--workers 2]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines import digitize as D  # noqa: E402
from pipelines.core.parallel import LOCAL_CLUSTER_CONFIG, LOCAL_START_METHOD  # noqa: E402

_CONFIG = None


def timed(batch) -> float:
    """Digitise one batch; its own seconds."""
    t = time.perf_counter()
    D.digitize_task(batch, _CONFIG)
    return time.perf_counter() - t


def _init(config) -> None:
    global _CONFIG
    _CONFIG = config


def _dask(batches, workers: int, config, env: dict) -> tuple[list[float], float]:
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({**env, "distributed.worker.multiprocessing-method": LOCAL_START_METHOD}):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=50) as cluster, Client(cluster) as client:
            client.run(_init, config)
            client.submit(abs, 1).result()
            t0 = time.perf_counter()
            times = client.gather(client.map(timed, batches, pure=False))
            return times, time.perf_counter() - t0


WAYS = ("in-process", "pool", "dask default", "dask project")


def measure(way: str, batches, workers: int, config) -> tuple[list[float], float]:
    """Task times and wall time of one way (see the module doc), in this interpreter."""
    _init(config)
    if way == "in-process":
        timed(batches[0])                                 # warm-up: first-call imports and caches
        t0 = time.perf_counter()
        return [timed(b) for b in batches], time.perf_counter() - t0
    if way == "pool":
        with mp.get_context(LOCAL_START_METHOD).Pool(workers, initializer=_init, initargs=(config,)) as pool:
            pool.map(timed, batches[:workers], chunksize=1)             # warm the workers
            t0 = time.perf_counter()
            return pool.map(timed, batches, chunksize=1), time.perf_counter() - t0
    project = {k: v for k, v in LOCAL_CLUSTER_CONFIG.items() if k.startswith("distributed.nanny")}
    return _dask(batches, workers, config, {} if way == "dask default" else project)


def main(argv: list[str] | None = None) -> int:
    import json
    import subprocess

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paper", type=Path, default=ROOT / "datasets/paper/clean")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", choices=WAYS, help="measure one way here and print it as JSON (used by the driver)")
    args = ap.parse_args(argv)
    params = yaml.safe_load(args.params.read_text())
    size = int(params["digitize"]["batch_strips"])
    if args.only:
        config = D.config_of(params["digitize"], params["paper"])
        batches = []
        for b in D._batches(args.paper, size):
            batches.append(b)
            if len(batches) == args.tasks:
                break
        times, wall = measure(args.only, batches, args.workers, config)
        print(json.dumps({"times": times, "wall": wall}))
        return 0
    results = {}
    for way in WAYS:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--only", way, "--paper", str(args.paper),
               "--params", str(args.params), "--tasks", str(args.tasks), "--workers", str(args.workers)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        doc = json.loads(out)
        results[way] = (doc["times"], doc["wall"])
    base = sum(results["in-process"][0]) / len(results["in-process"][0])
    print(f"{len(results['in-process'][0])} tasks of {size} strips, {args.workers} workers, each way in a fresh "
          "interpreter")
    for name, (times, wall) in results.items():
        mean = sum(times) / len(times)
        print(f"{name:<14} task mean {mean:5.2f} s ({mean / base:4.2f}x in-process)  wall {wall:5.2f} s  "
              f"tasks {' '.join(f'{t:.2f}' for t in times)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
