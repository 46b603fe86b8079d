"""Image shards: the columns, metadata and Parquet writer of ``datasets/images/<method>/``.

One row per image. Columns (see ``docs/dataset.md``):

========== ======================================= ==============================================
column     type                                    meaning
========== ======================================= ==============================================
beat_id    string                                  ``"<record>-<r_sample>"``, the beat's id in the beats table
record     string                                  MIT-BIH record name, e.g. ``"100"``
r_sample   int64                                   R-peak sample index in the record
symbol     string (null: unlabelled detection)     MIT-BIH beat annotation symbol
aami       string (null: no AAMI class)            AAMI EC57 class (N, S, V, F, Q)
jun8       string (null: no Jun et al. class)      Jun et al. 2018 class (NOR, PVC, ...)
crop       int8                                    0 = original image, 1..9 = the nine crops
image      struct<bytes: binary, path: string>     PNG, 8-bit grayscale; ``path`` is null
========== ======================================= ==============================================

Rows are sorted by (record, r_sample, crop) within each shard; the rows of one beat never straddle
two shards. The ``image`` struct is how Hugging Face ``datasets`` stores its ``Image`` feature, and
the schema metadata key ``huggingface`` holds the features JSON, so ``datasets.load_dataset`` returns
PIL images. The key ``ecg_images`` holds the class lists and the crop names.

Where the shards go (``data/<config>/<split>-00000-of-00004.parquet``) is
:mod:`pipelines.formats.layout`; the manifest and its verification are
:mod:`pipelines.formats.manifest`; PNG coding is :mod:`pipelines.formats.png`. Their public names are
also reachable from this module, as before the split.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core.files import sha256_file
from ..signal.labels import AAMI_CLASSES, JUN8_CLASSES
from ..signal.template import FEATURE_COLUMNS
from .png import (DEFAULT_PNG_LEVEL, IMAGE_TYPE, PNG_FILTER, decode_images, decode_png,  # noqa: F401 (re-exported)
                  encode_png, image_array)

#: Version of the image-shard format (bumped on any change of columns, metadata or layout).
#: 2: shards under ``data/<config>/<split>-*.parquet`` (originals / crops x train / test / paced).
#: 3: the RR columns (``pipelines.signal.rhythm.RR_COLUMNS``) after ``jun8``.
#: 4: the template columns (``pipelines.signal.template.TEMPLATE_COLUMNS``) after the RR columns.
#: 5: the template columns include the absolute morphology columns (``mor_*``).
FORMAT_VERSION = 5

#: Schema metadata key of the Hugging Face features JSON.
HF_METADATA_KEY = "huggingface"

#: Schema metadata key of our own dataset-level JSON (class lists, crop names, image format).
METADATA_KEY = "ecg_images"

#: Names of the crops, indexed by the ``crop`` column (rows {0,16,32} x columns {0,16,32}, row-major).
CROP_NAMES: tuple[str, ...] = (
    "original",
    "left-top", "centre-top", "right-top",
    "left-centre", "centre", "right-centre",
    "left-bottom", "centre-bottom", "right-bottom",
)

#: The public columns, in order.
SCHEMA = pa.schema([
    pa.field("beat_id", pa.string()),
    pa.field("record", pa.string()),
    pa.field("r_sample", pa.int64()),
    pa.field("symbol", pa.string()),
    pa.field("aami", pa.string()),
    pa.field("jun8", pa.string()),
    *(pa.field(c, pa.float32()) for c in FEATURE_COLUMNS),     # RR, then template features (per beat)
    pa.field("crop", pa.int8()),
    pa.field("image", IMAGE_TYPE),
])

#: Label columns (strings; null where the beat has no class in that scheme).
LABEL_COLUMNS: tuple[str, ...] = ("symbol", "aami", "jun8")

#: The non-image columns (the row index a reader builds without touching the PNG bytes).
META_COLUMNS: tuple[str, ...] = ("beat_id", "record", "r_sample", "symbol", "aami", "jun8", *FEATURE_COLUMNS,
                                 "crop")

#: Columns with few distinct values: dictionary-encoded in the Parquet files.
_DICTIONARY_COLUMNS = ["record", "symbol", "aami", "jun8"]

#: Columns whose min/max statistics are written (not the PNG bytes: useless and large).
_STATISTICS_COLUMNS = ["beat_id", "record", "r_sample", "symbol", "aami", "jun8", "crop"]

#: Key used for null labels in the manifest's counts.
UNLABELLED = "unlabelled"

_SHARD_RE = re.compile(r"^(?P<prefix>[a-z][a-z0-9_]*)-(?P<index>\d{5})-of-(?P<total>\d{5})\.parquet$")


# --------------------------------------------------------------------------------------------
# Schema and metadata
# --------------------------------------------------------------------------------------------

def hf_features() -> dict[str, Any]:
    """Hugging Face ``datasets`` features JSON of the shard columns, in column order.

    Labels are ``Value("string")``: ``datasets`` gives them back as the class names, unchanged
    (a ``ClassLabel`` would need integer storage). The class lists live in :data:`METADATA_KEY`.

    Examples
    --------
    >>> hf_features()["image"]
    {'_type': 'Image'}
    >>> hf_features()["crop"]
    {'dtype': 'int8', '_type': 'Value'}
    """
    features: dict[str, Any] = {}
    for field in SCHEMA:
        if field.type == IMAGE_TYPE:
            features[field.name] = {"_type": "Image"}
        else:
            dtype = {"float": "float32", "double": "float64"}.get(str(field.type), str(field.type))
            features[field.name] = {"dtype": dtype, "_type": "Value"}
    return features


def dataset_metadata(*, image_shape: Sequence[int] | None = None, png_level: int | None = None) -> dict[str, Any]:
    """The :data:`METADATA_KEY` JSON: format version, class lists, crop names, image format.

    It is identical in every shard of a dataset (nothing shard-specific), so that readers can
    unify the shards' schemas.
    """
    meta: dict[str, Any] = {
        "format": "ecg-beat-images",
        "format_version": FORMAT_VERSION,
        "classes": {"aami": list(AAMI_CLASSES), "jun8": list(JUN8_CLASSES)},
        "crops": list(CROP_NAMES),
        "image": {"format": "PNG", "mode": "L"},
        "sort": ["record", "r_sample", "crop"],
    }
    if image_shape is not None:
        meta["image"]["shape"] = [int(s) for s in image_shape]
    if png_level is not None:
        meta["image"]["png"] = {"encoder": "opencv imencode", "zlib_level": int(png_level), "filter": PNG_FILTER}
    return meta


def shard_schema(metadata: Mapping[str, Any] | None = None) -> pa.Schema:
    """:data:`SCHEMA` with the ``huggingface`` and ``ecg_images`` schema metadata attached."""
    meta = {
        HF_METADATA_KEY: json.dumps({"info": {"features": hf_features()}}),
        METADATA_KEY: json.dumps(dict(metadata or dataset_metadata()), sort_keys=True),
    }
    return SCHEMA.with_metadata(meta)


def schema_fields(schema: pa.Schema = SCHEMA) -> list[dict[str, str]]:
    """Field names and Arrow types as JSON (the manifest's ``schema``).

    Examples
    --------
    >>> schema_fields()[-1]
    {'name': 'image', 'type': 'struct<bytes: binary, path: string>'}
    """
    return [{"name": f.name, "type": str(f.type)} for f in schema]


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def shard_name(index: int, total: int, prefix: str = "part") -> str:
    """File name of shard ``index`` of ``total`` (``prefix`` is the split in the dataset layout).

    Examples
    --------
    >>> shard_name(0, 12)
    'part-00000-of-00012.parquet'
    >>> shard_name(3, 4, "test")
    'test-00003-of-00004.parquet'
    """
    if not 0 <= index < total or total > 99999:
        raise ValueError(f"bad shard index {index} of {total}")
    return f"{prefix}-{index:05d}-of-{total:05d}.parquet"


def parse_shard_name(name: str) -> tuple[str, int, int] | None:
    """``(prefix, index, total)`` of a shard file name, None when it does not follow :func:`shard_name`.

    Examples
    --------
    >>> parse_shard_name("train-00001-of-00004.parquet")
    ('train', 1, 4)
    >>> parse_shard_name("train-1-of-4.parquet") is None
    True
    """
    m = _SHARD_RE.match(name)
    return (m.group("prefix"), int(m.group("index")), int(m.group("total"))) if m else None


@dataclass(frozen=True)
class ShardInfo:
    """One written shard: its file (relative to the dataset root), SHA-256, rows, row groups, bytes,
    first/last beat, beats (distinct beat ids) and, in the dataset layout, its config and split."""

    name: str
    sha256: str
    rows: int
    row_groups: int
    bytes: int
    first_beat_id: str | None
    last_beat_id: str | None
    beats: int = 0
    config: str | None = None
    split: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"file": self.name, "sha256": self.sha256, "rows": self.rows, "beats": self.beats,
               "row_groups": self.row_groups, "bytes": self.bytes, "first_beat_id": self.first_beat_id,
               "last_beat_id": self.last_beat_id}
        if self.config is not None:
            out.update(config=self.config, split=self.split)
        return out


class ShardWriter:
    """Stream rows (whole beats, in order) into size-bounded Parquet shards.

    Rows arrive as Arrow tables of the :data:`SCHEMA` columns. A shard is closed after the first
    beat that brings its PNG payload to ``target_bytes`` or more, so a beat's rows are never split
    between shards. Row groups hold exactly ``row_group_rows`` rows (the last of a shard fewer).
    Shard and row-group boundaries depend only on the rows, not on how they were batched, so the
    output is byte-identical whatever the number of workers. Memory held: one row group plus the
    table being added.

    Shards are written as ``.<prefix>-00000.tmp`` ... and renamed to their final
    ``<prefix>-00000-of-000NN.parquet`` names by :meth:`close`, when the count is known. Write into a
    temporary directory (``atomic_dir``) so that no reader sees a partial set.

    Parameters
    ----------
    directory : path
        Existing directory that receives the shards.
    schema : pyarrow.Schema
        :func:`shard_schema` output.
    target_bytes : int
        Target PNG payload per shard.
    row_group_rows : int
        Rows per row group.
    compression : str
        Parquet codec (``zstd``, ``snappy``, ``gzip``, ``none`` ...).
    prefix : str
        File name prefix (:func:`shard_name`): ``part``, or the split in the dataset layout.
    key : str
        The column whose value groups rows that stay in one shard (``beat_id``; ``strip_id`` for
        the paper strips of :mod:`pipelines.formats.paper`).
    """

    def __init__(self, directory: str | os.PathLike, schema: pa.Schema, *, target_bytes: int,
                 row_group_rows: int, compression: str = "zstd", prefix: str = "part", key: str = "beat_id"):
        if target_bytes <= 0 or row_group_rows <= 0:
            raise ValueError("target_bytes and row_group_rows must be positive")
        self.directory = Path(directory)
        self.schema = schema
        self.target_bytes = int(target_bytes)
        self.row_group_rows = int(row_group_rows)
        self.compression = compression
        self.prefix = prefix
        self.key = key
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None
        self._buffer: list[pa.Table] = []
        self._buffer_rows = 0
        self._shard_bytes = 0
        self._shard_rows = 0
        self._shard_groups = 0
        self._first: str | None = None
        self._last: str | None = None
        self._shard_beats = 0
        self._done: list[tuple[Path, int, int, str | None, str | None, str, int]] = []
        self.rows = 0

    # -- public --------------------------------------------------------------------------------
    def add(self, table: pa.Table, row_bytes: np.ndarray) -> None:
        """Append rows: whole beats, sorted, continuing the previous rows.

        Parameters
        ----------
        table : pyarrow.Table
            Rows with the :data:`SCHEMA` columns, whole beats (a beat's rows are consecutive and
            never continue in a later call).
        row_bytes : ndarray, int64
            PNG bytes of each row (the shard-size account).
        """
        n = table.num_rows
        if n == 0:
            return
        if len(row_bytes) != n:
            raise ValueError("row_bytes does not match the table")
        ids = table.column(self.key)
        if self._last is not None and ids[0].as_py() == self._last:
            raise ValueError(f"beat {self._last} continues from the previous table: add whole beats")
        # positions where a cut may happen: before each beat (except the first row) and at the end
        new_beat = pc.not_equal(ids.slice(1), ids.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        cuts = np.append(np.flatnonzero(new_beat) + 1, n)
        cs = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.asarray(row_bytes, dtype=np.int64), out=cs[1:])
        start = 0
        while start < n:
            # payload of the current shard if it took rows [start, c), for every cut c after start
            after = cuts[cuts > start]
            payload = self._shard_bytes + cs[after] - cs[start]
            reach = after[payload >= self.target_bytes]
            stop = int(reach[0]) if reach.size else n
            self._append(table.slice(start, stop - start), int(cs[stop] - cs[start]))
            if reach.size:
                self._close_shard()
            start = stop

    def close(self) -> list[ShardInfo]:
        """Finish the last shard, rename all to ``<prefix>-i-of-N`` and return their descriptions.

        A dataset with no rows gets one empty shard, so that readers still find the schema.
        """
        if self._writer is not None or self._buffer:
            self._close_shard()
        if not self._done:
            self._open()
            self._close_shard()
        total = len(self._done)
        infos = []
        for i, (tmp, rows, groups, first, last, digest, beats) in enumerate(self._done):
            final = self.directory / shard_name(i, total, self.prefix)
            os.replace(tmp, final)
            infos.append(ShardInfo(final.name, digest, rows, groups, final.stat().st_size, first, last, beats))
        self._done = []
        return infos

    def abort(self) -> None:
        """Close the open file without finishing it (the caller discards the directory)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._buffer = []

    # -- internals -----------------------------------------------------------------------------
    def _open(self) -> None:
        path = self.directory / f".{self.prefix}-{len(self._done):05d}.tmp"
        self._writer = pq.ParquetWriter(
            path, self.schema, compression=self.compression, use_dictionary=_DICTIONARY_COLUMNS,
            write_statistics=_STATISTICS_COLUMNS,
        )
        self._path = path
        self._shard_bytes = self._shard_rows = self._shard_groups = self._shard_beats = 0
        self._first = self._last = None

    def _append(self, part: pa.Table, nbytes: int) -> None:
        if part.num_rows == 0:
            return
        if self._writer is None:
            self._open()
        ids = part.column(self.key)
        if self._first is None:
            self._first = ids[0].as_py()
        self._last = ids[-1].as_py()
        self._shard_beats += pc.count_distinct(ids).as_py()
        self._shard_bytes += nbytes
        self._shard_rows += part.num_rows
        self.rows += part.num_rows
        self._buffer.append(part)
        self._buffer_rows += part.num_rows
        while self._buffer_rows >= self.row_group_rows:
            self._flush(self.row_group_rows)

    def _flush(self, rows: int) -> None:
        table = pa.concat_tables(self._buffer)
        group = table.slice(0, rows).combine_chunks()  # one chunk: page layout independent of batching
        rest = table.slice(rows)
        self._writer.write_table(group, row_group_size=rows)
        self._shard_groups += 1
        self._buffer = [rest] if rest.num_rows else []
        self._buffer_rows = rest.num_rows

    def _close_shard(self) -> None:
        if self._writer is None:
            self._open()
        if self._buffer_rows:
            self._flush(self._buffer_rows)
        self._writer.close()
        self._writer = None
        # hash now, while the workers keep rendering, rather than all shards at the end
        self._done.append((self._path, self._shard_rows, self._shard_groups, self._first, self._last,
                           sha256_file(self._path), self._shard_beats))
        self._shard_bytes = self._shard_rows = self._shard_groups = self._shard_beats = 0




#: Names that moved to the format's other modules, still reachable as ``shards.<name>``.
_MOVED = {
    "MANIFEST_NAME": "manifest", "read_manifest": "manifest", "verify_shards": "manifest",
    "build_manifest": "manifest", "count_rows": "manifest", "main": "manifest", "shard_entries": "manifest",
    "open_image_set": "imageset", "ImageFiles": "imageset", "shard_paths": "imageset", "iter_batches": "imageset",
    "DatasetWriter": "layout",
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f"{__package__}.{_MOVED[name]}"), name)
