"""Render stage: a beats table -> the dataset's public image shards (``datasets/images/<method>/``).

Each beat window of ``datasets/beats/<method>.parquet`` is drawn as a ``size`` x ``size`` 8-bit
grayscale image (``render.engine``: :func:`pipelines.imaging.raster.render_beats`, or the published recipe's
matplotlib drawing :func:`pipelines.imaging.recipe.render_beats`). Beats whose symbol is not in
``render.crops.skip_symbols`` (and is not null) also get the nine crops of
:func:`pipelines.imaging.crops.nine_crops` as rows ``crop`` 1..9 when ``render.crops.materialise`` is true.
Every image is PNG-encoded (:func:`pipelines.formats.png.encode_png`) and written to Parquet shards
under ``data/<config>/<split>-*.parquet`` (:class:`pipelines.formats.layout.DatasetWriter`: configs
``originals``/``crops``, splits ``train``/``test``/``paced``) whose format is public: see ``docs/dataset.md``.

Beside the shards: ``manifest.json`` (params, input provenance, counts, exclusions, shard SHA-256s,
schema), ``README.md`` (dataset card) and ``croissant.json`` (:mod:`pipelines.formats.card`).

Usage (the ``render`` stage of ``dvc.yaml``)::

    python -m pipelines.render --method annotations --params params.yaml \\
        --beats datasets/beats/annotations.parquet --out datasets/images/annotations

Parallelism: the beats are cut into chunks of about :data:`pipelines.imaging.draw.CHUNK_ROWS` images;
each chunk is one task (:func:`pipelines.imaging.draw.render_chunk`: draw, crop, PNG-encode) run by
:func:`pipelines.core.parallel.run_tasks` (dask.distributed), which streams the encoded rows back in
chunk order with at most a few tasks in flight; the driver writes them into the shards, so memory is
bounded by the shard writer and the tasks in flight, not by the dataset. Scheduler:

* ``render.scheduler`` (or the environment variable ``DASK_SCHEDULER_ADDRESS`` when the param is
  null): the address of a running ``dask.distributed`` scheduler; its workers must be able to import
  this repository's ``pipelines`` package.
* otherwise a local ``dask.distributed.LocalCluster`` of ``render.workers`` processes (one thread
  each; 0 = the CPUs this process may use), or, with one worker, the same tasks run in this process.

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
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa

from .core.files import atomic_dir, sha256_file, write_json
from .core.parallel import run_tasks
from .core.params import load_params, params_hash
from .core.progress import Progress
from .core.stage import run_stage
from .formats import shards
from .formats.beats import gather_signals, read_beats
from .formats.card import write_card
from .formats.layout import DatasetWriter
from .imaging.draw import (EXCLUSION_REASONS, RenderConfig, augment_mask, beat_geometry, chunk_edges, exclusions,
                           render_chunk)
from .signal.template import FEATURE_COLUMNS

#: At most this many excluded beat ids are listed per reason in the manifest.
MAX_LISTED_EXCLUSIONS = 1000


# --------------------------------------------------------------------------------------------
# Manifest helpers
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
    for path in directory.rglob("*"):  # the shards sit in data/<config>/
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------

def run_render(method: str, beats_path: str | os.PathLike, out_dir: str | os.PathLike, cfg: RenderConfig, *,
               stream: Any = None) -> dict[str, Any]:
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
    """
    t0 = time.perf_counter()
    beats_path, out = Path(beats_path), Path(out_dir)
    beats = read_beats(beats_path)  # fails before any worker starts
    input_sha = sha256_file(beats_path)
    code = exclusions(beats)
    keep = np.flatnonzero(code == 0)
    meta = beats.meta.take(keep)
    augment = augment_mask(meta.column("symbol"), cfg.skip_symbols, cfg.materialise)
    rows_per_beat = 1 + cfg.n_crops * augment.astype(np.int64)
    edges = chunk_edges(rows_per_beat)
    n_chunks = len(edges) - 1
    expected_rows = int(rows_per_beat.sum())
    geometry = None if cfg.scale.is_recipe else beat_geometry(beats, keep, cfg)

    def tasks() -> Iterator[tuple]:
        for a, b in zip(edges[:-1], edges[1:]):
            vals, offs = gather_signals(beats.values, beats.offsets, keep[a:b])
            yield vals, offs, augment[a:b], cfg, (None if geometry is None else geometry.take(int(a), int(b)))

    schema_meta = shards.dataset_metadata(image_shape=(cfg.size, cfg.size), png_level=cfg.png_level)
    schema = shards.shard_schema(schema_meta)
    progress = Progress("render", total=len(keep), unit="beats", stream=stream)
    label_cols = ["beat_id", "record", "r_sample", "symbol", "aami", "jun8", *FEATURE_COLUMNS]
    with atomic_dir(out) as tmp:
        writer = DatasetWriter(tmp, schema, target_bytes=cfg.target_bytes, row_group_rows=cfg.row_group_rows,
                               compression=cfg.compression)
        chunks = run_tasks(render_chunk, tasks() if n_chunks else iter(()), scheduler=cfg.scheduler,
                           workers=cfg.workers)
        try:
            for i, chunk in enumerate(chunks):
                a = int(edges[i])
                rows = meta.select(label_cols).take(pa.array(a + chunk.beat))
                table = pa.Table.from_arrays(
                    rows.columns + [pa.array(chunk.crop, pa.int8()), shards.image_array(chunk.data, chunk.offsets)],
                    schema=schema)
                writer.add(table, chunk.row_bytes)
                progress.update(int(edges[i + 1] - a), note=f"{writer.rows:,} images")
            shard_infos = writer.close()
        except BaseException:
            writer.abort()
            raise
        finally:
            chunks.close()  # stops a local cluster; cancels the tasks still in flight after an error
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
    return run_stage("render", lambda: run_render(args.method, args.beats, args.out,
                                                  RenderConfig.from_params(load_params(args.params, "render"))))


if __name__ == "__main__":
    sys.exit(main())
