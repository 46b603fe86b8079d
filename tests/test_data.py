"""Opening image shards (manifest, checksums, labels) and the tf.data stream (rows, labels, row groups)."""
from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipelines.core.errors import ChecksumError, ConfigError, DataError
from tests.conftest import require
from tests._shards import write_shards
from training.data import Selection, beat_positions, cap_per_class, class_weights, fold_selections, make_dataset
from training.folds import make_folds
from training.meta import check_classes, label_rows, open_images

tf = require("tensorflow")

RECORDS = {r: {"N": 10, "V": 4, "A": 3, "F": 2} for r in ("100", "101", "103", "105")}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Originals + materialised crops for V/A/F; 4 shards, row groups of 16 rows."""
    return write_shards(tmp_path_factory.mktemp("img") / "annotations", RECORDS, crops=["V", "A", "F"], size=24,
                        n_shards=4, row_group_rows=16)


@pytest.fixture(scope="module")
def images(shards):
    return open_images(shards)


def stored_images(images, rows):
    """Decoded stored images of ``rows`` (read directly, for comparison)."""
    out = []
    for shard, group, offset in images.rows[["shard", "row_group", "offset"]].to_numpy()[rows]:
        col = pq.ParquetFile(images.shards[shard]).read_row_group(group, columns=["image"]).column("image")
        png = col.combine_chunks().field("bytes")[int(offset)].as_py()
        out.append(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE))
    return np.stack(out)


def originals(images, scheme="aami"):
    y, classes, _ = label_rows(images.rows, scheme)
    rows = np.flatnonzero((images.rows["crop"].to_numpy() == 0) & (y >= 0))
    return Selection.of(rows, np.zeros(rows.size, np.int8), y[rows]), classes


# ----------------------------------------------------------------------------- opening shards

def test_open_images_reads_metadata_and_row_locations(images):
    n_beats = sum(sum(c.values()) for c in RECORDS.values())
    n_crops = 9 * sum(c["V"] + c["A"] + c["F"] for c in RECORDS.values())
    assert len(images.rows) == n_beats + n_crops
    assert (images.rows["crop"] == 0).sum() == n_beats
    listed = json.loads((images.root / "manifest.json").read_text())["shards"]
    assert images.image_size == 24 and images.crops_materialised and len(images.shards) == len(listed) > 1
    assert [p.relative_to(images.root).as_posix() for p in images.shards] == [e["file"] for e in listed]
    assert images.crop_params["size"] == 18
    for i in np.random.default_rng(0).choice(len(images.rows), 12, replace=False):
        shard, group, offset = images.rows.loc[i, ["shard", "row_group", "offset"]]
        table = pq.ParquetFile(images.shards[shard]).read_row_group(group, columns=["beat_id", "crop"])
        assert table.column("beat_id")[int(offset)].as_py() == images.rows.loc[i, "beat_id"]
        assert table.column("crop")[int(offset)].as_py() == images.rows.loc[i, "crop"]


def test_missing_manifest_and_missing_shard(tmp_path):
    root = write_shards(tmp_path / "a", RECORDS, size=8)
    (root / "manifest.json").rename(tmp_path / "m.json")
    with pytest.raises(DataError, match="no manifest.json"):
        open_images(root)
    (tmp_path / "m.json").rename(root / "manifest.json")
    victim = sorted(root.glob("data/*/*.parquet"))[1]
    victim.unlink()
    name = victim.relative_to(root).as_posix()
    with pytest.raises(DataError, match=rf"shards on disk differ from manifest.json: missing \['{name}'\]"):
        open_images(root)


def test_corrupt_or_unlisted_shard(tmp_path):
    root = write_shards(tmp_path / "a", RECORDS, size=8)
    part = sorted(root.glob("data/*/*.parquet"))[0]
    data = bytearray(part.read_bytes())
    data[100] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=rf"{part.name}: sha256 .* differs from manifest.json"):
        open_images(root)
    root2 = write_shards(tmp_path / "b", RECORDS, size=8)
    (root2 / "data/originals/train-00009-of-00010.parquet").write_bytes(b"")
    with pytest.raises(DataError, match=r"not listed \['data/originals/train-00009-of-00010.parquet'\]"):
        open_images(root2)


def test_missing_column_and_orphan_crop(tmp_path):
    root = write_shards(tmp_path / "a", RECORDS, size=8, n_shards=1)
    part = next(root.glob("data/originals/*.parquet"))
    pq.write_table(pq.read_table(part).drop_columns(["jun8"]), part)
    with pytest.raises(DataError, match=rf"{part.name}: schema .* differs from manifest.json") as err:
        open_images(root, verify=False)
    assert "'jun8'" not in str(err.value)
    root2 = write_shards(tmp_path / "b", RECORDS, size=8, n_shards=1, crops=["V"])
    part2 = next(root2.glob("data/originals/*.parquet"))
    table = pq.read_table(part2)
    is_v_original = pc.and_(pc.equal(table["symbol"], "V"), pc.equal(table["crop"], 0))
    pq.write_table(table.filter(pc.invert(is_v_original)), part2)
    # the shard verifier (pipelines.formats) catches the lost rows before any orphan crop is seen
    with pytest.raises(DataError, match=rf"{part2.name}: \d+ rows, manifest.json says \d+"):
        open_images(root2, verify=False)


# ----------------------------------------------------------------------------- labels

def test_label_schemes_and_exclusions(tmp_path):
    recs = {"100": {"N": 3, "V": 2, "F": 1, "/": 1}, "102": {"N": 2, "/": 3}, "101": {"A": 2, None: 2, "!": 1}}
    images = open_images(write_shards(tmp_path / "a", recs, size=8, n_shards=1))
    rows, crop = images.rows, images.rows["crop"].to_numpy()
    y, classes, dropped = label_rows(rows, "aami")
    assert classes == ("N", "S", "V", "F", "Q")
    assert (y[rows["record"] == "102"] == -1).all()                     # paced record excluded
    assert dropped == {"paced_records": 5, "no_class": 3}               # 2 null symbols + "!"
    assert sorted(np.bincount(y[y >= 0], minlength=5).tolist()) == sorted([3, 2, 2, 1, 1])
    y8, classes8, dropped8 = label_rows(rows, "jun8")
    assert classes8[y8[rows["symbol"] == "!"][0]] == "VFW"
    assert (y8[rows["symbol"] == "F"] == -1).all() and dropped8["no_class"] == 3   # F, 2 nulls
    assert (y8[rows["record"] == "102"] >= 0).all()                     # jun8 keeps paced beats (PAB)
    yb, classesb, _ = label_rows(rows, "binary")
    assert classesb == ("normal", "abnormal")
    assert ((yb == 0) == rows["symbol"].isin(["N"]).to_numpy()).all()
    with pytest.raises(ConfigError, match="unknown label scheme"):
        label_rows(rows, "aami5")
    assert crop.max() == 0


def test_stored_class_column_must_agree_with_symbol(tmp_path):
    root = write_shards(tmp_path / "a", RECORDS, size=8, n_shards=1)
    part = next(root.glob("data/originals/*.parquet"))
    table = pq.read_table(part)
    aami = table.column("aami").to_pylist()
    aami[0] = "Q"
    pq.write_table(table.set_column(table.schema.get_field_index("aami"), "aami", [aami]), part)
    with pytest.raises(DataError, match=r"stored aami class 'Q' differs from symbol"):
        label_rows(open_images(root, verify=False).rows, "aami")


def test_empty_class_is_named_with_a_hint():
    with pytest.raises(ConfigError, match=r"class VFW has no beats.*segment.extra_symbols: \[\"!\"\]"):
        check_classes(np.array([0, 1, 2, 3, 4, 5, 7]), ("NOR", "PVC", "PAB", "RBB", "LBB", "APC", "VFW", "VEB"),
                      "jun8", "datasets/images/annotations")
    check_classes(np.array([0, 1]), ("normal", "abnormal"), "binary", "x")


# ----------------------------------------------------------------------------- weights and caps

def test_class_weights():
    y = np.array([0] * 6 + [1] * 3 + [2])
    np.testing.assert_allclose(class_weights(y, 3, "balanced"), [10 / 18, 10 / 9, 10 / 3], rtol=1e-6)
    np.testing.assert_array_equal(class_weights(y, 4, "balanced")[3], 0)
    np.testing.assert_array_equal(class_weights(y, 3, "none"), [1, 1, 1])
    # capped at 2x the smallest weight (10 / 18): the rare class drops from 10 / 3 to 10 / 9
    np.testing.assert_allclose(class_weights(y, 3, "balanced", max_ratio=2), [10 / 18, 10 / 9, 10 / 9], rtol=1e-6)
    np.testing.assert_allclose(class_weights(y, 3, "balanced", max_ratio=100), class_weights(y, 3, "balanced"))
    np.testing.assert_array_equal(class_weights(y, 4, "balanced", max_ratio=2)[3], 0)  # empty class stays 0
    with pytest.raises(ConfigError, match="class_weight"):
        class_weights(y, 3, "inverse")


def test_cap_per_class_water_filling():
    y = np.array([0] * 100 + [1] * 5 + [2] * 30)
    idx = cap_per_class(y, 40, np.random.default_rng(0))
    assert idx.size == 40 and np.all(np.diff(idx) > 0)
    assert np.bincount(y[idx]).tolist() == [18, 5, 17]
    np.testing.assert_array_equal(cap_per_class(y, 0, np.random.default_rng(0)), np.arange(y.size))
    np.testing.assert_array_equal(cap_per_class(y, 40, np.random.default_rng(1)), cap_per_class(y, 40, np.random.default_rng(1)))


# ----------------------------------------------------------------------------- fold selections

def test_fold_selections_crops_follow_their_beat(images):
    y, classes, _ = label_rows(images.rows, "aami")
    crop = images.rows["crop"].to_numpy()
    beat_rows = np.flatnonzero((crop == 0) & (y >= 0))
    ids = images.rows["beat_id"].to_numpy(dtype=object)
    plan = make_folds(ids[beat_rows], images.rows["record"].to_numpy(dtype=object)[beat_rows], y[beat_rows],
                      scheme="record", k=2, seed=0, validation_fraction=0.3, classes=classes[:4])
    pos = beat_positions(images.rows, beat_rows)
    fold = plan.folds[0]
    only = fold_selections(images, y, beat_rows, pos, fold, crops="originals")
    full = fold_selections(images, y, beat_rows, pos, fold, crops="all")
    assert (crop[only["train"].rows] == 0).all() and len(only["train"]) == len(fold.train)
    train_beats = set(ids[beat_rows[fold.train]])
    assert set(ids[full["train"].rows]) == train_beats
    expected = np.flatnonzero(np.isin(ids, list(train_beats)))           # every row (all crops) of train beats
    np.testing.assert_array_equal(full["train"].rows, expected)
    for side in ("val", "test"):
        assert (crop[full[side].rows] == 0).all()
        np.testing.assert_array_equal(full[side].rows, beat_rows[getattr(fold, side)])
    np.testing.assert_array_equal(full["train"].y, y[full["train"].rows])
    with pytest.raises(ConfigError, match="train.crops"):
        fold_selections(images, y, beat_rows, pos, fold, crops="some")


# ----------------------------------------------------------------------------- the stream

@pytest.mark.parametrize("decoder", ["cv2", "tf"])
def test_stream_yields_the_selected_rows_in_order(images, decoder):
    sel, _ = originals(images)
    sel = sel.take(np.arange(0, len(sel), 3))
    ds = make_dataset(images, sel, input_size=24, batch_size=7, shuffle=False, seed=0, decoder=decoder)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.shape == (len(sel), 24, 24, 1) and x.dtype == np.float32 and [b.shape[0] for b in xs][:1] == [7]
    np.testing.assert_array_equal(y, sel.y)
    np.testing.assert_array_equal(np.round(x[..., 0] * 255).astype(np.uint8), stored_images(images, sel.rows))
    assert ds.cardinality().numpy() == -(-len(sel) // 7)


@pytest.mark.parametrize("decoder", ["cv2", "tf"])
def test_stream_resizes_and_emits_class_weights(images, decoder):
    sel, classes = originals(images)
    w = class_weights(sel.y, len(classes), "balanced")
    ds = make_dataset(images, sel, input_size=12, batch_size=16, shuffle=False, seed=0, weights=w, decoder=decoder)
    x, y, sw = (np.concatenate(a) for a in zip(*[(b[0].numpy(), b[1].numpy(), b[2].numpy()) for b in ds]))
    assert x.shape == (len(sel), 12, 12, 1) and 0 <= x.min() and x.max() <= 1
    expected = cv2.resize(stored_images(images, sel.rows[:1])[0], (12, 12), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(x[0, ..., 0] * 255, expected, atol=1.0)
    np.testing.assert_allclose(sw, w[y])


@pytest.mark.parametrize("decoder", ["cv2", "tf"])
def test_shuffled_stream_is_seeded_and_covers_every_row_once_per_epoch(images, decoder):
    sel, _ = originals(images)
    ids = images.rows["beat_id"].to_numpy(dtype=object)

    def epochs(seed, n=2):
        ds = make_dataset(images, sel, input_size=24, batch_size=5, shuffle=True, seed=seed, shuffle_buffer=20,
                          decoder=decoder)
        return [np.concatenate([x.numpy().reshape(len(x), -1) for x, _ in ds]) for _ in range(n)]

    a, b = epochs(1), epochs(1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])                                   # reshuffled every epoch
    expected = stored_images(images, sel.rows).reshape(len(sel), -1)
    for epoch in a:                                                         # a permutation of the rows
        assert epoch.shape[0] == len(sel)
        got = sorted(map(bytes, np.round(epoch * 255).astype(np.uint8)))
        assert got == sorted(map(bytes, expected))
    assert len(set(ids[sel.rows])) == len(sel)


def test_stream_reads_only_the_needed_row_groups_and_only_image_bytes(images, monkeypatch):
    calls = []
    original = pq.ParquetFile.read_row_group

    def spy(self, i, columns=None, **kw):
        calls.append((id(self), i, tuple(columns or ())))
        return original(self, i, columns=columns, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: pytest.fail("read a whole table"))
    sel, _ = originals(images)
    sel = sel.take(np.flatnonzero(images.rows["record"].to_numpy()[sel.rows] == "103"))   # a few row groups
    groups = set(map(tuple, images.rows[["shard", "row_group"]].to_numpy()[sel.rows]))
    n_groups_total = len(set(map(tuple, images.rows[["shard", "row_group"]].to_numpy())))
    assert len(groups) < n_groups_total
    ds = make_dataset(images, sel, input_size=24, batch_size=4, shuffle=True, seed=0, shuffle_buffer=8)
    for _ in range(2):
        assert sum(x.shape[0] for x, _ in ds) == len(sel)
    assert len(calls) == 2 * len(groups)                                    # each needed group once an epoch
    assert {c[2] for c in calls} == {("image.bytes",)}


def _batches(ds):
    return [tuple(np.asarray(t) for t in (b[0]["image"], b[0]["rhythm"], *b[1:])) for b in ds]


@pytest.mark.parametrize("shuffle", [True, False])
def test_cached_stream_gives_the_same_batches_and_reads_the_shards_once(images, monkeypatch, shuffle):
    calls = []
    original = pq.ParquetFile.read_row_group

    def spy(self, i, columns=None, **kw):
        calls.append(i)
        return original(self, i, columns=columns, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    y, classes, _ = label_rows(images.rows, "aami")
    rows = np.flatnonzero(y >= 0)                                           # originals and crops
    sel = Selection(rows, np.zeros(rows.size, np.int8), y[rows])
    feats = np.arange(len(sel) * 2, dtype=np.float32).reshape(-1, 2)
    w = class_weights(sel.y, len(classes), "balanced")
    kw = dict(input_size=12, batch_size=7, shuffle=shuffle, seed=3, shuffle_buffer=20, weights=w, features=feats)
    plain = make_dataset(images, sel, **kw)
    cached = make_dataset(images, sel, cache=True, **kw)
    n_groups = len(set(map(tuple, images.rows[["shard", "row_group"]].to_numpy()[sel.rows])))
    assert len(calls) == n_groups                                           # read once, when made
    assert cached.cardinality().numpy() == plain.cardinality().numpy() == -(-len(sel) // 7)
    for epoch in range(3):
        a = _batches(plain)
        calls.clear()
        b = _batches(cached)
        assert not calls                                                    # every epoch from memory
        assert len(a) == len(b) == -(-len(sel) // 7)
        for x, z in zip(a, b):
            assert x[0].dtype == z[0].dtype == np.float32
            for u, v in zip(x, z):
                np.testing.assert_array_equal(u, v)
    if shuffle:
        assert not np.array_equal(a[0][0], _batches(cached)[0][0])         # still reshuffled every epoch


def test_cached_stream_after_an_unfinished_epoch_and_without_weights(images):
    sel, _ = originals(images)
    kw = dict(input_size=24, batch_size=5, shuffle=True, seed=1, shuffle_buffer=20)
    plain, cached = make_dataset(images, sel, **kw), make_dataset(images, sel, cache=True, **kw)
    for ds in (plain, cached):
        next(iter(ds))                                                      # an epoch left unfinished
    for _ in range(2):
        pa_, pb = [np.concatenate([t.numpy() for t in part]) for part in zip(*plain)], \
            [np.concatenate([t.numpy() for t in part]) for part in zip(*cached)]
        assert len(pa_) == len(pb) == 2                                     # (x, y): no weights
        for u, v in zip(pa_, pb):
            np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(np.sort(np.round(pb[0].reshape(len(sel), -1) * 255).astype(np.uint8), axis=0),
                                      np.sort(stored_images(images, sel.rows).reshape(len(sel), -1), axis=0))
    with pytest.raises(ConfigError, match="cv2"):
        make_dataset(images, sel, cache=True, decoder="tf", **kw)


def test_crops_made_at_load_time_when_not_materialised(tmp_path):
    import pipelines.imaging.crops as crops_mod
    root = write_shards(tmp_path / "a", RECORDS, size=32, n_shards=2, row_group_rows=8,
                        crop_params={"size": 24, "offsets": [0, 4, 8], "interpolation": "linear"})
    images = open_images(root)
    assert not images.crops_materialised
    y, classes, _ = label_rows(images.rows, "aami")
    crop = images.rows["crop"].to_numpy()
    beat_rows = np.flatnonzero((crop == 0) & (y >= 0))
    ids = images.rows["beat_id"].to_numpy(dtype=object)
    plan = make_folds(ids[beat_rows], images.rows["record"].to_numpy(dtype=object)[beat_rows], y[beat_rows],
                      scheme="beat", k=2, seed=0, validation_fraction=0.0, classes=classes[:4])
    fold = plan.folds[0]
    sels = fold_selections(images, y, beat_rows, beat_positions(images.rows, beat_rows), fold, crops="all")
    train = sels["train"]
    symbols = images.rows["symbol"].to_numpy(dtype=object)
    n_aug = int((symbols[beat_rows[fold.train]] != "N").sum())
    assert len(train) == len(fold.train) + 9 * n_aug
    assert (train.crop[symbols[train.rows] == "N"] == 0).all()
    assert (crop[sels["test"].rows] == 0).all() and (sels["test"].crop == 0).all()
    for decoder, cache in (("cv2", False), ("tf", False), ("cv2", True)):
        ds = make_dataset(images, train, input_size=32, batch_size=16, shuffle=False, seed=0, decoder=decoder,
                          cache=cache)
        x = np.round(np.concatenate([b[0].numpy() for b in ds])[..., 0] * 255).astype(np.uint8)
        base = stored_images(images, train.rows)
        nine = crops_mod.nine_crops(base, crop=24, offsets=(0, 4, 8), interpolation="linear")
        expected = np.where((train.crop == 0)[:, None, None], base,
                            nine[np.arange(len(train)), np.maximum(train.crop, 1) - 1])
        np.testing.assert_array_equal(x, expected)


def test_unknown_decoder(images):
    sel, _ = originals(images)
    with pytest.raises(ConfigError, match="decoder"):
        make_dataset(images, sel, input_size=24, batch_size=4, shuffle=False, seed=0, decoder="pil")


def test_rhythm_inputs_follow_the_rows_and_the_stream(tmp_path):
    from pipelines import RHYTHM_FEATURES, rhythm_features

    from training.data import rhythm_inputs, rr_columns

    recs = {"100": {"N": 10, "A": 4}, "101": {"N": 8, "V": 3}}
    images = open_images(write_shards(tmp_path / "rr", recs, size=16, n_shards=2, row_group_rows=8, rr=True))
    rr = rr_columns(images)
    symbols = images.rows["symbol"].to_numpy(dtype=object)
    assert (rr["rr_pre_ms"][symbols == "A"] == 560).all() and np.isnan(rr["rr_pre_ms"]).sum() == 2
    f = rhythm_inputs(images)
    assert f.shape == (len(images.rows), len(RHYTHM_FEATURES)) and f.dtype == np.float32 and np.isfinite(f).all()
    expected = np.nan_to_num(rhythm_features(rr["rr_pre_ms"], rr["rr_post_ms"], rr["rr_local_ms"],
                                             rr["rr_record_ms"]).astype(np.float32))
    np.testing.assert_array_equal(f, expected)
    rows = np.arange(len(images.rows))[::2]
    np.testing.assert_array_equal(rhythm_inputs(images, rows), f[rows])
    sel = Selection.of(rows, np.zeros(rows.size, np.int8), np.zeros(rows.size, np.int32))
    ds = make_dataset(images, sel, input_size=16, batch_size=4, shuffle=False, seed=0, features=f[sel.rows])
    got = np.concatenate([x["rhythm"].numpy() for x, _ in ds])
    np.testing.assert_array_equal(got, f[sel.rows])
    assert next(iter(ds))[0]["image"].shape == (4, 16, 16, 1)
    with pytest.raises(ConfigError, match="cv2 decoder"):
        make_dataset(images, sel, input_size=16, batch_size=4, shuffle=False, seed=0, features=f[sel.rows],
                     decoder="tf")
    # an image set that predates the rhythm columns: shards and row index without them
    old = tmp_path / "old.parquet"
    pq.write_table(pq.read_table(images.shards[0]).drop_columns(list(rr)), old)
    plain = dataclasses.replace(images, shards=(old,), rows=images.rows.drop(columns=list(rr)))
    with pytest.raises(DataError, match=r"old\.parquet: no column\(s\) \['rr_pre_ms'"):
        rhythm_inputs(plain)


def test_rhythm_inputs_with_template_features(tmp_path):
    """A run's second input: the RR ratios it names, then the template columns it names, in that order."""
    from pipelines import TEMPLATE_COLUMNS

    from training.data import branch_names, model_feature_names, rhythm_inputs, rr_columns

    images = open_images(write_shards(tmp_path / "t", {"100": {"N": 10, "V": 4}}, size=16, rr=True))
    names = ["log_pre_local", "tpl_corr_qrs", "rr_missing", "tpl_width"]
    f = rhythm_inputs(images, names=names)
    table = rr_columns(images, ("tpl_corr_qrs", "tpl_width"))
    symbols = images.rows["symbol"].to_numpy(dtype=object)
    assert f.shape == (len(images.rows), 4)
    np.testing.assert_array_equal(f[:, 1], np.nan_to_num(table["tpl_corr_qrs"]).astype(np.float32))
    np.testing.assert_array_equal(f[:, 3], np.nan_to_num(table["tpl_width"]).astype(np.float32))
    np.testing.assert_array_equal(f[:, [0, 2]], rhythm_inputs(images, names=["log_pre_local", "rr_missing"]))
    assert (f[symbols == "V", 1] == np.float32(0.2)).all()
    assert model_feature_names()[-len(TEMPLATE_COLUMNS):] == TEMPLATE_COLUMNS
    assert branch_names({}) == list(model_feature_names()[:6])
    with pytest.raises(ConfigError, match="unknown \\['tpl_nope'\\]"):
        rhythm_inputs(images, names=["tpl_corr", "tpl_nope"])
    # shards made before the template columns: a clear error naming the shard
    old = tmp_path / "old.parquet"
    pq.write_table(pq.read_table(images.shards[0]).drop_columns(list(TEMPLATE_COLUMNS)), old)
    plain = dataclasses.replace(images, shards=(old,), rows=images.rows.drop(columns=list(TEMPLATE_COLUMNS)))
    with pytest.raises(DataError, match=r"old\.parquet: no column\(s\) \['tpl_corr_qrs'"):
        rhythm_inputs(plain, names=names)
