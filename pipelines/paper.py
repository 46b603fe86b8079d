"""Paper stage: verified records -> ECG printouts with ground truth (``datasets/paper/<variant>/``).

Every record of the ingest manifest is cut into consecutive strips of ``paper.seconds``
(:func:`pipelines.printout.record.strip_starts`; ``paper.strips_per_record`` > 0 keeps that many,
evenly spread), every lead stacked, drawn on millimetre paper (:mod:`pipelines.printout`), once clean
and once per distortion set of ``paper.variants``. Each variant is a directory of Parquet shards
(:mod:`pipelines.formats.paper`, contract ``docs/paper.md``) with ``manifest.json`` (SHA-256 of every
shard), ``README.md`` and ``croissant.json``; ``datasets/paper/manifest.json`` lists the variants,
records and exclusions. With ``--gallery``, one figure of a strip in every variant.

Usage (the ``paper`` stage of ``dvc.yaml``)::

    python -m pipelines.paper --params params.yaml --raw datasets/raw/mitdb --out datasets/paper \\
        --gallery reports/figures/paper_gallery.png

Records run in parallel (:func:`pipelines.core.parallel.run_tasks`: ``paper.scheduler`` /
``$DASK_SCHEDULER_ADDRESS``, else ``paper.workers`` local processes), one task per chunk of at most
:data:`CHUNK_STRIPS` strips of a record; results come back in order, so the output is byte-identical
whatever the workers. Records shorter than one strip (``too_short``) or without one of
``paper.leads`` (``missing_lead``) are excluded and counted; a record that fails verification stops
the stage. Output is written to a temporary directory and swapped in at the end (``atomic_dir``).
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa

from .core.errors import ConfigError, DataError
from .core.files import atomic_dir, sha256_file, write_json
from .core.parallel import TaskFailure, run_tasks
from .core.params import load_params, params_hash
from .core.progress import Progress
from .core.stage import run_stage
from .formats import paper as fmt
from .formats.paper_card import write_paper_card
from .printout.gallery import write_gallery
from .printout.record import PaperConfig, render_strips, strip_starts

#: Strips per task (bounds a task's result: strips x variants PNGs).
CHUNK_STRIPS = 12

#: Params that choose where the stage runs, never what it writes.
EXECUTION_PARAMS: tuple[str, ...] = ("scheduler", "workers", "gallery_strips")

EXCLUSION_REASONS: tuple[str, ...] = ("too_short", "missing_lead")




@functools.lru_cache(maxsize=1)
def _read(source: str, name: str, files: tuple[tuple[str, str], ...], leads: tuple[str, ...], annotator: str,
          database: str) -> tuple[float, np.ndarray, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A record's leads (n_leads, n) in mV, beats and rhythms; cached for the record's next chunk."""
    from .records.annotations import read_rhythms
    from .records.reader import read_record

    signals, beats, fs = [], None, None
    for lead in leads:
        rec = read_record(source, name, lead=lead, annotator=annotator, expected_sha256=dict(files) or None,
                          database=database, expected_from="manifest")
        if rec.lead != lead:
            raise DataError(f"{database}/{name}", f"no lead {lead!r} (the record has {rec.lead!r} first)")
        signals.append(rec.signal)
        beats, fs = (rec.ann_sample, rec.ann_symbol), rec.fs
    return float(fs), np.stack(signals), beats, read_rhythms(source, name, annotator)


def paper_task(source: str, name: str, files: tuple[tuple[str, str], ...], leads: tuple[str, ...],
               starts: np.ndarray, cfg: PaperConfig, annotator: str, database: str) -> dict[str, pa.Table] | TaskFailure:
    """Draw strips ``starts`` of one record in every variant (one task; runs in a worker)."""
    try:
        fs, signals, beats, rhythms = _read(source, name, files, leads, annotator, database)
        return render_strips(name, fs, signals, leads, starts, beats, rhythms, cfg)
    except Exception as exc:  # a DataError names its place; anything else is named by the record
        return TaskFailure.of(name, exc, f"{database}/{name}")




def plan_records(manifest: Mapping[str, Any], cfg: PaperConfig) -> tuple[list[tuple[str, tuple[str, ...], np.ndarray]],
                                                                        dict[str, dict[str, Any]]]:
    """``[(record, leads, starts)]`` of the records drawn, and the excluded ones per reason.

    >>> m = {"records": {"1": {"fs": 360.0, "n_samples": 7200, "sig_names": ["MLII", "V1"]},
    ...                  "2": {"fs": 360.0, "n_samples": 100, "sig_names": ["MLII", "V1"]}}}
    >>> plan, excl = plan_records(m, PaperConfig())
    >>> [(r, l, s.tolist()) for r, l, s in plan], excl["too_short"]
    ([('1', ('MLII', 'V1'), [0, 3600])], {'count': 1, 'records': ['2']})
    """
    plan, excluded = [], {r: {"count": 0, "records": []} for r in EXCLUSION_REASONS}
    for name in sorted(manifest["records"], key=str):
        entry = manifest["records"][name]
        names = tuple(str(s) for s in entry.get("sig_names") or ())
        leads = cfg.leads or names
        reason = None
        if not names or any(lead not in names for lead in leads):
            reason = "missing_lead"
        starts = strip_starts(int(entry["n_samples"]), float(entry["fs"]), cfg.seconds, cfg.strips_per_record)
        if reason is None and starts.size == 0:
            reason = "too_short"
        if reason is not None:
            excluded[reason]["count"] += 1
            excluded[reason]["records"].append(str(name))
            continue
        plan.append((str(name), tuple(leads), starts))
    return plan, excluded


def run_paper(params_path: str, raw_dir: str, out_dir: str, *, gallery: str | None = None,
              workers: int | None = None, stream: Any = None) -> dict[str, Any]:
    """Run the stage; return the top-level manifest."""
    from .records.reader import load_manifest, resolve_source

    t0 = time.perf_counter()
    params = load_params(params_path)
    paper = params.get("paper")
    if paper is None:
        raise ConfigError(f"{params_path}: no section 'paper'")
    annotator = str((params.get("ingest") or {}).get("annotator", "atr"))
    cfg = PaperConfig.from_params(paper)
    raw_manifest = load_manifest(raw_dir)
    database = str(raw_manifest.get("database", "mitdb"))
    plan, excluded = plan_records(raw_manifest, cfg)
    if not plan:
        raise DataError(str(Path(raw_dir) / "manifest.json"), f"no record can be drawn (excluded: "
                        f"{ {k: v['records'] for k, v in excluded.items() if v['count']} })")
    source = str(resolve_source(raw_dir, database))
    output = {k: v for k, v in paper.items() if k not in EXECUTION_PARAMS}
    output["annotator"] = annotator
    n_strips = int(sum(s.size for _, _, s in plan))

    def tasks() -> Iterator[tuple]:
        for name, leads, starts in plan:
            files = tuple(sorted((raw_manifest["records"][name].get("files") or {}).items()))
            for a in range(0, starts.size, CHUNK_STRIPS):
                yield source, name, files, leads, starts[a:a + CHUNK_STRIPS], cfg, annotator, database

    progress = Progress("paper", total=n_strips, unit="strips", stream=stream)
    variants = cfg.variant_names
    schema_meta = {"format": fmt.FORMAT, "format_version": fmt.FORMAT_VERSION, "sort": ["record", "start_sample"],
                   "image": {"format": "PNG", "mode": "RGB", "png": {"zlib_level": cfg.png_level,
                                                                    "filter": fmt.PNG_FILTER}}}
    schema = fmt.paper_schema(schema_meta)
    target = int(float(paper["shard_mb"]) * 1e6)
    per_record: dict[str, int] = {}
    samples: dict[str, list[bytes]] = {v: [] for v in variants}
    with atomic_dir(out_dir) as tmp:
        writers = {v: fmt.PaperWriter(tmp / v, schema, target_bytes=target, row_group_rows=int(paper["row_group_rows"]),
                                      compression=str(paper["compression"])) for v in variants}
        scheduler = paper.get("scheduler") or None
        stream_ = run_tasks(paper_task, tasks(), scheduler=scheduler,
                            workers=paper.get("workers", 0) if workers is None else workers)
        try:
            for result in stream_:
                if isinstance(result, TaskFailure):
                    result.reraise("paper strips")
                for v, table in result.items():
                    writers[v].add(table)
                    if len(samples[v]) < int(paper["gallery_strips"]):
                        samples[v] += table.column("image").combine_chunks().field("bytes").to_pylist()[
                            :int(paper["gallery_strips"]) - len(samples[v])]
                clean = result[fmt.CLEAN]
                rec = clean.column("record")[0].as_py()
                per_record[rec] = per_record.get(rec, 0) + clean.num_rows
                progress.update(clean.num_rows, note=f"{rec}")
            infos = {v: w.close() for v, w in writers.items()}
        except BaseException:
            for w in writers.values():
                w.abort()
            raise
        finally:
            stream_.close()
        input_ = {"file": "manifest.json", "sha256": sha256_file(Path(raw_dir) / "manifest.json"),
                  "records": len(raw_manifest["records"])}
        for v in variants:
            manifest = fmt.build_manifest(variant=v, params=output, params_hash=params_hash(output), input=input_,
                                          distortions=cfg.variants.get(v, {}), records=per_record,
                                          shard_infos=infos[v], metadata=schema_meta)
            write_json(tmp / v / fmt.MANIFEST_NAME, manifest)
            write_paper_card(tmp / v, manifest)
        top = {"format": fmt.FORMAT, "format_version": fmt.FORMAT_VERSION, "variants": list(variants),
               "params": output, "params_hash": params_hash(output), "input": input_, "strips": n_strips,
               "records": dict(sorted(per_record.items())), "exclusions": excluded,
               "rows": {v: int(sum(s.rows for s in infos[v])) for v in variants},
               "bytes": {v: int(sum(s.bytes for s in infos[v])) for v in variants}}
        write_json(tmp / fmt.MANIFEST_NAME, top)
    if gallery:
        write_gallery(gallery, {v: samples[v] for v in variants})
    elapsed = max(time.perf_counter() - t0, 1e-9)
    n_excl = sum(v["count"] for v in excluded.values())
    progress.done(f"{n_strips:,} strips x {len(variants)} variants from {len(per_record)} records "
                  f"({n_excl} excluded), {sum(top['bytes'].values()) / 1e6:,.1f} MB, "
                  f"{n_strips * len(variants) / elapsed:,.1f} images/s -> {out_dir}")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipelines.paper --params params.yaml --raw datasets/raw/mitdb --out datasets/paper``."""
    ap = argparse.ArgumentParser(prog="python -m pipelines.paper", description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params.yaml", help="params file (section 'paper')")
    ap.add_argument("--raw", required=True, help="ingest output directory (holds manifest.json)")
    ap.add_argument("--out", required=True, help="output directory, datasets/paper")
    ap.add_argument("--gallery", default=None, help="also write this PNG: a strip in every variant")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: paper.workers)")
    args = ap.parse_args(argv)
    return run_stage("paper", lambda: run_paper(args.params, args.raw, args.out, gallery=args.gallery,
                                                workers=args.workers))


if __name__ == "__main__":
    sys.exit(main())
