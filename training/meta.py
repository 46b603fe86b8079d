"""Open an image set for training: the verified shards, the row index, the image size and crop settings.

The format and its checks belong to :mod:`pipelines.formats` (:func:`pipelines.open_image_set`, which
runs the manifest verifier); this module adds what training needs on top: the SHA-256 of
``manifest.json`` (the data's identity), the image size, and the render stage's crop settings. The
PNG bytes stay on disk; :mod:`training.data` streams them by row group.

Examples
--------
>>> images = open_images("datasets/images/annotations")          # doctest: +SKIP
>>> y, classes, dropped = label_rows(images.rows, "aami")           # doctest: +SKIP
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipelines import (JUN8_MAP, PACED_RECORDS, ConfigError, DataError, class_indices, class_names, decode_png,
                       map_symbols, open_image_set, sha256_file)

#: Metadata columns every image shard has (besides ``image``).
META_COLUMNS: tuple[str, ...] = ("beat_id", "record", "r_sample", "symbol", "aami", "jun8", "crop")


@dataclass(frozen=True)
class ImageSet:
    """An opened image set.

    Attributes
    ----------
    root : Path
        The directory (``datasets/images/<method>``).
    shards : tuple of Path
        The shard files, in manifest order (config, split, index).
    manifest : dict
        ``manifest.json`` as verified.
    data_hash : str
        SHA-256 of ``manifest.json`` (which holds the SHA-256 of every shard).
    rows : pandas.DataFrame
        One row per image row of the shards, in shard order: the metadata columns plus ``config``,
        ``split``, ``shard``, ``row_group`` and ``offset`` (position of the row inside its row group).
    image_size : int
        Side of the stored images, in pixels (from the first image).
    crops_materialised : bool
        True when the shards hold the crop rows (crop 1..9): ``params.crops.materialise`` of the
        manifest.
    crop_params : dict
        ``size``, ``offsets``, ``interpolation``, ``skip_symbols`` of the render stage's crops (from the
        manifest's ``params.crops``), for crops made at load time.
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


def _crop_params(manifest: dict[str, Any]) -> dict[str, Any]:
    """The render stage's crop settings, as the manifest records them (``params.crops``)."""
    crops = (manifest.get("params") or {}).get("crops") or {}
    return {**_DEFAULT_CROPS, **{k: crops[k] for k in _DEFAULT_CROPS if k in crops}}


def open_images(root: str | Path, *, verify: bool = True) -> ImageSet:
    """Open and verify an image set (:func:`pipelines.open_image_set`); add what training needs.

    Parameters
    ----------
    root : path
        An image set directory with ``manifest.json``.
    verify : bool
        Re-hash every shard (about 1 s per GB); every other check runs anyway.

    Raises
    ------
    DataError
        Anything the format's verifier finds (missing manifest or shard, unlisted file, a shard
        missing from its split, totals that do not add up, a wrong schema, a beat without its
        original row), no rows, an undecodable first image.
    ChecksumError
        A shard whose SHA-256 differs from the manifest's, or that the manifest does not pin.
    """
    files = open_image_set(root, verify=verify)
    if files.rows.empty:
        raise DataError(str(files.root), "the shards hold no rows")
    first = files.shards[int(files.rows["shard"].iat[0])]
    image_size = _first_image_size(first)
    data_hash = sha256_file(files.root / "manifest.json")
    declared = ((files.manifest.get("params") or {}).get("crops") or {}).get("materialise")
    materialised = declared if isinstance(declared, bool) else bool((files.rows["crop"] > 0).any())
    return ImageSet(root=files.root, shards=files.shards, manifest=files.manifest, data_hash=data_hash,
                    rows=files.rows, image_size=image_size, crops_materialised=materialised,
                    crop_params=_crop_params(files.manifest))


def _first_image_size(path: Path) -> int:
    pf = pq.ParquetFile(path)
    table = pf.read_row_group(0, columns=["beat_id", "image"])
    where = f"{path} beat {table.column('beat_id')[0].as_py()}"
    img = decode_png(table.column("image").combine_chunks().field("bytes")[0].as_py(), where)
    if img.ndim != 2 or img.shape[0] != img.shape[1]:
        raise DataError(where, f"first image is {img.shape}, not a square 8-bit grayscale PNG")
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
