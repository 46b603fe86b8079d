"""Digitize stage: paper strips (PNG) -> signals, ``datasets/digitized/<variant>.parquet``.

Every strip of one paper variant (``datasets/paper/<variant>/``, verified by
:func:`pipelines.formats.paper.iter_paper`) is digitised by :func:`pipelines.digitizer.strip.digitize_strip`
from its PNG alone: only :data:`READ_COLUMNS` are read (the image, and the strip's id, lead names
and ``fs`` to name and resample the output); the ground truth is never loaded here. Paper speed,
gain and strip length are the printing conventions of ``params.yaml`` ``paper`` (25 mm/s, 10 mm/mV,
10 s), what a reader of a printout knows. Output: one row per strip and lead (:data:`SCHEMA`),
``status`` ``ok`` or why the strip failed (then ``signal`` is null, never zeros).

Usage: the ``digitize`` stage of ``dvc.yaml`` digitises every variant of ``digitize.variants`` in one
process and one pool of workers (``datasets/paper/<variant>`` -> ``datasets/digitized/<variant>.parquet``);
one variant directory can be digitised on its own (an ``--out`` ending in ``.parquet``)::

    python -m pipelines.digitize --params params.yaml --paper datasets/paper --out datasets/digitized
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
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .core.errors import ConfigError, DataError
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
                          max_gap_ms=float(digitize["max_gap_ms"]), min_recovered=float(digitize["min_recovered"]),
                          supersede_px=float(digitize["supersede_px"]))


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


def _is_variant_dir(path: Path) -> bool:
    """True for one paper variant's directory (its manifest names the variant; the paper stage's own
    directory has a manifest of all ``variants``)."""
    try:
        return "variant" in fmt.read_paper_manifest(path)
    except DataError:
        return False


def _strip_count(paper_dir: Path) -> int | None:
    """Strips of a paper variant by its manifest (for the progress line), or None where it cannot be read
    (the shard reader then names the problem)."""
    try:
        return int(fmt.read_paper_manifest(paper_dir)["rows"])
    except (DataError, KeyError, TypeError, ValueError):
        return None


def run_digitize(params_path: str | Path, paper_dir: str | Path, out_path: str | Path, *,
                 workers: int | None = None) -> dict[str, Any]:
    """Digitise one paper variant into ``out_path``; return ``{"strips", "rows", "status": counts}``."""
    return digitize_variants(params_path, [(paper_dir, out_path)], workers=workers)[str(out_path)]


def run_digitize_all(params_path: str | Path, paper_root: str | Path, out_dir: str | Path, *,
                     variants: Sequence[str] | None = None, workers: int | None = None) -> dict[str, Any]:
    """Digitise ``paper_root/<variant>`` into ``out_dir/<variant>.parquet`` for each of ``variants``
    (default ``digitize.variants``); return each output's summary by variant.

    Every variant goes through one stream of tasks (one pool of workers), so the pool starts once.
    """
    if variants is None:
        variants = list(load_params(params_path, "digitize")["variants"])
    paper_root, out_dir = Path(paper_root), Path(out_dir)
    if not variants:
        raise ConfigError("digitize.variants: no variant to digitise")
    twice = sorted(v for v, n in Counter(variants).items() if n > 1)
    if twice:
        raise ConfigError(f"digitize.variants: {twice} named more than once")
    if _is_variant_dir(paper_root):
        raise DataError(str(paper_root), "this is one paper variant's directory: give a .parquet --out "
                        "to digitise it alone, or the paper stage's directory (datasets/paper) for all variants")
    missing = [str(paper_root / v) for v in variants if not (paper_root / v).is_dir()]
    if missing:
        raise DataError(", ".join(missing), "paper variant directory not found (run the paper stage; "
                        "digitize.variants must name variants of paper.variants, or clean)")
    jobs = [(paper_root / v, out_dir / f"{v}.parquet") for v in variants]
    summaries = digitize_variants(params_path, jobs, workers=workers)
    return {v: summaries[str(out)] for v, (_, out) in zip(variants, jobs)}


def digitize_variants(params_path: str | Path, jobs: Sequence[tuple[str | Path, str | Path]], *,
                      workers: int | None = None) -> dict[str, dict[str, Any]]:
    """Digitise each ``(paper_dir, out_path)`` of ``jobs``, all through one task stream; return the
    summary (``{"strips", "rows", "status": counts}``) of each ``out_path`` (keyed by ``str(out_path)``).

    Each output is written whole under a temporary name and renamed, after every strip of it is done.
    """
    if not jobs:
        return {}
    digitize = load_params(params_path, "digitize")
    paper = load_params(params_path, "paper")
    config = config_of(digitize, paper)
    size = int(digitize["batch_strips"])
    jobs = [(Path(d), Path(o)) for d, o in jobs]
    counts = [_strip_count(d) for d, _ in jobs]
    progress = Progress("digitize", total=None if None in counts else sum(counts), unit="strips")
    t0 = time.perf_counter()
    owner: deque[int] = deque()          # the job of each task submitted, in order (results come in order)

    def tasks() -> Iterator[tuple[pa.RecordBatch, DigitizeConfig]]:
        for j, (paper_dir, _) in enumerate(jobs):
            for batch in _batches(paper_dir, size):
                owner.append(j)
                yield batch, config

    tables: list[list[pa.Table]] = [[] for _ in jobs]
    stream = run_tasks(digitize_task, tasks(), scheduler=digitize.get("scheduler") or None,
                       workers=digitize["workers"] if workers is None else workers)
    try:
        for table in stream:
            tables[owner.popleft()].append(table)
            progress.update(len(set(table.column("strip_id").to_pylist())))
    finally:
        stream.close()
    summaries: dict[str, dict[str, Any]] = {}
    for (_, out_path), parts in zip(jobs, tables):
        table = pa.concat_tables(parts) if parts else SCHEMA.empty_table()
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_path) as tmp:
            pq.write_table(table, tmp, compression="zstd", row_group_size=4096)
        by_strip = dict(zip(table.column("strip_id").to_pylist(), table.column("status").to_pylist()))
        status = Counter(by_strip.values())                  # one status per strip (its leads share it)
        summaries[str(out_path)] = {"strips": len(by_strip), "rows": table.num_rows,
                                    "status": dict(sorted(status.items()))}
    elapsed = max(time.perf_counter() - t0, 1e-9)
    total = sum((Counter(s["status"]) for s in summaries.values()), Counter())
    where = str(jobs[0][1]) if len(jobs) == 1 else f"{len(jobs)} files in {jobs[0][1].parent}"
    progress.done(f"{sum(x['strips'] for x in summaries.values()):,} strips ({dict(sorted(total.items()))}) "
                  f"in {elapsed:,.1f} s -> {where}")
    return summaries


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
    """``python -m pipelines.digitize --params params.yaml --paper datasets/paper --out datasets/digitized``."""
    ap = argparse.ArgumentParser(prog="python -m pipelines.digitize", description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params.yaml", help="params file (sections 'digitize', 'paper')")
    ap.add_argument("--paper", required=True,
                    help="the paper stage's directory, datasets/paper (or one variant's, datasets/paper/<variant>)")
    ap.add_argument("--out", required=True,
                    help="output directory, datasets/digitized (or one file, datasets/digitized/<variant>.parquet)")
    ap.add_argument("--variants", nargs="+", default=None,
                    help="variants to digitise (default: digitize.variants); not with a .parquet --out")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: digitize.workers)")
    args = ap.parse_args(argv)
    if args.out.endswith(".parquet"):
        if args.variants:
            ap.error("--variants needs an output directory, not a .parquet file")
        return run_stage("digitize", lambda: run_digitize(args.params, args.paper, args.out, workers=args.workers))
    return run_stage("digitize", lambda: run_digitize_all(args.params, args.paper, args.out,
                                                          variants=args.variants, workers=args.workers))


if __name__ == "__main__":
    sys.exit(main())
