"""Segment stage: verified ECG records -> one table of beat windows (``datasets/beats/<method>.parquet``).

Two ways to find the beats of a record:

``annotations``
    The reference beat annotations (symbols in :data:`pipelines.signal.labels.BEAT_SYMBOLS` plus
    ``segment.extra_symbols``); rhythm, noise and other non-beat marks are skipped and counted.
``christov``
    R-peaks found by :func:`pipelines.signal.christov.detect_r_peaks` at the record's sampling rate and
    moved to the local QRS extremum by :func:`pipelines.signal.christov.refine_peaks`. Each detection takes
    the symbol of the reference beat it matches within ``segment.match_tolerance_ms``
    (:func:`pipelines.signal.matching.match_beats`); a detection with no reference beat is kept with null
    labels and counted. Detection scores (TP, FP, FN, sensitivity, positive predictivity) against the
    reference beats go to the report (``reports/detector.json``).

Each beat gets a window (:mod:`pipelines.signal.windows`, ``segment.window``) whose neighbours are the
neighbouring beats of the same sequence (reference beats, or detections). Beats without a window
(edges, too short, off the record) are dropped and counted. The output schema is public and
documented in ``docs/beats.md``.

Usage (the ``segment`` stage of ``dvc.yaml``)::

    python -m pipelines.segment --method annotations --params params.yaml \\
        --raw datasets/raw/mitdb --out datasets/beats/annotations.parquet \\
        --report reports/segment/annotations.json

Records are processed in parallel, one task per record, by :func:`pipelines.core.parallel.run_tasks`
(dask.distributed): on the scheduler at ``segment.scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``), else on
a local cluster of ``segment.workers`` processes (0 = all cores; 1 = this process). The output does
not depend on the scheduler, the number of workers or the order in which records finish.

The per-record logic is :mod:`pipelines.signal.beats`; the table format is :mod:`pipelines.formats.beats`.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from .core.errors import ConfigError, DataError
from .core.files import write_json
from .core.parallel import TaskFailure, local_workers, run_tasks
from .core.params import load_params
from .core.progress import Progress
from .core.stage import run_stage
from .formats.beats import beats_table, write_beats
from .signal.beats import METHODS, RecordBeats, SegmentConfig, segment_record, summarise, table_metadata

#: Parameters of the ``segment`` section that change how the work runs but never the output.
EXECUTION_PARAMS: tuple[str, ...] = ("scheduler", "workers")


# ------------------------------------------------------------------------------------------- records



def process_record(source: str, name: str, files: dict[str, str] | None, config: SegmentConfig,
                   database: str) -> RecordBeats | TaskFailure:
    """Read one verified record and segment it (one task; runs in a worker process)."""
    from .records.reader import read_record

    try:
        record = read_record(source, name, lead=config.lead, annotator=config.annotator,
                             expected_sha256=files, database=database, expected_from="manifest")
        return segment_record(record, config, database)
    except Exception as exc:  # a DataError names its place; anything else is named by the record
        return TaskFailure.of(name, exc, f"{database}/{name}")




def segment_records(source: str | os.PathLike, names: Sequence[str], config: SegmentConfig, *,
                    files: Mapping[str, Mapping[str, str]] | None = None, database: str = "mitdb",
                    scheduler: str | None = None, workers: int | None = 1,
                    progress: Progress | None = None) -> list[RecordBeats]:
    """Segment many records, one task each (:func:`pipelines.core.parallel.run_tasks`); results in ``names`` order.

    Parameters
    ----------
    source : path
        Directory holding the WFDB files (:func:`pipelines.records.reader.resolve_source`).
    names : sequence of str
        Record names.
    config : SegmentConfig
    files : mapping, optional
        ``{record: {file: sha256}}``; each record is verified against its entry when given.
    database : str
        Name used in error messages.
    scheduler : str, optional
        Address of a dask.distributed scheduler (else ``$DASK_SCHEDULER_ADDRESS``, else local).
    workers : int, optional
        Local worker processes (0 or None: the CPUs this process may use; 1: this process).
    progress : Progress, optional
        Updated once per finished record.

    Raises
    ------
    DataError
        The first failing record in ``names`` order, named.
    """
    names = [str(n) for n in names]
    workers = min(local_workers(workers), len(names) or 1)
    tasks = ((str(source), n, dict(files[n]) if files is not None else None, config, database) for n in names)
    results: list[RecordBeats] = []
    stream = run_tasks(process_record, tasks, scheduler=scheduler, workers=workers)
    try:
        for res in stream:
            if progress is not None:
                progress.update(1, f"{res.record}: failed" if isinstance(res, TaskFailure)
                                else f"{res.record}: {res.n_beats:,} beats")
            if isinstance(res, TaskFailure):
                res.reraise("segmentation")
            results.append(res)
    finally:
        stream.close()  # stops a local cluster, cancels tasks in flight after a failure
    return results


# ------------------------------------------------------------------------------------------------ run

def execution_params(segment: Mapping[str, Any], workers: int | None = None) -> tuple[str | None, int]:
    """``(scheduler, workers)`` from the ``segment`` params (:data:`EXECUTION_PARAMS`); ``workers`` overrides.

    Examples
    --------
    >>> execution_params({"scheduler": None, "workers": 4}), execution_params({"workers": 4}, workers=1)
    ((None, 4), (None, 1))
    """
    scheduler = segment.get("scheduler") or None
    if scheduler is not None and not isinstance(scheduler, str):
        raise ConfigError(f"segment.scheduler: expected a scheduler address or null, got {scheduler!r}")
    if workers is None:
        workers = segment.get("workers", 0)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"segment.workers: expected an integer >= 0 (0 = all cores), got {workers!r}")
    return scheduler, workers


def run_segment(method: str, params_path: str | os.PathLike, raw_dir: str | os.PathLike,
                out: str | os.PathLike, report_path: str | os.PathLike, *, workers: int | None = None,
                stream=None) -> dict[str, Any]:
    """Run the segment stage: read the manifest, segment every record, write table and report.

    ``workers`` overrides ``segment.workers``; ``segment.scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``)
    names a dask.distributed scheduler to run on. Returns the report. The table is written first, then the report, each atomically; on any
    error neither is (re)written.
    """
    from .records.reader import load_manifest, resolve_source

    params = load_params(params_path)
    segment = params.get("segment")
    if segment is None:
        raise ConfigError(f"{params_path}: no section 'segment'")
    annotator = (params.get("ingest") or {}).get("annotator", "atr")
    config = SegmentConfig.from_params(segment, method, annotator=annotator)

    manifest = load_manifest(raw_dir)
    database = str(manifest.get("database", "mitdb"))
    names = sorted(str(n) for n in manifest["records"])
    if not names:
        raise DataError(str(Path(raw_dir) / "manifest.json"), "the manifest lists no records")
    files = {}
    for n in names:
        entry = manifest["records"][n]
        if not isinstance(entry, Mapping) or not isinstance(entry.get("files"), Mapping) or not entry["files"]:
            raise DataError(f"{database}/{n}", "manifest entry has no file checksums; rerun the ingest stage")
        files[n] = entry["files"]
    source = resolve_source(raw_dir, database)

    progress = Progress(f"segment {method}", total=len(names), unit="records", stream=stream)
    scheduler, workers = execution_params(segment, workers)
    results = segment_records(source, names, config, files=files, database=database, scheduler=scheduler,
                              workers=workers, progress=progress)
    report = summarise(results, config)
    total = report["total"]
    if total["beats"] == 0:
        raise DataError(database, f"no beats in any of the {len(names)} record(s) with window "
                                  f"{config.window.kind!r}; nothing to write")
    table = beats_table(results, table_metadata(report, config, manifest))
    write_beats(table, out)
    write_json(report_path, report)
    dropped = ", ".join(f"{v:,} {k}" for k, v in total["dropped"].items()) or "none"
    summary = f"{total['beats']:,} beats from {len(names)} records (dropped: {dropped})"
    if method == "christov":
        summary += (f"; Se {100 * (total['sensitivity'] or 0):.2f}% +P {100 * (total['ppv'] or 0):.2f}%, "
                    f"{total['unlabelled']:,} unlabelled")
    if total["records_without_beats"]:
        summary += f"; no beats in {', '.join(total['records_without_beats'])}"
    if total.get("records_with_flat_lead"):
        summary += f"; flat lead in {', '.join(total['records_with_flat_lead'])}"
    excluded = [n for n, rec in report["records"].items() if rec.get("excluded_annotations")]
    if excluded:
        summary += f"; annotations excluded in {', '.join(excluded)}"
    progress.done(f"{summary} -> {out}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.segment", description=__doc__.split("\n")[0])
    parser.add_argument("--method", required=True, choices=METHODS, help="how beats are found")
    parser.add_argument("--params", default="params.yaml", help="params file (section 'segment')")
    parser.add_argument("--raw", required=True, help="ingest output directory (holds manifest.json)")
    parser.add_argument("--out", required=True, help="output Parquet file, e.g. datasets/beats/annotations.parquet")
    parser.add_argument("--report", required=True, help="output JSON report")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: segment.workers); does not change the output")
    args = parser.parse_args(argv)
    return run_stage("segment", lambda: run_segment(args.method, args.params, args.raw, args.out, args.report,
                                                    workers=args.workers))


if __name__ == "__main__":
    sys.exit(main())
