"""The manifest trust boundary: one verifier (pipelines.formats.manifest) for every image-set reader.

Each fault a copy can have is caught, with an error naming the file: a shard without a SHA-256 or
with a non-string one, a flipped byte, a shard deleted together with its manifest entry, an extra
file, a truncated PNG; ``python -m pipelines.shards verify`` prints one ``verify: error:`` line and exits 2 on each, and
``training.meta.open_images`` refuses the set.
"""
from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.core.errors import ChecksumError, DataError
from pipelines.core.files import sha256_file
from pipelines.formats import imageset, manifest as mf, png, shards

from tests.conftest import require


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from pipelines.render import RenderConfig, run_render
    from tests.test_render_stage import write_beats_table

    tmp = tmp_path_factory.mktemp("manifest")
    records = {"100": ["N", "V", "N", "A", None, "N", "V"], "101": ["L", "N", "/", "E", "V"], "102": ["/", "/", "V"],
               "207": ["!", "R", "N", "V"]}
    beats = write_beats_table(tmp / "beats.parquet", records)
    out = tmp / "images"
    run_render("annotations", beats, out, RenderConfig.from_params({"workers": 1, "shard_mb": 0.02,
                                                                    "row_group_rows": 8}), stream=io.StringIO())
    return out


@pytest.fixture()
def dataset(built, tmp_path):
    """A fresh copy of the built image set, to damage."""
    return shutil.copytree(built, tmp_path / "images")


def edit_manifest(root, change):
    doc = json.loads((root / "manifest.json").read_text())
    change(doc)
    (root / "manifest.json").write_text(json.dumps(doc))


def cli(root, capsys) -> tuple[int, str]:
    rc = mf.main(["verify", str(root)])
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


def test_the_stage_output_verifies_and_opens(built, capsys):
    manifest = mf.verify_shards(built)
    assert manifest["format_version"] == shards.FORMAT_VERSION == 5
    files = imageset.open_image_set(built)
    assert len(files.rows) == manifest["rows"] and (files.rows["crop"] == 0).sum() == manifest["beats"]
    assert list(files.rows.columns[:len(shards.META_COLUMNS)]) == list(shards.META_COLUMNS)
    assert set(files.rows["split"]) == {"train", "test", "paced"}
    for split, records in files.rows.groupby("split")["record"]:
        assert set(records) == {"train": {"101", "207"}, "test": {"100"}, "paced": {"102"}}[split]
    assert len(imageset.shard_paths(built, config="crops")) + len(imageset.shard_paths(built, config="originals")) \
        == len(manifest["shards"]) > 3
    assert sum(b.num_rows for b in imageset.iter_batches(built, ["beat_id"], split="paced")) == \
        sum(e["rows"] for e in manifest["shards"] if e["split"] == "paced")
    assert cli(built, capsys) == (0, f"verify: ok {built}: {len(manifest['shards'])} shard(s), "
                                     f"{manifest['rows']:,} rows match manifest.json\n")


@pytest.mark.parametrize("value", ["missing", None, 12345, "", "not-a-hash"])
def test_a_shard_without_a_valid_sha256_is_refused_even_without_hashing(dataset, value, capsys):
    def change(doc):
        for entry in doc["shards"]:
            if value == "missing":
                del entry["sha256"]
            else:
                entry["sha256"] = value
    edit_manifest(dataset, change)
    first = json.loads((dataset / "manifest.json").read_text())["shards"][0]["file"]
    for check_hash in (True, False):
        with pytest.raises(ChecksumError, match=rf"{first}: manifest.json gives no valid SHA-256"):
            mf.verify_shards(dataset, check_hash=check_hash)
    rc, text = cli(dataset, capsys)
    assert rc == 2 and text.startswith(f"verify: error: {dataset / first}: manifest.json gives no valid SHA-256")


def test_a_flipped_byte_is_a_checksum_error(dataset, capsys):
    path = imageset.shard_paths(dataset)[2]
    blob = bytearray(path.read_bytes())
    blob[200] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ChecksumError, match=rf"{path.name}: sha256 [0-9a-f]{{64}} differs from manifest.json"):
        mf.verify_shards(dataset)
    rc, text = cli(dataset, capsys)
    assert rc == 2 and text.startswith("verify: error: ") and path.name in text


def test_deleting_the_last_shard_of_a_split_and_its_entry_is_caught(dataset, capsys):
    doc = json.loads((dataset / "manifest.json").read_text())
    multi = [e for e in doc["shards"] if not e["file"].endswith("-of-00001.parquet")]
    assert multi, "the fixture must have a split with several shards"
    victim = multi[-1]
    (dataset / victim["file"]).unlink()
    edit_manifest(dataset, lambda d: d["shards"].remove(victim))
    with pytest.raises(DataError, match="a shard is missing"):
        mf.verify_shards(dataset, check_hash=False)
    assert cli(dataset, capsys)[0] == 2


def test_deleting_a_whole_split_and_its_entry_is_caught_by_the_totals(dataset, capsys):
    doc = json.loads((dataset / "manifest.json").read_text())
    victim = next(e for e in doc["shards"] if e["split"] == "paced" and e["config"] == "originals")
    assert victim["file"].endswith("-00000-of-00001.parquet")  # numbering alone cannot tell
    (dataset / victim["file"]).unlink()
    edit_manifest(dataset, lambda d: d["shards"].remove(victim))
    with pytest.raises(DataError, match=r"manifest.json: shards hold \d+ rows, manifest.json's total says"):
        mf.verify_shards(dataset)
    # with the totals edited to match, the beats, the counts and the per-split layout still disagree
    edit_manifest(dataset, lambda d: d.update(rows=d["rows"] - victim["rows"]))
    with pytest.raises(DataError, match=r"originals shards hold \d+ beats"):
        mf.verify_shards(dataset)
    edit_manifest(dataset, lambda d: d.update(beats=d["beats"] - victim["rows"]))
    with pytest.raises(DataError, match="counts.crops"):
        mf.verify_shards(dataset)
    edit_manifest(dataset, lambda d: d["counts"]["crops"].update({"0": d["counts"]["crops"]["0"] - victim["rows"]}))
    with pytest.raises(DataError, match="layout"):
        mf.verify_shards(dataset)
    assert cli(dataset, capsys)[0] == 2


def test_missing_and_extra_files(dataset):
    paths = imageset.shard_paths(dataset)
    extra = dataset / "data" / "originals" / "train-00007-of-00009.parquet"
    extra.write_bytes(paths[0].read_bytes())
    with pytest.raises(DataError, match=r"not listed \['data/originals/train-00007-of-00009.parquet'\]"):
        mf.verify_shards(dataset)
    extra.unlink()
    paths[0].unlink()
    with pytest.raises(DataError, match=rf"missing \['{paths[0].relative_to(dataset).as_posix()}'\]"):
        mf.verify_shards(dataset)


def test_a_truncated_shard_is_named(dataset):
    path = imageset.shard_paths(dataset)[1]
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match=rf"{path.name}: not a readable Parquet file"):
        mf.verify_shards(dataset, check_hash=False)


def rewrite_with_truncated_png(root, index: int = 0, row: int = 2) -> tuple[str, str]:
    """Cut the PNG of one row in half, rewrite the shard and re-pin it; return (shard file, beat_id)."""
    doc = json.loads((root / "manifest.json").read_text())
    entry = doc["shards"][index]
    path = root / entry["file"]
    table = pq.read_table(path)
    images = table.column("image").combine_chunks()
    data = images.field("bytes").to_pylist()
    data[row] = data[row][: len(data[row]) // 2]
    fixed = pa.StructArray.from_arrays([pa.array(data, pa.binary()), images.field("path")], fields=list(png.IMAGE_TYPE))
    table = table.set_column(table.schema.get_field_index("image"), table.schema.field("image"), fixed)
    pq.write_table(table, path, row_group_size=8)
    entry["sha256"] = sha256_file(path)
    (root / "manifest.json").write_text(json.dumps(doc))
    return entry["file"], table.column("beat_id")[row].as_py()


def test_a_truncated_png_names_the_shard_and_the_beat(dataset):
    name, beat = rewrite_with_truncated_png(dataset, row=0)
    mf.verify_shards(dataset)  # the file is sound and pinned: only decoding can tell
    path = dataset / name
    table = pq.read_table(path, columns=["beat_id", "image"])
    where = [f"{path} beat {b}" for b in table.column("beat_id").to_pylist()]
    with pytest.raises(DataError, match=rf"{name} beat {beat}: not a decodable PNG"):
        png.decode_images(table.column("image"), where=where)
    with pytest.raises(DataError, match=rf"{name} row 0: not a decodable PNG"):
        png.decode_images(table.column("image"), where=str(path))
    from training.meta import open_images

    with pytest.raises(DataError, match=rf"{name} beat {beat}: not a decodable PNG"):
        open_images(dataset)


def test_verify_decode_names_the_beat_of_a_truncated_png(dataset, built, capsys):
    assert imageset.verify_images(built) == mf.read_manifest(built)["rows"]
    name, beat = rewrite_with_truncated_png(dataset, index=3, row=5)
    assert cli(dataset, capsys)[0] == 0  # sound, pinned files: only decoding can tell
    rc = mf.main(["verify", "--decode", str(dataset)])
    err = capsys.readouterr().err
    assert rc == 2 and f"verify: error: {dataset / name} beat {beat} crop " in err and "not a decodable PNG" in err


def test_training_data_names_the_shard_and_beat_of_a_truncated_png(dataset):
    require("tensorflow")
    from training.data import Selection, _Reader
    from training.meta import open_images

    name, beat = rewrite_with_truncated_png(dataset, row=3)
    images = open_images(dataset)
    rows = np.flatnonzero(images.rows["shard"].to_numpy() == 0)
    sel = Selection.of(rows, np.zeros(rows.size, np.int8), np.zeros(rows.size, np.int32))
    reader = _Reader(images, sel, None, shuffle=False, seed=0, window_rows=64)
    with pytest.raises(DataError, match=rf"{name} beat {beat} crop 0: not a"):
        for _ in reader.decoded(batch_size=4, input_size=images.image_size):
            pass


def test_open_images_refuses_a_manifest_without_hashes(dataset):
    from training.meta import open_images

    edit_manifest(dataset, lambda d: [e.pop("sha256") for e in d["shards"]])
    with pytest.raises(ChecksumError, match="manifest.json gives no valid SHA-256"):
        open_images(dataset, verify=False)


def test_manifest_from_older_format_is_refused(dataset):
    edit_manifest(dataset, lambda d: d.update(format_version=2))
    with pytest.raises(DataError, match="format_version 2, this code reads 5"):
        mf.verify_shards(dataset)


def test_missing_or_bad_manifest(tmp_path):
    with pytest.raises(DataError, match="no manifest.json"):
        mf.read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="not a JSON object"):
        mf.read_manifest(tmp_path)


def test_count_rows():
    t = pa.table({"record": ["100", "100", "101", "101"], "symbol": ["N", "V", "A", None],
                  "aami": ["N", "V", "S", None], "jun8": ["NOR", "PVC", "APC", None]})
    c = mf.count_rows(t, np.array([False, True, True, False]), range(10))
    assert c["classes"]["aami"]["V"] == {**{str(k): 1 for k in range(10)}, "total": 10}
    assert c["classes"]["aami"]["unlabelled"] == {**{"0": 1}, **{str(k): 0 for k in range(1, 10)}, "total": 1}
    assert c["crops"] == {"0": 4, **{str(k): 2 for k in range(1, 10)}}
    assert c["records"] == {"100": {"beats": 2, "rows": 11, "aami": {"N": 1, "V": 1}},
                            "101": {"beats": 2, "rows": 11, "aami": {"S": 1, "unlabelled": 1}}}
    originals = mf.count_rows(t, np.zeros(4, bool), range(1))
    assert originals["crops"] == {"0": 4} and originals["classes"]["symbol"]["N"] == {"0": 1, "total": 1}


@pytest.mark.slow
def test_training_exits_2_naming_the_shard_of_a_manifest_without_hashes(tmp_path):
    """``python -m training.train`` on an image set whose manifest pins no shard: exit 2, the file named."""
    import os
    import subprocess
    import sys

    from tests._shards import train_params, write_params, write_shards

    root = write_shards(tmp_path / "images" / "annotations", {"100": {"N": 6, "V": 3}, "101": {"N": 6, "V": 3}},
                        size=16)
    edit_manifest(root, lambda d: [e.pop("sha256") for e in d["shards"]])
    params = write_params(tmp_path / "params.yaml", train_params())
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    res = subprocess.run([sys.executable, "-m", "training.train", "--run", "tiny", "--params", str(params),
                          "--images", str(root), "--out", str(tmp_path / "models" / "tiny")],
                         capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 2, res.stderr[-2000:]
    assert f"{root}/data/originals/train-00000-of-00001.parquet: manifest.json gives no valid SHA-256" in res.stderr
    assert not (tmp_path / "models" / "tiny").exists()
