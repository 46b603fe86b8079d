"""The paper stage end to end on tiny WFDB records: shards, ground truth, determinism, bad input, verifier."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import wfdb
import yaml

from pipelines.core.errors import ChecksumError, DataError
from pipelines.core.files import sha256_file
from pipelines.formats.paper import (GROUND_TRUTH_COLUMNS, SCHEMA, decode_strip, iter_paper, read_paper,
                                     verify_paper)
from pipelines.paper import main
from tests._wfdb_records import synthetic_ecg, write_record

REPO = Path(__file__).resolve().parents[1]
FS = 360.0


def _write_db(raw: Path, records: dict[str, dict]) -> Path:
    files_dir = raw / "files"
    manifest = {"database": "mitdb", "version": "1.0.0", "source": "download", "records": {}}
    for name, spec in records.items():
        write_record(files_dir, name, spec["signal"], fs=FS, sig_names=spec["leads"])
        wfdb.wrann(name, "atr", np.asarray(spec["sample"], np.int64), np.asarray(spec["symbol"]),
                   aux_note=spec["aux"], write_dir=str(files_dir))
        manifest["records"][name] = {
            "fs": FS, "n_samples": int(spec["signal"].shape[0]), "sig_names": list(spec["leads"]),
            "files": {f: sha256_file(files_dir / f) for f in (f"{name}.hea", f"{name}.dat", f"{name}.atr")}}
    (raw / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return raw


def _record(seconds: float, seed: int, leads=("MLII", "V1")):
    sig, peaks = synthetic_ecg(n_beats=int(seconds / 0.8) - 1, seed=seed)
    sig2 = np.stack([sig, -0.5 * sig], axis=1)
    symbols = ["N"] * len(peaks)
    symbols[3] = "V"
    sample = [5] + list(peaks) + [int(peaks[len(peaks) // 2]) + 20]
    symbol = ["+"] + symbols + ["+"]
    aux = ["(N"] + [""] * len(peaks) + ["(AFIB"]
    order = np.argsort(sample, kind="stable")
    return {"signal": sig2, "leads": list(leads), "sample": np.asarray(sample)[order],
            "symbol": [symbol[i] for i in order], "aux": [aux[i] for i in order], "peaks": peaks}


@pytest.fixture
def tiny_db(tmp_path, monkeypatch):
    monkeypatch.delenv("MITDB_DIR", raising=False)
    recs = {"100": _record(25.0, 1), "101": _record(22.0, 2), "102": _record(6.0, 3)}   # 102: shorter than a strip
    return _write_db(tmp_path / "raw", recs), recs


def _params(tmp_path, **paper) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paper"].update({"dpi": 100, "strips_per_record": 0, "workers": 1,
                            "variants": {"rot": {"rotate": {"max_degrees": 2.0}},
                                         "scan": {"noise": {"sigma": 4.0}, "jpeg": {"quality": 70}}}})
    params["paper"].update(paper)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _run(tmp_path, raw, out="paper", params=None, gallery=None, workers=None):
    args = ["--params", str(params or _params(tmp_path)), "--raw", str(raw), "--out", str(tmp_path / out)]
    args += ["--workers", str(workers)] if workers else []
    return main(args + (["--gallery", str(tmp_path / gallery)] if gallery else []))


def _digest(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_stage_writes_every_variant_with_ground_truth(tmp_path, tiny_db, capsys):
    raw, recs = tiny_db
    assert _run(tmp_path, raw, gallery="gallery.png") == 0
    out = tmp_path / "paper"
    top = json.loads((out / "manifest.json").read_text())
    assert top["variants"] == ["clean", "rot", "scan"]
    assert top["exclusions"]["too_short"] == {"count": 1, "records": ["102"]}
    assert top["records"] == {"100": 2, "101": 2} and top["strips"] == 4
    clean = read_paper(out / "clean")
    assert clean.schema.names == SCHEMA.names and clean.num_rows == 4
    rows = clean.to_pylist()     # shards in split order: 101 is DS1 (train), 100 DS2 (test)
    assert [r["strip_id"] for r in rows] == ["101-0", "101-3600", "100-0", "100-3600"]
    rows = rows[2:]
    r = rows[1]
    assert r["leads"] == ["MLII", "V1"] and r["fs"] == FS and r["variant"] == "clean"
    sig = recs["100"]["signal"]
    for k in range(2):     # the plotted signal is the record's lead minus its strip median (float32)
        lead = sig[3600:7200, k].astype(np.float32)
        want = np.asarray(lead - np.median(lead), np.float32)
        assert np.allclose(r["signal"][k], want, atol=0.006)          # 212 format: 5 uV steps
        assert len(r["plotted_x"][k]) == len(r["plotted_y"][k]) == 3600
    peaks = recs["100"]["peaks"]
    assert r["beat_sample"] == [int(p) for p in peaks if 3600 <= p < 7200]
    assert rows[0]["rhythm"] is None and rows[0]["rhythm_sample"] == [5] and rows[0]["rhythm_label"] == ["(N"]
    assert r["rhythm"] == "(N" and r["rhythm_label"] == ["(AFIB"] and r["distortions"] == "[]"
    img = decode_strip(r["image"]["bytes"])
    assert img.shape == (r["height"], r["width"], 3)
    xs, ys = np.asarray(r["plotted_x"][0]), np.asarray(r["plotted_y"][0])
    assert np.median(img[np.round(ys).astype(int), np.round(xs).astype(int)].max(axis=-1)) < 100
    rot = read_paper(out / "rot").to_pylist()[2:]
    plan = json.loads(rot[1]["distortions"])
    assert [p["name"] for p in plan] == ["rotate"] and abs(plan[0]["degrees"]) <= 2.0
    assert rot[1]["plotted_x"] != r["plotted_x"] and rot[1]["signal"] == r["signal"]
    assert [p["name"] for p in json.loads(read_paper(out / "scan").to_pylist()[0]["distortions"])] == ["noise", "jpeg"]
    for v in ("clean", "rot", "scan"):
        assert (out / v / "README.md").read_text().startswith("---\nlicense: odc-by")
        assert json.loads((out / v / "croissant.json").read_text())["recordSet"][0]["@id"] in ("train", "test", "other")
    assert decode_strip((tmp_path / "gallery.png").read_bytes()).shape[0] > 3 * 28
    err = capsys.readouterr().err
    assert "paper: 4/4 done" in err and "1 excluded" in err


def test_rebuild_is_byte_identical_whatever_the_workers(tmp_path, tiny_db):
    raw, _ = tiny_db
    assert _run(tmp_path, raw, "a") == 0 and _run(tmp_path, raw, "b", workers=2) == 0   # b: a dask LocalCluster
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert a == b and any(k.endswith(".parquet") for k in a)


def test_digitiser_columns_are_separate_from_ground_truth(tmp_path, tiny_db):
    raw, _ = tiny_db
    assert _run(tmp_path, raw) == 0
    batch = next(iter_paper(tmp_path / "paper" / "clean", ["strip_id", "image"], batch_size=2))
    assert batch.num_rows == 2 and batch.schema.names == ["strip_id", "image"]
    assert {"signal", "plotted_x", "plotted_y", "beat_sample"} <= set(GROUND_TRUTH_COLUMNS)
    assert "image" not in GROUND_TRUTH_COLUMNS


def test_verifier_refuses_a_corrupted_or_missing_shard(tmp_path, tiny_db):
    raw, _ = tiny_db
    assert _run(tmp_path, raw) == 0
    clean = tmp_path / "paper" / "clean"
    assert verify_paper(clean)["rows"] == 4
    shard = sorted(clean.rglob("*.parquet"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="differs from manifest"):
        read_paper(clean)
    shard.unlink()
    with pytest.raises(DataError, match="missing"):
        verify_paper(clean)


def test_record_without_the_leads_is_excluded_and_all_excluded_is_an_error(tmp_path, tiny_db, capsys):
    raw, _ = tiny_db
    params = _params(tmp_path, leads=["MLII", "V5"])
    assert _run(tmp_path, raw, params=params) == 2
    err = capsys.readouterr().err
    assert "paper: error:" in err and "no record can be drawn" in err and "missing_lead" in err
    assert not (tmp_path / "paper").exists()
    assert _run(tmp_path, raw, params=_params(tmp_path, leads=["V1"])) == 0
    top = json.loads((tmp_path / "paper" / "manifest.json").read_text())
    assert top["exclusions"]["missing_lead"]["count"] == 0
    assert read_paper(tmp_path / "paper" / "clean").column("leads").to_pylist()[0] == ["V1"]


def test_missing_ingest_manifest_and_bad_params_are_clear_errors(tmp_path, capsys):
    assert main(["--params", str(_params(tmp_path)), "--raw", str(tmp_path / "none"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "manifest not found" in capsys.readouterr().err
    bad = _params(tmp_path, variants={"clean": {"blur": {"sigma_px": 1.0}}})
    assert main(["--params", str(bad), "--raw", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "paper.variants.clean" in capsys.readouterr().err


def test_corrupt_record_stops_the_stage_and_keeps_the_previous_output(tmp_path, tiny_db, capsys):
    raw, _ = tiny_db
    assert _run(tmp_path, raw) == 0
    before = _digest(tmp_path / "paper")
    dat = raw / "files" / "101.dat"
    data = bytearray(dat.read_bytes())
    data[100] ^= 0xFF
    dat.write_bytes(bytes(data))
    assert _run(tmp_path, raw) == 2
    err = capsys.readouterr().err
    assert "paper: error:" in err and "101.dat" in err and "SHA-256" in err
    assert _digest(tmp_path / "paper") == before
