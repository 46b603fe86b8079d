"""The beats table: the public Parquet format of ``datasets/beats/<method>.parquet``.

One row per beat window, sorted by (record, r_sample); columns :data:`BEATS_SCHEMA` (see
``docs/beats.md``). The schema metadata key :data:`METADATA_KEY` holds the JSON provenance (params,
source database, counts). This module is the format's only owner: the segment stage writes it with
:func:`beats_table` + :func:`write_beats`, the render stage reads it with :func:`read_beats`, and
:func:`verify_beats` checks a file end to end.

Examples
--------
>>> [f.name for f in BEATS_SCHEMA][:5]
['beat_id', 'record', 'lead', 'fs', 'r_sample']
>>> METADATA_KEY
'ecg_beats'
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core.errors import DataError
from ..core.files import atomic_path
from ..signal.labels import map_symbols
from ..signal.rhythm import RR_COLUMNS
from ..signal.template import FEATURE_COLUMNS, TEMPLATE_COLUMNS

#: Schema metadata key holding the JSON provenance (params and counts) of a beats table.
METADATA_KEY = "ecg_beats"

#: ``schema_version`` of the tables this code writes (in the :data:`METADATA_KEY` metadata): 1 had no
#: template columns; 2 adds :data:`pipelines.TEMPLATE_COLUMNS`; 3 adds their absolute morphology columns
#: (``mor_*``, :data:`pipelines.MORPHOLOGY_COLUMNS`).
SCHEMA_VERSION = 3

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
    *(pa.field(c, pa.float32()) for c in RR_COLUMNS),   # rhythm: null at the record's edges
    *(pa.field(c, pa.float32()) for c in TEMPLATE_COLUMNS),   # morphology: against the record's median beat, absolute
    pa.field("signal", pa.list_(pa.float32()), nullable=False),
])

_LABEL_SCHEMA = pa.schema([
    pa.field("beat_id", pa.string()), pa.field("record", pa.string()), pa.field("r_sample", pa.int64()),
    pa.field("symbol", pa.string()), pa.field("aami", pa.string()), pa.field("jun8", pa.string()),
    *(pa.field(c, pa.float32()) for c in FEATURE_COLUMNS), pa.field("fs", pa.float64()), pa.field("start", pa.int64()),
])

#: Columns the render stage reads (``lead`` and ``end`` are not needed to draw).
RENDER_COLUMNS: tuple[str, ...] = tuple(_LABEL_SCHEMA.names) + ("signal",)


# ----------------------------------------------------------------------------------------- writing

def beats_table(results: Sequence[Any], metadata: Mapping[str, Any] | None = None) -> pa.Table:
    """Assemble per-record beats into one table with the public schema, sorted by (record, r_sample).

    ``results`` are :class:`pipelines.signal.beats.RecordBeats` (or anything with their ``record``,
    ``lead``, ``fs``, ``r_sample``, ``symbol``, ``start``, ``end``, ``values``, ``offsets``).

    Scalar columns are concatenated over all records and labelled in one pass; each record's
    signals become one ``list<float32>`` chunk straight from its values and offsets (no copy, no
    per-beat Python work).
    """
    ordered = sorted(results, key=lambda r: r.record)
    for res in ordered:
        if len(res.r_sample) and np.any(np.diff(res.r_sample) <= 0):
            raise DataError(res.record, "beats are not strictly increasing in r_sample")
        if res.offsets[-1] >= 2**31:
            raise DataError(res.record, "record too long for list<float32> offsets")
    sizes = [len(res.r_sample) for res in ordered]

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
        *(pa.array(_feature(ordered, c), pa.float32(), from_pandas=True) for c in FEATURE_COLUMNS),
        signal,
    ]
    schema = BEATS_SCHEMA
    if metadata is not None:
        metadata = {**metadata, "schema_version": SCHEMA_VERSION}     # the format's, whoever built the rest
        schema = schema.with_metadata({METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    return pa.Table.from_arrays(columns, schema=schema)


def _feature(ordered: Sequence[Any], column: str) -> np.ndarray:
    """One RR or template column over all records (float32; NaN, written as null, where undefined or not
    computed)."""
    group = "rr" if column in RR_COLUMNS else "template"
    parts = [np.asarray(getattr(res, group, {}).get(column, np.full(len(res.r_sample), np.nan)), dtype=np.float32)
             for res in ordered]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def write_beats(table: pa.Table, path: str | os.PathLike) -> None:
    """Write a beats table atomically as zstd Parquet (the file appears only when complete)."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS,
                       use_dictionary=list(DICTIONARY_COLUMNS),
                       write_statistics=[f.name for f in BEATS_SCHEMA if f.name != "signal"],
                       sorting_columns=[pq.SortingColumn(table.schema.get_field_index("record")),
                                        pq.SortingColumn(table.schema.get_field_index("r_sample"))])


# ----------------------------------------------------------------------------------------- reading

def _schema(path: Path) -> pa.Schema:
    if not path.is_file():
        raise DataError(str(path), "beats table not found (run the segment stage)")
    try:
        return pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for corrupt or truncated files
        raise DataError(str(path), f"not a readable Parquet file ({exc})") from None


def _schema_version(schema: pa.Schema) -> int | None:
    """The ``schema_version`` in a schema's :data:`METADATA_KEY` metadata, or None (none, or not JSON)."""
    raw = (schema.metadata or {}).get(METADATA_KEY.encode())
    try:
        version = json.loads(raw).get("schema_version") if raw else None
    except (ValueError, AttributeError):
        return None
    return version if isinstance(version, int) else None


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``ecg_beats`` JSON metadata of a beats Parquet file.

    Raises
    ------
    DataError
        Missing or unreadable file, no ``ecg_beats`` metadata, or metadata that is not JSON.
    """
    path = Path(path)
    raw = (_schema(path).metadata or {}).get(METADATA_KEY.encode())
    if raw is None:
        raise DataError(str(path), f"no {METADATA_KEY!r} schema metadata: not a beats table")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DataError(str(path), f"{METADATA_KEY!r} schema metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise DataError(str(path), f"{METADATA_KEY!r} schema metadata is not a JSON object")
    return meta


@dataclass
class Beats:
    """The beats of a beats table, sorted by (record, r_sample), split into labels and samples.

    ``meta`` holds the label columns (beat_id, record, r_sample, symbol, aami, jun8), the RR columns,
    ``fs`` and ``start`` (the window's first sample, so ``r_sample - start`` is the R index); beat ``i``'s
    samples are ``values[offsets[i]:offsets[i + 1]]`` (float32, the pyarrow ListArray layout).
    """

    meta: pa.Table
    values: np.ndarray
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def read_beats(path: str | os.PathLike) -> Beats:
    """Read the label columns and samples of a beats table; check them and sort by (record, r_sample).

    Raises
    ------
    DataError
        The file is missing or unreadable, lacks a column, has null ids or duplicate beat ids.
    """
    path = Path(path)
    schema = _schema(path)
    missing = [c for c in RENDER_COLUMNS if c not in schema.names]
    if missing:
        version = _schema_version(schema)
        older = (f" (written as schema_version {version}; this code reads {SCHEMA_VERSION}: rerun the segment stage)"
                 if version is not None and version < SCHEMA_VERSION else "")
        raise DataError(str(path), f"beats table lacks column(s) {missing}{older}")
    if not (pa.types.is_list(schema.field("signal").type) or pa.types.is_large_list(schema.field("signal").type)):
        raise DataError(str(path), f"column 'signal' is {schema.field('signal').type}, expected list<float32>")
    try:
        table = pq.read_table(path, columns=list(_LABEL_SCHEMA.names))
    except Exception as exc:
        raise DataError(str(path), f"cannot read the label columns ({exc})") from None
    for col in ("beat_id", "record", "r_sample"):
        if table.column(col).null_count:
            raise DataError(str(path), f"column {col!r} has {table.column(col).null_count} null value(s)")
    try:
        table = table.cast(_LABEL_SCHEMA)
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
    try:
        for batch in pf.iter_batches(columns=["signal"], batch_size=8192):
            sig = batch.column(0)
            if not (pa.types.is_list(sig.type) or pa.types.is_large_list(sig.type)):
                raise DataError(str(path), f"column 'signal' is {sig.type}, expected list<float32>")
            lens = pc.fill_null(pc.list_value_length(sig), 0).to_numpy(zero_copy_only=False).astype(np.int64)
            flat = pc.list_flatten(sig).to_numpy(zero_copy_only=False)  # null samples become NaN
            if n_vals + flat.size > values.size:  # metadata bound too small: grow
                values = np.concatenate([values[:n_vals], np.empty(n_vals + flat.size - values.size
                                                                   + values.size // 4, dtype=np.float32)])
            values[n_vals:n_vals + flat.size] = flat
            lengths[n_beats:n_beats + lens.size] = lens
            n_vals += flat.size
            n_beats += lens.size
    except DataError:
        raise
    except Exception as exc:  # a corrupt page: name the file and the beat where reading stopped
        raise DataError(str(path), f"cannot read column 'signal' after beat row {n_beats} ({exc})") from None
    if n_beats != n_rows or int(lengths.sum()) != n_vals:
        raise DataError(str(path), "column 'signal' has inconsistent list offsets")
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    pa.default_memory_pool().release_unused()
    return values[:n_vals], offsets


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


# ------------------------------------------------------------------------------------ verification

def verify_beats(path: str | os.PathLike) -> dict[str, Any]:
    """Check a beats table end to end; return its ``ecg_beats`` metadata.

    Checks: a readable Parquet file (footer and every page), exactly the :data:`BEATS_SCHEMA` columns
    and types, the ``ecg_beats`` metadata, non-null ids, unique ``beat_id`` equal to
    ``"<record>-<r_sample>"``, rows sorted by (record, r_sample), ``start <= r_sample < end`` and
    signal lengths equal to ``end - start``.

    Raises
    ------
    DataError
        Naming the file, and the row group or beat where the fault is.
    """
    path = Path(path)
    meta = read_metadata(path)
    schema = _schema(path).remove_metadata()
    want = [(f.name, _type_name(f.type)) for f in BEATS_SCHEMA]
    have = [(f.name, _type_name(f.type)) for f in schema]
    if have != want:
        raise DataError(str(path), f"schema {have} differs from the beats table schema {want}")
    pf = pq.ParquetFile(path)
    parts = []
    for g in range(pf.num_row_groups):
        try:
            parts.append(pf.read_row_group(g))
        except Exception as exc:
            raise DataError(str(path), f"row group {g} of {pf.num_row_groups} is unreadable ({exc})") from None
    table = pa.concat_tables(parts) if parts else BEATS_SCHEMA.empty_table()
    for col in ("beat_id", "record", "r_sample", "start", "end", "signal"):
        if table.column(col).null_count:
            raise DataError(str(path), f"column {col!r} has {table.column(col).null_count} null value(s)")
    ids = table.column("beat_id").to_numpy(zero_copy_only=False).astype(str)
    want_ids = pc.binary_join_element_wise(table.column("record"), pc.cast(table.column("r_sample"), pa.string()),
                                           "-").to_numpy(zero_copy_only=False).astype(str)
    _first_bad(path, ids, ids != want_ids, "beat_id is not '<record>-<r_sample>'")
    r = table.column("r_sample").to_numpy()
    rec = table.column("record").to_numpy(zero_copy_only=False).astype(str)
    if len(ids):
        same = rec[1:] == rec[:-1]
        unsorted = np.concatenate([[False], (rec[1:] < rec[:-1]) | (same & (r[1:] <= r[:-1]))])
        _first_bad(path, ids, unsorted, "rows are not sorted by (record, r_sample) or repeat a beat")
    start, end = table.column("start").to_numpy(), table.column("end").to_numpy()
    _first_bad(path, ids, (start > r) | (r >= end), "r_sample is outside [start, end)")
    lengths = pc.list_value_length(table.column("signal")).to_numpy(zero_copy_only=False)
    _first_bad(path, ids, lengths != end - start, "signal length differs from end - start")
    return meta


def _type_name(t: pa.DataType) -> str:
    """The type as text, list item names left out (Parquet readers name them ``element``)."""
    return f"list<{t.value_type}>" if pa.types.is_list(t) or pa.types.is_large_list(t) else str(t)


def _first_bad(path: Path, ids: np.ndarray, bad: np.ndarray, problem: str) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(str(path), f"row {i} (beat {ids[i]}): {problem} ({int(bad.sum())} row(s))")
