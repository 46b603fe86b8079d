"""Image shards: the public Parquet format of ``datasets/images/<method>/``.

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

Rows are sorted by (record, r_sample, crop); the rows of one beat never straddle two shards.
The ``image`` struct is how Hugging Face ``datasets`` stores its ``Image`` feature, and the schema
metadata key ``huggingface`` holds the features JSON, so ``datasets.load_dataset("parquet", ...)``
returns PIL images. The key ``ecg_images`` holds the class lists and the crop names.

Shards are named ``part-00000-of-00012.parquet`` (five digits each). ``manifest.json`` beside them
holds the SHA-256 of each shard; :func:`verify_shards` checks a directory against it.

Examples
--------
>>> import numpy as np
>>> data, offsets = encode_png(np.zeros((2, 8, 8), np.uint8))
>>> offsets.tolist()[0], len(offsets)
(0, 3)
>>> decode_png(data[offsets[0]:offsets[1]]).shape
(8, 8)
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..core.errors import ChecksumError, DataError
from ..core.files import sha256_file
from ..signal.labels import AAMI_CLASSES, JUN8_CLASSES

#: Version of the image-shard format (bumped on any change of columns or metadata).
FORMAT_VERSION = 1

#: Schema metadata key of the Hugging Face features JSON.
HF_METADATA_KEY = "huggingface"

#: Schema metadata key of our own dataset-level JSON (class lists, crop names, image format).
METADATA_KEY = "ecg_images"

#: zlib level of the PNG encoder (``cv2.IMWRITE_PNG_COMPRESSION``). Measured by
#: ``benchmarks/bench_render_stage.py`` on real beat images (see ``docs/benchmarks/render_stage.md``):
#: levels 1-3 encode at the same speed, levels above 3 are 1.5-20x slower for files 5-20 % smaller.
DEFAULT_PNG_LEVEL = 2

#: PNG row filter: none. Beat images are a thin line on a flat background; libpng's default
#: adaptive filtering tries every filter on every row, doubling the encoding time for larger files.
PNG_FILTER = "none"

#: The ``image`` column type: exactly Hugging Face ``datasets.Image``'s Arrow storage.
IMAGE_TYPE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])

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
    pa.field("crop", pa.int8()),
    pa.field("image", IMAGE_TYPE),
])

#: Label columns (strings; null where the beat has no class in that scheme).
LABEL_COLUMNS: tuple[str, ...] = ("symbol", "aami", "jun8")

#: Columns with few distinct values: dictionary-encoded in the Parquet files.
_DICTIONARY_COLUMNS = ["record", "symbol", "aami", "jun8"]

#: Columns whose min/max statistics are written (not the PNG bytes: useless and large).
_STATISTICS_COLUMNS = ["beat_id", "record", "r_sample", "symbol", "aami", "jun8", "crop"]

_SHARD_RE = re.compile(r"^part-(\d{5})-of-(\d{5})\.parquet$")

#: Key used for null labels in the manifest's counts.
UNLABELLED = "unlabelled"


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
            features[field.name] = {"dtype": str(field.type), "_type": "Value"}
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
# PNG
# --------------------------------------------------------------------------------------------

def encode_png(images: np.ndarray | Sequence[np.ndarray], level: int = DEFAULT_PNG_LEVEL
               ) -> tuple[np.ndarray, np.ndarray]:
    """Encode 8-bit grayscale images as PNG files, concatenated.

    Parameters
    ----------
    images : ndarray, uint8, shape (n, height, width), or a sequence of 2-D uint8 arrays
        A sequence of views avoids copying pixels into one array first.
    level : int
        zlib compression level 0..9. Rows are not filtered (:data:`PNG_FILTER`). The output
        bytes depend only on the pixels and the level (deterministic for a given OpenCV/libpng/zlib).

    Returns
    -------
    data : ndarray, uint8, shape (total_bytes,)
        The PNG files one after another.
    offsets : ndarray, int64, shape (n + 1,)
        Image ``i`` is ``data[offsets[i]:offsets[i + 1]]``.
    """
    if isinstance(images, np.ndarray):
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected uint8 images of shape (n, h, w), got {images.dtype} {images.shape}")
    elif any(img.ndim != 2 or img.dtype != np.uint8 for img in images):
        bad = next(img for img in images if img.ndim != 2 or img.dtype != np.uint8)
        raise ValueError(f"expected 2-D uint8 images, got {bad.dtype} {bad.shape}")
    flags = [cv2.IMWRITE_PNG_COMPRESSION, int(level), cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    encode = cv2.imencode
    bufs = [encode(".png", img, flags)[1] for img in images]  # one C call per image: no batch API in PNG
    offsets = np.zeros(len(bufs) + 1, dtype=np.int64)
    if not bufs:
        return np.zeros(0, dtype=np.uint8), offsets
    np.cumsum([b.shape[0] for b in bufs], out=offsets[1:])
    if (np.diff(offsets) == 0).any():
        raise RuntimeError(f"cv2.imencode failed on image {int(np.flatnonzero(np.diff(offsets) == 0)[0])}")
    data = np.concatenate(bufs).reshape(-1)
    return data, offsets


def decode_png(data: bytes | np.ndarray) -> np.ndarray:
    """Decode one PNG of the ``image`` column to a uint8 array of shape (height, width)."""
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError("image", "not a decodable PNG")
    return img


def decode_images(column: pa.Array | pa.ChunkedArray | Sequence[Any]) -> np.ndarray:
    """Decode a batch of ``image`` values (structs, dicts or bytes) to (n, height, width) uint8.

    All images of the batch must have the same shape.
    """
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        if pa.types.is_struct(column.type):
            column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
            column = column.field("bytes")
        values = column.to_pylist()
    else:
        values = [v["bytes"] if isinstance(v, Mapping) else v for v in column]
    imgs = [decode_png(v) for v in values]
    if not imgs:
        return np.zeros((0, 0, 0), dtype=np.uint8)
    return np.stack(imgs)


def image_array(data: np.ndarray, offsets: np.ndarray) -> pa.StructArray:
    """Build the ``image`` column (struct of PNG bytes and a null path) from :func:`encode_png` output."""
    n = len(offsets) - 1
    if offsets[-1] >= 2**31:
        raise ValueError("more than 2 GiB of PNG bytes in one batch: split it")
    binary = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                    pa.py_buffer(np.ascontiguousarray(data))])
    return pa.StructArray.from_arrays([binary, pa.nulls(n, pa.string())], fields=list(IMAGE_TYPE))


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def shard_name(index: int, total: int) -> str:
    """File name of shard ``index`` of ``total``.

    Examples
    --------
    >>> shard_name(0, 12)
    'part-00000-of-00012.parquet'
    """
    if not 0 <= index < total or total > 99999:
        raise ValueError(f"bad shard index {index} of {total}")
    return f"part-{index:05d}-of-{total:05d}.parquet"


@dataclass(frozen=True)
class ShardInfo:
    """One written shard: its file name, SHA-256, rows, row groups, bytes and first/last beat."""

    name: str
    sha256: str
    rows: int
    row_groups: int
    bytes: int
    first_beat_id: str | None
    last_beat_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {"file": self.name, "sha256": self.sha256, "rows": self.rows, "row_groups": self.row_groups,
                "bytes": self.bytes, "first_beat_id": self.first_beat_id, "last_beat_id": self.last_beat_id}


class ShardWriter:
    """Stream rows (whole beats, in order) into size-bounded Parquet shards.

    Rows arrive as Arrow tables of the :data:`SCHEMA` columns. A shard is closed after the first
    beat that brings its PNG payload to ``target_bytes`` or more, so a beat's rows are never split
    between shards. Row groups hold exactly ``row_group_rows`` rows (the last of a shard fewer).
    Shard and row-group boundaries depend only on the rows, not on how they were batched, so the
    output is byte-identical whatever the number of workers. Memory held: one row group plus the
    table being added.

    Shards are written as ``part-00000.parquet`` ... and renamed to their final
    ``part-00000-of-000NN.parquet`` names by :meth:`close`, when the count is known. Write into a
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
    """

    def __init__(self, directory: str | os.PathLike, schema: pa.Schema, *, target_bytes: int,
                 row_group_rows: int, compression: str = "zstd"):
        if target_bytes <= 0 or row_group_rows <= 0:
            raise ValueError("target_bytes and row_group_rows must be positive")
        self.directory = Path(directory)
        self.schema = schema
        self.target_bytes = int(target_bytes)
        self.row_group_rows = int(row_group_rows)
        self.compression = compression
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None
        self._buffer: list[pa.Table] = []
        self._buffer_rows = 0
        self._shard_bytes = 0
        self._shard_rows = 0
        self._shard_groups = 0
        self._first: str | None = None
        self._last: str | None = None
        self._done: list[tuple[Path, int, int, str | None, str | None, str]] = []
        self.rows = 0

    # -- public --------------------------------------------------------------------------------
    def add(self, table: pa.Table, row_bytes: np.ndarray) -> None:
        """Append rows: whole beats, sorted, continuing the previous rows.

        Parameters
        ----------
        table : pyarrow.Table
            Rows with the :data:`SCHEMA` columns; the first row is a beat's crop 0.
        row_bytes : ndarray, int64
            PNG bytes of each row (the shard-size account).
        """
        n = table.num_rows
        if n == 0:
            return
        if len(row_bytes) != n:
            raise ValueError("row_bytes does not match the table")
        crop = table.column("crop").to_numpy()
        if crop[0] != 0:
            raise ValueError("a table must start with a beat's original image (crop 0)")
        # positions where a cut may happen: before each beat (except the first row) and at the end
        cuts = np.append(np.flatnonzero(crop == 0)[1:], n)
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
        """Finish the last shard, rename all to ``part-i-of-N`` and return their descriptions.

        A dataset with no rows gets one empty shard, so that readers still find the schema.
        """
        if self._writer is not None or self._buffer:
            self._close_shard()
        if not self._done:
            self._open()
            self._close_shard()
        total = len(self._done)
        infos = []
        for i, (tmp, rows, groups, first, last, digest) in enumerate(self._done):
            final = self.directory / shard_name(i, total)
            os.replace(tmp, final)
            infos.append(ShardInfo(final.name, digest, rows, groups, final.stat().st_size, first, last))
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
        path = self.directory / f"part-{len(self._done):05d}.parquet"
        self._writer = pq.ParquetWriter(
            path, self.schema, compression=self.compression, use_dictionary=_DICTIONARY_COLUMNS,
            write_statistics=_STATISTICS_COLUMNS,
        )
        self._path = path
        self._shard_bytes = self._shard_rows = self._shard_groups = 0
        self._first = self._last = None

    def _append(self, part: pa.Table, nbytes: int) -> None:
        if part.num_rows == 0:
            return
        if self._writer is None:
            self._open()
        ids = part.column("beat_id")
        if self._first is None:
            self._first = ids[0].as_py()
        self._last = ids[-1].as_py()
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
                           sha256_file(self._path)))
        self._shard_bytes = self._shard_rows = self._shard_groups = 0


# --------------------------------------------------------------------------------------------
# Counts (for the manifest)
# --------------------------------------------------------------------------------------------

def count_rows(meta: pa.Table, augment: np.ndarray, crops: Sequence[int] | range) -> dict[str, Any]:
    """Rows per label x crop (for ``symbol``, ``aami``, ``jun8``), per crop and per record.

    Every beat has a crop-0 row; a beat with ``augment`` True also has one row per crop
    ``1..max(crops)``. Counting the plan (beats and their augment flags) instead of the written rows
    is exact because the stage writes exactly the planned rows (it checks the total).

    Parameters
    ----------
    meta : pyarrow.Table
        One row per rendered beat, with columns record, symbol, aami, jun8.
    augment : ndarray of bool
        Beats that have crop rows.
    crops : range or sequence of int
        The crop values present in the dataset (``range(10)``, or ``range(1)`` for originals only).

    Returns
    -------
    dict
        ``{"classes": {scheme: {label: {"0": n, ..., "9": n, "total": n}}}, "crops": {crop: n},
        "records": {record: {"beats", "rows", "aami": {class: beats}}}}``; null labels are counted
        as ``"unlabelled"``; labels and records are sorted.

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"record": ["100", "100"], "symbol": ["N", "V"], "aami": ["N", "V"], "jun8": ["NOR", "PVC"]})
    >>> c = count_rows(t, np.array([False, True]), range(3))
    >>> c["classes"]["aami"]["V"], c["crops"], c["records"]["100"]["rows"]
    ({'0': 1, '1': 1, '2': 1, 'total': 3}, {'0': 2, '1': 1, '2': 1}, 4)
    """
    crops = [int(c) for c in crops]
    n_crops = max(crops)
    augment = np.asarray(augment, dtype=bool)
    if len(augment) != meta.num_rows:
        raise ValueError("augment does not match meta")
    frame = meta.select(["record", *LABEL_COLUMNS]).to_pandas()
    classes: dict[str, Any] = {}
    for col in LABEL_COLUMNS:
        labels = frame[col].astype(object).where(frame[col].notna(), UNLABELLED)
        beats = labels.value_counts().to_dict()
        aug = labels[augment].value_counts().to_dict()
        table = {}
        for label in sorted(beats):
            row = {str(c): int(beats[label] if c == 0 else aug.get(label, 0)) for c in crops}
            row["total"] = sum(row.values())
            table[label] = row
        classes[col] = table
    per_crop = {str(c): int(len(augment) if c == 0 else augment.sum()) for c in crops}
    rows = 1 + n_crops * augment.astype(np.int64)
    rec = frame["record"].astype(object)
    beats_per = rec.value_counts().to_dict()
    rows_per = pd.Series(rows).groupby(rec.to_numpy()).sum().to_dict()
    aami = frame["aami"].astype(object).where(frame["aami"].notna(), UNLABELLED)
    aami_per = pd.DataFrame({"record": rec, "aami": aami}).value_counts().to_dict()
    records = {}
    for r in sorted(beats_per):
        records[r] = {"beats": int(beats_per[r]), "rows": int(rows_per[r]),
                      "aami": {a: int(n) for (rr, a), n in sorted(aami_per.items()) if rr == r}}
    return {"classes": classes, "crops": per_crop, "records": records}


# --------------------------------------------------------------------------------------------
# Reading and verification
# --------------------------------------------------------------------------------------------

MANIFEST_NAME = "manifest.json"


def read_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """The ``manifest.json`` of an image dataset directory."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise DataError(str(path), "no manifest.json: not an image dataset (run the render stage)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(str(path), f"not valid JSON ({exc})") from None


def shard_paths(directory: str | os.PathLike) -> list[Path]:
    """Paths of the shards of ``directory`` in order, as listed by its manifest."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    paths = [directory / s["file"] for s in manifest["shards"]]
    for p in paths:
        if not p.is_file():
            raise DataError(str(p), "shard listed in manifest.json is missing")
    return paths


def verify_shards(directory: str | os.PathLike, *, check_hash: bool = True) -> dict[str, Any]:
    """Check an image dataset directory against its manifest; return the manifest.

    Checks: the ``part-*.parquet`` files are exactly the manifest's shards, named ``i-of-N``
    consistently; each file's SHA-256 (when ``check_hash``), row count and schema (columns, types,
    ``huggingface`` metadata) are as the manifest says.

    Raises
    ------
    ChecksumError
        A shard's SHA-256 differs from the manifest.
    DataError
        Missing, extra or misnamed shards, wrong row counts or schema.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    listed = [s["file"] for s in manifest["shards"]]
    present = sorted(p.name for p in directory.glob("part-*.parquet"))
    if sorted(listed) != present:
        raise DataError(str(directory), f"shards on disk {present} differ from manifest.json {listed}")
    total = len(listed)
    for i, name in enumerate(listed):
        m = _SHARD_RE.match(name)
        if not m or int(m.group(1)) != i or int(m.group(2)) != total:
            raise DataError(str(directory / name), f"shard name does not follow part-{i:05d}-of-{total:05d}.parquet")
    rows = 0
    for entry in manifest["shards"]:
        path = directory / entry["file"]
        if check_hash:
            digest = sha256_file(path)
            if digest != entry["sha256"]:
                raise ChecksumError(str(path), f"sha256 {digest} differs from manifest.json {entry['sha256']}")
        meta = pq.read_metadata(path)
        if meta.num_rows != entry["rows"]:
            raise DataError(str(path), f"{meta.num_rows} rows, manifest.json says {entry['rows']}")
        schema = meta.schema.to_arrow_schema()
        if schema_fields(schema) != manifest["schema"]:
            raise DataError(str(path), f"schema {schema_fields(schema)} differs from manifest.json")
        hf = json.loads((schema.metadata or {}).get(HF_METADATA_KEY.encode(), b"{}"))
        if hf.get("info", {}).get("features") != hf_features():
            raise DataError(str(path), "missing or wrong 'huggingface' features metadata")
        rows += meta.num_rows
    if rows != manifest["rows"]:
        raise DataError(str(directory), f"{rows} rows in shards, manifest.json says {manifest['rows']}")
    return manifest


def iter_batches(directory: str | os.PathLike, columns: Sequence[str] | None = None,
                 batch_size: int = 4096) -> Iterator[pa.RecordBatch]:
    """Record batches of all shards of ``directory``, in row order.

    Examples
    --------
    ``for batch in iter_batches("datasets/images/annotations", ["aami", "image"]): ...``
    """
    for path in shard_paths(directory):
        yield from pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=columns)


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------

def build_manifest(*, method: str, params: Mapping[str, Any], params_hash: str, input: Mapping[str, Any],
                   counts: Mapping[str, Any], exclusions: Mapping[str, Any], shard_infos: Sequence[ShardInfo],
                   metadata: Mapping[str, Any], num_beats: int) -> dict[str, Any]:
    """Assemble ``manifest.json`` (see ``docs/dataset.md``). Pure: no time stamps, no absolute paths.

    Parameters
    ----------
    method : str
        Beat-finding method of the input beats table.
    params : mapping
        The render params that determine the output.
    params_hash : str
        Short hash of ``params``.
    input : mapping
        ``{"file": name, "sha256": ..., "beats": rows}`` of the beats table.
    counts : mapping
        :func:`count_rows` output, with ``excluded`` added per record.
    exclusions : mapping
        Excluded beats per reason (``count``, ``beat_ids``).
    shard_infos : sequence of ShardInfo
    metadata : mapping
        :func:`dataset_metadata` output (class lists, crop names, image format).
    num_beats : int
        Beats rendered (rows with crop 0).
    """
    return {
        "format": metadata["format"],
        "format_version": metadata["format_version"],
        "method": method,
        "params": dict(params),
        "params_hash": params_hash,
        "input": dict(input),
        "classes": metadata["classes"],
        "crop_names": metadata["crops"],
        "image": metadata["image"],
        "sort": metadata["sort"],
        "schema": schema_fields(),
        "huggingface_features": hf_features(),
        "rows": int(sum(s.rows for s in shard_infos)),
        "beats": int(num_beats),
        "bytes": int(sum(s.bytes for s in shard_infos)),
        "counts": {"classes": counts["classes"], "crops": counts["crops"]},
        "records": counts["records"],
        "exclusions": dict(exclusions),
        "shards": [s.to_json() for s in shard_infos],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipelines.shards verify DIR [DIR ...]``: re-hash every shard against manifest.json."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m pipelines.shards", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("verify", help="check shards against their manifest (names, SHA-256, rows, schema)")
    check.add_argument("directories", nargs="+", help="image dataset directories, e.g. datasets/images/annotations")
    args = parser.parse_args(argv)
    failed = 0
    for directory in args.directories:
        try:
            manifest = verify_shards(directory)
        except DataError as exc:  # ChecksumError is a DataError
            print(f"verify: FAILED {exc}", file=sys.stderr)
            failed += 1
        else:
            print(f"verify: ok {directory}: {len(manifest['shards'])} shard(s), {manifest['rows']:,} rows match "
                  f"manifest.json")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
