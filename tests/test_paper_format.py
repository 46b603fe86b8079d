"""pipelines.formats.paper (+ paper_card): PNG coding, Hugging Face features, writer, verifier, card."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.core.errors import ChecksumError, DataError
from pipelines.formats.paper import (SCHEMA, PaperWriter, build_manifest, decode_strip, encode_strip,
                                     image_column, paper_features, paper_schema, read_paper, verify_paper)
from pipelines.formats.paper_card import paper_croissant, write_paper_card
from tests.conftest import require


def test_png_round_trip_is_exact_rgb_and_bad_bytes_are_named():
    img = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    assert np.array_equal(decode_strip(encode_strip(img)), img)
    with pytest.raises(DataError, match="strip 100-0: not a decodable PNG"):
        decode_strip(b"junk", "strip 100-0")
    with pytest.raises(DataError, match="null"):
        decode_strip(None)
    with pytest.raises(ValueError, match="RGB"):
        encode_strip(np.zeros((4, 4), np.uint8))


def test_features_are_what_hugging_face_datasets_derives():
    datasets = require("datasets")
    derived = datasets.Features.from_arrow_schema(SCHEMA).to_dict()
    ours = paper_features()
    assert ours.pop("image") == {"_type": "Image"}
    derived.pop("image")
    assert ours == derived


def _rows(records, n=2):
    cols = {f.name: [] for f in SCHEMA}
    for rec in records:
        for i in range(n):
            for f in SCHEMA:
                cols[f.name].append(None)
            cols["strip_id"][-1], cols["record"][-1], cols["start_sample"][-1] = f"{rec}-{i * 3600}", rec, i * 3600
            cols["variant"][-1], cols["fs"][-1], cols["leads"][-1] = "clean", 360.0, ["MLII"]
            cols["image"][-1] = encode_strip(np.full((4, 4, 3), i, np.uint8))
    arrays = [image_column(cols["image"]) if f.name == "image" else pa.array(cols[f.name], f.type) for f in SCHEMA]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _write(tmp_path, table):
    meta = {"format": "ecg-paper-strips"}
    writer = PaperWriter(tmp_path, paper_schema(meta), target_bytes=10**6, row_group_rows=2)
    writer.add(table)
    infos = writer.close()
    manifest = build_manifest(variant="clean", params={"seconds": 10, "dpi": 200}, params_hash="h", input={},
                              distortions={}, records={"100": 2, "101": 2}, shard_infos=infos, metadata=meta)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_writer_splits_by_record_group_and_verifier_accepts(tmp_path):
    manifest = _write(tmp_path, _rows(["101", "100"]))        # 101: DS1 (train), 100: DS2 (test)
    assert [s["file"] for s in manifest["shards"]] == ["data/train-00000-of-00001.parquet",
                                                       "data/test-00000-of-00001.parquet"]
    assert verify_paper(tmp_path)["rows"] == 4
    assert read_paper(tmp_path, ["strip_id"]).column("strip_id").to_pylist() == ["101-0", "101-3600", "100-0",
                                                                                 "100-3600"]
    write_paper_card(tmp_path, manifest)
    card = (tmp_path / "README.md").read_text()
    assert "path: data/train-*.parquet" in card and "`plotted_x`" in card
    cro = paper_croissant(manifest, tmp_path)
    assert [r["@id"] for r in cro["recordSet"]] == ["train", "test"]
    assert cro["distribution"][0]["@id"] == "manifest.json"


def test_verifier_refuses_extra_unpinned_and_foreign_schema_shards(tmp_path):
    manifest = _write(tmp_path, _rows(["101"]))
    pq.write_table(pa.table({"x": [1]}), tmp_path / "data" / "test-00000-of-00001.parquet")
    with pytest.raises(DataError, match="not listed"):
        verify_paper(tmp_path)
    (tmp_path / "data" / "test-00000-of-00001.parquet").unlink()
    manifest["shards"][0]["sha256"] = None
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ChecksumError, match="no valid SHA-256"):
        verify_paper(tmp_path)
    manifest["format_version"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="format_version 99"):
        verify_paper(tmp_path)


def test_not_a_paper_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no manifest.json: not a paper-strip variant"):
        verify_paper(tmp_path)


def test_card_features_are_the_yaml_hugging_face_datasets_writes():
    datasets = require("datasets")
    from pipelines.formats.paper_card import front_matter

    m = {"variant": "clean", "splits": {"test": {"shards": 1, "rows": 2}}}
    want = datasets.Features.from_dict(paper_features())._to_yaml_list()
    assert front_matter(m)["dataset_info"]["features"] == want


def test_verify_cli_says_ok_and_fails_on_a_corrupted_shard(tmp_path, capsys):
    from pipelines.formats.paper import main

    _write(tmp_path, _rows(["101"]))
    assert main(["verify", str(tmp_path)]) == 0 and "verify: ok" in capsys.readouterr().out
    shard = next((tmp_path / "data").glob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[:-10])
    assert main(["verify", str(tmp_path)]) == 1 and "FAILED" in capsys.readouterr().err
