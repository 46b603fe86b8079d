"""Tests of the ingest stage: pinned checksums, record selection, local and (faked) download sources."""
from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
import wfdb
import yaml

from pipelines.core.errors import ChecksumError, ConfigError, DataError
from pipelines.core.files import sha256_file
from pipelines.records.reader import load_manifest, resolve_source
from pipelines.ingest import ingest, main
from pipelines.records.checksums import format_checksum_file, group_by_record, read_checksum_file
from pipelines.records.source import select_records
from tests._wfdb_records import synthetic_ecg, write_record

MITDB_DIR = os.environ.get("MITDB_DIR")
needs_mitdb = pytest.mark.skipif(not MITDB_DIR, reason="MITDB_DIR is not set")
REPO = Path(__file__).resolve().parents[1]
PINS = REPO / "pipelines" / "checksums" / "mitdb.sha256"
NAMES = ("t1", "t2", "t3")


@pytest.fixture()
def tinydb(tmp_path) -> Path:
    """A three-record WFDB database (one record without MLII) plus its pinned checksum file."""
    src = tmp_path / "tinydb"
    for i, name in enumerate(NAMES):
        sig, peaks = synthetic_ecg(n_beats=6 + i, seed=i)
        write_record(src, name, sig, sig_names=("V5", "V2") if name == "t2" else ("MLII", "V5"),
                     ann_sample=[int(peaks[0]) - 20] + list(peaks), ann_symbol=["+"] + ["N"] * len(peaks))
    (src / "README.md").write_text("not a record file\n")
    hashes = {p.name: sha256_file(p) for p in sorted(src.iterdir()) if p.suffix in (".hea", ".dat", ".atr")}
    (tmp_path / "tinydb.sha256").write_text(format_checksum_file(hashes))
    return src


def _params(tmp_path: Path, **over) -> dict:
    params = {"database": "tinydb", "version": "1.0.0", "records": "all", "annotator": "atr",
              "checksums": str(tmp_path / "tinydb.sha256")}
    params.update(over)
    return params


def _run(params, out, src=None, **kw):
    stream = io.StringIO()
    env = {} if src is None else {"TINYDB_DIR": str(src)}
    manifest = ingest(params, out, environ=env, stream=stream, **kw)
    return manifest, stream.getvalue()


# --------------------------------------------------------------------------- checksum files


def test_checksum_file_round_trip(tmp_path):
    hashes = {"b.dat": "ab" * 32, "a.hea": "CD" * 32}
    text = format_checksum_file(hashes)
    assert text.splitlines()[0].endswith("  a.hea")
    (tmp_path / "x.sha256").write_text(text)
    assert read_checksum_file(tmp_path / "x.sha256") == {"b.dat": "ab" * 32, "a.hea": "cd" * 32}


def test_checksum_file_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.sha256: checksum file not found \(set ingest.checksums: null"):
        read_checksum_file(tmp_path / "nope.sha256")
    bad = tmp_path / "bad.sha256"
    bad.write_text(f"{'0' * 64}  a.hea\nxyz  b.dat\n")
    with pytest.raises(ConfigError, match=r"bad.sha256:2: not a '<sha256>  <file>' line"):
        read_checksum_file(bad)
    bad.write_text(f"{'0' * 64}  a.hea\n{'1' * 64}  a.hea\n")
    with pytest.raises(ConfigError, match="a.hea is listed twice"):
        read_checksum_file(bad)


def test_group_by_record():
    pins = {"100.hea": "1", "100.dat": "2", "100.atr": "3", "101.hea": "4", "101.dat": "5", "RECORDS": "6"}
    assert group_by_record(pins) == {"100": {"100.hea": "1", "100.dat": "2", "100.atr": "3"},
                                     "101": {"101.hea": "4", "101.dat": "5"}}


def test_select_records():
    assert select_records("all", ["t2", "t1"], where="x") == ["t1", "t2"]
    assert select_records([100, "101"], ["100", "101"], where="x") == ["100", "101"]
    with pytest.raises(ConfigError, match=r"unknown record\(s\) 999, abc \(not in pins.sha256\)"):
        select_records(["100", 999, "abc"], ["100"], where="pins.sha256")
    with pytest.raises(ConfigError, match="'all' or a non-empty list"):
        select_records([], ["100"], where="x")
    with pytest.raises(ConfigError, match="twice"):
        select_records(["100", 100], ["100"], where="x")


# --------------------------------------------------------------------------- local source


def test_ingest_local_pinned(tmp_path, tinydb):
    out = tmp_path / "raw" / "tinydb"
    manifest, log = _run(_params(tmp_path), out, tinydb)
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["database"] == "tinydb" and manifest["version"] == "1.0.0"
    assert manifest["source"] == "local" and manifest["checksums"] == "pinned" and manifest["annotator"] == "atr"
    assert list(manifest["records"]) == list(NAMES)
    t2 = manifest["records"]["t2"]
    assert t2["lead"] == "V5" and t2["sig_names"] == ["V5", "V2"] and t2["fs"] == 360.0
    assert t2["n_beats"] == 7 and t2["n_annotations"] == 8
    assert t2["files"] == {f: sha256_file(tinydb / f) for f in ("t2.atr", "t2.dat", "t2.hea")}
    assert sorted(os.listdir(out)) == ["manifest.json"]  # a local source is not copied
    assert str(tmp_path) not in (out / "manifest.json").read_text()
    lines = log.strip().splitlines()
    assert len(lines) == 4 and all(f"{n} ok:" in line for n, line in zip(NAMES, lines))
    assert "3/3 done" in lines[-1] and "3 records verified (local, pinned SHA-256), 21 beats" in lines[-1]


def test_ingest_is_deterministic(tmp_path, tinydb):
    _run(_params(tmp_path), tmp_path / "a", tinydb)
    _run(_params(tmp_path), tmp_path / "b", tinydb)
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()


def test_ingest_record_list(tmp_path, tinydb):
    manifest, _ = _run(_params(tmp_path, records=["t3", "t1"]), tmp_path / "out", tinydb)
    assert list(manifest["records"]) == ["t1", "t3"]  # JSON keys sorted


def test_ingest_unknown_record(tmp_path, tinydb):
    with pytest.raises(ConfigError, match=r"unknown record\(s\) t9"):
        _run(_params(tmp_path, records=["t1", "t9"]), tmp_path / "out", tinydb)
    assert not (tmp_path / "out").exists()


def test_checksum_mismatch_leaves_nothing(tmp_path, tinydb):
    with open(tinydb / "t2.atr", "ab") as fh:
        fh.write(b"\0\0")
    out = tmp_path / "raw" / "tinydb"
    with pytest.raises(ChecksumError, match=r"^tinydb/t2.atr: SHA-256 .* differs from the pinned"):
        _run(_params(tmp_path), out, tinydb)
    assert os.listdir(tmp_path / "raw") == []  # no output, no temp dir


def test_failed_ingest_keeps_the_previous_output(tmp_path, tinydb):
    out = tmp_path / "out"
    _run(_params(tmp_path), out, tinydb)
    before = (out / "manifest.json").read_bytes()
    (tinydb / "t3.dat").write_bytes((tinydb / "t3.dat").read_bytes()[:-3])
    with pytest.raises(ChecksumError, match="tinydb/t3.dat"):
        _run(_params(tmp_path), out, tinydb)
    assert (out / "manifest.json").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == sorted(["out", "tinydb", "tinydb.sha256"])


def test_no_pins_records_computed_hashes_and_still_verifies(tmp_path, tinydb):
    manifest, log = _run(_params(tmp_path, checksums=None), tmp_path / "out", tinydb)
    assert manifest["checksums"] == "computed" and list(manifest["records"]) == list(NAMES)
    assert manifest["records"]["t1"]["files"]["t1.dat"] == sha256_file(tinydb / "t1.dat")
    assert "computed SHA-256" in log
    (tinydb / "t1.dat").write_bytes((tinydb / "t1.dat").read_bytes()[:-3])  # header checks still apply
    with pytest.raises(DataError, match="tinydb/t1: t1.dat has .*truncated"):
        _run(_params(tmp_path, checksums=None), tmp_path / "out2", tinydb)


def test_missing_checksum_file(tmp_path, tinydb):
    with pytest.raises(ConfigError, match="checksum file not found"):
        _run(_params(tmp_path, checksums="nope.sha256"), tmp_path / "out", tinydb, params_dir=tmp_path)


def test_expected_sampling_rate(tmp_path, tinydb):
    manifest, _ = _run(_params(tmp_path, fs=360), tmp_path / "ok", tinydb)
    assert len(manifest["records"]) == 3
    with pytest.raises(DataError, match=r"tinydb/t1: sampling rate 360 Hz differs from ingest.fs = 250 Hz"):
        _run(_params(tmp_path, fs=250.0), tmp_path / "out", tinydb)
    with pytest.raises(ConfigError, match="ingest.fs"):
        _run(_params(tmp_path, fs="fast"), tmp_path / "out", tinydb)


def test_missing_param(tmp_path, tinydb):
    params = _params(tmp_path)
    del params["checksums"]
    with pytest.raises(ConfigError, match="ingest.checksums is missing"):
        _run(params, tmp_path / "out", tinydb)


def test_source_dir_must_exist(tmp_path, tinydb):
    with pytest.raises(ConfigError, match="TINYDB_DIR=.* is not a directory"):
        _run(_params(tmp_path), tmp_path / "out", tmp_path / "missing")


# --------------------------------------------------------------------------- download source


@pytest.fixture()
def fake_physionet(monkeypatch, tinydb):
    """Replace the network calls: PhysioNet 'serves' version 1.0.0 of the tiny database."""
    calls: list[dict] = []
    state = {"version": "1.0.0", "corrupt": None}

    def get_version(database):
        calls.append({"get_version": database})
        return state["version"]

    def dl_database(db_dir, dl_dir, records="all", annotators="all", keep_subdirs=True, overwrite=False):
        calls.append({"db_dir": db_dir, "dl_dir": dl_dir, "records": records, "annotators": annotators})
        names = [p.stem for p in tinydb.glob("*.hea")] if records == "all" else records
        os.makedirs(dl_dir, exist_ok=True)
        for name in names:
            for ext in ["hea", "dat"] + list(annotators):
                shutil.copy(tinydb / f"{name}.{ext}", Path(dl_dir) / f"{name}.{ext}")
        if state["corrupt"]:
            with open(Path(dl_dir) / state["corrupt"], "r+b") as fh:
                fh.seek(10)
                fh.write(b"\x55")

    monkeypatch.setattr(wfdb.io.download, "get_version", get_version)
    monkeypatch.setattr(wfdb, "dl_database", dl_database)
    return calls, state


def test_download_is_verified_and_kept(tmp_path, tinydb, fake_physionet):
    calls, _ = fake_physionet
    out = tmp_path / "raw" / "tinydb"
    manifest, log = _run(_params(tmp_path), out)
    assert calls[0] == {"get_version": "tinydb"}
    assert calls[1]["db_dir"] == "tinydb" and calls[1]["records"] == list(NAMES) and calls[1]["annotators"] == ["atr"]
    assert Path(calls[1]["dl_dir"]).parent != out  # downloaded into a temporary directory first
    assert manifest["source"] == "download" and list(manifest["records"]) == list(NAMES)
    assert sorted(os.listdir(out)) == ["files", "manifest.json"]
    for f in ("t1.hea", "t2.dat", "t3.atr"):
        assert sha256_file(out / "files" / f) == sha256_file(tinydb / f)
    assert resolve_source(out) == out / "files"  # what segment will read (TINYDB_DIR unset)
    assert load_manifest(out)["records"]["t2"]["lead"] == "V5"
    assert "download, pinned SHA-256" in log


def test_corrupt_download_is_refused_and_removed(tmp_path, tinydb, fake_physionet):
    _, state = fake_physionet
    state["corrupt"] = "t2.dat"
    with pytest.raises(ChecksumError, match="^tinydb/t2.dat: SHA-256"):
        _run(_params(tmp_path), tmp_path / "raw" / "tinydb")
    assert os.listdir(tmp_path / "raw") == []


def test_download_without_pins_lists_the_downloaded_records(tmp_path, tinydb, fake_physionet):
    calls, state = fake_physionet
    manifest, _ = _run(_params(tmp_path, checksums=None), tmp_path / "out")
    assert calls[1]["records"] == "all"
    assert manifest["checksums"] == "computed" and list(manifest["records"]) == list(NAMES)
    state["corrupt"] = "t1.dat"  # unpinned, but the header checksum catches it
    with pytest.raises(DataError, match="tinydb/t1: signal .* checksum"):
        _run(_params(tmp_path, checksums=None), tmp_path / "out2")


def test_download_refuses_another_version(tmp_path, tinydb, fake_physionet):
    calls, state = fake_physionet
    state["version"] = "1.0.1"
    with pytest.raises(DataError, match="PhysioNet serves version 1.0.1, ingest.version asks for 1.0.0"):
        _run(_params(tmp_path), tmp_path / "out")
    assert len(calls) == 1 and not (tmp_path / "out").exists()


def test_download_network_failure(tmp_path, monkeypatch, tinydb):
    def offline(database):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(wfdb.io.download, "get_version", offline)
    with pytest.raises(DataError, match="tinydb: cannot reach PhysioNet.*no route to host"):
        _run(_params(tmp_path), tmp_path / "out")


# --------------------------------------------------------------------------- CLI


def test_cli(tmp_path, tinydb, monkeypatch, capsys):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"ingest": _params(tmp_path, checksums="tinydb.sha256")}))
    monkeypatch.setenv("TINYDB_DIR", str(tinydb))
    monkeypatch.chdir(tmp_path)
    assert main(["--params", "params.yaml", "--out", "datasets/raw/tinydb"]) == 0
    assert load_manifest(tmp_path / "datasets" / "raw" / "tinydb")["source"] == "local"
    assert "3 records verified" in capsys.readouterr().err
    (tinydb / "t1.hea").write_text("garbage\n")
    assert main(["--params", "params.yaml", "--out", "datasets/raw/other"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ingest: error: tinydb/t1.hea: SHA-256") and err.count("\n") == 1
    assert not (tmp_path / "datasets" / "raw" / "other").exists()


# --------------------------------------------------------------------------- real MIT-BIH


@pytest.mark.integration
@needs_mitdb
def test_pinned_checksums_match_the_shared_copy():
    pins = read_checksum_file(PINS)
    assert len(pins) == 144 and PINS.read_text() == format_checksum_file(pins)
    on_disk = {p.name for p in Path(MITDB_DIR).iterdir() if p.suffix in (".hea", ".dat", ".atr")}
    assert set(pins) == on_disk
    assert {f: sha256_file(Path(MITDB_DIR) / f) for f in pins} == pins
    assert len(group_by_record(pins)) == 48


@pytest.mark.integration
@needs_mitdb
def test_ingest_real_records(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())["ingest"]
    params = dict(params, records=["100", "102", "114"])
    stream = io.StringIO()
    manifest = ingest(params, tmp_path / "mitdb", params_dir=REPO, environ={"MITDB_DIR": MITDB_DIR}, stream=stream)
    assert manifest["database"] == "mitdb" and manifest["version"] == "1.0.0" and manifest["source"] == "local"
    recs = manifest["records"]
    assert recs["100"] == {
        "fs": 360.0, "n_samples": 650000, "sig_names": ["MLII", "V5"], "lead": "MLII",
        "n_annotations": 2274, "n_beats": 2273,
        "files": {f: h for f, h in read_checksum_file(PINS).items() if f.startswith("100.")},
    }
    assert recs["102"]["lead"] == "V5" and recs["114"]["lead"] == "MLII"
    assert recs["114"]["sig_names"] == ["V5", "MLII"]
    assert MITDB_DIR not in (tmp_path / "mitdb" / "manifest.json").read_text()

