"""Run independent tasks on dask.distributed and stream their results back in task order.

The one parallelism mechanism of the data stages (segment: one task per record; render: one task
per chunk of beats). :func:`run_tasks` submits ``fn(*args)`` for each task and yields the results in
the order of the tasks, with at most :data:`IN_FLIGHT_PER_WORKER` tasks per worker thread in flight,
so the driver's memory is bounded by the tasks in flight, not by the whole job. Where it runs:

* ``scheduler`` (or the environment variable ``DASK_SCHEDULER_ADDRESS`` when it is None): the address
  of a running ``dask.distributed`` scheduler; its workers must be able to import ``fn``'s module.
* otherwise ``workers`` > 1: a local ``dask.distributed.LocalCluster`` of that many processes (one
  thread each), started for the duration of the run by a fork server (:data:`LOCAL_START_METHOD`);
* otherwise (one worker): the tasks run in this process, one after the other.

A worker lost mid-run is survived: the scheduler reruns its tasks elsewhere. Results never depend on
the scheduler or the number of workers, so neither belongs in an output's provenance.

Examples
--------
>>> list(run_tasks(abs, [(-1,), (2,), (-3,)], workers=1))
[1, 2, 3]
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from .system import usable_cpus

#: Tasks in flight per worker thread (bounds the driver's memory).
IN_FLIGHT_PER_WORKER = 2

#: How the local cluster starts its worker processes. ``forkserver`` (on Linux): a fresh server
#: process imports the task's module once (see :func:`forkserver_preload`) and forks each worker from
#: itself, so workers start with numpy, pyarrow, OpenCV and the pipeline already imported (``spawn``
#: re-imports them in every worker; ``benchmarks/bench_render_stage.py`` times both). Plain ``fork``
#: of the driver would be faster still but is unsafe: a driver that has used OpenCV's thread pool
#: (a notebook, the test session) leaves its forked children a broken pool, and they crash.
LOCAL_START_METHOD = ("forkserver" if sys.platform.startswith("linux")
                      and "forkserver" in multiprocessing.get_all_start_methods() else "spawn")

#: Modules the fork server always imports before forking workers.
WORKER_MODULES: tuple[str, ...] = ("distributed.nanny", "distributed.worker")

#: dask config of the local cluster: the start method, and none of the diagnostics nobody looks at
#: during a stage run (the statistical profiler samples every thread every 10 ms, the GIL monitor
#: every 1 ms, the event-loop health check every 20 ms): they cost CPU in every worker all run long.
#: The nanny's environment keeps one BLAS/OpenMP thread per worker but not dask's default
#: ``MALLOC_TRIM_THRESHOLD_=65536``: with it glibc hands freed memory back to the kernel at every large
#: ``free``, and the next array faults it in again. A digitiser task took 2.90 s in a worker with it,
#: 1.74 s without it and 1.22 s in a plain process (``python benchmarks/bench_parallel.py``,
#: docs/benchmarks/digitize.md): with it, two workers ran no faster than one.
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.worker.multiprocessing-method": LOCAL_START_METHOD,
    "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1},
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.tick.interval": "200ms",
}


def scheduler_address(scheduler: str | None = None, environ: dict[str, str] | None = None) -> str | None:
    """``scheduler``, else ``$DASK_SCHEDULER_ADDRESS``, else None (run locally).

    Examples
    --------
    >>> scheduler_address(None, {"DASK_SCHEDULER_ADDRESS": "tcp://10.0.0.1:8786"})
    'tcp://10.0.0.1:8786'
    >>> scheduler_address("tcp://h:1", {"DASK_SCHEDULER_ADDRESS": "tcp://10.0.0.1:8786"})
    'tcp://h:1'
    >>> scheduler_address(None, {}) is None
    True
    """
    environ = os.environ if environ is None else environ
    return scheduler or environ.get("DASK_SCHEDULER_ADDRESS") or None


def local_workers(workers: int | None) -> int:
    """Local worker processes: ``workers``, or the CPUs this process may use when 0 or None.

    Examples
    --------
    >>> local_workers(3)
    3
    >>> local_workers(0) == local_workers(None) >= 1
    True
    """
    return int(workers) if workers else usable_cpus()


def forkserver_preload(fn: Callable[..., Any]) -> list[str]:
    """Modules a fork server imports before forking workers: ``fn``'s module and :data:`WORKER_MODULES`.

    Examples
    --------
    >>> forkserver_preload(forkserver_preload)
    ['pipelines.core.parallel', 'distributed.nanny', 'distributed.worker']
    """
    module = getattr(fn, "__module__", None)
    first = [module] if module and module != "__main__" and not module.startswith("builtins") else []
    return first + list(WORKER_MODULES)


def in_dask_worker() -> bool:
    """True inside a dask.distributed worker (without importing distributed elsewhere).

    Examples
    --------
    >>> in_dask_worker()
    False
    """
    dist = sys.modules.get("distributed")
    if dist is None:
        return False
    try:
        dist.get_worker()
    except ValueError:
        return False
    return True


def run_tasks(fn: Callable[..., Any], tasks: Iterable[Sequence[Any]], *, scheduler: str | None = None,
              workers: int | None = 1) -> Iterator[Any]:
    """Yield ``fn(*args)`` for each ``args`` of ``tasks``, in task order, computed where the module doc says.

    Parameters
    ----------
    fn : callable
        The task; picklable (a module-level function) unless it runs in this process.
    tasks : iterable of tuples
        Arguments of each task; consumed lazily, a few tasks ahead of the results.
    scheduler : str, optional
        Address of a running dask.distributed scheduler (else ``$DASK_SCHEDULER_ADDRESS``).
    workers : int, optional
        Local worker processes when no scheduler is given; 0 or None: the usable CPUs; 1: this process.

    Notes
    -----
    This is a generator: a local cluster starts at the first ``next()`` and stops when the generator
    is exhausted or closed (closing it early cancels the tasks still in flight). An exception raised
    by a task is raised here, at its place in the order.
    """
    address = scheduler_address(scheduler)
    n_workers = local_workers(workers)
    if address is None and n_workers == 1:
        for args in tasks:
            yield fn(*args)
        return
    import dask
    from distributed import Client, LocalCluster

    if address is not None:
        with Client(address, set_as_default=False) as client:
            yield from _stream(client, fn, tasks)
        return
    if LOCAL_START_METHOD == "forkserver":
        multiprocessing.get_context("forkserver").set_forkserver_preload(forkserver_preload(fn))
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        # Workers log at CRITICAL only: a task's exception reaches the driver through its future
        # anyway, and at shutdown a worker's heartbeat racing the closing scheduler would print a
        # harmless "Failed to communicate with scheduler" traceback.
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.CRITICAL)
        with cluster, Client(cluster, set_as_default=False) as client:
            yield from _stream(client, fn, tasks)


def _stream(client: Any, fn: Callable[..., Any], tasks: Iterable[Sequence[Any]]) -> Iterator[Any]:
    """Submit tasks to ``client`` a bounded window ahead; yield results in order; cancel leftovers."""
    threads = max(1, sum(client.nthreads().values()))
    window = IN_FLIGHT_PER_WORKER * threads + 1
    pending: deque = deque()
    try:
        for args in tasks:
            pending.append(client.submit(fn, *args, pure=False))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()


@dataclass(frozen=True)
class TaskFailure:
    """A worker's exception as plain data, carried back in task order (a DataError does not pickle).

    Examples
    --------
    >>> from pipelines.core.errors import DataError
    >>> f = TaskFailure.of("100", DataError("mitdb/100.hea", "bad gain"), "mitdb/100")
    >>> f.kind, f.where, f.problem
    ('DataError', 'mitdb/100.hea', 'bad gain')
    >>> f.reraise("segmentation")
    Traceback (most recent call last):
    ...
    pipelines.core.errors.DataError: mitdb/100.hea: bad gain
    """

    record: str
    kind: str
    where: str
    problem: str
    trace: str

    @classmethod
    def of(cls, record: str, exc: BaseException, where: str) -> "TaskFailure":
        """From the exception being handled: a DataError keeps its own place; any other exception is
        named by ``where`` and keeps its traceback."""
        import traceback

        from .errors import ChecksumError, DataError

        if isinstance(exc, DataError):
            kind = "ChecksumError" if isinstance(exc, ChecksumError) else "DataError"
            return cls(record, kind, exc.where, exc.problem, traceback.format_exc())
        return cls(record, type(exc).__name__, where, f"{type(exc).__name__}: {exc}", traceback.format_exc())

    def reraise(self, what: str) -> None:
        """Raise it again in the driver: the same DataError, or a RuntimeError naming ``what`` failed."""
        from .errors import ChecksumError, DataError

        if self.kind == "ChecksumError":
            raise ChecksumError(self.where, self.problem)
        if self.kind == "DataError":
            raise DataError(self.where, self.problem)
        raise RuntimeError(f"{self.where}: {what} failed: {self.problem}\n{self.trace}")
