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

Records are processed in parallel (one process per core); the output does not depend on the
number of workers or on the order in which records finish.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .core.errors import ChecksumError, ConfigError, DataError
from .core.files import atomic_path, write_json
from .core.progress import Progress
from .core.system import usable_cpus
from .signal.labels import BEAT_SYMBOLS, map_symbols
from .core.params import load_params
from .signal.windows import DROP_REASONS, WindowSpec, compute_windows, extract_windows, ms_to_samples

#: Beat-finding methods (``--method``).
METHODS: tuple[str, ...] = ("annotations", "christov")

#: Schema metadata key holding the JSON provenance (params and counts) of a beats table.
METADATA_KEY = "ecg_beats"

#: Rows per Parquet row group of the beats table (about 10 MB of samples at 360 Hz).
ROW_GROUP_ROWS = 8192

#: Columns with few distinct values, dictionary-encoded. The signal samples are not: a dictionary of
#: float samples grows past Parquet's page limit and falls back, which made files 50% larger.
DICTIONARY_COLUMNS: tuple[str, ...] = ("record", "lead", "symbol", "aami", "jun8")

#: The public schema of ``datasets/beats/<method>.parquet`` (see ``docs/beats.md``).
BEATS_SCHEMA = pa.schema([
    pa.field("beat_id", pa.string(), nullable=False),
    pa.field("record", pa.string(), nullable=False),
    pa.field("lead", pa.string(), nullable=False),
    pa.field("fs", pa.float64(), nullable=False),
    pa.field("r_sample", pa.int64(), nullable=False),
    pa.field("symbol", pa.string()),
    pa.field("aami", pa.string()),
    pa.field("jun8", pa.string()),
    pa.field("start", pa.int64(), nullable=False),
    pa.field("end", pa.int64(), nullable=False),
    pa.field("signal", pa.list_(pa.float32()), nullable=False),
])


# --------------------------------------------------------------------------------------------- config

@dataclass(frozen=True)
class SegmentConfig:
    """Everything that decides the beats of a record (from ``params.yaml``).

    Examples
    --------
    >>> cfg = SegmentConfig.from_params({"window": "midpoint", "extra_symbols": ["!"]}, "annotations")
    >>> cfg.window.kind, cfg.extra_symbols, cfg.beat_symbols[-1]
    ('midpoint', ('!',), '!')
    """

    method: str
    window: WindowSpec = field(default_factory=WindowSpec)
    lead: str = "MLII"
    annotator: str = "atr"
    extra_symbols: tuple[str, ...] = ()
    match_tolerance_ms: float = 150.0
    refine_ms: float = 50.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"--method: unknown method {self.method!r}; expected one of {list(METHODS)}")
        if not isinstance(self.lead, str) or not self.lead:
            raise ConfigError(f"segment.lead: expected a lead name, got {self.lead!r}")
        for name in ("match_tolerance_ms", "refine_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0:
                raise ConfigError(f"segment.{name}: expected a finite number >= 0 (ms), got {value!r}")
        bad = [s for s in self.extra_symbols if not isinstance(s, str) or not s]
        if bad:
            raise ConfigError(f"segment.extra_symbols: expected annotation symbols (strings), got {bad!r}")

    @property
    def beat_symbols(self) -> tuple[str, ...]:
        """Symbols taken as beats: the WFDB beat symbols plus ``extra_symbols``."""
        return BEAT_SYMBOLS + tuple(s for s in self.extra_symbols if s not in BEAT_SYMBOLS)

    @classmethod
    def from_params(cls, segment: Mapping[str, Any], method: str, annotator: str = "atr") -> "SegmentConfig":
        """Build from the ``segment`` section of ``params.yaml`` and ``ingest.annotator``."""
        if not isinstance(segment, Mapping):
            raise ConfigError(f"segment: expected a mapping, got {type(segment).__name__}")
        extra = segment.get("extra_symbols") or []
        if isinstance(extra, str) or not isinstance(extra, Sequence):
            raise ConfigError(f"segment.extra_symbols: expected a list of symbols, got {extra!r}")
        christov = segment.get("christov") or {}
        return cls(
            method=method,
            window=WindowSpec.from_params(segment),
            lead=segment.get("lead", "MLII"),
            annotator=annotator,
            extra_symbols=tuple(extra),
            match_tolerance_ms=segment.get("match_tolerance_ms", 150.0),
            refine_ms=christov.get("refine_ms", 50.0),
        )

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON types (provenance in the table metadata and the report)."""
        out: dict[str, Any] = {
            "method": self.method, "lead": self.lead, "annotator": self.annotator,
            "window": self.window.kind, "extra_symbols": list(self.extra_symbols),
        }
        if self.window.kind == "jun":
            out["jun_gap_ms"] = self.window.jun_gap_ms
        elif self.window.kind == "fixed":
            out["fixed_before_ms"] = self.window.fixed_before_ms
            out["fixed_after_ms"] = self.window.fixed_after_ms
        if self.method == "christov":
            out["match_tolerance_ms"] = self.match_tolerance_ms
            out["refine_ms"] = self.refine_ms
        return out


# ------------------------------------------------------------------------------------------ per record

@dataclass
class RecordBeats:
    """The kept beats of one record (arrays aligned per beat) and its report entry.

    ``values[offsets[i]:offsets[i + 1]]`` is the signal window of beat ``i``.
    """

    record: str
    lead: str
    fs: float
    r_sample: np.ndarray
    symbol: np.ndarray
    start: np.ndarray
    end: np.ndarray
    values: np.ndarray
    offsets: np.ndarray
    counts: dict[str, Any]

    @property
    def n_beats(self) -> int:
        return int(self.r_sample.size)


def value_counts(values: np.ndarray) -> dict[str, int]:
    """Occurrences of each non-null value, as a dict sorted by value (JSON-ready).

    Examples
    --------
    >>> value_counts(np.array(["N", "V", None, "N"], dtype=object))
    {'N': 2, 'V': 1}
    """
    counts = pd.Series(values, dtype=object).value_counts(dropna=True)
    return {str(k): int(v) for k, v in sorted(counts.items())}


def reference_beats(ann_sample: np.ndarray, ann_symbol: np.ndarray,
                    beat_symbols: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Split annotations into the beat sequence and the skipped (non-beat) marks.

    Returns
    -------
    sample : ndarray of int64
    symbol : ndarray of object (str)
    skipped : dict
        Number of skipped annotations per symbol.

    Examples
    --------
    >>> s, y, skipped = reference_beats(np.array([5, 9, 20]), np.array(["+", "N", "~"], dtype=object), ("N",))
    >>> s.tolist(), y.tolist(), skipped
    ([9], ['N'], {'+': 1, '~': 1})
    """
    symbol = np.asarray(ann_symbol, dtype=object)
    is_beat = pd.Series(symbol, dtype=object).isin(list(beat_symbols)).to_numpy()
    return (np.asarray(ann_sample, dtype=np.int64)[is_beat], symbol[is_beat],
            value_counts(symbol[~is_beat]))


def _windows_and_values(where: str, signal: np.ndarray, r_peaks: np.ndarray, fs: float,
                        spec: WindowSpec):
    try:
        windows = compute_windows(r_peaks, fs, spec, n_samples=signal.shape[0])
    except ValueError as exc:
        raise DataError(where, f"bad beat sequence: {exc}") from None
    keep = windows.keep
    values, offsets = extract_windows(signal, windows.start[keep], windows.end[keep])
    return windows, keep, values.astype(np.float32, copy=False), offsets


def _dropped_symbols(windows, symbol: np.ndarray) -> dict[str, dict[str, int]]:
    """Dropped beats per reason and symbol (null symbols are not counted here)."""
    return {reason: value_counts(symbol[windows.reason == i + 1])
            for i, reason in enumerate(DROP_REASONS) if np.any(windows.reason == i + 1)}


def segment_annotations(record, config: SegmentConfig, database: str = "mitdb") -> RecordBeats:
    """Beats of one record from its reference annotations.

    Parameters
    ----------
    record : pipelines.records.reader.EcgRecord
    config : SegmentConfig
    database : str
        Used in error messages (``"<database>/<record>"``).
    """
    where = f"{database}/{record.name}"
    sample, symbol, skipped = reference_beats(record.ann_sample, record.ann_symbol, config.beat_symbols)
    if sample.size > 1 and np.any(np.diff(sample) <= 0):
        dup = sample[1:][np.diff(sample) <= 0]
        raise DataError(where, f"{dup.size} beat annotation(s) share a sample with the previous beat, first at "
                               f"sample {int(dup[0])}")
    windows, keep, values, offsets = _windows_and_values(where, record.signal, sample, record.fs, config.window)
    counts = {
        "lead": record.lead, "fs": float(record.fs), "n_samples": int(record.signal.shape[0]),
        "reference_beats": int(sample.size), "reference_symbols": value_counts(symbol),
        "beats": int(keep.sum()), "symbols": value_counts(symbol[keep]),
        "dropped": windows.dropped(), "dropped_symbols": _dropped_symbols(windows, symbol),
        "skipped_non_beat": skipped, "window_samples": config.window.in_samples(record.fs),
    }
    return RecordBeats(record=record.name, lead=record.lead, fs=float(record.fs), r_sample=sample[keep],
                       symbol=symbol[keep], start=windows.start[keep], end=windows.end[keep], values=values,
                       offsets=offsets, counts=counts)


def label_detections(detected: np.ndarray, ref_sample: np.ndarray, ref_symbol: np.ndarray,
                     tolerance: int) -> np.ndarray:
    """Symbol of the reference beat each detection matches (one-to-one, nearest first), else None.

    Examples
    --------
    >>> label_detections(np.array([10, 95, 300]), np.array([0, 100]), np.array(["N", "V"], dtype=object),
    ...                  tolerance=20).tolist()
    ['N', 'V', None]
    """
    from .signal.matching import match_beats

    matched = match_beats(detected, ref_sample, tolerance)
    symbol = np.full(matched.size, None, dtype=object)
    symbol[matched >= 0] = np.asarray(ref_symbol, dtype=object)[matched[matched >= 0]]
    return symbol


def segment_detections(record, peaks: np.ndarray, config: SegmentConfig, database: str = "mitdb") -> RecordBeats:
    """Beats of one record at detected R-peaks, labelled from its reference annotations.

    Parameters
    ----------
    record : pipelines.records.reader.EcgRecord
    peaks : ndarray of int
        Detected R-peaks, strictly increasing; they are the beat sequence (windows' neighbours).
    config : SegmentConfig
    database : str
        Used in error messages.
    """
    from .signal.matching import detection_scores

    where = f"{database}/{record.name}"
    fs = float(record.fs)
    peaks = np.asarray(peaks, dtype=np.int64)
    tolerance = ms_to_samples(config.match_tolerance_ms, fs)
    # scores: against the WFDB beat annotations only (the standard reference of EC57)
    true_sample, _, _ = reference_beats(record.ann_sample, record.ann_symbol, BEAT_SYMBOLS)
    scores = detection_scores(peaks, true_sample, tolerance)
    # labels: from the beat sequence of the annotations method (beats + extra_symbols)
    ref_sample, ref_symbol, skipped = reference_beats(record.ann_sample, record.ann_symbol, config.beat_symbols)
    symbol = label_detections(peaks, ref_sample, ref_symbol, tolerance)

    windows, keep, values, offsets = _windows_and_values(where, record.signal, peaks, fs, config.window)
    kept_symbol = symbol[keep]
    counts = {
        "lead": record.lead, "fs": fs, "n_samples": int(record.signal.shape[0]),
        "tp": scores["tp"], "fp": scores["fp"], "fn": scores["fn"],
        "sensitivity": scores["sensitivity"], "ppv": scores["ppv"], "tolerance_samples": tolerance,
        "reference_beats": int(true_sample.size), "detections": int(peaks.size),
        "beats": int(keep.sum()), "symbols": value_counts(kept_symbol),
        "unlabelled": int(np.count_nonzero(pd.isna(kept_symbol))),
        "dropped": windows.dropped(), "dropped_symbols": _dropped_symbols(windows, symbol),
        "skipped_non_beat": skipped, "window_samples": config.window.in_samples(fs),
    }
    return RecordBeats(record=record.name, lead=record.lead, fs=fs, r_sample=peaks[keep], symbol=kept_symbol,
                       start=windows.start[keep], end=windows.end[keep], values=values, offsets=offsets,
                       counts=counts)


def segment_christov(record, config: SegmentConfig, database: str = "mitdb") -> RecordBeats:
    """Beats of one record from Christov R-peak detections (at the record's own sampling rate).

    Detections are refined once to the local QRS extremum within ``segment.christov.refine_ms``
    (the detector's own refinement is switched off: refining twice walks some peaks further,
    up to the half-width again), then handled by :func:`segment_detections`.
    """
    from dataclasses import replace

    from .signal.christov import DEFAULT_PARAMS, detect_r_peaks, refine_peaks

    fs = float(record.fs)
    raw_peaks = detect_r_peaks(record.signal, fs, params=replace(DEFAULT_PARAMS, refine_ms=0.0))
    peaks = refine_peaks(record.signal, raw_peaks, fs, half_width_ms=config.refine_ms)
    return segment_detections(record, peaks, config, database)


def segment_record(record, config: SegmentConfig, database: str = "mitdb") -> RecordBeats:
    """Beats of one record by ``config.method``."""
    if config.method == "annotations":
        return segment_annotations(record, config, database)
    return segment_christov(record, config, database)


@dataclass(frozen=True)
class _Failure:
    """An exception raised in a worker, carried back as plain data (DataError does not pickle)."""

    record: str
    kind: str
    where: str
    problem: str
    trace: str


def _process_record(source: str, name: str, files: dict[str, str] | None, config: SegmentConfig,
                    database: str) -> RecordBeats | _Failure:
    """Read one verified record and segment it (runs in a worker process)."""
    from .records.reader import read_record

    try:
        record = read_record(source, name, lead=config.lead, annotator=config.annotator,
                             expected_sha256=files, database=database)
        return segment_record(record, config, database)
    except DataError as exc:
        kind = "ChecksumError" if isinstance(exc, ChecksumError) else "DataError"
        return _Failure(name, kind, exc.where, exc.problem, traceback.format_exc())
    except Exception as exc:  # any other failure: name the record, keep the traceback
        return _Failure(name, type(exc).__name__, f"{database}/{name}", f"{type(exc).__name__}: {exc}",
                        traceback.format_exc())


def _raise(failure: _Failure) -> None:
    if failure.kind == "ChecksumError":
        raise ChecksumError(failure.where, failure.problem)
    if failure.kind == "DataError":
        raise DataError(failure.where, failure.problem)
    raise RuntimeError(f"{failure.where}: segmentation failed: {failure.problem}\n{failure.trace}")


def segment_records(source: str | os.PathLike, names: Sequence[str], config: SegmentConfig, *,
                    files: Mapping[str, Mapping[str, str]] | None = None, database: str = "mitdb",
                    workers: int | None = None, progress: Progress | None = None) -> list[RecordBeats]:
    """Segment many records in parallel; results in the order of ``names`` whatever the scheduling.

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
    workers : int, optional
        Worker processes (default: the CPUs this process may use); 1 runs in this process.
    progress : Progress, optional
        Updated once per finished record.

    Raises
    ------
    DataError
        The first failing record (in ``names`` order among those that failed), named.
    """
    names = [str(n) for n in names]
    workers = max(1, min(workers or usable_cpus(), len(names) or 1))
    # import the record reader (wfdb) and the detector (scipy) once, before the workers fork
    from . import _records  # noqa: F401
    if config.method == "christov":
        from . import christov, matching  # noqa: F401
    args = [(str(source), n, dict(files[n]) if files is not None else None, config, database) for n in names]
    results: dict[str, RecordBeats | _Failure] = {}

    def note(res: RecordBeats | _Failure) -> str:
        return (f"{res.record}: failed" if isinstance(res, _Failure)
                else f"{res.record}: {res.n_beats:,} beats")

    if workers == 1:
        for a in args:
            res = _process_record(*a)
            results[a[1]] = res
            if progress is not None:
                progress.update(1, note(res))
            if isinstance(res, _Failure):
                _raise(res)
    else:
        with cf.ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_process_record, *a): a[1] for a in args}
            try:
                for fut in cf.as_completed(futures):
                    res = fut.result()
                    results[futures[fut]] = res
                    if progress is not None:
                        progress.update(1, note(res))
                    if isinstance(res, _Failure):
                        break
            finally:
                for fut in futures:
                    fut.cancel()
        failed = [results[n] for n in names if isinstance(results.get(n), _Failure)]
        if failed:
            _raise(failed[0])
    return [results[n] for n in names]  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------- table

def beats_table(results: Sequence[RecordBeats], metadata: Mapping[str, Any] | None = None) -> pa.Table:
    """Assemble per-record beats into one table with the public schema, sorted by (record, r_sample).

    Scalar columns are concatenated over all records and labelled in one pass; each record's
    signals become one ``list<float32>`` chunk straight from its values and offsets (no copy, no
    per-beat Python work).
    """
    ordered = sorted(results, key=lambda r: r.record)
    for res in ordered:
        if res.n_beats and np.any(np.diff(res.r_sample) <= 0):
            raise DataError(res.record, "beats are not strictly increasing in r_sample")
        if res.offsets[-1] >= 2**31:
            raise DataError(res.record, "record too long for list<float32> offsets")
    sizes = [res.n_beats for res in ordered]

    def cat(attr: str, dtype) -> np.ndarray:
        parts = [np.asarray(getattr(res, attr), dtype=dtype) for res in ordered]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    record = pa.array(np.repeat(np.array([r.record for r in ordered], dtype=object), sizes), pa.string())
    r_sample = pa.array(cat("r_sample", np.int64), pa.int64())
    symbol = cat("symbol", object)
    signal = pa.chunked_array(
        [pa.ListArray.from_arrays(pa.array(res.offsets.astype(np.int32)), pa.array(res.values, pa.float32()))
         for res in ordered], type=BEATS_SCHEMA.field("signal").type)
    columns = [
        pc.binary_join_element_wise(record, pc.cast(r_sample, pa.string()), "-"),
        record,
        pa.array(np.repeat(np.array([r.lead for r in ordered], dtype=object), sizes), pa.string()),
        pa.array(np.repeat(np.array([r.fs for r in ordered], dtype=np.float64), sizes), pa.float64()),
        r_sample,
        pa.array(symbol, pa.string(), from_pandas=True),
        pa.array(map_symbols(symbol, "aami"), pa.string(), from_pandas=True),
        pa.array(map_symbols(symbol, "jun8"), pa.string(), from_pandas=True),
        pa.array(cat("start", np.int64), pa.int64()),
        pa.array(cat("end", np.int64), pa.int64()),
        signal,
    ]
    schema = BEATS_SCHEMA
    if metadata is not None:
        schema = schema.with_metadata({METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    return pa.Table.from_arrays(columns, schema=schema)


def write_beats(table: pa.Table, path: str | os.PathLike) -> None:
    """Write a beats table atomically as zstd Parquet (the file appears only when complete)."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS,
                       use_dictionary=list(DICTIONARY_COLUMNS),
                       write_statistics=[f.name for f in BEATS_SCHEMA if f.name != "signal"],
                       sorting_columns=[pq.SortingColumn(table.schema.get_field_index("record")),
                                        pq.SortingColumn(table.schema.get_field_index("r_sample"))])


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``ecg_beats`` JSON metadata of a beats Parquet file."""
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(METADATA_KEY.encode())
    if raw is None:
        raise DataError(str(path), f"no {METADATA_KEY!r} schema metadata: not a beats table")
    return json.loads(raw)


# --------------------------------------------------------------------------------------------- report

_SUMMED = ("reference_beats", "beats", "detections", "unlabelled", "tp", "fp", "fn")
_COUNTED = ("reference_symbols", "symbols", "dropped", "skipped_non_beat")


def _add_counts(total: dict[str, int], part: Mapping[str, int]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + int(v)


def _finite_or_none(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def summarise(results: Sequence[RecordBeats], config: SegmentConfig) -> dict[str, Any]:
    """Per-record and total counts (and detection scores for ``christov``): the stage report."""
    total: dict[str, Any] = {k: 0 for k in _SUMMED if k in (results[0].counts if results else {})}
    for k in _COUNTED:
        total[k] = {}
    dropped_symbols: dict[str, dict[str, int]] = {}
    records: dict[str, Any] = {}
    for res in sorted(results, key=lambda r: r.record):
        c = res.counts
        for k in total:
            if k in _SUMMED:
                total[k] += int(c.get(k, 0))
        for k in _COUNTED:
            _add_counts(total[k], c.get(k, {}))
        for reason, by_symbol in c.get("dropped_symbols", {}).items():
            _add_counts(dropped_symbols.setdefault(reason, {}), by_symbol)
        records[res.record] = {k: _finite_or_none(v) for k, v in c.items()}
    for k in _COUNTED:
        total[k] = dict(sorted(total[k].items()))
    if dropped_symbols:
        total["dropped_symbols"] = {r: dict(sorted(s.items())) for r, s in sorted(dropped_symbols.items())}
    total["records"] = len(results)
    total["records_without_beats"] = [r.record for r in results if r.n_beats == 0]
    if config.method == "christov":
        total["sensitivity"] = _ratio(total["tp"], total["tp"] + total["fn"])
        total["ppv"] = _ratio(total["tp"], total["tp"] + total["fp"])
    report: dict[str, Any] = {"method": config.method, "params": config.to_json(), "total": total,
                              "records": records}
    if config.method == "christov":
        report["tolerance_ms"] = config.match_tolerance_ms
    return report


def table_metadata(report: Mapping[str, Any], config: SegmentConfig, manifest: Mapping[str, Any]) -> dict:
    """The ``ecg_beats`` schema metadata: provenance (params, source database) and counts."""
    total = report["total"]
    counts = {k: total[k] for k in ("beats", "symbols", "dropped", "records", "records_without_beats")}
    if config.method == "christov":
        counts.update({k: total[k] for k in ("unlabelled", "tp", "fp", "fn", "sensitivity", "ppv")})
    counts["per_record"] = {name: rec["beats"] for name, rec in report["records"].items()}
    return {
        "schema_version": 1,
        "method": config.method,
        "params": config.to_json(),
        "database": manifest.get("database", "mitdb"),
        "version": manifest.get("version"),
        "counts": counts,
    }


# ------------------------------------------------------------------------------------------------ run

def run_segment(method: str, params_path: str | os.PathLike, raw_dir: str | os.PathLike,
                out: str | os.PathLike, report_path: str | os.PathLike, *, workers: int | None = None,
                stream=None) -> dict[str, Any]:
    """Run the segment stage: read the manifest, segment every record, write table and report.

    Returns the report. The table is written first, then the report, each atomically; on any
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
    results = segment_records(source, names, config, files=files, database=database, workers=workers,
                              progress=progress)
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
                        help="worker processes (default: all cores); does not change the output")
    args = parser.parse_args(argv)
    try:
        run_segment(args.method, args.params, args.raw, args.out, args.report, workers=args.workers)
    except (DataError, ConfigError) as exc:
        print(f"segment: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
