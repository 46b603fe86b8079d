"""The source stage: its fingerprint changes exactly when the content ingest verifies changes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from pipelines.core.errors import ConfigError
from pipelines.core.files import sha256_file
from pipelines.records.checksums import format_checksum_file
from pipelines.source import fingerprint, main, record_files
from tests._wfdb_records import synthetic_ecg, write_record

REPO = Path(__file__).resolve().parents[1]
MITDB_RECORDS = ("100", "101", "102")


def _params(**over) -> dict:
    return {"database": "tinydb", "version": "1.0.0", "records": "all", "annotator": "atr", "checksums": None,
            **over}


@pytest.fixture()
def tinydb(tmp_path) -> Path:
    src = tmp_path / "tinydb"
    for i, name in enumerate(("t1", "t2")):
        sig, peaks = synthetic_ecg(n_beats=5 + i, seed=i)
        write_record(src, name, sig, ann_sample=list(peaks), ann_symbol=["N"] * len(peaks))
    return src


def _write_params(path: Path, **ingest) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["ingest"].update(ingest)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_unpinned_fingerprint_is_the_sha256_of_every_record_file(tinydb):
    found = fingerprint(_params(), environ={"TINYDB_DIR": str(tinydb)})
    assert found["checksums"] == "computed" and found["records"] == ["t1", "t2"]
    assert found["files"] == {f: sha256_file(tinydb / f) for f in
                              ("t1.atr", "t1.dat", "t1.hea", "t2.atr", "t2.dat", "t2.hea")}


def test_unpinned_fingerprint_changes_with_the_source_content_only(tinydb):
    env = {"TINYDB_DIR": str(tinydb)}
    before = fingerprint(_params(), environ=env)
    (tinydb / "README.md").write_text("not a record file\n")  # not read by ingest: no change
    (tinydb / "t1.xws").write_text("another record's annotator\n")
    assert fingerprint(_params(), environ=env) == before
    data = bytearray((tinydb / "t2.dat").read_bytes())
    data[100] ^= 1
    (tinydb / "t2.dat").write_bytes(bytes(data))
    after = fingerprint(_params(), environ=env)
    assert {f for f in before["files"] if before["files"][f] != after["files"][f]} == {"t2.dat"}
    (tinydb / "t1.atr").unlink()
    assert fingerprint(_params(), environ=env)["files"]["t1.atr"] is None


def test_a_signal_file_named_by_the_header_is_part_of_it(tinydb):
    hea = tinydb / "t1.hea"
    hea.write_text(hea.read_text().replace("t1.dat", "t1_signals.dat"))
    shutil.move(tinydb / "t1.dat", tinydb / "t1_signals.dat")
    assert record_files(tinydb, "t1", "atr") == ["t1.atr", "t1.hea", "t1_signals.dat"]
    hea.write_text("not a header\n")  # ingest reports it; here the header's own hash marks the change
    assert record_files(tinydb, "t1", "atr") == ["t1.atr", "t1.hea"]


def test_pinned_fingerprint_is_the_pins_without_reading_the_source(tinydb, tmp_path):
    hashes = {p.name: sha256_file(p) for p in sorted(tinydb.iterdir())}
    (tmp_path / "tinydb.sha256").write_text(format_checksum_file(hashes))
    params = _params(checksums="tinydb.sha256", records=["t2"])
    local = fingerprint(params, params_dir=tmp_path, environ={"TINYDB_DIR": str(tinydb)})
    assert local == fingerprint(params, params_dir=tmp_path, environ={})  # local copy or download: same
    assert local["checksums"] == "pinned" and local["records"] == ["t2"]
    assert local["files"] == {f: h for f, h in hashes.items() if f.startswith("t2.")}


def test_unpinned_download_has_nothing_to_hash():
    found = fingerprint(_params(records=["t2", "t1"]), environ={})
    assert found == {"database": "tinydb", "version": "1.0.0", "annotator": "atr", "checksums": "none",
                     "records": ["t1", "t2"], "files": {}}


def test_errors_name_the_problem(tinydb, tmp_path):
    with pytest.raises(ConfigError, match="ingest.checksums is missing"):
        fingerprint({k: v for k, v in _params().items() if k != "checksums"}, environ={})
    with pytest.raises(ConfigError, match="is not a directory"):
        fingerprint(_params(), environ={"TINYDB_DIR": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="unknown record"):
        fingerprint(_params(records=["t9"]), environ={"TINYDB_DIR": str(tinydb)})


def test_cli_on_mit_bih_records_unpinned(tmp_path, mitdb_dir, monkeypatch):
    """A copy of three MIT-BIH records: identical bytes when unchanged, new bytes after one file changed."""
    copy = tmp_path / "mitdb"
    copy.mkdir()
    for name in MITDB_RECORDS:
        for ext in ("hea", "dat", "atr"):
            shutil.copy(mitdb_dir / f"{name}.{ext}", copy)
    monkeypatch.setenv("MITDB_DIR", str(copy))
    params = _write_params(tmp_path / "params.yaml", checksums=None, records=list(MITDB_RECORDS))
    out = tmp_path / "raw" / "source.json"
    assert main(["--params", str(params), "--out", str(out)]) == 0
    first = out.read_bytes()
    assert main(["--params", str(params), "--out", str(out)]) == 0
    assert out.read_bytes() == first
    found = json.loads(first)
    assert found["checksums"] == "computed" and len(found["files"]) == 9
    assert str(copy) not in first.decode()  # no path: the same bytes on every machine
    with open(copy / "101.atr", "ab") as fh:
        fh.write(b"\0\0")
    assert main(["--params", str(params), "--out", str(out)]) == 0
    assert out.read_bytes() != first
    assert json.loads(out.read_bytes())["files"]["101.atr"] == sha256_file(copy / "101.atr")


def test_cli_pinned_matches_the_unpinned_hashes_of_the_same_records(tmp_path, mitdb_dir, monkeypatch):
    monkeypatch.setenv("MITDB_DIR", str(mitdb_dir))
    pinned, unpinned = tmp_path / "pinned.json", tmp_path / "unpinned.json"
    p = _write_params(tmp_path / "p.yaml", checksums=str(REPO / "pipelines/checksums/mitdb.sha256"),
                      records=list(MITDB_RECORDS))
    u = _write_params(tmp_path / "u.yaml", checksums=None, records=list(MITDB_RECORDS))
    assert main(["--params", str(p), "--out", str(pinned)]) == 0
    assert main(["--params", str(u), "--out", str(unpinned)]) == 0
    assert json.loads(pinned.read_text())["files"] == json.loads(unpinned.read_text())["files"]


def test_cli_reports_bad_params(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MITDB_DIR", str(tmp_path / "nope"))
    params = _write_params(tmp_path / "params.yaml", checksums=None)
    assert main(["--params", str(params), "--out", str(tmp_path / "s.json")]) == 1
    assert "source failed" in capsys.readouterr().err and not (tmp_path / "s.json").exists()


def test_a_mismatch_with_computed_hashes_is_not_called_pinned(tinydb):
    """After an unpinned ingest, segment checks the manifest's computed hashes: the error says so."""
    from pipelines.core.errors import ChecksumError
    from pipelines.records.reader import read_record

    manifest = {f: sha256_file(tinydb / f) for f in ("t1.hea", "t1.dat", "t1.atr")}
    read_record(tinydb, "t1", expected_sha256=manifest, expected_from="manifest")
    with open(tinydb / "t1.atr", "ab") as fh:
        fh.write(b"\0\0")
    with pytest.raises(ChecksumError, match=r"^tinydb/t1.atr: SHA-256 [0-9a-f]{64} differs from [0-9a-f]{64}, "
                                            r"recorded by ingest \(the source changed since: rerun ingest\)$"):
        read_record(tinydb, "t1", expected_sha256=manifest, expected_from="manifest")
    with pytest.raises(ChecksumError, match="ingest's manifest records no SHA-256 for this file"):
        read_record(tinydb, "t1", expected_sha256={f: h for f, h in manifest.items() if f != "t1.atr"},
                    expected_from="manifest")
    with pytest.raises(ChecksumError, match="differs from the pinned"):  # a checksum file's pins
        read_record(tinydb, "t1", expected_sha256=manifest)
