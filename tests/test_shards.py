"""Image-shard format: PNG encoding, the shard writer's splitting, metadata, counts, verification."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.formats import shards
from pipelines.core.errors import ChecksumError, DataError


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


def test_writer_rejects_tables_not_starting_with_a_beat(tmp_path):
    table, nbytes = rows_table([("100", 1, 9)])
    w = shards.ShardWriter(tmp_path, shards.shard_schema(), target_bytes=10, row_group_rows=4)
    with pytest.raises(ValueError, match="crop 0"):
        w.add(table.slice(1), nbytes[1:])
    w.abort()


def test_shard_name():
    assert shards.shard_name(3, 12) == "part-00003-of-00012.parquet"
    with pytest.raises(ValueError):
        shards.shard_name(12, 12)


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
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({
        "beat_id": datasets.Value("string"), "record": datasets.Value("string"), "r_sample": datasets.Value("int64"),
        "symbol": datasets.Value("string"), "aami": datasets.Value("string"), "jun8": datasets.Value("string"),
        "crop": datasets.Value("int8"), "image": datasets.Image()})
    assert datasets.Features.from_dict(shards.hf_features()) == features
    assert features.arrow_schema.field("image").type == shards.IMAGE_TYPE


def test_count_rows():
    t = pa.table({"record": ["100", "100", "101", "101"], "symbol": ["N", "V", "A", None],
                  "aami": ["N", "V", "S", None], "jun8": ["NOR", "PVC", "APC", None]})
    c = shards.count_rows(t, np.array([False, True, True, False]), range(10))
    assert c["classes"]["aami"]["V"] == {**{str(k): 1 for k in range(10)}, "total": 10}
    assert c["classes"]["aami"]["unlabelled"] == {**{"0": 1}, **{str(k): 0 for k in range(1, 10)}, "total": 1}
    assert c["crops"] == {"0": 4, **{str(k): 2 for k in range(1, 10)}}
    assert c["records"] == {"100": {"beats": 2, "rows": 11, "aami": {"N": 1, "V": 1}},
                            "101": {"beats": 2, "rows": 11, "aami": {"S": 1, "unlabelled": 1}}}
    originals = shards.count_rows(t, np.zeros(4, bool), range(1))
    assert originals["crops"] == {"0": 4} and originals["classes"]["symbol"]["N"] == {"0": 1, "total": 1}


# ------------------------------------------------------------------------------------------------ verify

@pytest.fixture()
def dataset(tmp_path):
    from pipelines.render import RenderConfig, run_render
    from tests.test_render_stage import RECORDS, write_beats_table

    beats = write_beats_table(tmp_path / "beats.parquet", RECORDS)
    out = tmp_path / "images"
    run_render("annotations", beats, out, RenderConfig.from_params({"workers": 1, "shard_mb": 0.05}))
    return out


def test_verify_accepts_the_stage_output(dataset):
    manifest = shards.verify_shards(dataset)
    assert manifest["rows"] == sum(b.num_rows for b in shards.iter_batches(dataset, ["beat_id"]))
    assert len(shards.shard_paths(dataset)) == len(manifest["shards"]) > 1


def test_verify_detects_a_changed_shard(dataset):
    path = shards.shard_paths(dataset)[1]
    blob = bytearray(path.read_bytes())
    blob[100] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ChecksumError, match="sha256"):
        shards.verify_shards(dataset)
    shards.verify_shards(dataset, check_hash=False)  # size and footer intact: only the hash tells


def test_verify_detects_missing_and_extra_shards(dataset):
    paths = shards.shard_paths(dataset)
    extra = dataset / "part-00099-of-00099.parquet"
    extra.write_bytes(paths[0].read_bytes())
    with pytest.raises(DataError, match="differ from manifest"):
        shards.verify_shards(dataset)
    extra.unlink()
    paths[-1].unlink()
    with pytest.raises(DataError):
        shards.verify_shards(dataset)


def test_missing_manifest(tmp_path):
    with pytest.raises(DataError, match="no manifest.json"):
        shards.read_manifest(tmp_path)
