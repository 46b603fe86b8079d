"""``manifest.json`` of an image set: what it holds, how it is built, and the one verifier.

The manifest is the trust boundary between the render stage and every reader: it lists every shard
(``file`` relative to the image set, ``config``, ``split``, ``rows``, ``beats``, ``sha256``) and the
dataset's totals (``rows``, ``beats``, ``counts``, ``layout``). :func:`verify_shards` is the only
check of a directory against it; readers (:func:`pipelines.formats.imageset.open_image_set`, the
training data loader, ``python -m pipelines.shards verify``) all go through it. It never skips a
check because the manifest lacks a field: a shard without a SHA-256 is a :class:`ChecksumError`.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..core.errors import ChecksumError, DataError
from ..core.files import read_json, sha256_file
from .layout import CONFIGS, DATA_DIR, SPLITS, shard_path
from .png import decode_images
from .shards import (FORMAT_VERSION, HF_METADATA_KEY, LABEL_COLUMNS, UNLABELLED, ShardInfo, hf_features,
                     parse_shard_name, schema_fields)

MANIFEST_NAME = "manifest.json"

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


# --------------------------------------------------------------------------------------------
# Building
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
        From :class:`pipelines.formats.layout.DatasetWriter`: paths relative to the root, config, split.
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
        "layout": layout_summary(shard_infos),
        "rows": int(sum(s.rows for s in shard_infos)),
        "beats": int(num_beats),
        "bytes": int(sum(s.bytes for s in shard_infos)),
        "counts": {"classes": counts["classes"], "crops": counts["crops"]},
        "records": counts["records"],
        "exclusions": dict(exclusions),
        "shards": [s.to_json() for s in shard_infos],
    }


def layout_summary(shard_infos: Sequence[ShardInfo]) -> dict[str, Any]:
    """``{"data_dir": "data", "configs": {config: {split: {"shards", "rows", "beats"}}}}`` of the shards.

    Examples
    --------
    >>> s = ShardInfo("data/originals/test-00000-of-00001.parquet", "0" * 64, 3, 1, 99, "100-1", "100-9", 3,
    ...               "originals", "test")
    >>> layout_summary([s])["configs"]
    {'originals': {'test': {'shards': 1, 'rows': 3, 'beats': 3}}}
    """
    configs: dict[str, dict[str, dict[str, int]]] = {}
    for s in shard_infos:
        entry = configs.setdefault(str(s.config), {}).setdefault(str(s.split), {"shards": 0, "rows": 0, "beats": 0})
        entry["shards"] += 1
        entry["rows"] += int(s.rows)
        entry["beats"] += int(s.beats)
    return {"data_dir": DATA_DIR, "configs": configs}



# --------------------------------------------------------------------------------------------
# Reading and verification
# --------------------------------------------------------------------------------------------

def read_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """The ``manifest.json`` of an image set directory (parsed, not yet checked)."""
    return read_json(Path(directory) / MANIFEST_NAME, "no manifest.json: not an image dataset (run the render stage)")


def _int(value: Any, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataError(where, f"manifest.json: {key!r} is {value!r}, expected a count")
    return value


def shard_entries(directory: str | os.PathLike, manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The manifest's shard entries, checked for form: file, config, split, rows, beats, sha256.

    Raises
    ------
    ChecksumError
        An entry without a ``sha256``, or one that is not 64 lowercase hex digits (names the shard).
    DataError
        No shards, a malformed entry, a file name that does not match its config and split.
    """
    directory = Path(directory)
    where = str(directory / MANIFEST_NAME)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(where, f"format_version {manifest.get('format_version')!r}, this code reads "
                               f"{FORMAT_VERSION}: rerun the render stage")
    entries = manifest.get("shards")
    if not isinstance(entries, list) or not entries:
        raise DataError(where, "lists no shards: rerun the render stage")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise DataError(where, f"shard entry {i} has no file name: {entry!r}")
        shard = str(directory / entry["file"])
        sha = entry.get("sha256")
        if not isinstance(sha, str) or not _SHA256_RE.match(sha):
            raise ChecksumError(shard, f"manifest.json gives no valid SHA-256 for this shard ({sha!r}); "
                                       "every shard must be pinned: rerun the render stage")
        _int(entry.get("rows"), shard, "rows")
        _int(entry.get("beats"), shard, "beats")
        config, split = entry.get("config"), entry.get("split")
        parsed = parse_shard_name(Path(entry["file"]).name)
        if config not in CONFIGS or split not in SPLITS or parsed is None or parsed[0] != split \
                or entry["file"] != shard_path(config, split, parsed[1], parsed[2]):
            raise DataError(shard, f"manifest.json entry (config {config!r}, split {split!r}) does not follow "
                                   f"{DATA_DIR}/<config>/<split>-<i>-of-<n>.parquet")
    return entries


def verify_shards(directory: str | os.PathLike, *, check_hash: bool = True) -> dict[str, Any]:
    """Check an image set directory against its manifest; return the manifest.

    Checks: every entry's form (:func:`shard_entries`: a SHA-256 is required even when
    ``check_hash`` is False); the Parquet files on disk are exactly the listed ones; each
    (config, split) is numbered ``0..N-1`` of ``N``; each file's SHA-256 (when ``check_hash``), row
    count, schema (columns, types, ``huggingface`` metadata) are as listed; and the shard entries add
    up to the manifest's totals (``rows``, ``beats``, ``counts.crops``, ``layout``), so that a
    shard deleted together with its entry is caught.

    Raises
    ------
    ChecksumError
        A shard's SHA-256 differs from the manifest, or the manifest has none for it.
    DataError
        Missing, extra or misnumbered shards, unreadable files, wrong row counts, schema or totals.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    entries = shard_entries(directory, manifest)
    listed = sorted(e["file"] for e in entries)
    present = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*.parquet"))
    if listed != present:
        missing, extra = sorted(set(listed) - set(present)), sorted(set(present) - set(listed))
        raise DataError(str(directory), f"shards on disk differ from manifest.json: missing {missing}, "
                                        f"not listed {extra}")
    groups: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for e in entries:
        _, index, total = parse_shard_name(Path(e["file"]).name)
        groups.setdefault((e["config"], e["split"]), []).append((index, total))
    for (config, split), got in groups.items():
        want = [(i, len(got)) for i in range(len(got))]
        if sorted(got) != want:
            raise DataError(str(directory / DATA_DIR / config), f"split {split!r} has shards {sorted(got)} "
                                                                f"(index, of), expected {want}: a shard is missing")
    for entry in entries:
        _verify_file(directory / entry["file"], entry, manifest, check_hash)
    _verify_totals(directory, manifest, entries)
    return manifest


def _verify_file(path: Path, entry: Mapping[str, Any], manifest: Mapping[str, Any], check_hash: bool) -> None:
    if check_hash:
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            raise ChecksumError(str(path), f"sha256 {digest} differs from manifest.json {entry['sha256']}")
    try:
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema()
    except Exception as exc:  # truncated or corrupt footer
        raise DataError(str(path), f"not a readable Parquet file ({exc})") from None
    if meta.num_rows != entry["rows"]:
        raise DataError(str(path), f"{meta.num_rows} rows, manifest.json says {entry['rows']}")
    if schema_fields(schema) != manifest.get("schema"):
        raise DataError(str(path), f"schema {schema_fields(schema)} differs from manifest.json")
    try:
        hf = json.loads((schema.metadata or {}).get(HF_METADATA_KEY.encode(), b"{}"))
    except json.JSONDecodeError:
        hf = {}
    if hf.get("info", {}).get("features") != hf_features():
        raise DataError(str(path), "missing or wrong 'huggingface' features metadata")


def _verify_totals(directory: Path, manifest: Mapping[str, Any], entries: list[dict[str, Any]]) -> None:
    where = str(directory / MANIFEST_NAME)
    rows = sum(e["rows"] for e in entries)
    beats = sum(e["rows"] for e in entries if e["config"] == "originals")
    if rows != _int(manifest.get("rows"), where, "rows"):
        raise DataError(where, f"shards hold {rows} rows, manifest.json's total says {manifest['rows']}")
    if beats != _int(manifest.get("beats"), where, "beats"):
        raise DataError(where, f"originals shards hold {beats} beats, manifest.json's total says {manifest['beats']}")
    crops = ((manifest.get("counts") or {}).get("crops"))
    if not isinstance(crops, dict) or sum(int(v) for v in crops.values()) != rows:
        raise DataError(where, f"counts.crops {crops!r} do not add up to the {rows} rows of the shards")
    by_config = {c: sum(e["rows"] for e in entries if e["config"] == c) for c in CONFIGS}
    for config, values in CONFIGS.items():
        counted = sum(int(crops.get(str(v), 0)) for v in values)
        if counted != by_config[config]:
            raise DataError(where, f"counts.crops give {counted} {config} rows, its shards hold {by_config[config]}")
    layout = (manifest.get("layout") or {}).get("configs")
    if layout != layout_summary([ShardInfo(e["file"], e["sha256"], e["rows"], 0, 0, None, None, e["beats"],
                                           e["config"], e["split"]) for e in entries])["configs"]:
        raise DataError(where, "layout (shards, rows, beats per config and split) does not match the shard entries")


def verify_images(directory: str | os.PathLike, batch_size: int = 1024) -> int:
    """Decode every PNG of ``directory`` (after :func:`verify_shards`); return the number of images.

    Catches what hashes cannot: a PNG that was truncated or corrupt when the shard was written.

    Raises
    ------
    DataError
        Naming the shard, the beat and the crop of the first image that does not decode, or whose shape
        differs from the manifest's ``image.shape``.
    """
    directory = Path(directory)
    manifest = verify_shards(directory)
    shape = tuple((manifest.get("image") or {}).get("shape") or ())
    n = 0
    for entry in manifest["shards"]:
        path = directory / entry["file"]
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=["beat_id", "crop", "image"]):
            where = [f"{path} beat {b} crop {c}" for b, c in zip(batch.column("beat_id").to_pylist(),
                                                                batch.column("crop").to_pylist())]
            images = decode_images(batch.column("image"), where=where)
            if shape and batch.num_rows and images.shape[1:] != shape:
                raise DataError(where[0], f"images are {images.shape[1:]}, manifest.json says {shape}")
            n += batch.num_rows
    return n


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipelines.shards verify [--decode] DIR [DIR ...]``: check every shard against manifest.json."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipelines.shards", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("verify", help="check shards against their manifest (names, count, SHA-256, rows, "
                                          "schema, totals)")
    check.add_argument("directories", nargs="+", help="image dataset directories, e.g. datasets/images/annotations")
    check.add_argument("--decode", action="store_true", help="also decode every PNG (names a bad image's beat)")
    args = parser.parse_args(argv)
    from ..core.stage import BAD_INPUT, run_stage

    def verify_one(directory: str) -> None:
        manifest = verify_shards(directory)
        if args.decode:
            verify_images(directory)
        print(f"verify: ok {directory}: {len(manifest['shards'])} shard(s), {manifest['rows']:,} rows match "
              f"manifest.json")

    # each directory is checked; a bad one (DataError, ChecksumError) is one "verify: error:" line
    failed = [d for d in args.directories if run_stage("verify", lambda d=d: verify_one(d)) != 0]
    return BAD_INPUT if failed else 0
