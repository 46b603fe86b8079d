"""pipelines.gallery and pipelines.imaging.gallery: example beats per class and the nine crops, read
from tiny image sets written with the render stage's writer and manifest (tests/_shards.py)."""
from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pandas as pd
import pytest

from pipelines import gallery, open_image_set
from pipelines.core.errors import DataError
from pipelines.imaging import gallery as figure
from tests import _shards

#: Two records, one per split (201 is DS1 = train, 100 is DS2 = test), with AAMI N, S, V, Q and
#: jun8 NOR, PVC, PAB, RBB, LBB, APC present: 10 classes.
RECORDS = {"100": {"N": 6, "V": 1, "A": 1, "L": 1}, "201": {"N": 5, "V": 2, "R": 1, "/": 1}}


def write_image_set(root, crops=("V", "A")):
    return _shards.write_shards(root, RECORDS, size=64, crops=crops, n_shards=2, row_group_rows=8)


def first_cropped(root, aami):
    """The first beat, in (record, r_sample) order, of class ``aami`` with its nine crops."""
    rows = figure.sort_index(open_image_set(root).rows)
    rows = rows[(rows["crop"] == 9) & (rows["aami"] == aami)]
    return rows["beat_id"].iloc[0]


def test_gallery_png_written_with_expected_size(tmp_path):
    images = write_image_set(tmp_path / "images")
    out = tmp_path / "figures" / "beat_gallery.png"
    summary = gallery.build_gallery(images, out, per_class=3)
    assert out.is_file() and out.stat().st_size > 10_000
    png = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert png.shape[:2] == (summary["height"], summary["width"])
    assert summary["classes"] == 10
    assert summary["beats"] == 3 + 1 + 3 + 1 + 3 + 3 + 1 + 1 + 1 + 1   # N S V Q, NOR PVC PAB RBB LBB APC
    assert summary["crop_beat"] == first_cropped(images, "V")   # V preferred over S, in record order
    assert summary["height"] > summary["width"] > 500
    assert not list(out.parent.glob(".*.tmp"))  # atomic: no temporary left behind


def test_gallery_is_deterministic(tmp_path):
    images = write_image_set(tmp_path / "images")
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    gallery.build_gallery(images, a)
    gallery.build_gallery(images, b)
    assert hashlib.sha256(a.read_bytes()).hexdigest() == hashlib.sha256(b.read_bytes()).hexdigest()


def test_examples_are_spread_and_ordered():
    index = pd.DataFrame({
        "beat_id": [f"r{k // 10}-{k}" for k in range(30)], "record": [f"r{k // 10}" for k in range(30)],
        "r_sample": list(range(30)), "aami": ["N"] * 30, "jun8": ["NOR"] * 29 + [None], "crop": [0] * 30,
    })
    chosen = figure.choose_examples(index, 3)
    assert chosen == [("aami", "N", ["r0-0", "r1-14", "r2-29"]), ("jun8", "NOR", ["r0-0", "r1-14", "r2-28"])]


def test_crop_beat_follows_the_class_preference():
    index = pd.DataFrame({"beat_id": ["a-1", "a-2", "b-1"], "aami": ["N", "S", "V"], "crop": [9, 9, 9]})
    assert figure.choose_crop_beat(index) == "b-1"
    assert figure.choose_crop_beat(index.iloc[:2]) == "a-2"
    assert figure.choose_crop_beat(index.iloc[:0]) is None


def test_read_images_reads_only_wanted_rows(tmp_path):
    root = write_image_set(tmp_path / "images")
    images = open_image_set(root)
    rows = images.rows
    plain = rows.loc[(rows["crop"] == 0) & (rows["symbol"] == "N"), "beat_id"].tolist()[:2]
    cropped = rows.loc[rows["crop"] == 9, "beat_id"].iloc[0]
    got = gallery.read_images(images, plain + [cropped])
    assert sorted(got) == sorted([(b, 0) for b in plain] + [(cropped, 0)])   # originals only, not the crops
    got = gallery.read_images(images, plain[:1], all_crops_of=cropped)
    assert sorted(got) == sorted([(plain[0], 0)] + [(cropped, k) for k in range(10)])
    assert all(img.shape == (64, 64) and img.dtype == np.uint8 for img in got.values())
    # the decoded image is the one the writer stored (crop k is the original rolled by k columns)
    assert np.array_equal(got[(cropped, 3)], np.roll(got[(cropped, 0)], 3, axis=1))


def test_gallery_without_crops_still_draws(tmp_path):
    images = write_image_set(tmp_path / "images", crops=None)
    summary = gallery.build_gallery(images, tmp_path / "g.png", per_class=2)
    assert summary["crop_beat"] is None and (tmp_path / "g.png").is_file()


def test_missing_image_set_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        gallery.build_gallery(tmp_path / "empty", tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()


def test_corrupt_image_bytes_name_the_beat(tmp_path, monkeypatch):
    monkeypatch.setattr(_shards, "encode_png", lambda img: b"not a png")
    root = _shards.write_shards(tmp_path / "images", {"100": {"N": 1}}, size=16)
    with pytest.raises(DataError, match=r"beat 100-100 crop 0: not a decodable PNG"):
        gallery.build_gallery(root, tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()


def test_cli(tmp_path, capsys):
    images = write_image_set(tmp_path / "images")
    out = tmp_path / "gallery.png"
    assert gallery.main(["--images", str(images), "--out", str(out)]) == 0
    assert out.is_file()
    assert "gallery: 10 classes" in capsys.readouterr().err
    assert gallery.main(["--images", str(tmp_path / "nope"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gallery: error: ") and "nope" in err and err.count("\n") == 1
    assert gallery.main(["--images", str(images), "--out", str(out), "--per-class", "0"]) == 2
    assert "gallery: error: gallery.per_class: must be >= 1" in capsys.readouterr().err
