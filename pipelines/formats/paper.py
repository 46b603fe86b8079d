"""Paper-strip shards: schema, writer, reader and verifier of ``datasets/paper/<variant>/``.

One row per strip: the PNG of the printout and its exact ground truth (see ``docs/paper.md`` for
every column). Shards reuse the image-shard machinery: :class:`pipelines.formats.shards.ShardWriter`
(keyed by ``strip_id``), the Hub layout's splits (:mod:`pipelines.formats.layout`: ``data/<split>-i-of-N``,
train = DS1, test = DS2, paced, other), the Hugging Face ``Image`` column and the PNG settings of
:mod:`pipelines.formats.png`. :func:`verify_paper` is the one check of a variant directory against
its ``manifest.json`` (files, SHA-256, rows, schema, totals); :func:`read_paper` and
:func:`iter_paper` read through it.

Examples
--------
>>> [f.name for f in SCHEMA][:6]
['strip_id', 'record', 'variant', 'start_sample', 'fs', 'leads']
>>> paper_features()["signal"]["_type"], paper_features()["image"]
('List', {'_type': 'Image'})
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..core.errors import ChecksumError, DataError
from ..core.files import read_json, sha256_file
from .layout import DATA_DIR, SPLITS, split_codes
from .png import DEFAULT_PNG_LEVEL, IMAGE_TYPE, PNG_FILTER
from .shards import HF_METADATA_KEY, ShardInfo, ShardWriter, parse_shard_name, schema_fields

FORMAT = "ecg-paper-strips"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
#: Schema metadata key of the dataset-level JSON (format, geometry params, sort order).
METADATA_KEY = "ecg_paper"
#: The variant without distortions.
CLEAN = "clean"

_f32 = pa.list_(pa.float32())
_f64 = pa.list_(pa.float64())

#: The public columns, in order (``docs/paper.md``).
SCHEMA = pa.schema([
    pa.field("strip_id", pa.string()),
    pa.field("record", pa.string()),
    pa.field("variant", pa.string()),
    pa.field("start_sample", pa.int64()),
    pa.field("fs", pa.float64()),
    pa.field("leads", pa.list_(pa.string())),
    pa.field("signal", pa.list_(_f32)),
    pa.field("clipped", pa.list_(pa.int32())),
    pa.field("px_per_mm", pa.float64()),
    pa.field("mm_per_s", pa.float64()),
    pa.field("mm_per_mv", pa.float64()),
    pa.field("x_origin", pa.float64()),
    pa.field("baseline_y", _f64),
    pa.field("pulse_box", pa.list_(_f64)),
    pa.field("plotted_x", pa.list_(_f32)),
    pa.field("plotted_y", pa.list_(_f32)),
    pa.field("beat_sample", pa.list_(pa.int64())),
    pa.field("beat_symbol", pa.list_(pa.string())),
    pa.field("beat_aami", pa.list_(pa.string())),
    pa.field("rhythm", pa.string()),
    pa.field("rhythm_sample", pa.list_(pa.int64())),
    pa.field("rhythm_label", pa.list_(pa.string())),
    pa.field("distortions", pa.string()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("image", IMAGE_TYPE),
])

#: Columns a digitiser may read (everything else is ground truth, for scoring only).
INPUT_COLUMNS: tuple[str, ...] = ("strip_id", "record", "variant", "fs", "leads", "width", "height", "image")
#: Ground-truth columns.
GROUND_TRUTH_COLUMNS: tuple[str, ...] = tuple(f.name for f in SCHEMA if f.name not in INPUT_COLUMNS)

_DICTIONARY_COLUMNS = ["record", "variant", "rhythm"]
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def _feature(t: pa.DataType) -> dict[str, Any]:
    if t == IMAGE_TYPE:
        return {"_type": "Image"}
    if pa.types.is_list(t):
        return {"feature": _feature(t.value_type), "_type": "List"}
    names = {pa.string(): "string", pa.float32(): "float32", pa.float64(): "float64"}
    return {"dtype": names.get(t, str(t)), "_type": "Value"}


def paper_features() -> dict[str, Any]:
    """Hugging Face ``datasets`` features JSON of :data:`SCHEMA` (lists as ``List``, PNG as ``Image``)."""
    return {f.name: _feature(f.type) for f in SCHEMA}


def paper_schema(metadata: Mapping[str, Any]) -> pa.Schema:
    """:data:`SCHEMA` with the ``huggingface`` features and :data:`METADATA_KEY` JSON attached."""
    return SCHEMA.with_metadata({
        HF_METADATA_KEY: json.dumps({"info": {"features": paper_features()}}),
        METADATA_KEY: json.dumps(dict(metadata), sort_keys=True),
    })


# --------------------------------------------------------------------------------------------- PNG

def encode_strip(image: np.ndarray, level: int = DEFAULT_PNG_LEVEL) -> bytes:
    """PNG bytes of an RGB uint8 page (rows unfiltered, zlib ``level``: the image shards' settings).

    >>> decode_strip(encode_strip(np.full((2, 3, 3), (10, 20, 30), np.uint8)))[0, 0].tolist()
    [10, 20, 30]
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image, got {image.dtype} {image.shape}")
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1]),
                           [cv2.IMWRITE_PNG_COMPRESSION, int(level), cv2.IMWRITE_PNG_FILTER,
                            cv2.IMWRITE_PNG_FILTER_NONE])
    if not ok:
        raise RuntimeError("cv2.imencode(.png) failed")
    return buf.tobytes()


def decode_strip(data: bytes | None, where: str = "strip") -> np.ndarray:
    """The RGB uint8 array (height, width, 3) of a strip's PNG; :class:`DataError` naming ``where`` if bad."""
    if data is None:
        raise DataError(where, "no image bytes (null)")
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None:
        raise DataError(where, f"not a decodable PNG ({buf.size} bytes)")
    return np.ascontiguousarray(img[:, :, ::-1])


def image_column(pngs: Sequence[bytes]) -> pa.StructArray:
    """The ``image`` column (PNG bytes, null path) of a batch of encoded strips."""
    return pa.StructArray.from_arrays([pa.array(list(pngs), pa.binary()), pa.nulls(len(pngs), pa.string())],
                                      fields=list(IMAGE_TYPE))


# ------------------------------------------------------------------------------------------ writing

class PaperWriter:
    """Route strip rows (sorted by record, start_sample) to one ShardWriter per split under ``data/``.

    Parameters
    ----------
    directory : path
        The variant directory (a temporary one, see ``atomic_dir``).
    schema : pyarrow.Schema
        :func:`paper_schema` output.
    target_bytes, row_group_rows, compression
        As :class:`pipelines.formats.shards.ShardWriter`.
    """

    def __init__(self, directory: str | os.PathLike, schema: pa.Schema, *, target_bytes: int, row_group_rows: int,
                 compression: str = "zstd"):
        self.directory = Path(directory)
        self._kw: dict[str, Any] = dict(schema=schema, target_bytes=target_bytes, row_group_rows=row_group_rows,
                                        compression=compression, key="strip_id")
        self._writers: dict[int, ShardWriter] = {}
        self.rows = 0

    def _writer(self, code: int) -> ShardWriter:
        if code not in self._writers:
            folder = self.directory / DATA_DIR
            folder.mkdir(parents=True, exist_ok=True)
            self._writers[code] = ShardWriter(folder, prefix=tuple(SPLITS)[code], **self._kw)
        return self._writers[code]

    def add(self, table: pa.Table) -> None:
        """Append rows (whole strips, sorted, continuing the previous rows)."""
        if table.num_rows == 0:
            return
        sizes = pa.compute.binary_length(table.column("image").combine_chunks().field("bytes"))
        row_bytes = np.asarray(sizes.to_numpy(zero_copy_only=False), dtype=np.int64)
        codes = split_codes(table.column("record"))
        for code in np.unique(codes):
            idx = np.flatnonzero(codes == code)
            part = table if idx.size == table.num_rows else table.take(pa.array(idx))
            self._writer(int(code)).add(part, row_bytes[idx])
        self.rows += table.num_rows

    def close(self) -> list[ShardInfo]:
        """Finish every writer; shards by split then index, paths relative to the variant directory."""
        if not self._writers:
            self._writer(0)
        infos = []
        for code in sorted(self._writers):
            for info in self._writers[code].close():
                infos.append(ShardInfo(f"{DATA_DIR}/{info.name}", info.sha256, info.rows, info.row_groups,
                                       info.bytes, info.first_beat_id, info.last_beat_id, info.beats, None,
                                       tuple(SPLITS)[code]))
        return infos

    def abort(self) -> None:
        """Close open files without finishing them (the caller discards the directory)."""
        for writer in self._writers.values():
            writer.abort()


def build_manifest(*, variant: str, params: Mapping[str, Any], params_hash: str, input: Mapping[str, Any],
                   distortions: Mapping[str, Any], records: Mapping[str, int],
                   shard_infos: Sequence[ShardInfo], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A variant's ``manifest.json``: pure (no time stamps, no absolute paths)."""
    splits: dict[str, dict[str, int]] = {}
    for s in shard_infos:
        e = splits.setdefault(str(s.split), {"shards": 0, "rows": 0})
        e["shards"] += 1
        e["rows"] += s.rows
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "variant": variant,
        "distortions": dict(distortions), "params": dict(params), "params_hash": params_hash,
        "input": dict(input), "metadata": dict(metadata),
        "schema": schema_fields(SCHEMA), "huggingface_features": paper_features(),
        "rows": int(sum(s.rows for s in shard_infos)), "bytes": int(sum(s.bytes for s in shard_infos)),
        "records": {r: int(n) for r, n in sorted(records.items())},
        "splits": splits,
        "shards": [{"file": s.name, "split": s.split, "sha256": s.sha256, "rows": s.rows,
                    "row_groups": s.row_groups, "bytes": s.bytes, "first_strip_id": s.first_beat_id,
                    "last_strip_id": s.last_beat_id} for s in shard_infos],
    }


# ----------------------------------------------------------------------------------- verification

def read_paper_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``manifest.json`` of a variant directory (not yet checked)."""
    path = Path(directory) / MANIFEST_NAME
    manifest = read_json(path, "no manifest.json: not a paper-strip variant (run the paper stage)")
    if manifest.get("format") != FORMAT:
        raise DataError(str(path), f"not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(str(path), f"format_version {manifest.get('format_version')!r}, this code reads "
                                   f"{FORMAT_VERSION}: rerun the paper stage")
    return manifest


def verify_paper(directory: str | os.PathLike, *, check_hash: bool = True) -> dict[str, Any]:
    """Check a variant directory against its manifest; return the manifest.

    Checks: the Parquet files on disk are exactly the listed ones, numbered ``0..N-1`` of ``N`` per
    split; each has a valid SHA-256 in the manifest and matches it (``check_hash``); row counts,
    schema (columns, types, ``huggingface`` metadata) and the total row count match.

    Raises
    ------
    ChecksumError
        A shard's SHA-256 differs from the manifest, or the manifest gives none.
    DataError
        Missing, extra or misnumbered shards, unreadable files, wrong rows or schema.
    """
    directory = Path(directory)
    manifest = read_paper_manifest(directory)
    where = str(directory / MANIFEST_NAME)
    entries = manifest.get("shards")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise DataError(where, "lists no shards: rerun the paper stage")
    listed = sorted(str(e.get("file")) for e in entries)
    present = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*.parquet"))
    if listed != present:
        raise DataError(str(directory), f"shards on disk differ from manifest.json: missing "
                                        f"{sorted(set(listed) - set(present))}, not listed {sorted(set(present) - set(listed))}")
    groups: dict[str, list[tuple[int, int]]] = {}
    for e in entries:
        parsed = parse_shard_name(Path(e["file"]).name)
        if parsed is None or parsed[0] != e.get("split") or e.get("split") not in SPLITS:
            raise DataError(str(directory / e["file"]), f"manifest.json entry (split {e.get('split')!r}) does not "
                                                        f"follow {DATA_DIR}/<split>-<i>-of-<n>.parquet")
        groups.setdefault(parsed[0], []).append(parsed[1:])
    for split, got in groups.items():
        if sorted(got) != [(i, len(got)) for i in range(len(got))]:
            raise DataError(str(directory / DATA_DIR), f"split {split!r} has shards {sorted(got)} (index, of): "
                                                       "a shard is missing")
    for e in entries:
        _verify_file(directory / e["file"], e, manifest, check_hash)
    if sum(int(e["rows"]) for e in entries) != manifest.get("rows"):
        raise DataError(where, f"shards hold {sum(int(e['rows']) for e in entries)} rows, the total says "
                               f"{manifest.get('rows')!r}")
    return manifest


def _verify_file(path: Path, entry: Mapping[str, Any], manifest: Mapping[str, Any], check_hash: bool) -> None:
    sha = entry.get("sha256")
    if not isinstance(sha, str) or not _SHA256_RE.match(sha):
        raise ChecksumError(str(path), f"manifest.json gives no valid SHA-256 for this shard ({sha!r})")
    if check_hash and sha256_file(path) != sha:
        raise ChecksumError(str(path), f"sha256 {sha256_file(path)} differs from manifest.json {sha}: corrupted")
    try:
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema()
    except Exception as exc:  # truncated or corrupt footer
        raise DataError(str(path), f"not a readable Parquet file ({exc})") from None
    if meta.num_rows != entry.get("rows"):
        raise DataError(str(path), f"{meta.num_rows} rows, manifest.json says {entry.get('rows')!r}")
    if _fields(schema) != manifest.get("schema") or _fields(schema) != schema_fields(SCHEMA):
        raise DataError(str(path), "schema differs from manifest.json or from this code's paper schema")
    try:
        hf = json.loads((schema.metadata or {}).get(HF_METADATA_KEY.encode(), b"{}"))
    except json.JSONDecodeError:
        hf = {}
    if hf.get("info", {}).get("features") != paper_features():
        raise DataError(str(path), "missing or wrong 'huggingface' features metadata")


def _fields(schema: pa.Schema) -> list[dict[str, str]]:
    """:func:`schema_fields` with Parquet's list item name (``element``) read as Arrow's (``item``).

    >>> _fields(pa.schema([pa.field("a", pa.list_(pa.field("element", pa.int64())))]))
    [{'name': 'a', 'type': 'list<item: int64>'}]
    """
    return [{"name": f["name"], "type": f["type"].replace("<element: ", "<item: ")} for f in schema_fields(schema)]


# ------------------------------------------------------------------------------------------ reading

def shard_files(directory: str | os.PathLike, *, verify: bool = True) -> list[Path]:
    """The variant's shard paths in manifest order (verified first unless ``verify`` is False)."""
    directory = Path(directory)
    manifest = verify_paper(directory) if verify else read_paper_manifest(directory)
    return [directory / e["file"] for e in manifest["shards"]]


def iter_paper(directory: str | os.PathLike, columns: Sequence[str] | None = None, *, batch_size: int = 32,
               verify: bool = True) -> Iterator[pa.RecordBatch]:
    """Record batches of a verified variant: ``columns`` (default all), ``batch_size`` strips each."""
    for path in shard_files(directory, verify=verify):
        yield from pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=list(columns) if columns else None)


def read_paper(directory: str | os.PathLike, columns: Sequence[str] | None = None, *,
               verify: bool = True) -> pa.Table:
    """One table of a verified variant's rows (``columns``, default all), in manifest order."""
    paths = shard_files(directory, verify=verify)
    tables = [pq.read_table(p, columns=list(columns) if columns else None) for p in paths]
    return pa.concat_tables(tables) if tables else SCHEMA.empty_table()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipelines.formats.paper verify DIR [DIR ...]``: check variant directories; 1 if any fails."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m pipelines.formats.paper", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("verify", help="check shards against manifest.json").add_argument("directories", nargs="+")
    failed = 0
    for directory in parser.parse_args(argv).directories:
        try:
            manifest = verify_paper(directory)
        except DataError as exc:  # ChecksumError is a DataError
            print(f"verify: FAILED {exc}", file=sys.stderr)
            failed += 1
        else:
            print(f"verify: ok {directory}: {len(manifest['shards'])} shard(s), {manifest['rows']:,} strips")
    return 1 if failed else 0


__all__ = [
    "CLEAN", "FORMAT", "FORMAT_VERSION", "GROUND_TRUTH_COLUMNS", "INPUT_COLUMNS", "MANIFEST_NAME", "PNG_FILTER",
    "SCHEMA", "PaperWriter", "build_manifest", "decode_strip", "encode_strip", "image_column", "iter_paper",
    "main", "paper_features", "paper_schema", "read_paper", "read_paper_manifest", "shard_files", "verify_paper",
]


if __name__ == "__main__":
    raise SystemExit(main())
