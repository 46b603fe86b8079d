"""pipelines.core.parallel: tasks in order, bounded in flight; segment and render on a dask cluster by address."""
from __future__ import annotations

import logging
import operator
from pathlib import Path

import pytest

from pipelines.core import parallel
from pipelines.core.parallel import forkserver_preload, local_workers, run_tasks, scheduler_address
from tests.conftest import require
from tests.test_segment import _params, _synthetic, _write_db


def test_in_process_run_keeps_task_order_and_laziness():
    seen = []

    def tasks():
        for i in range(5):
            seen.append(i)
            yield (i, 3)

    results = run_tasks(pow, tasks(), workers=1)
    assert seen == []  # nothing runs before the first result is asked for
    assert next(results) == 0 and seen == [0]
    assert list(results) == [1, 8, 27, 64]


def test_task_error_is_raised_at_its_place():
    results = run_tasks(int, [("1",), ("2",), ("x",), ("4",)], workers=1)
    assert next(results) == 1 and next(results) == 2
    with pytest.raises(ValueError, match="'x'"):
        next(results)


def test_scheduler_address_param_then_environment(monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://env:8786")
    assert scheduler_address(None) == "tcp://env:8786"
    assert scheduler_address("tcp://param:1") == "tcp://param:1"
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
    assert scheduler_address(None) is None and scheduler_address("") is None


def test_local_workers_and_preload():
    assert local_workers(2) == 2 and local_workers(0) >= 1
    assert forkserver_preload(operator.add)[-2:] == ["distributed.nanny", "distributed.worker"]
    from pipelines.imaging.draw import render_chunk
    assert forkserver_preload(render_chunk)[0] == "pipelines.imaging.draw"


class _Future:
    def __init__(self, log, value):
        self.log, self.value, self.cancelled = log, value, False

    def result(self):
        self.log.append(("result", self.value))
        return self.value

    def cancel(self):
        self.cancelled = True


class _FakeClient:
    """Records submissions and results: enough to check the in-flight window without a cluster."""

    def __init__(self, threads):
        self.threads, self.log, self.futures = threads, [], []

    def nthreads(self):
        return {f"w{i}": 1 for i in range(self.threads)}

    def submit(self, fn, *args, pure=True):
        self.log.append(("submit", args[0]))
        self.futures.append(_Future(self.log, fn(*args)))
        return self.futures[-1]


def test_stream_bounds_tasks_in_flight_and_cancels_leftovers():
    client = _FakeClient(threads=2)
    window = parallel.IN_FLIGHT_PER_WORKER * 2 + 1
    stream = parallel._stream(client, operator.neg, ((i,) for i in range(20)))
    got = [next(stream) for _ in range(3)]
    assert got == [0, -1, -2]
    in_flight, peak = 0, 0
    for kind, _ in client.log:
        in_flight += 1 if kind == "submit" else -1
        peak = max(peak, in_flight)
    assert peak == window  # never more than the window submitted ahead of the results
    stream.close()
    assert all(f.cancelled for f in client.futures[3:]) and not any(f.cancelled for f in client.futures[:3])


# ------------------------------------------------------------------------------ on a dask.distributed cluster

@pytest.fixture(scope="module")
def cluster():
    distributed = require("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                  silence_logs=logging.ERROR) as c:
        yield c


@pytest.mark.slow
def test_run_tasks_on_a_cluster_by_address(cluster):
    assert list(run_tasks(pow, [(i, 2) for i in range(25)], scheduler=cluster.scheduler_address)) == \
        [i * i for i in range(25)]


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_segment_and_render_on_a_cluster_match_the_local_run(tmp_path, cluster, monkeypatch):
    """Both stages, on a 2-worker LocalCluster given by address (param, then env), write the local run's bytes."""
    from pipelines import segment
    from pipelines.render import RenderConfig, run_render

    monkeypatch.delenv("MITDB_DIR", raising=False)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    raw = _write_db(tmp_path / "raw", {"100": _synthetic(14, seed=1), "101": _synthetic(11, seed=2),
                                       "102": _synthetic(9, seed=3, fs=250.0)})
    outputs = {}
    for name, seg_params, env in (("local", {"workers": 1}, None),
                                  ("param", {"scheduler": cluster.scheduler_address}, None),
                                  ("env", {"workers": 3}, cluster.scheduler_address)):
        if env:
            monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", env)
        work = tmp_path / name
        work.mkdir()
        params = _params(work, **seg_params)
        for method in ("annotations", "christov"):
            assert segment.main(["--method", method, "--params", str(params), "--raw", str(raw),
                                 "--out", str(work / f"{method}.parquet"),
                                 "--report", str(work / f"{method}.json")]) == 0
        images = work / "images"
        render_params = {"shard_mb": 0.2, "row_group_rows": 32}
        render_params.update({"workers": 1} if name == "local" else
                             {"scheduler": cluster.scheduler_address} if name == "param" else {"workers": 3})
        from pipelines.imaging import draw
        monkeypatch.setattr(draw, "CHUNK_ROWS", 40)  # many tasks
        run_render("annotations", work / "annotations.parquet", images, RenderConfig.from_params(render_params))
        monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
        outputs[name] = _tree_bytes(work)
    del outputs["local"]["params.yaml"], outputs["param"]["params.yaml"], outputs["env"]["params.yaml"]
    assert outputs["local"] == outputs["param"] == outputs["env"]
    assert any(k.endswith(".parquet") and k.startswith("images") for k in outputs["local"])
