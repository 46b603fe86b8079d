"""pipelines.gallery: example beats per class and the nine crops, read from tiny shards built here."""
from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import gallery
from pipelines.core.errors import DataError
from pipelines.imaging.crops import nine_crops
from pipelines.signal.labels import map_symbols
from pipelines.imaging.raster import render_beats

SCHEMA = pa.schema([
    ("beat_id", pa.string()), ("record", pa.string()), ("r_sample", pa.int64()), ("symbol", pa.string()),
    ("aami", pa.string()), ("jun8", pa.string()), ("crop", pa.int8()),
    ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
])


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def write_tiny_shards(root, beats_per_record=None, crop_symbols=("V", "A"), n_shards=2, row_group_rows=8):
    """Render real (raster) images of synthetic beats into ``part-*.parquet`` shards (public format)."""
    beats_per_record = beats_per_record or {"100": "NNNVNANNLN", "201": "NVVNNRNN/N"}
    rng = np.random.default_rng(0)
    rows = []
    for record in sorted(beats_per_record):
        for i, symbol in enumerate(beats_per_record[record]):
            t = np.linspace(-1, 1, 200)
            sign = -1.0 if symbol == "V" else 1.0
            beat = (sign * np.exp(-(t / 0.05) ** 2) + 0.2 * np.exp(-((t - 0.4) / 0.1) ** 2)
                    + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
            img = render_beats(beat, np.array([0, beat.size]))[0]
            r_sample = 500 + 360 * i
            rows.append((record, r_sample, symbol, 0, img))
            if symbol in crop_symbols:
                for k, crop in enumerate(nine_crops(img[None])[0], start=1):
                    rows.append((record, r_sample, symbol, k, crop))
    symbols = [r[2] for r in rows]
    table = pa.Table.from_pydict({
        "beat_id": [f"{r[0]}-{r[1]}" for r in rows], "record": [r[0] for r in rows],
        "r_sample": [r[1] for r in rows], "symbol": symbols,
        "aami": list(map_symbols(symbols, "aami")), "jun8": list(map_symbols(symbols, "jun8")),
        "crop": [r[3] for r in rows], "image": [{"bytes": _png(r[4]), "path": None} for r in rows],
    }, schema=SCHEMA)
    root.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, table.num_rows, n_shards + 1).round().astype(int)
    for k in range(n_shards):
        pq.write_table(table.slice(bounds[k], bounds[k + 1] - bounds[k]),
                       root / f"part-{k:05d}-of-{n_shards:05d}.parquet", row_group_size=row_group_rows)
    return root


def test_gallery_png_written_with_expected_size(tmp_path):
    images = write_tiny_shards(tmp_path / "images")
    out = tmp_path / "figures" / "beat_gallery.png"
    summary = gallery.build_gallery(images, out, per_class=3)
    assert out.is_file() and out.stat().st_size > 10_000
    png = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert png.shape[:2] == (summary["height"], summary["width"])
    # AAMI N, S, V, Q and jun8 NOR, PVC, PAB, RBB, LBB, APC are present in the shards.
    assert summary["classes"] == 10
    assert summary["crop_beat"] == "100-1580"  # first V beat (V preferred over S), in record order
    assert summary["height"] > summary["width"] > 500
    assert not list(out.parent.glob(".*.tmp"))  # atomic: no temporary left behind


def test_gallery_is_deterministic(tmp_path):
    images = write_tiny_shards(tmp_path / "images")
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    gallery.build_gallery(images, a)
    gallery.build_gallery(images, b)
    assert hashlib.sha256(a.read_bytes()).hexdigest() == hashlib.sha256(b.read_bytes()).hexdigest()


def test_examples_are_spread_and_ordered():
    index = pa.table({
        "beat_id": [f"r{k // 10}-{k}" for k in range(30)], "record": [f"r{k // 10}" for k in range(30)],
        "r_sample": list(range(30)), "aami": ["N"] * 30, "jun8": ["NOR"] * 29 + [None], "crop": [0] * 30,
    })
    chosen = gallery.choose_examples(index, 3)
    assert chosen == [("aami", "N", ["r0-0", "r1-14", "r2-29"]), ("jun8", "NOR", ["r0-0", "r1-14", "r2-28"])]


def test_read_images_reads_only_wanted_rows(tmp_path):
    images = write_tiny_shards(tmp_path / "images")
    files = gallery.shard_files(images)
    got = gallery.read_images(files, ["201-860", "100-500"])
    assert sorted(got) == [("100-500", 0), ("201-860", 0)]  # originals only, not 201-860's crops
    got = gallery.read_images(files, ["100-500"], all_crops_of="201-860")
    assert sorted(got) == [("100-500", 0)] + [("201-860", k) for k in range(10)]
    assert all(img.shape == (128, 128) and img.dtype == np.uint8 for img in got.values())


def test_gallery_without_crops_still_draws(tmp_path):
    images = write_tiny_shards(tmp_path / "images", crop_symbols=())
    summary = gallery.build_gallery(images, tmp_path / "g.png", per_class=2)
    assert summary["crop_beat"] is None and (tmp_path / "g.png").is_file()


def test_missing_shards_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no part-\\*.parquet"):
        gallery.build_gallery(tmp_path / "empty", tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()


def test_corrupt_image_bytes_name_the_beat(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    table = pa.Table.from_pydict({
        "beat_id": ["100-5"], "record": ["100"], "r_sample": [5], "symbol": ["N"], "aami": ["N"], "jun8": ["NOR"],
        "crop": [0], "image": [{"bytes": b"not a png", "path": None}],
    }, schema=SCHEMA)
    pq.write_table(table, root / "part-00000-of-00001.parquet")
    with pytest.raises(DataError, match="beat 100-5 crop 0"):
        gallery.build_gallery(root, tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()


def test_cli(tmp_path, capsys):
    images = write_tiny_shards(tmp_path / "images")
    out = tmp_path / "gallery.png"
    assert gallery.main(["--images", str(images), "--out", str(out)]) == 0
    assert out.is_file()
    assert "gallery: 10 classes" in capsys.readouterr().err
    assert gallery.main(["--images", str(tmp_path / "nope"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gallery: error: ") and "nope" in err and err.count("\n") == 1
    assert gallery.main(["--images", str(images), "--out", str(out), "--per-class", "0"]) == 2
    assert "gallery: error: gallery.per_class: must be >= 1" in capsys.readouterr().err
