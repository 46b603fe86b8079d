"""The digitize stage (pipelines.digitize): reads only the image columns, writes one row per strip
and lead with a status, deterministically; record_signals; and the scoring (evaluation.digitize)."""
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipelines.digitize as stage
from evaluation.digitize import score_variant
from pipelines.formats.paper import GROUND_TRUTH_COLUMNS, INPUT_COLUMNS, encode_strip
from pipelines.printout.grid import page_geometry
from pipelines.printout.strip import draw_strip, plot_signals

FS = 360.0


def _strip(sig):
    g = page_geometry(seconds=10, n_leads=2)
    p = plot_signals(np.asarray(sig, np.float32), FS, g)
    return encode_strip(draw_strip(p, ["MLII", "V1"], g)), p.signal


@pytest.fixture(scope="module")
def strips(mitdb_dir):
    import wfdb
    rows, truths = [], []
    for start in (0, 3600):
        rec = wfdb.rdrecord(str(mitdb_dir / "100"), sampfrom=start, sampto=start + 3600)
        sig = rec.p_signal.T - np.median(rec.p_signal.T, axis=1, keepdims=True)
        png, truth = _strip(sig)
        ann = wfdb.rdann(str(mitdb_dir / "100"), "atr", sampfrom=start, sampto=start + 3599)
        beats = [int(s) for s, sym in zip(ann.sample, ann.symbol) if sym in "NLRBAaJSVrFejnE/fQ?"]
        rows.append({"strip_id": f"100-{start}", "fs": FS, "leads": ["MLII", "V1"], "image": {"bytes": png,
                     "path": None}, "start_sample": start, "signal": [t.tolist() for t in truth],
                     "beat_sample": beats})
        truths.append(truth)
    rows.append({**rows[0], "strip_id": "100-7200", "start_sample": 7200, "image": {"bytes": b"junk", "path": None}})
    return rows


@pytest.fixture
def params(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("paper: {}\ndigitize: {workers: 1, batch_strips: 2}\n")
    return p


def test_stage_reads_only_the_image_columns(strips, params, tmp_path, monkeypatch):
    asked = []

    def fake_iter_paper(directory, columns=None, *, batch_size=32, verify=True):
        asked.append(tuple(columns))
        assert columns is not None and set(columns) <= set(INPUT_COLUMNS)
        assert not set(columns) & set(GROUND_TRUTH_COLUMNS)
        table = pa.Table.from_pylist([{c: r[c] for c in columns} for r in strips])
        yield from table.to_batches(max_chunksize=batch_size)

    monkeypatch.setattr(stage.fmt, "iter_paper", fake_iter_paper)
    out = tmp_path / "digitized" / "clean.parquet"
    summary = stage.run_digitize(params, tmp_path / "paper" / "clean", out)
    assert asked == [stage.READ_COLUMNS]
    assert summary == {"strips": 3, "rows": 6, "status": {"not_png": 1, "ok": 2}}
    t = pq.read_table(out)
    assert t.schema.equals(stage.SCHEMA)
    rows = t.to_pylist()
    assert [(r["strip_id"], r["lead"], r["status"]) for r in rows] == [
        ("100-0", "MLII", "ok"), ("100-0", "V1", "ok"), ("100-3600", "MLII", "ok"), ("100-3600", "V1", "ok"),
        ("100-7200", "MLII", "not_png"), ("100-7200", "V1", "not_png")]
    assert rows[-1]["signal"] is None                    # a failure is never a zero signal
    assert len(rows[0]["signal"]) == 3600 and rows[0]["fs"] == FS
    first = out.read_bytes()
    stage.run_digitize(params, tmp_path / "paper" / "clean", out)
    assert out.read_bytes() == first                     # byte-identical rebuild


@pytest.mark.parametrize("workers", [1, 2])
def test_all_variants_in_one_stream_match_one_variant_at_a_time(strips, params, tmp_path, monkeypatch, workers):
    """The dvc stage's form (``--paper datasets/paper --out datasets/digitized``): every variant through one
    task stream (one pool of workers), each file byte-identical to digitising that variant on its own."""
    by_variant = {"clean": strips[:2], "noise": strips[2:], "blur": [], "rotate": strips[1:]}

    def fake_iter_paper(directory, columns=None, *, batch_size=32, verify=True):
        rows = by_variant[Path(directory).name]
        table = pa.Table.from_pylist([{c: r[c] for c in columns} for r in rows])
        yield from table.to_batches(max_chunksize=batch_size)

    monkeypatch.setattr(stage.fmt, "iter_paper", fake_iter_paper)
    for v in by_variant:
        (tmp_path / "paper" / v).mkdir(parents=True)
    summaries = stage.run_digitize_all(params, tmp_path / "paper", tmp_path / "all", variants=list(by_variant),
                                       workers=workers)
    assert list(summaries) == list(by_variant)
    assert summaries["clean"] == {"strips": 2, "rows": 4, "status": {"ok": 2}}
    assert summaries["noise"] == {"strips": 1, "rows": 2, "status": {"not_png": 1}}
    assert summaries["blur"] == {"strips": 0, "rows": 0, "status": {}}     # an empty variant: an empty file
    for v in by_variant:
        alone = tmp_path / "alone" / f"{v}.parquet"
        stage.run_digitize(params, tmp_path / "paper" / v, alone, workers=1)
        assert (tmp_path / "all" / f"{v}.parquet").read_bytes() == alone.read_bytes(), v
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(f"{v}.parquet" for v in by_variant)


def test_all_variants_names_a_missing_variant_directory(params, tmp_path):
    (tmp_path / "paper" / "clean").mkdir(parents=True)
    with pytest.raises(stage.DataError, match=r"paper[/\\]jpeg: paper variant directory not found"):
        stage.run_digitize_all(params, tmp_path / "paper", tmp_path / "out", variants=["clean", "jpeg"])
    with pytest.raises(stage.ConfigError, match=r"digitize.variants: \['clean'\] named more than once"):
        stage.run_digitize_all(params, tmp_path / "paper", tmp_path / "out", variants=["clean", "clean"])
    with pytest.raises(stage.ConfigError, match="digitize.variants: no variant"):
        stage.run_digitize_all(params, tmp_path / "paper", tmp_path / "out", variants=[])
    import json

    from pipelines.formats.paper import FORMAT, FORMAT_VERSION
    (tmp_path / "paper" / "manifest.json").write_text(json.dumps(     # the paper stage's own: all variants
        {"format": FORMAT, "format_version": FORMAT_VERSION, "variants": ["clean"]}))
    with pytest.raises(stage.DataError, match="paper variant directory not found"):   # not mistaken for one
        stage.run_digitize_all(params, tmp_path / "paper", tmp_path / "out", variants=["jpeg"])
    (tmp_path / "paper" / "clean" / "manifest.json").write_text(json.dumps(
        {"format": FORMAT, "format_version": FORMAT_VERSION, "variant": "clean"}))
    with pytest.raises(stage.DataError, match=r"clean: this is one paper variant's directory: give a .parquet --out"):
        stage.run_digitize_all(params, tmp_path / "paper" / "clean", tmp_path / "out", variants=["clean"])
    assert not (tmp_path / "out").exists()                # nothing written
    assert stage.digitize_variants(params, []) == {}


def test_cli_single_file_and_directory_forms(strips, params, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(stage, "run_digitize", lambda *a, **k: calls.append(("one", a, k)) or {})
    monkeypatch.setattr(stage, "run_digitize_all", lambda *a, **k: calls.append(("all", a, k)) or {})
    assert stage.main(["--params", str(params), "--paper", "p/clean", "--out", "d/clean.parquet"]) == 0
    assert stage.main(["--params", str(params), "--paper", "p", "--out", "d", "--variants", "clean", "jpeg"]) == 0
    assert [c[0] for c in calls] == ["one", "all"] and calls[1][2]["variants"] == ["clean", "jpeg"]
    with pytest.raises(SystemExit):
        stage.main(["--params", str(params), "--paper", "p", "--out", "d/x.parquet", "--variants", "clean"])


def test_digitize_rows_needs_only_the_image(strips):
    only = [{"strip_id": r["strip_id"], "fs": r["fs"], "leads": r["leads"], "image": r["image"]["bytes"]}
            for r in strips[:1]]
    out = stage.digitize_rows(only, stage.DigitizeConfig())
    assert out["status"] == ["ok", "ok"] and len(out["signal"][0]) == 3600


def test_record_signals_concatenates_strips_in_order(strips):
    rows = stage.digitize_rows(list(reversed(strips)), stage.DigitizeConfig())
    recs = stage.record_signals(pa.table(rows, schema=stage.SCHEMA), seconds=10.0)
    r = recs["100"]
    assert r.leads == ["MLII", "V1"] and r.starts.tolist() == [0, 3600, 7200] and r.offsets.tolist() == [0, 3600, 7200]
    assert r.signal.shape == (2, 10800)
    assert np.isfinite(r.signal[:, :7200]).all() and np.isnan(r.signal[:, 7200:]).all()
    single = stage.digitize_rows(strips[1:2], stage.DigitizeConfig())
    np.testing.assert_array_equal(r.signal[0, 3600:7200], single["signal"][0])


def test_score_variant(strips):
    dig = pa.table(stage.digitize_rows(strips, stage.DigitizeConfig()), schema=stage.SCHEMA).to_pylist()
    params = {"snr_max_shift_s": 0.5, "snr_max_offset_mv": 1.0, "rpeak_tolerance_ms": 150.0}
    rep = score_variant(strips, dig, params)
    assert rep["strips"] == 3 and rep["status"] == {"not_png": 1, "ok": 2}
    ok = [p for p in rep["per_lead"] if p["status"] == "ok"]
    assert all(p["snr"] > 10 and p["snr_aligned"] >= p["snr"] - 1e-9 and p["recovered"] == 1.0 for p in ok)
    failed = [p for p in rep["per_lead"] if p["status"] == "not_png"]
    assert all(p["snr"] == 0.0 and p["recovered"] == 0.0 for p in failed)   # NaN counted as 0: 0 dB
    dig_det, ref_det = rep["rpeak"]["digitized"], rep["rpeak"]["truth"]
    assert dig_det["tp"] >= ref_det["tp"] - 1 and dig_det["fp"] <= ref_det["fp"] + 1
    for d in (dig_det, ref_det):
        assert d["ppv_edges_as_fp"] == d["tp"] / (d["tp"] + d["fp"] + d["edge"]) <= d["ppv"]


def test_edge_detections_need_a_record_beat_just_outside_the_strip(tmp_path, monkeypatch):
    """``edge``: a detection near a strip edge that matches a reference beat of the record outside the strip
    (read from the ingest output, WFDB beat symbols only); without such a beat it stays a false positive."""
    import json

    import wfdb

    from evaluation.digitize import detection, outside_beats, read_record_beats
    from tests._wfdb_records import write_record

    files = tmp_path / "raw" / "files"
    write_record(files, "r1", np.zeros(4000), fs=360.0, sig_names=("MLII", "V1"))
    wfdb.wrann("r1", "atr", np.array([5, 395, 400, 700, 1402]), np.array(["N", "+", "N", "V", "N"]),
               aux_note=["", "(N", "", "", ""], write_dir=str(files))
    (tmp_path / "raw" / "manifest.json").write_text(json.dumps(
        {"database": "mitdb", "records": {"r1": {"n_samples": 4000}}}))
    monkeypatch.delenv("MITDB_DIR", raising=False)                # the ingest output's own files/
    beats = read_record_beats(tmp_path / "raw", ["r1"], "atr")
    assert beats["r1"].tolist() == [5, 400, 700, 1402]             # the rhythm mark '+' is no beat
    near = outside_beats(beats["r1"], 405, 990, 54)                # strip [405, 1395): 400 and 1402 just outside
    assert near.tolist() == [-5, 997]
    from unittest import mock
    with mock.patch("evaluation.digitize.detect_r_peaks", return_value=np.array([2, 295, 600, 988])):
        assert detection(np.zeros(990), np.array([295]), 360.0, 54, outside=near) == \
            {"tp": 1, "fp": 1, "fn": 0, "edge": 2}
        assert detection(np.zeros(990), np.array([295]), 360.0, 54) == {"tp": 1, "fp": 3, "fn": 0, "edge": 0}
    with pytest.raises(Exception, match="no record 'r9'"):
        read_record_beats(tmp_path / "raw", ["r9"], "atr")
