"""Image-shard format: PNG encoding, the shard writer's splitting, the (config, split) layout, metadata."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.formats import layout, shards
from pipelines.core.errors import ChecksumError, DataError

from tests.conftest import require


def images(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """White images with a random dark polyline (like beat images)."""
    rng = np.random.default_rng(seed)
    out = np.full((n, size, size), 255, np.uint8)
    x = np.linspace(2, size - 3, 40)
    for i in range(n):
        y = size / 2 + rng.normal(0, size / 6, x.size).cumsum() / 4
        pts = np.stack([x, np.clip(y, 0, size - 1)], 1).round().astype(np.int32)
        cv2.polylines(out[i], [pts], False, 0, 1, cv2.LINE_AA)
    return out


def rows_table(beats: list[tuple[str, int, int]], size: int = 32, seed: int = 0) -> tuple[pa.Table, np.ndarray]:
    """Rows of whole beats: ``beats = [(record, r_sample, n_crops), ...]`` -> table, PNG bytes per row."""
    recs, rs, crop = [], [], []
    for rec, r, k in beats:
        for c in range(k + 1):
            recs.append(rec); rs.append(r); crop.append(c)
    data, offs = shards.encode_png(images(len(recs), size, seed))
    table = pa.Table.from_arrays([
        pa.array([f"{a}-{b}" for a, b in zip(recs, rs)]), pa.array(recs), pa.array(rs, pa.int64()),
        pa.array(["V"] * len(recs)), pa.array(["V"] * len(recs)), pa.array(["PVC"] * len(recs)),
        *(pa.array(np.full(len(recs), 800.0, np.float32)) for _ in shards.FEATURE_COLUMNS),
        pa.array(crop, pa.int8()), shards.image_array(data, offs)], schema=shards.shard_schema())
    return table, np.diff(offs)


def write(directory, table, row_bytes, batches, **kw) -> list[shards.ShardInfo]:
    """Feed ``table`` to a ShardWriter in batches cut at the given beat-aligned row indices."""
    directory.mkdir()
    writer = shards.ShardWriter(directory, shards.shard_schema(), compression="zstd", **kw)
    cuts = [0, *batches, table.num_rows]
    for a, b in zip(cuts[:-1], cuts[1:]):
        writer.add(table.slice(a, b - a), row_bytes[a:b])
    return writer.close()


# ------------------------------------------------------------------------------------------------ PNG

def test_png_roundtrip_is_lossless_grayscale_and_deterministic():
    imgs = images(20, 128)
    data, offs = shards.encode_png(imgs)
    assert offs[0] == 0 and offs[-1] == data.size and len(offs) == 21
    for i in range(20):
        png = data[offs[i]:offs[i + 1]].tobytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
        assert png[24] == 8 and png[25] == 0  # bit depth 8, colour type 0 (grayscale)
        assert np.array_equal(shards.decode_png(png), imgs[i])
    again, offs2 = shards.encode_png(list(imgs))  # a sequence of views gives the same bytes
    assert np.array_equal(data, again) and np.array_equal(offs, offs2)
    assert np.array_equal(shards.decode_images(shards.image_array(data, offs)), imgs)


def test_png_level_changes_size_not_pixels():
    imgs = images(10, 128)
    fast, _ = shards.encode_png(imgs, level=1)
    small, offs = shards.encode_png(imgs, level=9)
    assert small.size <= fast.size
    assert np.array_equal(shards.decode_images([small[offs[i]:offs[i + 1]].tobytes() for i in range(10)]), imgs)


def test_encode_rejects_bad_images():
    with pytest.raises(ValueError):
        shards.encode_png(np.zeros((2, 8, 8), np.float32))
    with pytest.raises(ValueError):
        shards.encode_png([np.zeros((8, 8, 3), np.uint8)])
    data, offs = shards.encode_png(np.zeros((0, 8, 8), np.uint8))
    assert data.size == 0 and offs.tolist() == [0]
    with pytest.raises(DataError):
        shards.decode_png(b"not a png")


# ------------------------------------------------------------------------------------------------ writer

BEATS = [("100", 10 * i, 9 if i % 3 == 0 else 0) for i in range(40)] + [("101", 5 * i, 9 * (i % 2)) for i in range(30)]


def test_writer_output_independent_of_batching(tmp_path):
    table, nbytes = rows_table(BEATS)
    crop = table.column("crop").to_numpy()
    starts = np.flatnonzero(crop == 0)
    a = write(tmp_path / "a", table, nbytes, [], target_bytes=20_000, row_group_rows=32)
    b = write(tmp_path / "b", table, nbytes, starts[1::3].tolist(), target_bytes=20_000, row_group_rows=32)
    assert [s.sha256 for s in a] == [s.sha256 for s in b]
    assert len(a) > 2
    for x in a:
        assert (tmp_path / "a" / x.name).read_bytes() == (tmp_path / "b" / x.name).read_bytes()


def test_writer_cuts_at_beats_after_the_target(tmp_path):
    table, nbytes = rows_table(BEATS)
    infos = write(tmp_path / "d", table, nbytes, [], target_bytes=15_000, row_group_rows=10)
    assert [s.name for s in infos] == [shards.shard_name(i, len(infos)) for i in range(len(infos))]
    assert sum(s.rows for s in infos) == table.num_rows
    start = 0
    for s in infos:
        part = pq.read_table(tmp_path / "d" / s.name)
        assert part.column("crop")[0].as_py() == 0  # every shard starts with a beat's original
        payload = int(nbytes[start:start + s.rows].sum())
        if s is not infos[-1]:
            assert payload >= 15_000
            last_start = int(np.flatnonzero(part.column("crop").to_numpy() == 0)[-1])
            last_beat = int(nbytes[start + last_start:start + s.rows].sum())
            assert payload - last_beat < 15_000  # closed by the first beat that reached the target
        md = pq.ParquetFile(tmp_path / "d" / s.name).metadata
        sizes = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
        assert all(x == 10 for x in sizes[:-1]) and sizes[-1] <= 10 and s.row_groups == len(sizes)
        assert s.first_beat_id == part.column("beat_id")[0].as_py()
        assert s.last_beat_id == part.column("beat_id")[-1].as_py()
        start += s.rows


def test_writer_huge_target_gives_one_shard_and_empty_gives_one_empty_shard(tmp_path):
    table, nbytes = rows_table(BEATS[:5])
    infos = write(tmp_path / "one", table, nbytes, [], target_bytes=10**9, row_group_rows=4096)
    assert [s.name for s in infos] == ["part-00000-of-00001.parquet"] and infos[0].rows == table.num_rows
    (tmp_path / "empty").mkdir()
    w = shards.ShardWriter(tmp_path / "empty", shards.shard_schema(), target_bytes=10, row_group_rows=4)
    infos = w.close()
    assert len(infos) == 1 and infos[0].rows == 0
    assert pq.read_table(tmp_path / "empty" / infos[0].name).schema.equals(shards.shard_schema())


def test_writer_rejects_a_beat_continued_from_the_previous_table(tmp_path):
    table, nbytes = rows_table([("100", 1, 9)])
    w = shards.ShardWriter(tmp_path, shards.shard_schema(), target_bytes=10, row_group_rows=4)
    w.add(table.slice(0, 3), nbytes[:3])
    with pytest.raises(ValueError, match="100-1 continues"):
        w.add(table.slice(3), nbytes[3:])
    w.abort()


def test_writer_cuts_crop_only_rows_at_beats(tmp_path):
    """The crops config has no crop-0 rows: beats are told apart by beat_id."""
    table, nbytes = rows_table([("100", 10 * i, 9) for i in range(12)])
    keep = np.flatnonzero(table.column("crop").to_numpy() > 0)
    crops = table.take(pa.array(keep))
    infos = write(tmp_path / "c", crops, nbytes[keep], [27, 54], target_bytes=4_000, row_group_rows=8, prefix="train")
    assert len(infos) > 2 and all(s.rows % 9 == 0 and s.beats == s.rows // 9 for s in infos)
    assert [s.name for s in infos] == [shards.shard_name(i, len(infos), "train") for i in range(len(infos))]
    assert not list((tmp_path / "c").glob(".*"))  # no temporary names left


def test_shard_name():
    assert shards.shard_name(3, 12) == "part-00003-of-00012.parquet"
    assert shards.parse_shard_name(shards.shard_name(3, 12, "paced")) == ("paced", 3, 12)
    with pytest.raises(ValueError):
        shards.shard_name(12, 12)


# ------------------------------------------------------------------------------------------------ layout

def test_split_of_records_follows_the_inter_patient_split():
    from pipelines.signal.labels import DS1, DS2, PACED_RECORDS

    codes = layout.split_codes(pa.array([*DS1, *DS2, *PACED_RECORDS, "x"]))
    names = [list(layout.SPLITS)[c] for c in codes]
    assert names == ["train"] * len(DS1) + ["test"] * len(DS2) + ["paced"] * 4 + ["other"]
    assert layout.config_of(0) == "originals" and layout.config_of(9) == "crops"


def test_dataset_writer_routes_rows_by_config_and_split(tmp_path):
    beats = [("100", 10 * i, 9 * (i % 2)) for i in range(8)] + [("101", 10 * i, 9 * (i % 3 == 0)) for i in range(9)] \
        + [("102", 5, 9), ("x7", 3, 0)]
    table, nbytes = rows_table(beats)
    writer = layout.DatasetWriter(tmp_path, shards.shard_schema(), target_bytes=6_000, row_group_rows=8)
    starts = np.flatnonzero(table.column("crop").to_numpy() == 0)
    cuts = [0, int(starts[5]), int(starts[11]), table.num_rows]  # beat-aligned batches
    for a, b in zip(cuts[:-1], cuts[1:]):
        writer.add(table.slice(a, b - a), nbytes[a:b])
    infos = writer.close()
    assert writer.rows == table.num_rows == sum(s.rows for s in infos)
    seen = []
    for s in infos:
        assert s.name.startswith(f"data/{s.config}/{s.split}-")
        part = pq.read_table(tmp_path / s.name)
        crop = part.column("crop").to_numpy()
        assert (crop == 0).all() if s.config == "originals" else (crop > 0).all()
        splits = {layout.split_of(r) for r in part.column("record").to_pylist()}
        assert splits == {s.split}
        keys = list(zip(part.column("record").to_pylist(), part.column("r_sample").to_pylist(), crop.tolist()))
        assert keys == sorted(keys)
        seen += part.column("beat_id").to_pylist()
    assert {(s.config, s.split) for s in infos} == {("originals", "train"), ("originals", "test"),
                                                   ("originals", "paced"), ("originals", "other"),
                                                   ("crops", "test"), ("crops", "train"), ("crops", "paced")}
    assert sorted(seen) == sorted(table.column("beat_id").to_pylist())
    # a beat's rows never straddle two shards
    owner = {}
    for s in infos:
        for beat in set(pq.read_table(tmp_path / s.name, columns=["beat_id"]).column(0).to_pylist()):
            assert owner.setdefault((s.config, beat), s.name) == s.name


def test_dataset_writer_without_rows_writes_one_empty_originals_shard(tmp_path):
    infos = layout.DatasetWriter(tmp_path, shards.shard_schema(), target_bytes=10, row_group_rows=4).close()
    assert [(s.name, s.rows) for s in infos] == [("data/originals/train-00000-of-00001.parquet", 0)]


# ------------------------------------------------------------------------------------------------ metadata

def test_schema_metadata_is_hugging_face_features():
    schema = shards.shard_schema(shards.dataset_metadata(image_shape=(128, 128), png_level=2))
    hf = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert list(hf) == schema.names
    assert hf["image"] == {"_type": "Image"} and hf["aami"] == {"dtype": "string", "_type": "Value"}
    assert schema.field("image").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    ours = json.loads(schema.metadata[b"ecg_images"])
    assert ours["crops"][0] == "original" and ours["crops"][5] == "centre" and len(ours["crops"]) == 10
    assert ours["image"] == {"format": "PNG", "mode": "L", "shape": [128, 128],
                             "png": {"encoder": "opencv imencode", "zlib_level": 2, "filter": "none"}}


def test_hf_features_match_datasets_library():
    datasets = require("datasets")
    features = datasets.Features({
        "beat_id": datasets.Value("string"), "record": datasets.Value("string"), "r_sample": datasets.Value("int64"),
        "symbol": datasets.Value("string"), "aami": datasets.Value("string"), "jun8": datasets.Value("string"),
        **{c: datasets.Value("float32") for c in shards.FEATURE_COLUMNS},
        "crop": datasets.Value("int8"), "image": datasets.Image()})
    assert datasets.Features.from_dict(shards.hf_features()) == features
    assert features.arrow_schema.field("image").type == shards.IMAGE_TYPE
