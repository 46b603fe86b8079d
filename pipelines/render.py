"""Render stage: a beats table -> the dataset's public image shards (``datasets/images/<method>/``).

Each beat window of ``datasets/beats/<method>.parquet`` is drawn as a ``size`` x ``size`` 8-bit
grayscale image (``render.engine``: :func:`pipelines.imaging.raster.render_beats`, or the published recipe's
matplotlib drawing :func:`pipelines.imaging.recipe.render_beats`). Beats whose symbol is not in
``render.crops.skip_symbols`` (and is not null) also get the nine crops of
:func:`pipelines.imaging.crops.nine_crops` as rows ``crop`` 1..9 when ``render.crops.materialise`` is true.
Every image is PNG-encoded (:func:`pipelines.formats.shards.encode_png`) and written to Parquet shards
(:class:`pipelines.formats.shards.ShardWriter`) whose format is public: see ``docs/dataset.md``.

Beside the shards: ``manifest.json`` (params, input provenance, counts, exclusions, shard SHA-256s,
schema), ``README.md`` (dataset card) and ``croissant.json`` (:mod:`pipelines.formats.card`).

Usage (the ``render`` stage of ``dvc.yaml``)::

    python -m pipelines.render --method annotations --params params.yaml \\
        --beats datasets/beats/annotations.parquet --out datasets/images/annotations

Parallelism: the beats are cut into chunks of about :data:`CHUNK_ROWS` images; each chunk is one
dask task (draw, crop, PNG-encode) and returns its encoded rows. The driver consumes the results in
chunk order, with at most a few tasks in flight, and streams them into the shards, so memory is
bounded by the shard writer and the tasks in flight, not by the dataset. Scheduler:

* ``render.scheduler`` (or the environment variable ``DASK_SCHEDULER_ADDRESS`` when the param is
  null): the address of a running ``dask.distributed`` scheduler; its workers must be able to import
  this repository's ``pipelines`` package.
* otherwise a local ``dask.distributed.LocalCluster`` of ``render.workers`` processes (one thread
  each; 0 = the CPUs this process may use; started by a fork server, see :data:`LOCAL_START_METHOD`), or,
  with one worker, the same tasks run in this process.

A worker lost mid-run (killed, out of memory) is survived: the scheduler reruns its tasks
elsewhere. The output is byte-identical whatever the scheduler and number of workers: chunking does
not depend on them and the shard writer's layout depends only on the rows.

Beats that cannot be drawn are excluded and counted in the manifest per reason: fewer than 2
samples (``too_short``) or a NaN or infinite sample (``non_finite``).

Everything is written into a temporary directory beside ``--out`` and swapped in at the end
(:func:`pipelines.core.files.atomic_dir`): an error or a kill mid-run leaves the previous output (or none).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .formats import shards
from .formats.card import write_card
from .core.errors import ConfigError, DataError
from .core.files import atomic_dir, sha256_file, write_json
from .core.progress import Progress
from .core.system import usable_cpus
from .imaging.crops import INTERPOLATIONS as crop_interpolations
from .imaging.crops import nine_crops
from .core.params import load_params, params_hash

#: Drawing engines (``render.engine``).
ENGINES: tuple[str, ...] = ("raster", "matplotlib")

#: Crop resize interpolations (``render.crops.interpolation``), as :mod:`pipelines.imaging.crops` knows them.
INTERPOLATIONS: tuple[str, ...] = tuple(crop_interpolations)

#: Parquet codecs accepted for ``render.compression``.
COMPRESSIONS: tuple[str, ...] = ("zstd", "snappy", "gzip", "brotli", "lz4", "none")

#: Images per task (a chunk ends at the beat that reaches this many rows). About 64 MB of
#: pixels at 128 x 128, under half a second of work on one core.
CHUNK_ROWS = 4096

#: Tasks in flight per worker thread (bounds the driver's memory).
IN_FLIGHT_PER_WORKER = 2

#: Exclusion reasons, in the manifest's order.
EXCLUSION_REASONS: tuple[str, ...] = ("too_short", "non_finite")

#: At most this many excluded beat ids are listed per reason in the manifest.
MAX_LISTED_EXCLUSIONS = 1000

#: Beats-table columns the stage reads (``lead``, ``fs``, ``start``, ``end`` are not needed).
BEAT_COLUMNS: tuple[str, ...] = ("beat_id", "record", "r_sample", "symbol", "aami", "jun8", "signal")

#: Parameters that change how the work runs but never the output (kept out of the manifest).
EXECUTION_PARAMS: tuple[str, ...] = ("scheduler", "workers")


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RenderConfig:
    """The ``render`` section of ``params.yaml``, validated.

    Examples
    --------
    >>> cfg = RenderConfig.from_params({"engine": "raster", "crops": {"interpolation": "linear"}})
    >>> cfg.size, cfg.crop_offsets, cfg.skip_symbols
    (128, (0, 16, 32), ('N',))
    >>> RenderConfig.from_params({"engine": "svg"})
    Traceback (most recent call last):
    ...
    pipelines.core.errors.ConfigError: render.engine: unknown engine 'svg'; expected one of ['matplotlib', 'raster']
    """

    engine: str = "raster"
    size: int = 128
    margin: float = 0.05
    line_width: float = 1.5
    materialise: bool = True
    crop_size: int = 96
    crop_offsets: tuple[int, ...] = (0, 16, 32)
    interpolation: str = "linear"
    skip_symbols: tuple[str, ...] = ("N",)
    shard_mb: float = 100.0
    row_group_rows: int = 4096
    compression: str = "zstd"
    png_level: int = shards.DEFAULT_PNG_LEVEL
    scheduler: str | None = None
    workers: int = 0

    @classmethod
    def from_params(cls, render: Mapping[str, Any]) -> "RenderConfig":
        """Build from the ``render`` params section; raise :class:`ConfigError` on bad values."""
        if not isinstance(render, Mapping):
            raise ConfigError("render: expected a mapping of render params")
        crops = render.get("crops") or {}
        if not isinstance(crops, Mapping):
            raise ConfigError("render.crops: expected a mapping")
        d = cls()
        try:
            cfg = cls(
                engine=str(render.get("engine", d.engine)),
                size=int(render.get("size", d.size)),
                margin=float(render.get("margin", d.margin)),
                line_width=float(render.get("line_width", d.line_width)),
                materialise=bool(crops.get("materialise", d.materialise)),
                crop_size=int(crops.get("size", d.crop_size)),
                crop_offsets=tuple(int(o) for o in crops.get("offsets", d.crop_offsets)),
                interpolation=str(crops.get("interpolation", d.interpolation)),
                skip_symbols=tuple(str(s) for s in (crops.get("skip_symbols", d.skip_symbols) or ())),
                shard_mb=float(render.get("shard_mb", d.shard_mb)),
                row_group_rows=int(render.get("row_group_rows", d.row_group_rows)),
                compression=str(render.get("compression", d.compression)).lower(),
                png_level=int(render.get("png_level", d.png_level)),
                scheduler=(str(render["scheduler"]) if render.get("scheduler") else None),
                workers=int(render.get("workers", d.workers)),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"render: bad value ({exc})") from None
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first param that cannot work."""
        if self.engine not in ENGINES:
            raise ConfigError(f"render.engine: unknown engine {self.engine!r}; expected one of {sorted(ENGINES)}")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(f"render.crops.interpolation: unknown interpolation {self.interpolation!r}; "
                              f"expected one of {sorted(INTERPOLATIONS)}")
        if not 8 <= self.size <= 4096:
            raise ConfigError(f"render.size: {self.size} is not in [8, 4096]")
        if not 0.0 <= self.margin < 0.5:
            raise ConfigError(f"render.margin: {self.margin} is not in [0, 0.5)")
        if not self.line_width > 0:
            raise ConfigError(f"render.line_width: {self.line_width} must be positive")
        if len(self.crop_offsets) != 3:
            raise ConfigError(f"render.crops.offsets: {list(self.crop_offsets)} must hold 3 offsets (nine crops)")
        if not 0 < self.crop_size <= self.size:
            raise ConfigError(f"render.crops.size: {self.crop_size} is not in (0, render.size={self.size}]")
        if any(o < 0 or o + self.crop_size > self.size for o in self.crop_offsets):
            raise ConfigError(f"render.crops.offsets: {list(self.crop_offsets)} put a {self.crop_size}-pixel crop "
                              f"outside the {self.size}-pixel image")
        if not self.shard_mb > 0:
            raise ConfigError(f"render.shard_mb: {self.shard_mb} must be positive")
        if self.row_group_rows < 1:
            raise ConfigError(f"render.row_group_rows: {self.row_group_rows} must be positive")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(f"render.compression: unknown codec {self.compression!r}; expected one of "
                              f"{list(COMPRESSIONS)}")
        if not 0 <= self.png_level <= 9:
            raise ConfigError(f"render.png_level: {self.png_level} is not in [0, 9]")
        if self.workers < 0:
            raise ConfigError(f"render.workers: {self.workers} must be >= 0 (0 = all cores)")

    @property
    def n_crops(self) -> int:
        """Crops per augmented beat (9)."""
        return len(self.crop_offsets) ** 2

    @property
    def target_bytes(self) -> int:
        """Shard payload target in bytes (``shard_mb`` x 10^6)."""
        return max(1, int(self.shard_mb * 1_000_000))

    def output_params(self) -> dict[str, Any]:
        """The params that determine the output (all but :data:`EXECUTION_PARAMS`), as in params.yaml."""
        return {
            "engine": self.engine, "size": self.size, "margin": self.margin, "line_width": self.line_width,
            "crops": {"materialise": self.materialise, "size": self.crop_size, "offsets": list(self.crop_offsets),
                      "interpolation": self.interpolation, "skip_symbols": list(self.skip_symbols)},
            "shard_mb": self.shard_mb, "row_group_rows": self.row_group_rows, "compression": self.compression,
            "png_level": self.png_level,
        }

    def scheduler_address(self) -> str | None:
        """``scheduler``, else the ``DASK_SCHEDULER_ADDRESS`` environment variable, else None (local)."""
        return self.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None

    def n_workers(self) -> int:
        """Local worker processes: ``workers``, or the usable CPUs when 0 (:func:`usable_cpus`)."""
        return self.workers or usable_cpus()


# --------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------

@dataclass
class Beats:
    """The beats of a beats table, sorted by (record, r_sample), split into labels and samples.

    ``meta`` holds the label columns (beat_id, record, r_sample, symbol, aami, jun8); beat ``i``'s
    samples are ``values[offsets[i]:offsets[i + 1]]`` (float32, the pyarrow ListArray layout).
    """

    meta: pa.Table
    values: np.ndarray
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def read_beats(path: str | os.PathLike) -> Beats:
    """Read the columns the stage needs from a beats table; check and sort them.

    Raises
    ------
    DataError
        The file is missing or unreadable, lacks a column, has null ids or duplicate beat ids.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "beats table not found (run the segment stage)")
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(str(path), f"not a readable Parquet file ({exc})") from None
    missing = [c for c in BEAT_COLUMNS if c not in schema.names]
    if missing:
        raise DataError(str(path), f"beats table lacks column(s) {missing}")
    if not (pa.types.is_list(schema.field("signal").type) or pa.types.is_large_list(schema.field("signal").type)):
        raise DataError(str(path), f"column 'signal' is {schema.field('signal').type}, expected list<float32>")
    label_cols = [c for c in BEAT_COLUMNS if c != "signal"]
    table = pq.read_table(path, columns=label_cols)
    for col in ("beat_id", "record", "r_sample"):
        if table.column(col).null_count:
            raise DataError(str(path), f"column {col!r} has {table.column(col).null_count} null value(s)")
    try:
        table = table.cast(pa.schema([
            pa.field("beat_id", pa.string()), pa.field("record", pa.string()), pa.field("r_sample", pa.int64()),
            pa.field("symbol", pa.string()), pa.field("aami", pa.string()), pa.field("jun8", pa.string()),
        ]))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(str(path), f"unexpected column types ({exc})") from None
    if pc.count_distinct(table.column("beat_id")).as_py() != table.num_rows:
        raise DataError(str(path), "duplicate beat_id values")
    values, offsets = _read_signals(path, table.num_rows)
    order = pc.sort_indices(table, sort_keys=[("record", "ascending"), ("r_sample", "ascending")]).to_numpy()
    if not np.array_equal(order, np.arange(table.num_rows)):
        table = table.take(order)
        values, offsets = gather_signals(values, offsets, order, contiguous_ok=False)
    return Beats(meta=table, values=values, offsets=offsets)


def _read_signals(path: Path, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``signal`` column as float32 values + int64 offsets, read one row group at a time.

    The values go straight into one preallocated array (sized from the Parquet metadata), so the
    peak memory is about one copy of the samples, not the three that an Arrow table, its cast
    and a combined chunk would take.
    """
    pf = pq.ParquetFile(path)
    leaf = next(i for i in range(pf.metadata.num_columns)
                if pf.metadata.schema.column(i).path.split(".")[0] == "signal")
    bound = sum(pf.metadata.row_group(g).column(leaf).num_values for g in range(pf.metadata.num_row_groups))
    values = np.empty(bound, dtype=np.float32)
    lengths = np.empty(n_rows, dtype=np.int64)
    n_vals = n_beats = 0
    for batch in pf.iter_batches(columns=["signal"], batch_size=8192):
        sig = batch.column(0)
        if not (pa.types.is_list(sig.type) or pa.types.is_large_list(sig.type)):
            raise DataError(str(path), f"column 'signal' is {sig.type}, expected list<float32>")
        lens = pc.fill_null(pc.list_value_length(sig), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        flat = pc.list_flatten(sig).to_numpy(zero_copy_only=False)  # null samples become NaN
        if n_vals + flat.size > values.size:  # metadata bound too small: grow
            values = np.concatenate([values[:n_vals], np.empty(n_vals + flat.size - values.size + values.size // 4,
                                                               dtype=np.float32)])
        values[n_vals:n_vals + flat.size] = flat
        lengths[n_beats:n_beats + lens.size] = lens
        n_vals += flat.size
        n_beats += lens.size
    if n_beats != n_rows or int(lengths.sum()) != n_vals:
        raise DataError(str(path), "column 'signal' has inconsistent list offsets")
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    pa.default_memory_pool().release_unused()
    return values[:n_vals], offsets


def exclusions(beats: Beats) -> np.ndarray:
    """Exclusion reason code of each beat: 0 kept, ``1 + EXCLUSION_REASONS.index(reason)`` otherwise.

    A beat with fewer than 2 samples is ``too_short`` (nothing to draw a line with); a beat with a
    NaN or infinite sample is ``non_finite``. Vectorised over all samples.
    """
    code = np.zeros(len(beats.offsets) - 1, dtype=np.int8)
    bad = np.flatnonzero(~np.isfinite(beats.values))
    if bad.size:
        code[np.unique(np.searchsorted(beats.offsets, bad, side="right") - 1)] = 2
    code[beats.lengths < 2] = 1
    return code


def augment_mask(symbols: pa.ChunkedArray | pa.Array, skip_symbols: Sequence[str], materialise: bool) -> np.ndarray:
    """True for beats that get the nine crops: materialised, symbol known and not skipped.

    Examples
    --------
    >>> import pyarrow as pa
    >>> augment_mask(pa.array(["N", "V", None]), ["N"], True).tolist()
    [False, True, False]
    """
    if not materialise:
        return np.zeros(len(symbols), dtype=bool)
    skipped = pc.is_in(symbols, value_set=pa.array(list(skip_symbols), pa.string()))
    aug = pc.and_(pc.invert(skipped), pc.is_valid(symbols))
    return aug.to_numpy(zero_copy_only=False).astype(bool)


def chunk_edges(rows_per_beat: np.ndarray, chunk_rows: int | None = None) -> np.ndarray:
    """Beat indices where chunks start (and the end): a chunk closes at the beat reaching ``chunk_rows``.

    Examples
    --------
    >>> chunk_edges(np.array([1, 10, 1, 10, 1]), chunk_rows=11).tolist()
    [0, 2, 4, 5]
    """
    chunk_rows = chunk_rows or CHUNK_ROWS
    n = len(rows_per_beat)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    before = np.concatenate([[0], np.cumsum(rows_per_beat)[:-1]])
    chunk_id = before // chunk_rows
    return np.concatenate([[0], np.flatnonzero(np.diff(chunk_id)) + 1, [n]]).astype(np.int64)


def gather_signals(values: np.ndarray, offsets: np.ndarray, idx: np.ndarray, *,
                   contiguous_ok: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Values and rebased offsets of beats ``idx`` (in that order), without a per-beat loop.

    When ``idx`` is a run of consecutive beats the values are a view (``contiguous_ok``), else a copy.

    Examples
    --------
    >>> v, o = gather_signals(np.arange(6, dtype=np.float32), np.array([0, 2, 3, 6]), np.array([0, 2]))
    >>> v.tolist(), o.tolist()
    ([0.0, 1.0, 3.0, 4.0, 5.0], [0, 2, 5])
    """
    starts = offsets[idx]
    lens = offsets[idx + 1] - starts
    new = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(lens, out=new[1:])
    if contiguous_ok and len(idx) and idx[-1] - idx[0] == len(idx) - 1 and np.all(np.diff(idx) == 1):
        return values[starts[0]:starts[0] + new[-1]], new
    take = np.repeat(starts - new[:-1], lens) + np.arange(new[-1])
    return values[take], new


# --------------------------------------------------------------------------------------------
# The task: draw, crop, encode one chunk
# --------------------------------------------------------------------------------------------

@dataclass
class EncodedChunk:
    """Encoded rows of one chunk, beat-major: each beat's crop 0 then its crops 1..9 (if any).

    ``beat`` is the row's beat index within the chunk; image ``i`` is ``data[offsets[i]:offsets[i+1]]``.
    """

    beat: np.ndarray
    crop: np.ndarray
    data: np.ndarray
    offsets: np.ndarray
    image_shape: tuple[int, int]

    @property
    def row_bytes(self) -> np.ndarray:
        return np.diff(self.offsets)


def draw(values: np.ndarray, offsets: np.ndarray, cfg: RenderConfig) -> np.ndarray:
    """Draw beats with the configured engine: uint8 (n, size, size)."""
    if cfg.engine == "raster":
        from .imaging.raster import render_beats
        return render_beats(values, offsets, size=cfg.size, margin=cfg.margin, line_width=cfg.line_width)
    from .imaging.recipe import render_beats as recipe_render
    return recipe_render(values, offsets, size=cfg.size)


def _in_dask_worker() -> bool:
    """True inside a dask.distributed worker (without importing distributed elsewhere)."""
    dist = sys.modules.get("distributed")
    if dist is None:
        return False
    try:
        dist.get_worker()
    except ValueError:
        return False
    return True


def render_chunk(values: np.ndarray, offsets: np.ndarray, augment: np.ndarray, cfg: RenderConfig) -> EncodedChunk:
    """Draw a chunk of beats, add the nine crops of the ``augment`` beats, PNG-encode every row.

    Parameters
    ----------
    values, offsets : ndarray
        The chunk's samples in ListArray layout (float32 values, int64 offsets from 0).
    augment : ndarray of bool
        Beats that get crop rows 1..9.
    cfg : RenderConfig

    Returns
    -------
    EncodedChunk
        Rows in output order (beat, then crop).
    """
    if _in_dask_worker():
        cv2.setNumThreads(1)  # one task per worker thread: no OpenCV thread pool on top
    n = len(offsets) - 1
    images = np.asarray(draw(values, offsets, cfg))
    if images.shape != (n, cfg.size, cfg.size) or images.dtype != np.uint8:
        raise RuntimeError(f"render engine {cfg.engine!r} returned {images.dtype} {images.shape}, "
                           f"expected uint8 {(n, cfg.size, cfg.size)}")
    k = 1 + cfg.n_crops * augment.astype(np.int64)
    first = np.zeros(n, dtype=np.int64)
    np.cumsum(k[:-1], out=first[1:])
    total = int(k.sum())
    # Row j of the output is views[source[j]]: originals first, then the crops (no pixel copies).
    source = np.empty(total, dtype=np.int64)
    source[first] = np.arange(n)
    crop = np.zeros(total, dtype=np.int8)
    views = list(images)
    m = int(augment.sum())
    if m:
        crops = np.asarray(nine_crops(images[augment], crop=cfg.crop_size, offsets=cfg.crop_offsets,
                                      interpolation=cfg.interpolation))
        if crops.shape != (m, cfg.n_crops) + images.shape[1:]:
            raise RuntimeError(f"nine_crops returned {crops.shape}, expected {(m, cfg.n_crops) + images.shape[1:]}")
        pos = (first[augment][:, None] + np.arange(1, cfg.n_crops + 1)).ravel()
        source[pos] = n + np.arange(m * cfg.n_crops)
        crop[pos] = np.tile(np.arange(1, cfg.n_crops + 1, dtype=np.int8), m)
        views += list(crops.reshape((-1,) + images.shape[1:]))
    data, offs = shards.encode_png([views[j] for j in source.tolist()], cfg.png_level)
    beat = np.repeat(np.arange(n, dtype=np.int64), k)
    return EncodedChunk(beat=beat, crop=crop, data=data, offsets=offs, image_shape=tuple(images.shape[1:]))


# --------------------------------------------------------------------------------------------
# Scheduling: run tasks, yield results in order
# --------------------------------------------------------------------------------------------

TaskArgs = tuple  # (values, offsets, augment, cfg)
Runner = Callable[[Iterable[TaskArgs]], Iterator[EncodedChunk]]

#: How the local cluster starts its worker processes. ``forkserver`` (on Linux): a fresh server
#: process imports this module once (:data:`FORKSERVER_PRELOAD`) and forks each worker from itself,
#: so workers start with numpy, pyarrow, OpenCV and the pipeline already imported (``spawn``
#: re-imports them in every worker; ``benchmarks/bench_render_stage.py`` times both). Plain ``fork``
#: of the driver would be faster still but is unsafe: a driver that has used OpenCV's thread pool
#: (a notebook, the test session) leaves its forked children a broken pool, and they crash.
LOCAL_START_METHOD = ("forkserver" if sys.platform.startswith("linux")
                      and "forkserver" in multiprocessing.get_all_start_methods() else "spawn")

#: Modules the fork server imports before forking workers (only if it is not running yet).
FORKSERVER_PRELOAD: tuple[str, ...] = ("pipelines.render", "distributed.nanny", "distributed.worker")

#: dask config of the local cluster: the start method, and none of the diagnostics nobody looks at
#: during a stage run (the statistical profiler samples every thread every 10 ms, the GIL monitor
#: every 1 ms, the event-loop health check every 20 ms): they cost CPU in every worker all run long.
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.worker.multiprocessing-method": LOCAL_START_METHOD,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.tick.interval": "200ms",
}


@contextlib.contextmanager
def task_runner(cfg: RenderConfig, fn: Callable[..., EncodedChunk] | None = None) -> Iterator[Runner]:
    """Context giving ``run(tasks) -> results``: ``fn(*args)`` per task, results in task order.

    A dask.distributed scheduler address (param or ``DASK_SCHEDULER_ADDRESS``) runs the tasks on
    that cluster; else ``cfg.n_workers()`` > 1 starts a local cluster of that many processes (one
    thread each) for the duration of the context; else the tasks run in this process. At most
    :data:`IN_FLIGHT_PER_WORKER` tasks per worker thread are in flight, so memory stays bounded.

    Examples
    --------
    >>> cfg = RenderConfig.from_params({"workers": 1})
    >>> with task_runner(cfg, fn=lambda x: x * 2) as run:
    ...     list(run([(1,), (2,)]))
    [2, 4]
    """
    fn = fn or render_chunk
    address = cfg.scheduler_address()
    if address is None and cfg.n_workers() == 1:
        yield lambda tasks: (fn(*args) for args in tasks)
        return
    import dask
    from distributed import Client, LocalCluster

    if address is not None:
        with Client(address, set_as_default=False) as client:
            yield lambda tasks: _stream(client, tasks, fn)
        return
    if LOCAL_START_METHOD == "forkserver":
        multiprocessing.get_context("forkserver").set_forkserver_preload(list(FORKSERVER_PRELOAD))
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        # Workers log at CRITICAL only: a task's exception reaches the driver through its future
        # anyway, and at shutdown a worker's heartbeat racing the closing scheduler would print a
        # harmless "Failed to communicate with scheduler" traceback.
        cluster = LocalCluster(n_workers=cfg.n_workers(), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.CRITICAL)
        with cluster, Client(cluster, set_as_default=False) as client:
            yield lambda tasks: _stream(client, tasks, fn)


def _stream(client: Any, tasks: Iterable[TaskArgs], fn: Callable[..., EncodedChunk]) -> Iterator[EncodedChunk]:
    threads = max(1, sum(client.nthreads().values()))
    window = IN_FLIGHT_PER_WORKER * threads + 1
    pending: deque = deque()
    it = iter(tasks)
    try:
        for args in it:
            pending.append(client.submit(fn, *args, pure=False))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------

def _exclusions_json(meta: pa.Table, code: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ids = meta.column("beat_id")
    for i, reason in enumerate(EXCLUSION_REASONS, start=1):
        where = np.flatnonzero(code == i)
        listed = ids.take(where[:MAX_LISTED_EXCLUSIONS]).to_pylist()
        out[reason] = {"count": int(where.size), "beat_ids": listed, "listed_all": bool(where.size <= len(listed))}
    return out


def _per_record_exclusions(meta: pa.Table, code: np.ndarray) -> dict[str, int]:
    rec = meta.column("record").to_pandas()[code > 0]
    return {str(k): int(v) for k, v in rec.value_counts(sort=False).sort_index().items()}


def _publish_permissions(directory: Path) -> None:
    """Give the output the usual permissions (temporary dirs and files are created private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(directory, 0o777 & ~umask)
    for path in directory.iterdir():
        os.chmod(path, 0o666 & ~umask)


def _render(method: str, beats_path: Path, out: Path, cfg: RenderConfig, run_tasks: Runner, stream: Any,
            on_chunk: Callable[[int, EncodedChunk], None] | None, t0: float) -> dict[str, Any]:
    """The body of :func:`run_render`, given a task runner."""
    beats = read_beats(beats_path)
    input_sha = sha256_file(beats_path)
    code = exclusions(beats)
    keep = np.flatnonzero(code == 0)
    meta = beats.meta.take(keep)
    augment = augment_mask(meta.column("symbol"), cfg.skip_symbols, cfg.materialise)
    rows_per_beat = 1 + cfg.n_crops * augment.astype(np.int64)
    edges = chunk_edges(rows_per_beat)
    n_chunks = len(edges) - 1
    expected_rows = int(rows_per_beat.sum())

    def tasks() -> Iterator[TaskArgs]:
        for a, b in zip(edges[:-1], edges[1:]):
            vals, offs = gather_signals(beats.values, beats.offsets, keep[a:b])
            yield vals, offs, augment[a:b], cfg

    schema_meta = shards.dataset_metadata(image_shape=(cfg.size, cfg.size), png_level=cfg.png_level)
    schema = shards.shard_schema(schema_meta)
    progress = Progress("render", total=len(keep), unit="beats", stream=stream)
    label_cols = ["beat_id", "record", "r_sample", "symbol", "aami", "jun8"]
    with atomic_dir(out) as tmp:
        writer = shards.ShardWriter(tmp, schema, target_bytes=cfg.target_bytes, row_group_rows=cfg.row_group_rows,
                                    compression=cfg.compression)
        try:
            for i, chunk in enumerate(run_tasks(tasks() if n_chunks else iter(()))):
                a = int(edges[i])
                rows = meta.select(label_cols).take(pa.array(a + chunk.beat))
                table = pa.Table.from_arrays(
                    rows.columns + [pa.array(chunk.crop, pa.int8()), shards.image_array(chunk.data, chunk.offsets)],
                    schema=schema)
                writer.add(table, chunk.row_bytes)
                progress.update(int(edges[i + 1] - a), note=f"{writer.rows:,} images")
                if on_chunk is not None:
                    on_chunk(i, chunk)
            shard_infos = writer.close()
        except BaseException:
            writer.abort()
            raise
        if writer.rows != expected_rows:
            raise RuntimeError(f"wrote {writer.rows} rows, expected {expected_rows}")
        crops_range = range(cfg.n_crops + 1) if cfg.materialise else range(1)
        row_counts = shards.count_rows(meta, augment, crops_range)
        excluded_per_record = _per_record_exclusions(beats.meta, code)
        for rec, n in excluded_per_record.items():
            row_counts["records"].setdefault(rec, {"beats": 0, "rows": 0, "aami": {}})["excluded"] = n
        for entry in row_counts["records"].values():
            entry.setdefault("excluded", 0)
        manifest = shards.build_manifest(
            method=method,
            params=cfg.output_params(),
            params_hash=params_hash(cfg.output_params()),
            input={"file": beats_path.name, "sha256": input_sha, "beats": int(beats.meta.num_rows)},
            counts=row_counts,
            exclusions=_exclusions_json(beats.meta, code),
            shard_infos=shard_infos,
            metadata=schema_meta,
            num_beats=int(len(keep)),
        )
        write_json(tmp / shards.MANIFEST_NAME, manifest)
        write_card(tmp, manifest)
        _publish_permissions(tmp)
    elapsed = max(time.perf_counter() - t0, 1e-9)
    progress.done(f"{manifest['rows']:,} images ({manifest['rows'] - len(keep):,} crops) in "
                  f"{len(shard_infos)} shard(s), {manifest['bytes'] / 1e6:,.1f} MB; {int((code > 0).sum())} "
                  f"beat(s) excluded; {manifest['rows'] / elapsed:,.0f} images/s")
    return manifest


def run_render(method: str, beats_path: str | os.PathLike, out_dir: str | os.PathLike, cfg: RenderConfig, *,
               stream: Any = None, on_chunk: Callable[[int, EncodedChunk], None] | None = None) -> dict[str, Any]:
    """Render a beats table into image shards in ``out_dir``; return the manifest.

    Parameters
    ----------
    method : str
        Beat-finding method name (``annotations`` or ``christov``), recorded in the manifest.
    beats_path : path
        ``datasets/beats/<method>.parquet``.
    out_dir : path
        Output directory, replaced as a whole on success.
    cfg : RenderConfig
    stream : text stream, optional
        Where progress lines go (stderr by default).
    on_chunk : callable, optional
        Called as ``on_chunk(index, chunk)`` after each chunk is written (progress hooks, tests).
    """
    t0 = time.perf_counter()
    beats_path, out = Path(beats_path), Path(out_dir)
    if not beats_path.is_file():  # fail before starting any worker
        raise DataError(str(beats_path), "beats table not found (run the segment stage)")
    with task_runner(cfg) as run_tasks:
        return _render(method, beats_path, out, cfg, run_tasks, stream, on_chunk, t0)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipelines.render --method M --params params.yaml --beats B --out O``."""
    ap = argparse.ArgumentParser(prog="python -m pipelines.render", description=__doc__.split("\n")[0])
    ap.add_argument("--method", required=True, help="beat-finding method (annotations | christov)")
    ap.add_argument("--params", default="params.yaml", help="params file (section 'render')")
    ap.add_argument("--beats", required=True, help="beats table, datasets/beats/<method>.parquet")
    ap.add_argument("--out", required=True, help="output directory, datasets/images/<method>")
    args = ap.parse_args(argv)
    try:
        cfg = RenderConfig.from_params(load_params(args.params, "render"))
        run_render(args.method, args.beats, args.out, cfg)
    except (ConfigError, DataError) as exc:
        print(f"render: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
