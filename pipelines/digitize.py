"""Digitize stage: paper strips (PNG) -> signals, ``datasets/digitized/<variant>.parquet``.

Every strip of one paper variant (``datasets/paper/<variant>/``, verified by
:func:`pipelines.formats.paper.iter_paper`) is digitised by :func:`pipelines.digitizer.strip.digitize_strip`
from its PNG alone: only :data:`READ_COLUMNS` are read (the image, and the strip's id, lead names
and ``fs`` to name and resample the output); the ground truth is never loaded here. Paper speed,
gain and strip length are the printing conventions of ``params.yaml`` ``paper`` (25 mm/s, 10 mm/mV,
10 s), what a reader of a printout knows. Output: one row per strip and lead (:data:`SCHEMA`),
``status`` ``ok`` or why the strip failed (then ``signal`` is null, never zeros).

Usage (the ``digitize@<variant>`` stages of ``dvc.yaml``)::

    python -m pipelines.digitize --params params.yaml --paper datasets/paper/clean \\
        --out datasets/digitized/clean.parquet

Batches of ``digitize.batch_strips`` strips run in parallel (:func:`pipelines.core.parallel.run_tasks`,
``digitize.workers`` / ``digitize.scheduler``); results come back in order, so the file is
byte-identical whatever the workers. :func:`record_signals` turns a digitised file into per-record
continuous signals (strips concatenated in order) for ``segment``.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .core.files import atomic_path
from .core.parallel import run_tasks
from .core.params import load_params
from .core.progress import Progress
from .core.stage import run_stage
from .digitizer.strip import DigitizeConfig, digitize_strip
from .formats import paper as fmt

#: The only paper columns the digitiser reads (a subset of ``fmt.INPUT_COLUMNS``).
READ_COLUMNS: tuple[str, ...] = ("strip_id", "fs", "leads", "image")

#: Output columns (one row per strip and lead).
SCHEMA = pa.schema([
    pa.field("strip_id", pa.string()),
    pa.field("lead", pa.string()),
    pa.field("fs", pa.float64()),
    pa.field("signal", pa.list_(pa.float32())),
    pa.field("status", pa.string()),
    pa.field("detail", pa.string()),
])


def config_of(digitize: Mapping[str, Any], paper: Mapping[str, Any]) -> DigitizeConfig:
    """The digitiser's settings from the ``digitize`` and ``paper`` (printing conventions) sections."""
    return DigitizeConfig(mm_per_s=float(paper["mm_per_s"]), mm_per_mv=float(paper["mm_per_mv"]),
                          seconds=float(paper["seconds"]), baseline=str(digitize["baseline"]),
                          max_skew_degrees=float(digitize["max_skew_degrees"]),
                          max_gap_ms=float(digitize["max_gap_ms"]), min_recovered=float(digitize["min_recovered"]))


def digitize_rows(rows: Sequence[Mapping[str, Any]], config: DigitizeConfig) -> dict[str, list]:
    """Output columns (:data:`SCHEMA`) of strips given as dicts of :data:`READ_COLUMNS`.

    ``image`` is the PNG bytes (or the Hugging Face ``{"bytes": ...}`` struct).
    """
    out: dict[str, list] = {f.name: [] for f in SCHEMA}
    for row in rows:  # one strip at a time: each is a whole image
        image = row["image"]
        png = image.get("bytes") if isinstance(image, Mapping) else image
        leads = list(row["leads"])
        result = digitize_strip(png if png is not None else b"", len(leads), float(row["fs"]), config)
        for k, lead in enumerate(leads):
            out["strip_id"].append(str(row["strip_id"]))
            out["lead"].append(str(lead))
            out["fs"].append(float(row["fs"]))
            out["signal"].append(result.signals[k] if result.status == "ok" else None)
            out["status"].append(result.status)
            out["detail"].append(result.detail)
    return out


def digitize_task(batch: pa.RecordBatch, config: DigitizeConfig) -> pa.Table:
    """One batch of strips -> its output table (a picklable task for :func:`run_tasks`)."""
    return pa.table(digitize_rows(batch.to_pylist(), config), schema=SCHEMA)


def _batches(paper_dir: Path, size: int) -> Iterator[pa.RecordBatch]:
    yield from fmt.iter_paper(paper_dir, columns=READ_COLUMNS, batch_size=size)


def run_digitize(params_path: str | Path, paper_dir: str | Path, out_path: str | Path, *,
                 workers: int | None = None) -> dict[str, Any]:
    """Digitise one paper variant into ``out_path``; return ``{"strips", "rows", "status": counts}``."""
    digitize = load_params(params_path, "digitize")
    paper = load_params(params_path, "paper")
    config = config_of(digitize, paper)
    paper_dir, out_path = Path(paper_dir), Path(out_path)
    progress = Progress("digitize")
    t0 = time.perf_counter()
    tables = []
    stream = run_tasks(digitize_task, ((b, config) for b in _batches(paper_dir, int(digitize["batch_strips"]))),
                       scheduler=digitize.get("scheduler") or None,
                       workers=digitize["workers"] if workers is None else workers)
    try:
        for table in stream:
            tables.append(table)
            progress.update(len(set(table.column("strip_id").to_pylist())))
    finally:
        stream.close()
    table = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=4096)
    strips = len(set(table.column("strip_id").to_pylist()))
    status: dict[str, int] = {}
    for sid, st in sorted(set(zip(table.column("strip_id").to_pylist(), table.column("status").to_pylist()))):
        status[st] = status.get(st, 0) + 1
    elapsed = max(time.perf_counter() - t0, 1e-9)
    progress.done(f"{strips:,} strips ({status}) in {elapsed:,.1f} s -> {out_path}")
    return {"strips": strips, "rows": table.num_rows, "status": dict(sorted(status.items()))}


def read_digitized(path: str | Path) -> pa.Table:
    """The digitised table of one variant (:data:`SCHEMA`)."""
    return pq.read_table(path, schema=SCHEMA)


@dataclass(frozen=True)
class RecordSignal:
    """One record's digitised strips, concatenated in order.

    Attributes
    ----------
    record : str
    fs : float
    leads : list of str
    signal : ndarray, float32, (n_leads, n)
        The strips one after the other; a failed strip (or lead) is NaN for its length.
    starts : ndarray, int64
        Each strip's start sample in the record (strips may not be consecutive).
    offsets : ndarray, int64
        Each strip's first column in ``signal``.
    """

    record: str
    fs: float
    leads: list[str]
    signal: np.ndarray
    starts: np.ndarray
    offsets: np.ndarray


def record_signals(table: pa.Table, seconds: float) -> dict[str, RecordSignal]:
    """Per-record continuous signals of a digitised table (strip ids ``<record>-<start_sample>``).

    Strips are ordered by start sample; each contributes ``round(seconds * fs)`` samples (a shorter
    or failed one is NaN-padded), so sample ``i`` of strip ``j`` is at ``offsets[j] + i``.
    """
    rows = table.to_pylist()
    by_record: dict[str, dict[int, dict[str, Any]]] = {}
    leads_of: dict[str, list[str]] = {}
    fs_of: dict[str, float] = {}
    for r in rows:
        rec, start = r["strip_id"].rsplit("-", 1)
        by_record.setdefault(rec, {}).setdefault(int(start), {})[r["lead"]] = r["signal"]
        leads_of.setdefault(rec, [])
        if r["lead"] not in leads_of[rec]:
            leads_of[rec].append(r["lead"])
        fs_of[rec] = float(r["fs"])
    out = {}
    for rec in sorted(by_record):
        n = int(round(seconds * fs_of[rec]))
        starts = np.array(sorted(by_record[rec]), dtype=np.int64)
        sig = np.full((len(leads_of[rec]), n * len(starts)), np.nan, dtype=np.float32)
        for j, start in enumerate(starts):
            for k, lead in enumerate(leads_of[rec]):
                s = by_record[rec][int(start)].get(lead)
                if s is not None:
                    s = np.asarray(s, dtype=np.float32)[:n]
                    sig[k, j * n:j * n + len(s)] = s
        out[rec] = RecordSignal(rec, fs_of[rec], leads_of[rec], sig, starts, np.arange(len(starts)) * n)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipelines.digitize --params params.yaml --paper datasets/paper/<v> --out datasets/digitized/<v>.parquet``."""
    ap = argparse.ArgumentParser(prog="python -m pipelines.digitize", description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params.yaml", help="params file (sections 'digitize', 'paper')")
    ap.add_argument("--paper", required=True, help="one paper variant directory, datasets/paper/<variant>")
    ap.add_argument("--out", required=True, help="output file, datasets/digitized/<variant>.parquet")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: digitize.workers)")
    args = ap.parse_args(argv)
    return run_stage("digitize", lambda: run_digitize(args.params, args.paper, args.out, workers=args.workers))


if __name__ == "__main__":
    sys.exit(main())
