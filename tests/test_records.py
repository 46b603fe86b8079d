"""Tests of pipelines.records.reader: reading and verifying WFDB records (tiny records + real MIT-BIH)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import wfdb

from pipelines.core.errors import ChecksumError, DataError
from pipelines.core.files import sha256_file, write_json
from pipelines.records.reader import (
    ANNOTATION_SYMBOLS, checksum16, expected_dat_bytes, load_manifest, load_record, read_record,
    resolve_source,
)
from pipelines.signal.labels import BEAT_SYMBOLS
from tests._wfdb_records import edit_header, set_annotation_code, synthetic_ecg, write_record

MITDB_DIR = os.environ.get("MITDB_DIR")
needs_mitdb = pytest.mark.skipif(not MITDB_DIR, reason="MITDB_DIR is not set")
PINS = Path(__file__).resolve().parents[1] / "pipelines" / "checksums" / "mitdb.sha256"


def _tiny(directory: Path, name: str = "t1", *, sig_names=("MLII", "V5"), fmt: str = "212",
          channels: np.ndarray | None = None, extra_ann: bool = True) -> tuple[Path, np.ndarray, np.ndarray]:
    """Write a small two-lead record with N beats and a rhythm annotation; return dir, signals, peaks."""
    sig, peaks = synthetic_ecg(n_beats=8)
    if channels is None:
        channels = np.column_stack([sig, -0.5 * sig])
    samples, symbols = list(peaks), ["N"] * len(peaks)
    if extra_ann:  # a non-beat annotation must be kept too
        samples, symbols = [int(peaks[0]) - 30] + samples, ["+"] + symbols
    write_record(directory, name, channels, sig_names=sig_names, fmt=fmt, ann_sample=samples, ann_symbol=symbols)
    return directory, channels, peaks


def _edit_header_field(path: Path, signal_line: int, field: int, value: str) -> None:
    edit_header(path, 1 + signal_line, field, value)


# --------------------------------------------------------------------------- reading


def test_reads_chosen_lead_in_mv_with_all_annotations(tmp_path):
    d, channels, peaks = _tiny(tmp_path)
    rec = read_record(d, "t1", database="tiny")
    assert rec.name == "t1" and rec.fs == 360.0 and rec.lead == "MLII"
    assert rec.signal.dtype == np.float32 and rec.signal.shape == (len(channels),)
    np.testing.assert_allclose(rec.signal, channels[:, 0], atol=0.5 / 200 + 1e-6)  # 1 ADC step = 1/200 mV
    assert rec.ann_sample.dtype == np.int64 and np.all(np.diff(rec.ann_sample) >= 0)
    assert rec.ann_symbol.dtype == object
    assert rec.ann_symbol.tolist() == ["+"] + ["N"] * len(peaks)
    np.testing.assert_array_equal(rec.ann_sample[1:], peaks)


def test_load_record_reports_manifest_facts(tmp_path):
    d, channels, peaks = _tiny(tmp_path)
    _, info = load_record(d, "t1", database="tiny")
    assert info.n_samples == len(channels) and info.sig_names == ("MLII", "V5")
    assert info.n_annotations == len(peaks) + 1 and info.n_beats == len(peaks)
    assert info.files == {f: sha256_file(d / f) for f in ("t1.hea", "t1.dat", "t1.atr")}
    entry = info.to_manifest()
    assert entry["files"] == info.files and entry["fs"] == 360.0 and entry["lead"] == "MLII"


def test_picks_mlii_when_stored_second(tmp_path):
    d, channels, _ = _tiny(tmp_path, sig_names=("V5", "MLII"))
    rec = read_record(d, "t1")
    assert rec.lead == "MLII"
    np.testing.assert_allclose(rec.signal, channels[:, 1], atol=0.0051)


def test_falls_back_to_channel_0_with_its_real_name(tmp_path):
    d, channels, _ = _tiny(tmp_path, sig_names=("V5", "V2"))
    rec = read_record(d, "t1")
    assert rec.lead == "V5"
    np.testing.assert_allclose(rec.signal, channels[:, 0], atol=0.0051)


def test_other_formats_and_rates_read_generically(tmp_path):
    sig, peaks = synthetic_ecg(n_beats=6, fs=250.0)
    write_record(tmp_path, "f16", sig, fs=250.0, fmt="16", ann_sample=peaks, ann_symbol=["V"] * len(peaks))
    rec, info = load_record(tmp_path, "f16")
    assert rec.fs == 250.0 and info.n_beats == len(peaks)
    assert (tmp_path / "f16.dat").stat().st_size == expected_dat_bytes("16", len(sig), 2)
    np.testing.assert_allclose(rec.signal, sig, atol=0.0051)


def test_microvolt_units_are_converted_to_millivolts(tmp_path):
    d, channels, _ = _tiny(tmp_path)
    hea = d / "t1.hea"
    hea.write_text(hea.read_text().replace("/mV", "/uV"))
    rec = read_record(d, "t1")
    np.testing.assert_allclose(rec.signal, channels[:, 0] / 1000.0, atol=0.0051 / 1000)


def test_non_voltage_units_are_refused(tmp_path):
    d, _, _ = _tiny(tmp_path)
    hea = d / "t1.hea"
    hea.write_text(hea.read_text().replace("/mV", "/degC"))
    with pytest.raises(DataError, match=r"tiny/t1: .*units 'degC'"):
        read_record(d, "t1", database="tiny")


def test_matches_wfdb_physical_signal(tmp_path):
    d, _, _ = _tiny(tmp_path)
    ref = wfdb.rdrecord(str(d / "t1")).p_signal[:, 0]
    np.testing.assert_allclose(read_record(d, "t1").signal, ref, rtol=1e-6, atol=1e-6)


def test_checksum16_wraps_like_wfdb():
    digital = np.array([[2047, -2048], [2047, -2048]] * 20)
    assert checksum16(digital).tolist() == [(2047 * 40 + 32768) % 65536 - 32768, -2048 * 40 % 65536 - 65536]


def test_annotation_symbol_table_is_wfdb_s():
    assert {"N", "V", "+", "~", "!", "|", '"', "x", "[", "]"} <= ANNOTATION_SYMBOLS
    assert set(BEAT_SYMBOLS) <= ANNOTATION_SYMBOLS and "" not in ANNOTATION_SYMBOLS


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("missing", ["t1.hea", "t1.dat", "t1.atr"])
def test_missing_file(tmp_path, missing):
    d, _, _ = _tiny(tmp_path)
    (d / missing).unlink()
    with pytest.raises(DataError, match=rf"^tiny/t1: missing .*{missing}"):
        read_record(d, "t1", database="tiny")


def test_truncated_dat(tmp_path):
    d, channels, _ = _tiny(tmp_path)
    dat = d / "t1.dat"
    dat.write_bytes(dat.read_bytes()[:-3])
    want = len(channels) * 2 * 3 // 2
    with pytest.raises(DataError, match=rf"tiny/t1: t1.dat has {want - 3:,} bytes, expected {want:,} .*truncated"):
        read_record(d, "t1", database="tiny")


def test_dat_longer_than_header(tmp_path):
    d, _, _ = _tiny(tmp_path)
    with open(d / "t1.dat", "ab") as fh:
        fh.write(b"\0\0\0")
    with pytest.raises(DataError, match="longer than its header says"):
        read_record(d, "t1")


def test_truncated_format_16_dat(tmp_path):
    sig, peaks = synthetic_ecg(n_beats=4)
    write_record(tmp_path, "f16", sig, fmt="16", ann_sample=peaks, ann_symbol=["N"] * len(peaks))
    dat = tmp_path / "f16.dat"
    dat.write_bytes(dat.read_bytes()[:-2])
    with pytest.raises(DataError, match="f16.dat has .* format 16\\): truncated"):
        read_record(tmp_path, "f16")


def test_corrupt_header(tmp_path):
    d, _, _ = _tiny(tmp_path)
    (d / "t1.hea").write_text("t1 two 360 abc\nnonsense\n")
    with pytest.raises(DataError, match=r"^tiny/t1.hea: number of signals: 'two' is not a non-negative integer"):
        read_record(d, "t1", database="tiny")


def _edit_record_line(path: Path, field: int, value: str | None) -> None:
    edit_header(path, 0, field, value)


@pytest.mark.parametrize("value", ["abc", "-360", "0", "nan", "inf", "1e999", "3.6e2", "+360"])
def test_bad_sampling_rate_is_refused_not_defaulted_to_250(tmp_path, value):
    d, _, _ = _tiny(tmp_path)
    _edit_record_line(d / "t1.hea", 2, value)
    with pytest.raises(DataError, match=rf"^tiny/t1.hea: sampling rate: '{re.escape(value)}' is not a positive "
                                        rf"number of Hz"):
        read_record(d, "t1", database="tiny")


def test_abc_sampling_rate_would_silently_be_250_hz_in_wfdb(tmp_path):
    d, _, _ = _tiny(tmp_path)
    _edit_record_line(d / "t1.hea", 2, "abc")
    assert wfdb.rdheader(str(d / "t1")).fs == 250  # the silent default this module refuses
    with pytest.raises(DataError, match="sampling rate: 'abc'"):
        load_record(d, "t1", database="tiny")


def test_missing_sampling_rate_is_refused(tmp_path):
    d, _, _ = _tiny(tmp_path)
    _edit_record_line(d / "t1.hea", 2, None)
    with pytest.raises(DataError, match=r"^tiny/t1.hea: sampling rate: missing .*250 Hz"):
        read_record(d, "t1", database="tiny")


def test_sampling_rate_with_counter_frequency_is_read(tmp_path):
    d, _, _ = _tiny(tmp_path)
    _edit_record_line(d / "t1.hea", 2, "360/720(0)")
    assert read_record(d, "t1").fs == 360.0


@pytest.mark.parametrize("field, value, message", [
    (1, "x", r"number of signals: 'x' is not a non-negative integer"),
    (1, "3", r"number of signals: the record line declares 3, the header has 2 signal line\(s\)"),
    (1, "1", r"number of signals: the record line declares 1, the header has 2 signal line\(s\)"),
    (1, "0", r"number of signals: 0 \(empty record"),
    (3, "-5", r"number of samples: '-5' is not a non-negative integer"),
    (3, "lots", r"number of samples: 'lots' is not"),
    (0, "t2", r"record name: the header names record 't2', the file is t1.hea"),
])
def test_bad_record_line_fields_are_named(tmp_path, field, value, message):
    d, _, _ = _tiny(tmp_path)
    _edit_record_line(d / "t1.hea", field, value)
    with pytest.raises(DataError, match=rf"^tiny/t1.hea: {message}"):
        read_record(d, "t1", database="tiny")


@pytest.mark.parametrize("field, value, message", [
    (1, "999", r"signal 0 format: '999' is not a WFDB signal format"),
    (1, "2l2", r"signal 0 format: '2l2' is not '<format>"),
    (1, "212x4", r"signal 0 format: 4 samples per frame are not supported"),
    (1, "212:3", r"signal 0 format: skewed signals are not supported"),
    (2, "abc/mV", r"signal 0 ADC gain: 'abc' is not a number"),
    (2, "abc", r"signal 0 ADC gain: 'abc' is not a number"),
    (2, "200(x)/mV", r"signal 0 baseline: 'x' is not an integer"),
    (2, "200(1024)/", r"signal 0 units: empty after '/'"),
    (3, "eleven", r"signal 0 ADC resolution: 'eleven' is not a non-negative integer"),
    (4, "1.5", r"signal 0 ADC zero: '1.5' is not an integer"),
    (5, "?", r"signal 0 initial value: '\?' is not an integer"),
    (6, "sum", r"signal 0 checksum: 'sum' is not an integer"),
    (7, "-1", r"signal 0 block size: '-1' is not a non-negative integer"),
])
def test_bad_signal_line_fields_are_named(tmp_path, field, value, message):
    d, _, _ = _tiny(tmp_path)
    _edit_header_field(d / "t1.hea", 0, field, value)
    with pytest.raises(DataError, match=rf"^tiny/t1.hea: {message}"):
        read_record(d, "t1", database="tiny")


def test_missing_signal_line_is_named_not_an_index_error(tmp_path):
    d, _, _ = _tiny(tmp_path)
    lines = (d / "t1.hea").read_text().splitlines()
    (d / "t1.hea").write_text("\n".join(lines[:2]) + "\n")
    with pytest.raises(DataError, match=r"^tiny/t1.hea: number of signals: the record line declares 2, the header "
                                        r"has 1 signal line"):
        read_record(d, "t1", database="tiny")


@pytest.mark.parametrize("cut", [3, 8])
def test_signal_line_without_a_lead_name_is_named(tmp_path, cut):
    d, _, _ = _tiny(tmp_path)
    edit_header(d / "t1.hea", 2, cut, None)
    with pytest.raises(DataError, match=r"^tiny/t1.hea: signal 1 name: missing"):
        read_record(d, "t1", database="tiny")


def test_signal_line_without_format_is_named(tmp_path):
    d, _, _ = _tiny(tmp_path)
    lines = (d / "t1.hea").read_text().splitlines()
    lines[1] = "t1.dat"
    (d / "t1.hea").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"^tiny/t1.hea: signal 0 format: missing"):
        read_record(d, "t1", database="tiny")


def test_comments_and_blank_lines_in_the_header_are_skipped(tmp_path):
    d, _, _ = _tiny(tmp_path)
    lines = (d / "t1.hea").read_text().splitlines()
    (d / "t1.hea").write_text("# made by a test\n" + lines[0] + "\n\n" + "\n".join(lines[1:]) + "\n# Age: 69\n")
    assert read_record(d, "t1").fs == 360.0


def test_adc_limits_are_in_millivolts(tmp_path):
    d, _, _ = _tiny(tmp_path)  # format 212, gain 200, baseline 1024, written without an ADC resolution
    rec = read_record(d, "t1")
    assert rec.adc_limits_mv == pytest.approx(((-2047 - 1024) / 200, (2047 - 1024) / 200))
    _edit_header_field(d / "t1.hea", 0, 3, "11")
    _edit_header_field(d / "t1.hea", 0, 4, "1024")
    assert read_record(d, "t1").adc_limits_mv == pytest.approx((-1024 / 200, 1023 / 200))


def test_signal_checksum_mismatch(tmp_path):
    d, _, _ = _tiny(tmp_path)
    dat = d / "t1.dat"
    data = bytearray(dat.read_bytes())
    data[300] ^= 0x01  # low bits of sample 200 (signal 0): same size, different sum
    dat.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"tiny/t1: signal 0 \(MLII\): checksum .* differs from the header"):
        read_record(d, "t1", database="tiny")


def test_initial_value_mismatch(tmp_path):
    d, _, _ = _tiny(tmp_path)
    hea = d / "t1.hea"
    init = int(hea.read_text().splitlines()[2].split()[5])  # fields: file fmt gain adcres adczero init ...
    _edit_header_field(hea, 1, 5, str(init + 1))
    with pytest.raises(DataError, match=r"signal 1 \(V5\): first sample .* initial value"):
        read_record(d, "t1")


def test_sha256_mismatch_names_the_file(tmp_path):
    d, _, _ = _tiny(tmp_path)
    expected = {f: sha256_file(d / f) for f in ("t1.hea", "t1.dat", "t1.atr")}
    read_record(d, "t1", expected_sha256=expected)  # all pinned: fine
    expected["t1.dat"] = "0" * 64
    with pytest.raises(ChecksumError, match=r"^tiny/t1.dat: SHA-256 [0-9a-f]{64} differs from the pinned 0{64}"):
        read_record(d, "t1", expected_sha256=expected, database="tiny")


def test_unpinned_file_is_refused(tmp_path):
    d, _, _ = _tiny(tmp_path)
    expected = {f: sha256_file(d / f) for f in ("t1.hea", "t1.dat")}
    with pytest.raises(ChecksumError, match=r"tiny/t1.atr: no pinned SHA-256"):
        read_record(d, "t1", expected_sha256=expected, database="tiny")


def test_other_pinned_files_of_the_record_are_verified_too(tmp_path):
    d, _, _ = _tiny(tmp_path)
    (d / "t1.qrs").write_bytes((d / "t1.atr").read_bytes())
    expected = {f: sha256_file(d / f) for f in ("t1.hea", "t1.dat", "t1.atr", "t1.qrs")}
    _, info = load_record(d, "t1", expected_sha256=expected)
    assert info.files == expected
    (d / "t1.qrs").unlink()
    with pytest.raises(DataError, match="tiny/t1: missing file t1.qrs"):
        read_record(d, "t1", expected_sha256=expected, database="tiny")


def test_pinned_header_mismatch_is_reported_before_parsing(tmp_path):
    d, _, _ = _tiny(tmp_path)
    expected = {f: sha256_file(d / f) for f in ("t1.hea", "t1.dat", "t1.atr")}
    (d / "t1.hea").write_text("garbage\n")
    with pytest.raises(ChecksumError, match="^tiny/t1.hea: SHA-256"):
        read_record(d, "t1", expected_sha256=expected, database="tiny")


def test_nan_samples_in_the_chosen_lead(tmp_path):
    sig, peaks = synthetic_ecg(n_beats=5)
    channels = np.column_stack([sig, sig])
    channels[100:103, 0] = np.nan
    write_record(tmp_path, "n1", channels, ann_sample=peaks, ann_symbol=["N"] * len(peaks))
    with pytest.raises(DataError, match=r"tiny/n1: lead MLII: 3 invalid samples \(NaN, .*-2048\), "
                                        r"first at sample 100"):
        read_record(tmp_path, "n1", database="tiny")


def test_nan_samples_in_another_lead_do_not_matter(tmp_path):
    sig, peaks = synthetic_ecg(n_beats=5)
    channels = np.column_stack([sig, sig])
    channels[100:103, 1] = np.nan
    write_record(tmp_path, "n2", channels, ann_sample=peaks, ann_symbol=["N"] * len(peaks))
    rec = read_record(tmp_path, "n2")
    assert rec.lead == "MLII" and np.isfinite(rec.signal).all()


def test_unknown_annotation_symbol(tmp_path):
    d, _, peaks = _tiny(tmp_path, extra_ann=False)
    set_annotation_code(d / "t1.atr", 2, 45)  # 45: no symbol in WFDB's label table
    with pytest.raises(DataError, match=rf"tiny/t1: 1 annotation\(s\) with unknown symbol <undefined label code> "
                                        rf"\(not in WFDB's label table\), first at sample "
                                        rf"{peaks[2]}"):
        read_record(d, "t1", database="tiny")


def test_unknown_custom_label_symbol(tmp_path, monkeypatch):
    d, _, peaks = _tiny(tmp_path, extra_ann=False)
    real = wfdb.rdann

    def rdann_with_custom_label(*args, **kwargs):  # e.g. a file defining its own label "Z"
        ann = real(*args, **kwargs)
        ann.symbol[1] = "Z"
        return ann

    monkeypatch.setattr(wfdb, "rdann", rdann_with_custom_label)
    with pytest.raises(DataError, match=rf"tiny/t1: 1 annotation\(s\) with unknown symbol 'Z' .*first at sample "
                                        rf"{peaks[1]}"):
        read_record(d, "t1", database="tiny")


def test_unreadable_annotation_file(tmp_path):
    d, _, _ = _tiny(tmp_path)
    (d / "t1.atr").write_bytes(b"\xff")
    with pytest.raises(DataError, match=r"^tiny/t1: unreadable annotation file t1.atr: "):
        read_record(d, "t1", database="tiny")


def test_empty_record_no_samples(tmp_path):
    (tmp_path / "e0.hea").write_text("e0 1 360 0\ne0.dat 212 200 11 1024 0 0 0 MLII\n")
    (tmp_path / "e0.dat").write_bytes(b"")
    (tmp_path / "e0.atr").write_bytes(b"\0\0")
    with pytest.raises(DataError, match=r"tiny/e0.hea: number of samples: 0 \(empty record\)"):
        read_record(tmp_path, "e0", database="tiny")


def test_empty_record_no_annotations(tmp_path):
    d, _, _ = _tiny(tmp_path)
    (d / "t1.atr").write_bytes(b"\0\0")  # just the end-of-file marker
    with pytest.raises(DataError, match=r"tiny/t1: empty record: no annotations in t1.atr"):
        read_record(d, "t1", database="tiny")


@pytest.mark.parametrize("past", [0, 5])
def test_annotations_at_or_past_the_signal_end_are_excluded_and_counted(tmp_path, past):
    sig, peaks = synthetic_ecg(n_beats=4)
    write_record(tmp_path, "o1", sig, ann_sample=list(peaks) + [len(sig) + past, len(sig) + past + 1],
                 ann_symbol=["N"] * 5 + ["+"])
    rec, info = load_record(tmp_path, "o1", database="tiny")
    assert rec.ann_sample.tolist() == peaks.tolist() and set(rec.ann_symbol) == {"N"}
    assert rec.excluded_annotations == {"outside_signal": {"+": 1, "N": 1}}
    assert info.n_annotations == 4 and info.n_beats == 4
    assert info.to_manifest()["excluded_annotations"] == {"outside_signal": {"+": 1, "N": 1}}


def test_the_last_sample_is_inside_the_signal(tmp_path):
    sig, peaks = synthetic_ecg(n_beats=4)
    write_record(tmp_path, "o1", sig, ann_sample=list(peaks) + [len(sig) - 1], ann_symbol=["N"] * 5)
    rec, info = load_record(tmp_path, "o1")
    assert rec.ann_sample[-1] == len(sig) - 1 and rec.excluded_annotations == {}
    assert "excluded_annotations" not in info.to_manifest()


def test_duplicate_and_conflicting_beat_annotations_are_excluded_and_counted(tmp_path):
    sig, peaks = synthetic_ecg(n_beats=6)
    samples = list(peaks) + [int(peaks[1]), int(peaks[3]), int(peaks[3])]
    symbols = ["N"] * 6 + ["N", "V", "+"]  # peaks[1] twice as N; peaks[3] as N and V; a rhythm mark at peaks[3]
    order = np.argsort(samples, kind="stable")  # wrann wants non-decreasing samples
    write_record(tmp_path, "d1", sig, ann_sample=np.asarray(samples)[order], ann_symbol=np.asarray(symbols)[order])
    rec, info = load_record(tmp_path, "d1", database="tiny")
    beats = rec.ann_sample[rec.ann_symbol != "+"]
    assert beats.tolist() == [p for i, p in enumerate(peaks.tolist()) if i != 3]
    assert rec.ann_sample[rec.ann_symbol == "+"].tolist() == [int(peaks[3])]
    assert rec.excluded_annotations == {"conflicting_beats": {"N": 1, "V": 1}, "duplicate_beat": {"N": 1}}
    assert info.n_beats == 5 and info.n_annotations == 6


def test_multi_segment_header_is_refused(tmp_path):
    (tmp_path / "m1.hea").write_text("m1/2 1 360 200\nseg1 100\nseg2 100\n")
    with pytest.raises(DataError, match="multi-segment"):
        read_record(tmp_path, "m1")


def test_default_database_name_is_the_directory(tmp_path):
    d, _, _ = _tiny(tmp_path / "mydb" / "files")
    (d / "t1.atr").unlink()
    with pytest.raises(DataError, match="^mydb/t1: missing"):
        read_record(d, "t1")


# --------------------------------------------------------------------------- source + manifest


def test_resolve_source_prefers_the_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("MITDB_DIR", str(tmp_path))
    assert resolve_source(tmp_path / "raw") == tmp_path
    monkeypatch.delenv("MITDB_DIR")
    assert resolve_source(tmp_path / "raw") == tmp_path / "raw" / "files"


def test_resolve_source_uses_the_manifest_database(tmp_path, monkeypatch):
    write_json(tmp_path / "raw" / "manifest.json", {"database": "svdb", "records": {}})
    monkeypatch.setenv("MITDB_DIR", str(tmp_path))
    assert resolve_source(tmp_path / "raw") == tmp_path / "raw" / "files"
    monkeypatch.setenv("SVDB_DIR", str(tmp_path))
    assert resolve_source(tmp_path / "raw") == tmp_path


def test_resolve_source_refuses_a_missing_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("MITDB_DIR", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="MITDB_DIR"):
        resolve_source(tmp_path, "mitdb")


def test_load_manifest(tmp_path):
    with pytest.raises(DataError, match="manifest not found; run"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(DataError, match="manifest.json: not valid JSON"):
        load_manifest(tmp_path)
    write_json(tmp_path / "manifest.json", {"database": "mitdb", "records": {"100": {}}})
    assert load_manifest(tmp_path)["records"] == {"100": {}}


# --------------------------------------------------------------------------- real MIT-BIH


def _pins() -> dict[str, dict[str, str]]:
    from pipelines.records.checksums import group_by_record, read_checksum_file

    return group_by_record(read_checksum_file(PINS))


@pytest.mark.integration
@needs_mitdb
def test_114_stores_mlii_second():
    rec = read_record(MITDB_DIR, "114", expected_sha256=_pins()["114"])
    assert rec.lead == "MLII" and rec.fs == 360.0 and rec.signal.shape == (650000,)
    ref = wfdb.rdrecord(os.path.join(MITDB_DIR, "114"), channels=[1]).p_signal[:, 0]
    np.testing.assert_allclose(rec.signal, ref, atol=1e-6)


@pytest.mark.integration
@needs_mitdb
@pytest.mark.parametrize("name", ["102", "104"])
def test_paced_records_without_mlii_use_v5(name):
    rec = read_record(MITDB_DIR, name)
    assert rec.lead == "V5"
    ref = wfdb.rdrecord(os.path.join(MITDB_DIR, name), channels=[0]).p_signal[:, 0]
    np.testing.assert_allclose(rec.signal, ref, atol=1e-6)


@pytest.mark.slow
@pytest.mark.integration
@needs_mitdb
def test_all_48_records_verify_and_hold_109494_beats():
    pins = _pins()
    assert len(pins) == 48
    beats = 0
    for name, files in pins.items():
        rec = read_record(MITDB_DIR, name, expected_sha256=files)
        assert rec.fs == 360.0 and rec.signal.shape == (650000,) and rec.signal.dtype == np.float32
        beats += int(np.isin(rec.ann_symbol.astype(str), BEAT_SYMBOLS).sum())
    assert beats == 109_494
