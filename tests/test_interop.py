"""The image shards read back with the libraries the dataset card promises: pandas, pyarrow, dask,
Hugging Face ``datasets`` (the directory itself: configs ``originals``/``crops``, splits
``train``/``test``/``paced``), ``mlcroissant`` (Croissant 1.0), and the card's own snippets."""
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
from tests.conftest import require
from tests.test_render_stage import write_beats_table

RECORDS = {
    "100": ["N", "V", "N", "A", None, "N"],   # DS2: test
    "101": ["L", "N", "/", "E"],              # DS1: train
    "102": ["/", "N", "/"],                   # paced
    "207": ["!", "R", "N"],                   # DS1: train
}
SPLIT_RECORDS = {"train": {"101", "207"}, "test": {"100"}, "paced": {"102"}}
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
    datasets = require("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return datasets


def files(out: Path, config: str = "*", split: str = "*") -> list[str]:
    return sorted(glob.glob(f"{out}/data/{config}/{split}-*.parquet"))


def expected_frame(out: Path, config: str = "*", split: str = "*") -> pd.DataFrame:
    return pd.concat([pd.read_parquet(f) for f in files(out, config, split)], ignore_index=True)


def test_layout_is_the_hub_layout(built):
    out, manifest = built
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "croissant.json", "data", "manifest.json"]
    listed = [(e["config"], e["split"], e["file"]) for e in manifest["shards"]]
    assert [f for *_, f in listed] == [str(Path(f).relative_to(out)) for c in ("originals", "crops")
                                       for sp in ("train", "test", "paced") for f in files(out, c, sp)]
    for config, split, name in listed:
        frame = pd.read_parquet(out / name, columns=["beat_id", "record", "r_sample", "crop"])
        assert set(frame["record"]) <= SPLIT_RECORDS[split]
        assert (frame["crop"] == 0).all() if config == "originals" else (frame["crop"] > 0).all()
        keys = list(zip(frame["record"], frame["r_sample"], frame["crop"]))
        assert keys == sorted(keys)


def test_pandas_reads_a_config_directory(built):
    """The README's example: a config's folder, not the image set's (which holds README.md and JSON)."""
    out, manifest = built
    df = pd.read_parquet(out / "data" / "originals")
    assert len(df) == manifest["beats"] and (df["crop"] == 0).all()
    with pytest.raises(Exception):
        pd.read_parquet(out)


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
    dd = require("dask.dataframe")
    out, manifest = built
    ddf = dd.read_parquet(f"{out}/data/*/*.parquet", columns=["record", "aami", "crop"])
    sizes = ddf.groupby("crop").size().compute()
    assert {str(k): int(v) for k, v in sizes.items()} == manifest["counts"]["crops"]
    head = dd.read_parquet(files(out), columns=["beat_id", "image"]).head(3)
    assert shards.decode_images(list(head["image"])).shape == (3, 128, 128)


def test_hugging_face_datasets_parquet(built, hf_cache):
    datasets = hf_cache
    out, manifest = built
    ds = datasets.load_dataset("parquet", data_files=files(out), split="train")
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


def test_hugging_face_datasets_directory_gives_the_inter_patient_splits(built, hf_cache):
    datasets = hf_cache
    out, manifest = built
    dd = datasets.load_dataset(str(out))  # the card's default config: originals
    assert set(dd) == {"train", "test", "paced"}
    layout = manifest["layout"]["configs"]
    for split, ds in dd.items():
        assert len(ds) == layout["originals"][split]["rows"] == layout["originals"][split]["beats"]
        assert set(ds.unique("record")) == SPLIT_RECORDS[split] and set(ds.unique("crop")) == {0}
        assert isinstance(ds.features["image"], datasets.Image)
    assert sum(len(ds) for ds in dd.values()) == manifest["beats"]
    crops = datasets.load_dataset(str(out), "crops")
    assert {split: len(ds) for split, ds in crops.items()} == {s: n["rows"] for s, n in layout["crops"].items()}
    assert set(crops["train"].unique("crop")) == set(range(1, 10))
    # plain Parquet on a config folder: datasets infers train/test from the file names (paced is not
    # a split name it knows; the card's configs above declare it)
    plain = datasets.load_dataset("parquet", data_dir=str(out / "data" / "originals"))
    assert {split: len(ds) for split, ds in plain.items()} == {s: len(dd[s]) for s in ("train", "test")}


def test_croissant_validates_and_reads_records(built):
    mlc = require("mlcroissant")
    out, manifest = built
    meta = json.loads((out / "croissant.json").read_text())
    assert meta["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    dataset = mlc.Dataset(jsonld=out / "croissant.json")  # raises ValidationError on errors
    names = [r["@id"] for r in meta["recordSet"]]
    assert names == [f"{c}-{s}" for c in ("originals", "crops") for s in ("train", "test", "paced")]
    total = 0
    for name in names:
        config, split = name.split("-")
        records = list(dataset.records(name))
        ref = expected_frame(out, config, split)
        assert len(records) == len(ref) == manifest["layout"]["configs"][config][split]["rows"]
        first = records[0]
        assert first[f"{name}/beat_id"].decode() == ref["beat_id"][0]  # mlcroissant returns text as bytes
        assert first[f"{name}/crop"] == ref["crop"][0]
        img = first[f"{name}/image"]
        assert img.mode == "L" and np.array_equal(np.asarray(img), shards.decode_png(ref["image"][0]["bytes"]))
        assert sorted(r[f"{name}/beat_id"].decode() for r in records) == sorted(ref["beat_id"])
        total += len(records)
    assert total == manifest["rows"]


def test_croissant_lists_manifest_checksum(built):
    out, _ = built
    meta = json.loads((out / "croissant.json").read_text())
    files_ = {d["@id"]: d for d in meta["distribution"]}
    assert files_["manifest.json"]["sha256"] == shards.sha256_file(out / "manifest.json")
    assert files_["files-originals-test"]["includes"] == "data/originals/test-*.parquet"
    assert files_["files-crops-paced"]["includes"] == "data/crops/paced-*.parquet"
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
    assert [(c["config_name"], c.get("default", False)) for c in front["configs"]] == [("originals", True),
                                                                                      ("crops", False)]
    for config in front["configs"]:
        name = config["config_name"]
        assert config["data_files"] == [{"split": s, "path": f"data/{name}/{s}-*.parquet"}
                                        for s in ("train", "test", "paced")]
    info = {i["config_name"]: i for i in front["dataset_info"]}
    assert [f["name"] for f in info["originals"]["features"]] == shards.SCHEMA.names
    assert {s["name"]: s["num_examples"] for s in info["crops"]["splits"]} == {
        s: n["rows"] for s, n in manifest["layout"]["configs"]["crops"].items()}
    assert "&id" not in (out / "README.md").read_text()  # plain YAML, no anchors
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
    require("tensorflow")
    out, manifest = built
    script = tmp_path / "tf_snippet.py"
    script.write_text(snippets(out)["TensorFlow `tf.data`"])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    train = pd.read_parquet(out / "data" / "originals", columns=["record", "aami"])
    n = int((train["record"].isin(SPLIT_RECORDS["train"]) & train["aami"].notna()).sum())  # train originals, AAMI
    assert f"({n}, 128, 128, 1)" in res.stdout
