"""Where the image shards go: the Hugging Face Hub layout of an image set directory.

::

    datasets/images/<method>/
        README.md            dataset card; its YAML front matter declares the configs and splits
        croissant.json       Croissant 1.0 metadata
        manifest.json        every shard with its config, split, rows and SHA-256
        data/originals/train-00000-of-00003.parquet   crop 0 rows of the DS1 records
        data/originals/test-00000-of-00003.parquet    crop 0 rows of the DS2 records
        data/originals/paced-00000-of-00001.parquet   crop 0 rows of the paced records
        data/crops/train-00000-of-00009.parquet       crop 1..9 rows of the DS1 records ...

Configs (:data:`CONFIGS`): ``originals`` (crop 0, the default) and ``crops`` (crops 1..9). Splits
(:data:`SPLITS`): the inter-patient split of de Chazal et al. 2004, ``train`` = DS1, ``test`` = DS2,
and ``paced`` = the four paced records, which AAMI EC57 leaves out of both; records of no MIT-BIH
split (another database) go to ``other``. Only (config, split) pairs with rows get files.

Examples
--------
>>> import pyarrow as pa
>>> split_codes(pa.array(["101", "100", "217", "x1"])).tolist()
[0, 1, 2, 3]
>>> shard_path("crops", "test", 0, 2)
'data/crops/test-00000-of-00002.parquet'
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..signal.labels import DS1, DS2, PACED_RECORDS
from .shards import ShardInfo, ShardWriter, shard_name

#: Directory of the shards inside an image set (the Hub's convention).
DATA_DIR = "data"

#: Configs: name -> the crop values its rows have. ``originals`` is the default config.
CONFIGS: dict[str, tuple[int, ...]] = {"originals": (0,), "crops": tuple(range(1, 10))}

#: The default config (``load_dataset(dir)`` without a config name).
DEFAULT_CONFIG = "originals"

#: Splits in order: name -> its records (``other``: every record not listed elsewhere).
SPLITS: dict[str, tuple[str, ...]] = {"train": DS1, "test": DS2, "paced": PACED_RECORDS, "other": ()}

_SPLIT_NAMES = tuple(SPLITS)
_KNOWN = pa.array([r for recs in SPLITS.values() for r in recs], pa.string())
_KNOWN_SPLIT = np.array([i for i, recs in enumerate(SPLITS.values()) for _ in recs], dtype=np.int64)


def split_codes(records: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Index into :data:`SPLITS` of each record name (vectorised)."""
    pos = pc.index_in(records, value_set=_KNOWN).to_numpy(zero_copy_only=False)
    pos = np.nan_to_num(np.asarray(pos, dtype=np.float64), nan=-1).astype(np.int64)
    return np.where(pos >= 0, _KNOWN_SPLIT[np.maximum(pos, 0)], _SPLIT_NAMES.index("other"))


def split_of(record: str) -> str:
    """The split of one record.

    Examples
    --------
    >>> split_of("101"), split_of("100"), split_of("102"), split_of("16265")
    ('train', 'test', 'paced', 'other')
    """
    return _SPLIT_NAMES[int(split_codes(pa.array([record], pa.string()))[0])]


def config_of(crop: int) -> str:
    """The config of a ``crop`` value.

    Examples
    --------
    >>> config_of(0), config_of(7)
    ('originals', 'crops')
    """
    return next(name for name, crops in CONFIGS.items() if int(crop) in crops)


def shard_path(config: str, split: str, index: int, total: int) -> str:
    """Path of a shard relative to the image set directory (POSIX separators)."""
    return f"{DATA_DIR}/{config}/{shard_name(index, total, split)}"


def data_files(config: str, split: str) -> str:
    """Glob of one (config, split)'s shards, relative to the image set (the card's ``data_files``)."""
    return f"{DATA_DIR}/{config}/{split}-*.parquet"


class DatasetWriter:
    """Route rows to one :class:`ShardWriter` per (config, split), with the ShardWriter API.

    Rows go to ``data/<config>/<split>-i-of-N.parquet`` by their ``crop`` (:data:`CONFIGS`) and
    ``record`` (:data:`SPLITS`); each writer keeps its rows in the order given (sorted by record,
    r_sample, crop) and never splits a beat. Writers start on their first row, so a (config, split)
    without rows has no files; a dataset without any row gets one empty ``originals/train`` shard.

    Parameters
    ----------
    directory : path
        The image set directory (a temporary one, see ``atomic_dir``); ``data/`` is made inside.
    schema, target_bytes, row_group_rows, compression
        As :class:`ShardWriter`, for every (config, split).
    """

    def __init__(self, directory: str | os.PathLike, schema: pa.Schema, *, target_bytes: int,
                 row_group_rows: int, compression: str = "zstd"):
        self.directory = Path(directory)
        self._kw: dict[str, Any] = dict(schema=schema, target_bytes=target_bytes, row_group_rows=row_group_rows,
                                        compression=compression)
        self._writers: dict[tuple[int, int], ShardWriter] = {}
        self.rows = 0

    def _writer(self, key: tuple[int, int]) -> ShardWriter:
        if key not in self._writers:
            config, split = tuple(CONFIGS)[key[0]], _SPLIT_NAMES[key[1]]
            folder = self.directory / DATA_DIR / config
            folder.mkdir(parents=True, exist_ok=True)
            self._writers[key] = ShardWriter(folder, prefix=split, **self._kw)
        return self._writers[key]

    def add(self, table: pa.Table, row_bytes: np.ndarray) -> None:
        """Append rows (whole beats, sorted, continuing the previous rows) to their shard writers."""
        n = table.num_rows
        if n == 0:
            return
        if len(row_bytes) != n:
            raise ValueError("row_bytes does not match the table")
        row_bytes = np.asarray(row_bytes, dtype=np.int64)
        crop = table.column("crop").to_numpy()
        config = np.zeros(n, dtype=np.int64)
        for i, crops in enumerate(CONFIGS.values()):
            config[np.isin(crop, crops)] = i
        key = config * len(_SPLIT_NAMES) + split_codes(table.column("record"))
        for k in np.unique(key):  # at most len(CONFIGS) x len(SPLITS) groups
            idx = np.flatnonzero(key == k)
            part = table if idx.size == n else table.take(pa.array(idx))
            self._writer((int(k) // len(_SPLIT_NAMES), int(k) % len(_SPLIT_NAMES))).add(part, row_bytes[idx])
        self.rows += n

    def close(self) -> list[ShardInfo]:
        """Finish every writer; return all shards, by config then split then index, paths relative."""
        if not self._writers:
            self._writer((0, 0))
        infos = []
        for key in sorted(self._writers):
            config, split = tuple(CONFIGS)[key[0]], _SPLIT_NAMES[key[1]]
            for info in self._writers[key].close():
                infos.append(ShardInfo(f"{DATA_DIR}/{config}/{info.name}", info.sha256, info.rows, info.row_groups,
                                       info.bytes, info.first_beat_id, info.last_beat_id, info.beats, config, split))
        return infos

    def abort(self) -> None:
        """Close every open file without finishing it (the caller discards the directory)."""
        for writer in self._writers.values():
            writer.abort()
