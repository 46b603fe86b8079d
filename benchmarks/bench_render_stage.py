"""Benchmark the render stage on the real beats table: wall time, images/s, peak RSS, vs PNG encoding.

What it prints (every figure measured in this run, on this machine):

1. PNG encoder sweep on real beat images (originals and crops, as the stage writes them): zlib
   levels 1..9, with the encoder's default (adaptive) row filter and with ``IMWRITE_PNG_FILTER_NONE``
   (what :func:`pipelines.formats.shards.encode_png` uses): images per CPU-second on one core and mean
   bytes per image.
2. The baseline: :func:`pipelines.formats.shards.encode_png` alone (``cv2.imencode``, the stage's settings),
   images per CPU-second on one core; and the stage's per-image CPU split (draw, crops, encode) on
   one chunk, in-process.
3. The whole stage as ``dvc repro`` runs it (``python -m pipelines.render``, a subprocess, all cores):
   wall time, images/s, peak RSS of the process tree (sum over the driver and its workers, sampled
   every 50 ms with psutil) and the largest single process (``getrusage``), and the ratio of the
   stage's images/s to ``cores x`` the one-core encode baseline (1.0 = the stage runs as fast as
   bare PNG encoding on every core); the PNG payload against the shard files' size.
4. Local cluster start-up time with forked and with spawned workers (skipped with ``--skip-sweep``).

The machine may be shared: the load average before and after is printed; compare ratios, not
absolute rates, across machines.

Usage::

    MITDB_DIR=/path/to/mitdb python benchmarks/bench_render_stage.py [--beats datasets/beats/annotations.parquet]
        [--workers 0] [--keep OUT_DIR] [--skip-sweep]

Without ``--beats`` it uses ``datasets/beats/annotations.parquet`` when present, else builds one in
a temporary directory with ``python -m pipelines.ingest`` and ``python -m pipelines.segment``
(needs ``MITDB_DIR``).
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipelines.core import parallel  # noqa: E402
from pipelines.formats import shards  # noqa: E402
from pipelines.formats.beats import gather_signals, read_beats  # noqa: E402
from pipelines.imaging import draw  # noqa: E402
from pipelines.imaging.draw import RenderConfig  # noqa: E402


def build_beats(workdir: Path) -> Path:
    """Build the annotations beats table from MITDB_DIR with the repo's ingest and segment stages."""
    if not os.environ.get("MITDB_DIR"):
        sys.exit("no beats table: pass --beats or set MITDB_DIR so that one can be built")
    raw, beats = workdir / "raw", workdir / "beats" / "annotations.parquet"
    print(f"building {beats} from MITDB_DIR={os.environ['MITDB_DIR']} (ingest + segment) ...", flush=True)
    for cmd in (["-m", "pipelines.ingest", "--params", "params.yaml", "--out", str(raw)],
                ["-m", "pipelines.segment", "--method", "annotations", "--params", "params.yaml", "--raw", str(raw),
                 "--out", str(beats), "--report", str(workdir / "segment.json")]):
        subprocess.run([sys.executable, *cmd], cwd=REPO, check=True, stderr=subprocess.DEVNULL)
    return beats


def sample_images(beats_path: Path, cfg: RenderConfig, n_beats: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """Originals and crops of a sample of real beats, in the stage's proportions; and a task's inputs."""
    beats = read_beats(beats_path)
    keep = np.flatnonzero(draw.exclusions(beats) == 0)
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(keep, size=min(n_beats, keep.size), replace=False))
    values, offsets = gather_signals(beats.values, beats.offsets, idx)
    augment = draw.augment_mask(beats.meta.column("symbol").take(idx), cfg.skip_symbols, cfg.materialise)
    return values, offsets, augment


def cpu_rate(fn, n_items: int, repeat: int = 3) -> float:
    """Items per CPU-second of this process (best of ``repeat``): robust to other processes' load."""
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return n_items / max(best, 1e-9)


def png_sweep(images: np.ndarray) -> None:
    print("\n## PNG encoder sweep (one core, images per CPU-second; mean bytes per image)")
    print(f"{len(images)} images of {images.shape[1]}x{images.shape[2]} (originals and crops)")
    print("| level | default (adaptive) filter: img/s | bytes | FILTER_NONE: img/s | bytes |")
    print("|---:|---:|---:|---:|---:|")
    for level in range(1, 10):
        row = [str(level)]
        for extra in ([], [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]):
            flags = [cv2.IMWRITE_PNG_COMPRESSION, level, *extra]
            sizes = [len(cv2.imencode(".png", im, flags)[1]) for im in images]
            rate = cpu_rate(lambda: [cv2.imencode(".png", im, flags) for im in images], len(images), repeat=2)
            row += [f"{rate:,.0f}", f"{np.mean(sizes):,.0f}"]
        print("| " + " | ".join(row) + " |", flush=True)


def chunk_profile(values: np.ndarray, offsets: np.ndarray, augment: np.ndarray, cfg: RenderConfig) -> np.ndarray:
    """CPU split of one task (draw, crops, encode) in this process; return the chunk's images."""
    from pipelines.imaging.crops import nine_crops

    w0 = time.perf_counter()
    draw.draw(values, offsets[:2], cfg)  # the first call loads (or compiles) the raster kernel
    warm = time.perf_counter() - w0
    t0 = time.process_time()
    images = draw.draw(values, offsets, cfg)
    t1 = time.process_time()
    crops = nine_crops(images[augment], crop=cfg.crop_size, offsets=cfg.crop_offsets, interpolation=cfg.interpolation)
    t2 = time.process_time()
    stack = np.concatenate([images, crops.reshape((-1,) + images.shape[1:])])
    shards.encode_png(stack, cfg.png_level)
    t3 = time.process_time()
    n = len(stack)
    total = t3 - t0
    print(f"\n## One task in-process ({len(images)} beats, {int(augment.sum())} with crops -> {n} images; CPU time)")
    print(f"draw {t1 - t0:.3f} s ({(t1 - t0) / total:.0%}), crops {t2 - t1:.3f} s ({(t2 - t1) / total:.0%}), "
          f"PNG encode {t3 - t2:.3f} s ({(t3 - t2) / total:.0%}); {n / total:,.0f} images per CPU-second "
          f"(not counting the first call's kernel load: {warm:.2f} s wall, once per process)")
    return stack


def _first_task(x: int) -> int:
    from pipelines.imaging import draw as _  # noqa: F401  (what a worker imports for its first task)
    return x


def cluster_startup(n_workers: int = 2) -> None:
    """Seconds to start a local cluster and run a first task, per worker start method."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    print(f"\n## Local cluster start-up ({n_workers} workers, until a first task has run on each)")
    import multiprocessing

    multiprocessing.get_context("forkserver").set_forkserver_preload(parallel.forkserver_preload(draw.render_chunk))
    for method in ("forkserver", "spawn"):
        t = time.perf_counter()
        with dask.config.set({"distributed.worker.multiprocessing-method": method}):
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
        with cluster, Client(cluster, set_as_default=False) as client:
            client.gather([client.submit(_first_task, i, pure=False) for i in range(n_workers)])
            up = time.perf_counter() - t
        print(f"{method}: {up:.1f} s" + (" (the stage's choice)" if method == parallel.LOCAL_START_METHOD else ""))


def payload_vs_files(out: Path, manifest: dict) -> None:
    """PNG bytes in the shards against the shard files' size (zstd on the PNG bytes, metadata)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    png = 0
    for entry in manifest["shards"]:
        col = pq.read_table(out / entry["file"], columns=["image"]).column("image").combine_chunks()
        png += int(pc.sum(pc.binary_length(col.field("bytes"))).as_py() or 0)
    print(f"PNG payload {png / 1e6:,.1f} MB ({png / manifest['rows']:,.0f} bytes/image); shard files "
          f"{manifest['bytes'] / 1e6:,.1f} MB ({manifest['bytes'] / png - 1:+.1%}: Parquet zstd on top of PNG, "
          "plus the label columns)")


class TreeRss:
    """Sample a process and its descendants every ``interval`` s: peak summed RSS, CPU time per process.

    CPU is the last user + system time seen for each process of the tree (the driver, the dask fork
    server and its workers), summed: ``getrusage(RUSAGE_CHILDREN)`` would miss the workers, whose
    parent is the fork server, not the driver.
    """

    def __init__(self, pid: int, interval: float = 0.05):
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.peak_procs = 0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.proc] + self.proc.children(recursive=True)
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                        t = p.cpu_times()
                        self.cpu[p.pid] = t.user + t.system
                    except psutil.Error:
                        pass
                if total > self.peak:
                    self.peak, self.peak_procs = total, len(procs)
            except psutil.Error:
                pass
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_stage(beats: Path, out: Path, params: dict) -> tuple[float, int, float, float, str]:
    """Run ``python -m pipelines.render`` as dvc would.

    Returns wall seconds, peak RSS of the process tree, largest single-process RSS, CPU seconds of
    the whole tree (sampled per process, see :class:`TreeRss`) and the stage's summary line.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    params_file = out.parent / "bench_params.yaml"
    params_file.write_text(yaml.safe_dump({"render": params}))
    cmd = [sys.executable, "-m", "pipelines.render", "--method", "annotations", "--params", str(params_file),
           "--beats", str(beats), "--out", str(out)]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    sampler = TreeRss(proc.pid)
    _, err = proc.communicate()
    wall = time.perf_counter() - t
    sampler.stop()
    if proc.returncode:
        sys.exit(f"render stage failed:\n{err}")
    child_max = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux: KiB
    cpu = sum(sampler.cpu.values())
    summary = [line for line in err.splitlines() if "done in" in line][-1]
    return wall, sampler.peak, child_max, cpu, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--beats", type=Path, default=None)
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml")
    ap.add_argument("--workers", type=int, default=None, help="override render.workers (0 = all cores)")
    ap.add_argument("--keep", type=Path, default=None, help="write the shards here instead of a temp dir")
    ap.add_argument("--skip-sweep", action="store_true", help="skip the PNG level sweep")
    ap.add_argument("--serial", action="store_true",
                    help="also run the stage in one process (workers: 1): its CPU-seconds are the work itself, "
                         "without the parallel run's scheduler and contention")
    args = ap.parse_args()

    params = yaml.safe_load(args.params.read_text())["render"]
    if args.workers is not None:
        params["workers"] = args.workers
    cfg = RenderConfig.from_params(params)
    cores = os.cpu_count() or 1
    print(f"# render stage benchmark\nmachine: {cores} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
          f"{sys.platform}; python {sys.version.split()[0]}, opencv {cv2.__version__}; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")

    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        tmp = Path(tmp)
        beats = args.beats or (REPO / "datasets/beats/annotations.parquet")
        if not beats.is_file():
            beats = build_beats(tmp)
        print(f"beats table: {beats} ({beats.stat().st_size / 1e6:,.1f} MB)")

        values, offsets, augment = sample_images(beats, cfg)
        stack = chunk_profile(values, offsets, augment, cfg)
        if not args.skip_sweep:
            png_sweep(stack[:: max(1, len(stack) // 1500)])
        base = cpu_rate(lambda: shards.encode_png(stack, cfg.png_level), len(stack))
        print(f"\n## Baseline: encode_png alone (level {cfg.png_level}, stage settings), one core: "
              f"{base:,.0f} images per CPU-second")

        out = (args.keep or tmp / "images" / "annotations").resolve()
        wall, tree_peak, proc_peak, cpu, summary = run_stage(beats, out, params)
        manifest = shards.read_manifest(out)
        rows = manifest["rows"]
        rate = rows / wall
        workers = cfg.n_workers() if not cfg.scheduler_address() else "cluster"
        print(f"\n## Stage: python -m pipelines.render (workers={workers}, engine={cfg.engine}, "
              f"crops materialised={cfg.materialise})")
        print(summary)
        print(f"wall {wall:.1f} s (incl. interpreter start and local cluster start-up), {rows:,} images "
              f"({manifest['beats']:,} beats), {rate:,.0f} images/s, {manifest['bytes'] / 1e6:,.1f} MB in "
              f"{len(manifest['shards'])} shards ({manifest['bytes'] / rows:,.0f} bytes/image)")
        print(f"peak RSS: process tree {tree_peak / 2**30:.2f} GiB (sum over driver, fork server, workers), "
              f"largest reaped process {proc_peak / 2**30:.2f} GiB (getrusage; the driver)")
        print(f"ratio: stage images/s / ({cores} cores x one-core encode baseline) = {rate / (cores * base):.2f}; "
              f"stage images/s / one-core baseline = {rate / base:.2f}")
        print(f"CPU: {cpu:,.1f} CPU-seconds for the whole process tree = {cpu / rows * 1e6:,.0f} us/image "
              f"(encode alone: {1e6 / base:,.0f} us/image, i.e. encoding is {1e6 / base / (cpu / rows * 1e6):.0%} "
              f"of the stage's CPU); the stage got {cpu / (wall * cores):.0%} of {cores} cores during its wall time")
        print(f"CPU-bound wall on {cores} idle cores (estimate = CPU-seconds / cores, not a measurement): "
              f"{cpu / cores:,.1f} s, {rows / (cpu / cores):,.0f} images/s")
        payload_vs_files(out, manifest)
        if args.serial:
            serial_out = tmp / "serial" / "annotations"
            s_wall, _, _, s_cpu, _ = run_stage(beats, serial_out, {**params, "workers": 1})
            same = all((serial_out / e["file"]).read_bytes() == (out / e["file"]).read_bytes()
                       for e in manifest["shards"])
            print(f"serial (workers: 1): wall {s_wall:.1f} s, {s_cpu:,.1f} CPU-seconds = {s_cpu / rows * 1e6:,.0f} "
                  f"us/image; parallel/serial CPU = {cpu / s_cpu:.2f}; shards byte-identical to the parallel run: "
                  f"{same}")
        print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        if not args.skip_sweep:
            cluster_startup(min(2, cores))


if __name__ == "__main__":
    main()
