"""Build tiny image-shard directories (the render stage's public format) for the training tests.

``write_shards(root, {"100": {"N": 20, "V": 5}, ...})`` writes ``data/<config>/<split>-i-of-N.parquet``
shards with the render stage's writer (rows sorted by record, r_sample, crop; PNG 8-bit grayscale
images) and its ``manifest.json`` (SHA-256 of every shard, totals), as ``datasets/images/<method>/``
holds them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import pyarrow.compute  # noqa: F401 (pa.compute)

from pipelines.formats.layout import DatasetWriter
from pipelines.formats.manifest import build_manifest, count_rows
from pipelines.formats.shards import dataset_metadata, shard_schema
from pipelines.signal.labels import map_symbols

#: Row (fraction of the image height) of the trace's peak per symbol, so that classes look different.
_PEAK_ROW = {"N": 0.2, "L": 0.3, "R": 0.35, "V": 0.8, "A": 0.25, "/": 0.6, "E": 0.7, "!": 0.5, "F": 0.65,
             "f": 0.55, "Q": 0.45, "a": 0.3, "J": 0.3, "j": 0.2, "e": 0.2, "S": 0.3}


def beat_image(symbol: str | None, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size) uint8 image: a white background and a dark trace whose peak depends on ``symbol``."""
    img = np.full((size, size), 255, np.uint8)
    peak = _PEAK_ROW.get(symbol or "", 0.5) * size + rng.normal(0, size * 0.03)
    x = np.linspace(0, size - 1, 24)
    y = size * 0.5 + (peak - size * 0.5) * np.exp(-0.5 * ((x - size / 2) / (size / 10)) ** 2)
    y += rng.normal(0, size * 0.01, x.size)
    pts = np.stack([x, np.clip(y, 0, size - 1)], axis=1).round().astype(np.int32)
    cv2.polylines(img, [pts], False, 60, 1, cv2.LINE_AA)
    return img


def encode_png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def write_shards(root: str | Path, records: Mapping[str, Mapping[str | None, int]], *, size: int = 32,
                 crops: Iterable[str] | None = None, n_shards: int = 2, row_group_rows: int = 16,
                 seed: int = 0, manifest: bool = True, crop_params: dict | None = None,
                 method: str = "annotations", rr: bool = False) -> Path:
    """Write a tiny image-shard directory; return ``root``.

    Parameters
    ----------
    records : mapping
        ``{record: {symbol: number of beats}}``; symbol None makes unlabelled beats.
    size : int
        Image side (the real shards are 128; tests use 16-32 for speed).
    crops : iterable of str, optional
        Symbols whose beats get the nine crop rows (crop 1..9); None writes originals only.
    n_shards, row_group_rows : int
        About how many shards the largest (config, split) gets, and the Parquet row-group size (small,
        so that streaming by row group is exercised).
    manifest : bool
        Write ``manifest.json`` (with the SHA-256 of every shard), laid out as the render stage's.
    crop_params : dict, optional
        Overrides of the manifest's ``params.crops`` (``materialise``, ``size``, ``offsets`` ...).
    method : str
        The manifest's ``method``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    crop_symbols = set(crops) if crops is not None else set()
    rows = []
    for record in sorted(records):
        symbols = [s for s, n in records[record].items() for _ in range(n)]
        order = rng.permutation(len(symbols))
        for i, j in enumerate(order):
            sym = symbols[j]
            r_sample = 100 + 300 * i
            img = beat_image(sym, size, rng)
            rows.append((record, r_sample, sym, 0, img))
            if sym in crop_symbols:
                for c in range(1, 10):
                    rows.append((record, r_sample, sym, c, np.roll(img, c, axis=1)))
    n = len(rows)
    symbols = [r[2] for r in rows]
    aami = map_symbols(symbols, "aami")
    jun8 = map_symbols(symbols, "jun8")
    cols = {
        "beat_id": [f"{r[0]}-{r[1]}" for r in rows], "record": [r[0] for r in rows],
        "r_sample": [r[1] for r in rows], "symbol": symbols, "aami": list(aami), "jun8": list(jun8),
        "crop": [r[3] for r in rows], "image": [{"bytes": encode_png(r[4]), "path": None} for r in rows],
    }
    schema = shard_schema()
    # the rhythm columns: S-class beats come early (pre-RR 560 ms); rr=False leaves them null
    cols.update(rr_columns(rows) if rr else {c: [None] * n for c in RR_COLUMNS})
    cols.update(template_columns(rows) if rr else {c: [None] * n for c in TEMPLATE_COLUMNS})
    table = pa.Table.from_pydict(cols, schema=schema)
    row_bytes = np.array([len(v["bytes"]) for v in cols["image"]], dtype=np.int64)
    # the render stage's writer and manifest: data/<config>/<split>-i-of-N.parquet; n_shards bounds the
    # PNG payload per shard, so the largest (config, split) gets about n_shards shards
    writer = DatasetWriter(root, schema, target_bytes=max(1, int(row_bytes.sum()) // max(n_shards, 1)),
                           row_group_rows=row_group_rows)
    writer.add(table, row_bytes)
    infos = writer.close()
    if manifest:
        crops_cfg = {"materialise": bool(crop_symbols), "size": max(size * 3 // 4, 1),
                     "offsets": [0, size // 8, size // 4], "interpolation": "linear", "skip_symbols": ["N"]}
        if crop_params:
            crops_cfg.update(crop_params)
        originals = table.filter(pa.compute.equal(table.column("crop"), 0))
        augment = np.isin(originals.column("beat_id").to_numpy(zero_copy_only=False),
                          table.filter(pa.compute.greater(table.column("crop"), 0)).column("beat_id").to_numpy(
                              zero_copy_only=False))
        counts = count_rows(originals, augment, range(10) if crop_symbols else range(1))
        params = {"size": size, "crops": crops_cfg, "row_group_rows": row_group_rows}
        doc = build_manifest(method=method, params=params, params_hash="test", input={"file": "none", "sha256": "",
                             "beats": originals.num_rows}, counts=counts, exclusions={}, shard_infos=infos,
                             metadata=dataset_metadata(image_shape=(size, size)), num_beats=originals.num_rows)
        if rr and schema.names != shard_schema().names:         # rhythm columns appended here
            doc["schema"] = [{"name": f.name, "type": str(f.type)} for f in schema]
        (root / "manifest.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return root


#: The image shards' RR-interval columns (``pipelines.RR_COLUMNS``).
RR_COLUMNS = ("rr_pre_ms", "rr_post_ms", "rr_local_ms", "rr_record_ms")

#: The image shards' template columns (record-relative, then absolute morphology).
TEMPLATE_COLUMNS = ("tpl_corr_qrs", "tpl_corr", "tpl_rms", "tpl_rms_qrs", "tpl_ptp", "tpl_slope", "tpl_width",
                    "tpl_area", "tpl_max", "tpl_min", "tpl_twave",
                    *(f"mor_q{i}" for i in range(10)), *(f"mor_t{i}" for i in range(9)), "mor_qrs_ms")


def template_columns(rows: list[tuple]) -> dict[str, list[float | None]]:
    """Synthetic template columns: a ventricular symbol (AAMI V) is unlike its record's median beat (0.2),
    every other beat like it (0.95); null at each record's first beat (a window off the record)."""
    wide = {"V", "E"}
    value = [None if r[1] == 100 else (0.2 if r[2] in wide else 0.95) for r in rows]
    return {c: list(value) for c in TEMPLATE_COLUMNS}


def rr_columns(rows: list[tuple]) -> dict[str, list[float | None]]:
    """Synthetic RR columns for ``(record, r_sample, symbol, crop, image)`` rows (beat i at 100 + 300 i):
    pre-RR 560 ms for AAMI S symbols, else 800; null at each record's first (pre) and last (post) beat."""
    last = {}
    for r in rows:
        last[r[0]] = max(last.get(r[0], 0), r[1])
    early = {"A", "a", "J", "S"}
    pre = [None if r[1] == 100 else (560.0 if r[2] in early else 800.0) for r in rows]
    post = [None if r[1] == last[r[0]] else 800.0 for r in rows]
    return {"rr_pre_ms": pre, "rr_post_ms": post, "rr_local_ms": [800.0] * len(rows),
            "rr_record_ms": [800.0] * len(rows)}


def train_params(runs: Mapping[str, Mapping[str, str]] | None = None, **overrides) -> dict:
    """A tiny ``train`` params section (32 px, 1 epoch, k=2); ``overrides`` replace top-level keys."""
    train = {
        "seed": 42,
        "folds": {"k": 2, "validation_fraction": 0.25},
        "crops": "originals",
        "class_weight": "balanced",
        "mixed_precision": "auto",
        "shuffle_buffer": 64,
        "runs": dict(runs or {"tiny": {"model": "small_cnn", "method": "annotations", "folds": "record",
                                       "labels": "aami"}}),
        "small_cnn": {"input_size": 16, "batch_size": 16, "epochs": 1, "learning_rate": 0.001, "patience": 1,
                      "max_train_images": 0},
        "vgg": {"input_size": 16, "width": 0.0625, "batch_size": 16, "epochs": 1, "learning_rate": 0.001,
                "patience": 1, "max_train_images": 60},
    }
    train.update(overrides)
    return train


def write_params(path: str | Path, train: Mapping) -> Path:
    """Write ``{"train": train}`` as a params.yaml; return its path."""
    import yaml

    path = Path(path)
    path.write_text(yaml.safe_dump({"train": dict(train)}, sort_keys=False))
    return path
