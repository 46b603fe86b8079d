"""The beats table format (pipelines.formats.beats): write, read back, and every fault named."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import MORPHOLOGY_COLUMNS
from pipelines.core.errors import DataError
from pipelines.formats import beats as fb


def record(name: str, r_samples: list[int], symbols: list[str | None], half: int = 5, seed: int = 0):
    """One record's beats as the segment stage hands them over (windows of 2 * half samples)."""
    rng = np.random.default_rng(seed)
    r = np.asarray(r_samples, np.int64)
    values = rng.normal(0, 0.1, r.size * 2 * half).astype(np.float32)
    return SimpleNamespace(record=name, lead="MLII", fs=360.0, r_sample=r, symbol=np.array(symbols, object),
                           start=r - half, end=r + half, values=values,
                           offsets=np.arange(r.size + 1, dtype=np.int64) * 2 * half)


META = {"schema_version": fb.SCHEMA_VERSION, "method": "annotations", "counts": {"beats": 5}}


@pytest.fixture()
def table_path(tmp_path):
    table = fb.beats_table([record("101", [50, 90], ["N", "V"]), record("100", [20, 60, 99], ["A", None, "/"])],
                           META)
    path = tmp_path / "annotations.parquet"
    fb.write_beats(table, path)
    return path


def test_write_read_and_verify_round_trip(table_path):
    assert fb.read_metadata(table_path) == META
    assert fb.verify_beats(table_path) == META
    t = pq.read_table(table_path)
    assert t.schema.remove_metadata().equals(fb.BEATS_SCHEMA)
    assert t.column("beat_id").to_pylist() == ["100-20", "100-60", "100-99", "101-50", "101-90"]
    assert t.column("aami").to_pylist() == ["S", None, "Q", "N", "V"]
    beats = fb.read_beats(table_path)
    assert beats.meta.column("beat_id").to_pylist() == t.column("beat_id").to_pylist()
    assert beats.lengths.tolist() == [10] * 5
    assert np.array_equal(beats.values, np.concatenate(t.column("signal").to_numpy()))
    assert not list(table_path.parent.glob(".*"))  # the atomic write left no temporary


def test_read_beats_sorts_a_shuffled_table(tmp_path, table_path):
    t = pq.read_table(table_path)
    shuffled = t.take(pa.array([4, 0, 3, 1, 2]))
    pq.write_table(shuffled, tmp_path / "s.parquet")
    beats = fb.read_beats(tmp_path / "s.parquet")
    assert beats.meta.column("beat_id").to_pylist() == t.column("beat_id").to_pylist()
    assert np.array_equal(beats.values, fb.read_beats(table_path).values)
    with pytest.raises(DataError, match=r"s.parquet: row 1 \(beat 100-20\): rows are not sorted"):
        fb.verify_beats(tmp_path / "s.parquet")


def test_missing_truncated_and_corrupt_files_are_named(tmp_path, table_path):
    with pytest.raises(DataError, match="nope.parquet: beats table not found"):
        fb.read_beats(tmp_path / "nope.parquet")
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(table_path.read_bytes()[:-30])
    for fn in (fb.read_metadata, fb.read_beats, fb.verify_beats):
        with pytest.raises(DataError, match="cut.parquet: not a readable Parquet file"):
            fn(cut)
    # garbage in the data pages, footer intact: found when the pages are read
    bad = tmp_path / "bad.parquet"
    blob = bytearray(table_path.read_bytes())
    footer = int.from_bytes(blob[-8:-4], "little")
    blob[4:len(blob) - footer - 8] = bytes(len(blob) - footer - 12)
    bad.write_bytes(bytes(blob))
    with pytest.raises(DataError, match=r"bad.parquet: row group 0 of 1 is unreadable"):
        fb.verify_beats(bad)
    with pytest.raises(DataError, match=r"bad.parquet: cannot read the label columns"):
        fb.read_beats(bad)


def test_wrong_schema_and_missing_metadata(tmp_path, table_path):
    t = pq.read_table(table_path)
    pq.write_table(t.drop_columns(["lead"]), tmp_path / "nolead.parquet")
    with pytest.raises(DataError, match="nolead.parquet: schema .* differs from the beats table schema"):
        fb.verify_beats(tmp_path / "nolead.parquet")
    pq.write_table(t.drop_columns(["signal"]), tmp_path / "nosig.parquet")
    with pytest.raises(DataError, match=r"nosig.parquet: beats table lacks column\(s\) \['signal'\]"):
        fb.read_beats(tmp_path / "nosig.parquet")
    import json
    old = t.drop_columns(list(fb.TEMPLATE_COLUMNS)).replace_schema_metadata(
        {fb.METADATA_KEY: json.dumps({**META, "schema_version": 1})})
    pq.write_table(old, tmp_path / "v1.parquet")            # a table of the format before the template columns
    with pytest.raises(DataError, match=r"v1.parquet: beats table lacks column\(s\) \['tpl_corr_qrs', .*\] "
                                        r"\(written as schema_version 1; this code reads 3: rerun the segment stage\)"):
        fb.read_beats(tmp_path / "v1.parquet")
    v2 = t.drop_columns(list(MORPHOLOGY_COLUMNS)).replace_schema_metadata(
        {fb.METADATA_KEY: json.dumps({**META, "schema_version": 2})})
    pq.write_table(v2, tmp_path / "v2.parquet")            # before the absolute morphology columns
    with pytest.raises(DataError, match=r"v2.parquet: beats table lacks column\(s\) \['mor_q0', .*'mor_qrs_ms'\] "
                                        r"\(written as schema_version 2; this code reads 3"):
        fb.read_beats(tmp_path / "v2.parquet")
    pq.write_table(t.replace_schema_metadata(None), tmp_path / "nometa.parquet")
    with pytest.raises(DataError, match="nometa.parquet: no 'ecg_beats' schema metadata"):
        fb.verify_beats(tmp_path / "nometa.parquet")
    pq.write_table(t.replace_schema_metadata({fb.METADATA_KEY: "{oops"}), tmp_path / "badmeta.parquet")
    with pytest.raises(DataError, match="badmeta.parquet: 'ecg_beats' schema metadata is not valid JSON"):
        fb.read_metadata(tmp_path / "badmeta.parquet")


def test_row_faults_name_the_beat(tmp_path, table_path):
    t = pq.read_table(table_path)
    ids = t.column("beat_id").to_pylist()
    ids[2] = "100-98"
    pq.write_table(t.set_column(0, t.schema.field(0), pa.array(ids)), tmp_path / "ids.parquet")
    with pytest.raises(DataError, match=r"ids.parquet: row 2 \(beat 100-98\): beat_id is not"):
        fb.verify_beats(tmp_path / "ids.parquet")
    end = t.column("end").to_numpy().copy()
    end[3] += 1
    i = t.schema.get_field_index("end")
    pq.write_table(t.set_column(i, t.schema.field(i), pa.array(end)), tmp_path / "len.parquet")
    with pytest.raises(DataError, match=r"len.parquet: row 3 \(beat 101-50\): signal length differs"):
        fb.verify_beats(tmp_path / "len.parquet")
    dup = pa.concat_tables([t, t.slice(0, 1)])
    pq.write_table(dup, tmp_path / "dup.parquet")
    with pytest.raises(DataError, match="dup.parquet: duplicate beat_id"):
        fb.read_beats(tmp_path / "dup.parquet")


def test_beats_table_rejects_unsorted_peaks():
    with pytest.raises(DataError, match="100: beats are not strictly increasing"):
        fb.beats_table([record("100", [50, 40], ["N", "N"])])
