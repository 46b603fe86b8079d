"""Open an image-shard directory: verify its shards and read the metadata of every row.

Only the small columns are read here (``beat_id``, ``record``, ``r_sample``, ``symbol``, ``aami``,
``jun8``, ``crop``) plus, for every row, where its image lives (shard, row group, offset in the
group). The PNG bytes stay on disk; :mod:`training.data` streams them by row group.

Examples
--------
>>> images = open_images("datasets/images/annotations")          # doctest: +SKIP
>>> y, classes, dropped = label_rows(images.rows, "aami")           # doctest: +SKIP
>>> shard_entries({"shards": [{"file": "part-00000-of-00001.parquet", "sha256": "ab12"}]}, "m")
[('part-00000-of-00001.parquet', 'ab12')]
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipelines import (JUN8_MAP, PACED_RECORDS, ChecksumError, ConfigError, DataError, class_indices, class_names,
                       map_symbols, sha256_file)

#: Metadata columns every image shard must have (besides ``image``).
META_COLUMNS: tuple[str, ...] = ("beat_id", "record", "r_sample", "symbol", "aami", "jun8", "crop")


@dataclass(frozen=True)
class ImageSet:
    """An opened image-shard directory.

    Attributes
    ----------
    root : Path
        The directory (``datasets/images/<method>``).
    shards : tuple of Path
        The shard files, in manifest order.
    manifest : dict
        ``manifest.json`` as read.
    data_hash : str
        SHA-256 of ``manifest.json`` (which holds the SHA-256 of every shard).
    rows : pandas.DataFrame
        One row per image row of the shards, in shard order: the metadata columns plus ``shard``,
        ``row_group`` and ``offset`` (position of the row inside its row group).
    image_size : int
        Side of the stored images, in pixels (from the first image).
    crops_materialised : bool
        True when the shards hold the crop rows (crop 1..9): ``params.crops.materialise`` of the
        manifest, else whether any row has crop > 0.
    crop_params : dict
        ``size``, ``offsets``, ``interpolation``, ``skip_symbols`` of the render stage's crops (from the
        manifest when it records them, else the recipe's defaults), for crops made at load time.
    """

    root: Path
    shards: tuple[Path, ...]
    manifest: dict[str, Any]
    data_hash: str
    rows: pd.DataFrame
    image_size: int
    crops_materialised: bool
    crop_params: dict[str, Any] = field(default_factory=dict)


_DEFAULT_CROPS = {"size": 96, "offsets": [0, 16, 32], "interpolation": "linear", "skip_symbols": ["N"]}


def shard_entries(manifest: dict[str, Any], where: str) -> list[tuple[str, str | None]]:
    """``(file name, sha256)`` of every shard listed in a manifest.

    Accepts ``"shards"`` as a list of objects (``file``/``name``/``path`` + ``sha256``) or as a mapping
    ``{name: sha256}`` / ``{name: {"sha256": ...}}``.
    """
    shards = manifest.get("shards")
    entries: list[tuple[str, str | None]] = []
    if isinstance(shards, dict):
        for name, value in shards.items():
            sha = value if isinstance(value, str) else (value or {}).get("sha256")
            entries.append((str(name), sha))
    elif isinstance(shards, list):
        for item in shards:
            if isinstance(item, str):
                entries.append((item, None))
                continue
            name = item.get("file") or item.get("name") or item.get("path")
            if not name:
                raise DataError(where, f"manifest.json: a shard entry has no file name: {item!r}")
            entries.append((str(name), item.get("sha256")))
    else:
        raise DataError(where, "manifest.json lists no shards (no 'shards' key); rerun the render stage")
    if not entries:
        raise DataError(where, "manifest.json lists no shards; rerun the render stage")
    return entries


def _crop_params(manifest: dict[str, Any]) -> dict[str, Any]:
    """The render stage's crop settings as recorded in the manifest (several layouts accepted)."""
    params = manifest.get("params") or {}
    for candidate in (params.get("crops"), (params.get("render") or {}).get("crops"), manifest.get("crops")):
        if isinstance(candidate, dict) and ("size" in candidate or "offsets" in candidate):
            return {**_DEFAULT_CROPS, **{k: candidate[k] for k in _DEFAULT_CROPS if k in candidate}}
    return dict(_DEFAULT_CROPS)


def open_images(root: str | Path, *, verify: bool = True) -> ImageSet:
    """Open ``root``, check that every shard of its manifest is there (and its SHA-256), read metadata.

    Parameters
    ----------
    root : path
        An image-shard directory with ``manifest.json``.
    verify : bool
        Verify the SHA-256 of every shard (about 1 s per GB).

    Raises
    ------
    DataError
        Missing manifest or shard, unlisted ``part-*.parquet`` file, missing column, empty shard set,
        a beat without its original (crop 0) row, a duplicated beat.
    ChecksumError
        A shard whose SHA-256 differs from the manifest's.
    """
    root = Path(root)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise DataError(str(root), "no manifest.json: not an image-shard directory (run the render stage)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(str(manifest_path), f"not valid JSON ({exc})") from None
    entries = shard_entries(manifest, str(manifest_path))
    listed = {name for name, _ in entries}
    for extra in sorted(p.name for p in root.glob("part-*.parquet")):
        if extra not in listed:
            raise DataError(str(root / extra), "shard not listed in manifest.json (stale output? rerun render)")
    shards = []
    for name, sha in entries:
        path = root / name
        if not path.is_file():
            raise DataError(str(path), "shard listed in manifest.json is missing (incomplete copy? `dvc pull`/rerun render)")
        if verify and sha:
            actual = sha256_file(path)
            if actual != sha:
                raise ChecksumError(str(path), f"SHA-256 {actual[:12]}... differs from manifest.json's {sha[:12]}...")
        shards.append(path)

    frames = []
    for i, path in enumerate(shards):
        pf = pq.ParquetFile(path)
        names = set(pf.schema_arrow.names)
        missing = [c for c in (*META_COLUMNS, "image") if c not in names]
        if missing:
            raise DataError(str(path), f"missing column(s) {missing}")
        table = pf.read(columns=list(META_COLUMNS))
        sizes = np.array([pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)], dtype=np.int64)
        frame = table.to_pandas()
        frame["shard"] = np.int32(i)
        frame["row_group"] = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
        frame["offset"] = np.arange(sizes.sum(), dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)
    if rows.empty:
        raise DataError(str(root), "the shards hold no rows")
    for col in ("beat_id", "record", "symbol", "aami", "jun8"):
        rows[col] = rows[col].astype(object).where(rows[col].notna(), None)
    rows["crop"] = rows["crop"].astype(np.int8)
    rows["record"] = rows["record"].astype(str)

    originals = rows["crop"].to_numpy() == 0
    dup = rows.loc[originals, "beat_id"].duplicated()
    if dup.any():
        bad = rows.loc[originals, "beat_id"][dup.to_numpy()].iloc[0]
        raise DataError(str(root), f"beat {bad} has more than one original (crop 0) row")
    orphan = ~rows["beat_id"].isin(rows.loc[originals, "beat_id"])
    if orphan.any():
        bad = rows.loc[orphan, "beat_id"].iloc[0]
        raise DataError(str(root), f"beat {bad} has crop rows but no original (crop 0) row")
    bad_crop = (rows["crop"] < 0) | (rows["crop"] > 9)
    if bad_crop.any():
        raise DataError(str(root), f"crop values outside 0..9: {sorted(set(rows.loc[bad_crop, 'crop']))}")

    image_size = _first_image_size(shards[0])
    data_hash = sha256_file(manifest_path)
    declared = ((manifest.get("params") or {}).get("crops") or {}).get("materialise")
    materialised = declared if isinstance(declared, bool) else bool((rows["crop"] > 0).any())
    return ImageSet(root=root, shards=tuple(shards), manifest=manifest, data_hash=data_hash, rows=rows,
                    image_size=image_size, crops_materialised=materialised, crop_params=_crop_params(manifest))


def _first_image_size(path: Path) -> int:
    pf = pq.ParquetFile(path)
    table = pf.read_row_group(0, columns=["image"])
    png = table.column("image").combine_chunks().field("bytes")[0].as_py()
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED) if png else None
    if img is None or img.ndim != 2 or img.shape[0] != img.shape[1]:
        raise DataError(str(path), "first image is not a square 8-bit grayscale PNG")
    return int(img.shape[0])


def label_rows(rows: pd.DataFrame, scheme: str) -> tuple[np.ndarray, tuple[str, ...], dict[str, int]]:
    """Class index of every row under a label scheme, -1 for rows the scheme leaves out.

    The class comes from the ``symbol`` column through :mod:`pipelines.signal.labels`; for ``aami`` and
    ``jun8`` it must agree with the stored ``aami``/``jun8`` column. ``aami`` leaves out the paced
    records (:data:`pipelines.signal.labels.PACED_RECORDS`); every scheme leaves out beats without a class
    (null symbol: christov detections without a reference beat; symbols outside the scheme).

    Returns
    -------
    y : ndarray of int64, one per row
    classes : tuple of str
    dropped : dict
        Rows left out by reason (``paced_records``, ``no_class``), originals only.

    Raises
    ------
    ConfigError
        Unknown scheme.
    DataError
        Stored ``aami``/``jun8`` column disagrees with the symbol's class.
    """
    try:
        classes = class_names(scheme)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    symbols = rows["symbol"].to_numpy(dtype=object)
    y = class_indices(symbols, scheme)
    if scheme in ("aami", "jun8"):
        stored = rows[scheme].to_numpy(dtype=object)
        expected = map_symbols(symbols, scheme)
        differ = pd.Series(stored).fillna("").to_numpy() != pd.Series(expected).fillna("").to_numpy()
        if differ.any():
            i = int(np.flatnonzero(differ)[0])
            raise DataError(str(rows["beat_id"].iloc[i]),
                            f"stored {scheme} class {stored[i]!r} differs from symbol {symbols[i]!r} -> {expected[i]!r}")
    originals = rows["crop"].to_numpy() == 0
    dropped: dict[str, int] = {}
    if scheme == "aami":
        paced = rows["record"].isin(PACED_RECORDS).to_numpy()
        n_paced = int((paced & originals & (y >= 0)).sum())
        if n_paced:
            dropped["paced_records"] = n_paced
        y = np.where(paced, -1, y)
    n_none = int(((class_indices(symbols, scheme) < 0) & originals).sum())
    if n_none:
        dropped["no_class"] = n_none
    return y.astype(np.int64), classes, dropped


def check_classes(y_beats: np.ndarray, classes: tuple[str, ...], scheme: str, where: str) -> None:
    """Raise :class:`ConfigError` naming every class of ``scheme`` without a single beat.

    Examples
    --------
    >>> check_classes(np.array([0, 2]), ("N", "S", "V"), "aami", "images")
    Traceback (most recent call last):
    ...
    pipelines.core.errors.ConfigError: images: labels 'aami': class S has no beats ...
    """
    counts = np.bincount(y_beats[y_beats >= 0], minlength=len(classes))
    empty = [c for c, n in zip(classes, counts) if n == 0]
    if not empty:
        return
    hints = []
    if "VFW" in empty:
        extra = sorted(s for s, c in JUN8_MAP.items() if c == "VFW")
        hints.append(f"VFW comes from the {extra} annotation, not a WFDB beat symbol: set "
                     f"segment.extra_symbols: {json.dumps(extra)} in params.yaml and rerun segment and render")
    if "PAB" in empty:
        hints.append(f"PAB (paced beats) exist only in records {', '.join(PACED_RECORDS)}: include them "
                     "(ingest.records) or use the aami/binary labels")
    if not hints:
        hints.append("check ingest.records and the render stage's output, or choose another label scheme")
    raise ConfigError(f"{where}: labels {scheme!r}: class {', '.join(empty)} has no beats "
                      f"(counts {dict(zip(classes, counts.tolist()))}); " + "; ".join(hints))
