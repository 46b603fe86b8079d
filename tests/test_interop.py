"""The image shards read back with the libraries the dataset card promises: pandas, pyarrow, dask,
Hugging Face ``datasets``, ``mlcroissant`` (Croissant 1.0), and the card's own snippets."""
from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest
import yaml

from pipelines.formats import shards
from pipelines.render import RenderConfig, run_render
from tests.test_render_stage import write_beats_table

RECORDS = {
    "100": ["N", "V", "N", "A", None, "N"],
    "101": ["L", "N", "/", "E"],
    "207": ["!", "R", "N"],
}
ROOT_LINE = re.compile(r'^root = ".*"$', re.M)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("interop")
    beats = write_beats_table(tmp / "beats" / "annotations.parquet", RECORDS)
    out = tmp / "images" / "annotations"
    manifest = run_render("annotations", beats, out,
                          RenderConfig.from_params({"workers": 1, "shard_mb": 0.03, "row_group_rows": 16}),
                          stream=io.StringIO())
    assert len(manifest["shards"]) >= 2
    return out, manifest


@pytest.fixture()
def hf_cache(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return datasets


def files(out: Path) -> list[str]:
    return sorted(glob.glob(f"{out}/part-*.parquet"))


def expected_frame(out: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(f) for f in files(out)], ignore_index=True)


def test_pandas(built):
    out, manifest = built
    df = pd.read_parquet(files(out), columns=["beat_id", "aami", "crop", "image"])
    assert len(df) == manifest["rows"]
    png = df["image"].iloc[0]["bytes"]
    assert df["image"].iloc[0]["path"] is None
    from PIL import Image

    img = Image.open(io.BytesIO(png))
    assert img.mode == "L" and img.size == (128, 128)
    assert df.groupby("aami")["crop"].size().to_dict() == {
        k: v["total"] for k, v in manifest["counts"]["classes"]["aami"].items() if k != "unlabelled"}


def test_pyarrow_dataset(built):
    out, manifest = built
    dataset = pads.dataset(files(out), format="parquet")
    assert dataset.schema.names == [f["name"] for f in manifest["schema"]]
    assert b"huggingface" in dataset.schema.metadata
    originals = dataset.to_table(columns=["beat_id"], filter=pads.field("crop") == 0)
    assert originals.num_rows == manifest["beats"]
    assert dataset.count_rows() == manifest["rows"]


def test_dask_dataframe(built):
    dd = pytest.importorskip("dask.dataframe")
    out, manifest = built
    ddf = dd.read_parquet(f"{out}/part-*.parquet", columns=["record", "aami", "crop"])
    sizes = ddf.groupby("crop").size().compute()
    assert {str(k): int(v) for k, v in sizes.items()} == manifest["counts"]["crops"]
    head = dd.read_parquet(files(out), columns=["beat_id", "image"]).head(3)
    assert shards.decode_images(list(head["image"])).shape == (3, 128, 128)


def test_hugging_face_datasets_parquet(built, hf_cache):
    datasets = hf_cache
    out, manifest = built
    ds = datasets.load_dataset("parquet", data_files=f"{out}/part-*.parquet", split="train")
    assert len(ds) == manifest["rows"]
    assert ds.features == datasets.Features.from_dict(shards.hf_features())
    assert isinstance(ds.features["image"], datasets.Image)
    ref = expected_frame(out)
    for i in (0, 1, len(ds) - 1):
        ex = ds[i]
        assert ex["image"].mode == "L" and ex["image"].size == (128, 128)
        assert np.array_equal(np.asarray(ex["image"]), shards.decode_png(ref["image"][i]["bytes"]))
        for col in ("beat_id", "record", "symbol", "aami", "jun8"):
            want = ref[col][i]
            assert ex[col] == (None if pd.isna(want) else want)  # label names come back unchanged
        assert ex["crop"] == ref["crop"][i] and ex["r_sample"] == ref["r_sample"][i]
    assert set(ds.unique("aami")) == {"N", "S", "V", "Q", None}


def test_hugging_face_datasets_directory_uses_the_card(built, hf_cache):
    datasets = hf_cache
    out, manifest = built
    ds = datasets.load_dataset(str(out), split="train")
    assert len(ds) == manifest["rows"] and isinstance(ds.features["image"], datasets.Image)


def test_croissant_validates_and_reads_records(built):
    mlc = pytest.importorskip("mlcroissant")
    out, manifest = built
    meta = json.loads((out / "croissant.json").read_text())
    assert meta["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    dataset = mlc.Dataset(jsonld=out / "croissant.json")  # raises ValidationError on errors
    records = list(dataset.records("images"))
    assert len(records) == manifest["rows"]
    ref = expected_frame(out)
    first = records[0]
    assert first["images/beat_id"].decode() == ref["beat_id"][0]  # mlcroissant returns text as bytes
    assert first["images/crop"] == ref["crop"][0]
    img = first["images/image"]
    assert img.mode == "L" and np.array_equal(np.asarray(img), shards.decode_png(ref["image"][0]["bytes"]))
    ids = [r["images/beat_id"].decode() for r in records]
    assert sorted(ids) == sorted(ref["beat_id"])


def test_croissant_lists_manifest_checksum(built):
    out, _ = built
    meta = json.loads((out / "croissant.json").read_text())
    files_ = {d["@id"]: d for d in meta["distribution"]}
    assert files_["manifest.json"]["sha256"] == shards.sha256_file(out / "manifest.json")
    assert files_["parquet-shards"]["includes"] == "part-*.parquet"
    assert [f["name"] for f in meta["recordSet"][0]["field"]] == shards.SCHEMA.names


# ------------------------------------------------------------------------------------------------ the card

def card_parts(out: Path) -> tuple[dict, str]:
    text = (out / "README.md").read_text()
    assert text.startswith("---\n")
    _, front, body = text.split("---\n", 2)
    return yaml.safe_load(front), body


def snippets(out: Path) -> dict[str, str]:
    _, body = card_parts(out)
    blocks = re.findall(r"### (.+?)\n\n```python\n(.*?)```", body, re.S)
    return {title: ROOT_LINE.sub(f'root = "{out}"', code) for title, code in blocks}


def test_card_front_matter_and_content(built):
    out, manifest = built
    front, body = card_parts(out)
    assert front["license"] == "odc-by"
    assert front["configs"][0]["data_files"] == [{"split": "train", "path": "part-*.parquet"}]
    assert [f["name"] for f in front["dataset_info"]["features"]] == shards.SCHEMA.names
    assert front["dataset_info"]["splits"][0]["num_examples"] == manifest["rows"]
    for cite in ("Moody GB, Mark RG", "Goldberger AL", "arXiv:1804.06812", "ODC-By 1.0",
                 "https://physionet.org/content/mitdb/1.0.0/"):
        assert cite in body
    total = f"{manifest['rows']:,}"
    assert f"| **all** | {manifest['beats']:,} |" in body and total in body
    assert set(snippets(out)) == {"pandas", "pyarrow", "dask", "Hugging Face `datasets`", "TensorFlow `tf.data`",
                                  "Croissant (`mlcroissant`)"}
    for code in snippets(out).values():
        assert f'root = "{out}"' in code  # the snippet's only path


@pytest.mark.parametrize("title", ["pandas", "pyarrow", "dask", "Hugging Face `datasets`", "Croissant (`mlcroissant`)"])
def test_card_snippet_runs(built, hf_cache, title):
    out, _ = built
    code = snippets(out)[title]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, f"README.md ({title})", "exec"), {"__name__": "snippet"})
    assert buf.getvalue().strip()  # each snippet prints what it loaded


@pytest.mark.slow
def test_card_tf_data_snippet_runs(built, tmp_path):
    pytest.importorskip("tensorflow")
    out, manifest = built
    script = tmp_path / "tf_snippet.py"
    script.write_text(snippets(out)["TensorFlow `tf.data`"])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    n = manifest["beats"] - manifest["counts"]["classes"]["aami"]["unlabelled"]["0"]  # originals with an AAMI class
    assert f"({n}, 128, 128, 1)" in res.stdout
