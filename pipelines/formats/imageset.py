"""Open a verified image set: its manifest, shard paths and the row index (every non-image column).

This is how every reader starts (the training data loader, the gallery, notebooks): one call that
runs the manifest verifier (:func:`pipelines.formats.manifest.verify_shards`) and reads only the small
columns, leaving the PNG bytes on disk.

Examples
--------
>>> images = open_image_set("datasets/images/annotations")                  # doctest: +SKIP
>>> images.rows.groupby(["split", "crop"]).size()                           # doctest: +SKIP
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..core.errors import DataError
from .manifest import read_manifest, shard_entries, verify_images, verify_shards  # noqa: F401 (re-exported)
from .shards import META_COLUMNS


@dataclass(frozen=True)
class ImageFiles:
    """A verified image set.

    Attributes
    ----------
    root : Path
        The image set directory.
    manifest : dict
        ``manifest.json``, verified against the files.
    shards : tuple of Path
        The shard files, in manifest order (config, split, index).
    rows : pandas.DataFrame
        One row per image, in shard order: :data:`pipelines.formats.shards.META_COLUMNS` plus
        ``config`` and ``split`` (of the shard), ``shard`` (index into ``shards``), ``row_group`` and
        ``offset`` (position of the row inside its row group).
    """

    root: Path
    manifest: dict[str, Any]
    shards: tuple[Path, ...]
    rows: pd.DataFrame


def open_image_set(root: str | os.PathLike, *, verify: bool = True) -> ImageFiles:
    """Verify ``root`` against its manifest and read the row index of every shard.

    Parameters
    ----------
    root : path
        An image set directory (``datasets/images/<method>``).
    verify : bool
        Re-hash every shard (about 1 s per GB). Without it every other check still runs (names,
        count, rows, schema, totals, a SHA-256 listed for every shard).

    Raises
    ------
    DataError
        Anything :func:`verify_shards` finds; an unreadable shard; a beat with two originals, crop rows
        without an original, or crop values outside 0..9 (each names the shard and the beat).
    ChecksumError
        A shard whose SHA-256 differs from the manifest, or is not listed.
    """
    root = Path(root)
    manifest = verify_shards(root, check_hash=verify)
    entries = manifest["shards"]
    shards = tuple(root / e["file"] for e in entries)
    frames = []
    for i, (path, entry) in enumerate(zip(shards, entries)):
        try:
            pf = pq.ParquetFile(path)
            table = pf.read(columns=list(META_COLUMNS))
        except Exception as exc:  # corrupt pages behind an intact footer (verify=False)
            raise DataError(str(path), f"cannot read the metadata columns ({exc})") from None
        sizes = np.array([pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)], dtype=np.int64)
        frame = table.to_pandas()
        frame["config"] = entry["config"]
        frame["split"] = entry["split"]
        frame["shard"] = np.int32(i)
        frame["row_group"] = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
        frame["offset"] = np.arange(sizes.sum(), dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)
    for col in ("beat_id", "record", "symbol", "aami", "jun8"):
        rows[col] = rows[col].astype(object).where(rows[col].notna(), None)
    rows["crop"] = rows["crop"].astype(np.int8)
    rows["record"] = rows["record"].astype(str)
    _check_rows(rows, shards)
    return ImageFiles(root=root, manifest=manifest, shards=shards, rows=rows)


def _check_rows(rows: pd.DataFrame, shards: Sequence[Path]) -> None:
    """Every beat has exactly one original row; crops belong to a beat; crop values are 0..9."""
    def fail(mask: np.ndarray, problem: str) -> None:
        i = int(np.flatnonzero(mask)[0])
        raise DataError(str(shards[int(rows["shard"].iat[i])]), f"beat {rows['beat_id'].iat[i]}: {problem}")

    crop = rows["crop"].to_numpy()
    bad = (crop < 0) | (crop > 9)
    if bad.any():
        fail(bad, f"crop values outside 0..9 ({sorted(set(crop[bad].tolist()))})")
    originals = crop == 0
    dup = np.zeros(len(rows), dtype=bool)
    dup[originals] = rows.loc[originals, "beat_id"].duplicated().to_numpy()
    if dup.any():
        fail(dup, "more than one original (crop 0) row")
    orphan = ~rows["beat_id"].isin(rows.loc[originals, "beat_id"]).to_numpy()
    if orphan.any():
        fail(orphan, "crop rows but no original (crop 0) row")


def shard_paths(directory: str | os.PathLike, *, config: str | None = None, split: str | None = None) -> list[Path]:
    """Paths of the shards of ``directory`` in manifest order, optionally of one config and/or split.

    The manifest's entries are checked for form (not re-hashed: use :func:`verify_shards` for that).
    """
    directory = Path(directory)
    paths = []
    for e in shard_entries(directory, read_manifest(directory)):
        if (config is None or e["config"] == config) and (split is None or e["split"] == split):
            path = directory / e["file"]
            if not path.is_file():
                raise DataError(str(path), "shard listed in manifest.json is missing")
            paths.append(path)
    return paths


def iter_batches(directory: str | os.PathLike, columns: Sequence[str] | None = None, batch_size: int = 4096, *,
                 config: str | None = None, split: str | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of the shards of ``directory`` (optionally one config / split), in manifest order.

    Examples
    --------
    ``for batch in iter_batches("datasets/images/annotations", ["aami", "image"], split="train"): ...``
    """
    for path in shard_paths(directory, config=config, split=split):
        try:
            yield from pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=columns)
        except OSError as exc:
            raise DataError(str(path), f"cannot read the shard ({exc})") from None
