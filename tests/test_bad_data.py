"""Real data, bad data: ingest and segment on a tiny database whose records each have one defect.

Defects that leave the rest of a record usable are excluded and counted with the record named
(an annotation at the signal's end, a beat annotated twice, a flat lead, clipped beats); a
header field that cannot be trusted (a sampling rate of ``abc``) refuses the database, naming
the file and the field.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from pipelines.core.errors import DataError
from pipelines.ingest import ingest
from pipelines.segment import run_segment
from tests._wfdb_records import edit_header, synthetic_ecg, write_record

REPO = Path(__file__).resolve().parents[1]
ADC_HIGH_MV = (2047 - 1024) / 200  # format 212, gain 200, baseline 1024 (tests._wfdb_records.write_record)


def _write(src: Path, name: str, *, seed: int, edit=None, extra=((), ())) -> tuple[np.ndarray, np.ndarray]:
    sig, peaks = synthetic_ecg(n_beats=10, seed=seed)
    channels = np.column_stack([sig, 0.5 * sig])
    if edit is not None:
        edit(channels, peaks)
    samples = [int(peaks[0]) - 20] + [int(p) for p in peaks] + list(extra[0])
    symbols = ["+"] + ["N"] * len(peaks) + list(extra[1])
    order = np.argsort(samples, kind="stable")
    write_record(src, name, channels, ann_sample=np.asarray(samples)[order], ann_symbol=np.asarray(symbols)[order])
    return channels, peaks


def _flat(channels, peaks):
    channels[:, 0] = 0.0


def _clip(channels, peaks):
    lo, hi = int(peaks[4]) - 150, int(peaks[6]) + 150     # beats 4..6 ride a large excursion, clipped
    channels[lo:hi, 0] = np.minimum(channels[lo:hi, 0] + 6.0, ADC_HIGH_MV)


@pytest.fixture()
def baddb(tmp_path) -> Path:
    src = tmp_path / "baddb"
    _write(src, "good", seed=0)
    sig, _ = synthetic_ecg(n_beats=10, seed=1)
    _write(src, "atend", seed=1, extra=([len(sig)], ["N"]))              # a beat at sample == signal length
    _, peaks = synthetic_ecg(n_beats=10, seed=2)
    _write(src, "dup", seed=2, extra=([int(peaks[3]), int(peaks[5])], ["N", "V"]))  # twice N; N and V
    _write(src, "flat", seed=3, edit=_flat)
    _write(src, "clip", seed=4, edit=_clip)
    return src


def _ingest(src: Path, out: Path, **over) -> tuple[dict, str]:
    params = {"database": "baddb", "version": "1", "records": "all", "annotator": "atr", "checksums": None,
              "fs": None}
    params.update(over)
    stream = io.StringIO()
    manifest = ingest(params, out, environ={"BADDB_DIR": str(src)}, stream=stream)
    return manifest, stream.getvalue()


def _segment(tmp_path: Path, src: Path, raw: Path, method: str, **quality) -> tuple[dict, object]:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["ingest"].update(database="baddb", checksums=None, fs=None)
    params["segment"]["quality"] = dict(params["segment"].get("quality") or {}, **quality)
    path = tmp_path / f"params-{method}.yaml"
    path.write_text(yaml.safe_dump(params))
    out, report = tmp_path / f"{method}.parquet", tmp_path / f"{method}.json"
    monkey = pytest.MonkeyPatch()
    monkey.setenv("BADDB_DIR", str(src))
    try:
        result = run_segment(method, path, raw, out, report, workers=1, stream=io.StringIO())
    finally:
        monkey.undo()
    return result, pq.read_table(out)


def test_ingest_excludes_and_counts_bad_annotations_naming_the_record(tmp_path, baddb):
    manifest, log = _ingest(baddb, tmp_path / "raw")
    recs = manifest["records"]
    assert sorted(recs) == ["atend", "clip", "dup", "flat", "good"]
    assert recs["atend"]["excluded_annotations"] == {"outside_signal": {"N": 1}}
    assert recs["atend"]["n_beats"] == 10
    assert recs["dup"]["excluded_annotations"] == {"conflicting_beats": {"N": 1, "V": 1}, "duplicate_beat": {"N": 1}}
    assert recs["dup"]["n_beats"] == 9
    assert all("excluded_annotations" not in recs[n] for n in ("good", "flat", "clip"))
    assert "atend ok:" in log and "excluded annotations: 1 outside_signal" in log
    assert "annotations excluded in atend, dup" in log


@pytest.mark.parametrize("method", ["annotations", "christov"])
def test_segment_counts_exclusions_and_names_the_flat_lead(tmp_path, baddb, method):
    _ingest(baddb, tmp_path / "raw")
    report, table = _segment(tmp_path, baddb, tmp_path / "raw", method)
    records = report["records"]
    assert records["atend"]["excluded_annotations"] == {"outside_signal": {"N": 1}}
    assert records["dup"]["excluded_annotations"] == {"conflicting_beats": {"N": 1, "V": 1},
                                                      "duplicate_beat": {"N": 1}}
    assert report["total"]["excluded_annotations"] == {"conflicting_beats": {"N": 1, "V": 1},
                                                       "duplicate_beat": {"N": 1}, "outside_signal": {"N": 1}}
    assert report["total"]["records_with_flat_lead"] == ["flat"]
    assert records["flat"]["flat_lead"] is True and records["good"]["flat_lead"] is False
    # the flat lead gives no beat images: every windowed beat is dropped as flat (christov finds none)
    assert records["flat"]["beats"] == 0
    assert "flat" not in set(table.column("record").to_pylist())
    if method == "annotations":
        assert records["flat"]["dropped"] == {"edge": 2, "flat": 8}
        assert records["flat"]["dropped_symbols"]["flat"] == {"N": 8}
        # a window wholly inside the clipped episode is flat too (saturation itself is off by default)
        assert report["total"]["dropped"]["flat"] == 8 + records["clip"]["dropped"].get("flat", 0)
    assert records["good"]["dropped"].keys() <= {"edge", "too_short", "off_record"}
    # saturation is off by default: the clipped beats are kept
    assert "saturated" not in records["clip"]["dropped"]
    # every kept window is neither flat nor beyond the amplitude bound
    sig = table.column("signal").to_pylist()
    assert all(0.05 <= np.ptp(s) <= 15.0 for s in sig)


def test_segment_excludes_saturated_beats_when_asked(tmp_path, baddb):
    _ingest(baddb, tmp_path / "raw")
    report, table = _segment(tmp_path, baddb, tmp_path / "raw", "annotations", saturated_ms=20.0)
    clip = report["records"]["clip"]
    assert clip["dropped"]["saturated"] >= 3 and clip["dropped_symbols"]["saturated"] == {
        "N": clip["dropped"]["saturated"]}
    assert report["params"]["quality"] == {"flat_mv": 0.05, "max_mv": 15.0, "saturated_ms": 20.0}
    kept = table.filter(pq.read_table(tmp_path / "annotations.parquet").column("record").to_numpy() == "clip")
    for s in kept.column("signal").to_pylist():
        assert np.count_nonzero(np.asarray(s, np.float32) >= np.float32(ADC_HIGH_MV)) < 7  # 20 ms = 7 samples
    # the other records lose nothing to the saturation check
    assert "saturated" not in report["records"]["good"]["dropped"]


def test_default_quality_settings_stay_out_of_the_table_provenance(tmp_path, baddb):
    _ingest(baddb, tmp_path / "raw")
    report, _ = _segment(tmp_path, baddb, tmp_path / "raw", "annotations")
    assert "quality" not in report["params"]


def test_implausible_amplitude_is_excluded(tmp_path, baddb):
    def tall(channels, peaks):
        channels[:, 0] *= 3.0                                  # about 3.9 mV peak to peak, the others 1.3

    _write(baddb, "tall", seed=5, edit=tall)
    _ingest(baddb, tmp_path / "raw")
    report, table = _segment(tmp_path, baddb, tmp_path / "raw", "annotations", max_mv=2.5)
    assert report["records"]["tall"]["beats"] == 0
    assert report["records"]["tall"]["dropped"] == {"edge": 2, "implausible_amplitude": 8}
    assert report["records"]["good"]["beats"] == 8 and "tall" not in set(table.column("record").to_pylist())


@pytest.mark.parametrize("value", ["abc", "-360"])
def test_ingest_with_any_rate_refuses_a_bad_header_rate_naming_the_record(tmp_path, baddb, value):
    edit_header(baddb / "dup.hea", 0, 2, value)
    with pytest.raises(DataError, match=rf"^baddb/dup.hea: sampling rate: '{value}' is not a positive number of Hz"):
        _ingest(baddb, tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_ingest_names_a_bad_gain_field_not_its_units(tmp_path, baddb):
    edit_header(baddb / "good.hea", 1, 2, "abc/mV")
    with pytest.raises(DataError, match=r"^baddb/good.hea: signal 0 ADC gain: 'abc' is not a number"):
        _ingest(baddb, tmp_path / "raw")


def test_extra_symbols_sharing_a_beats_sample_are_conflicting_not_fatal():
    from pipelines.records.reader import EcgRecord
    from pipelines.signal.beats import SegmentConfig, segment_annotations

    sig, peaks = synthetic_ecg(n_beats=8)
    sample = np.r_[peaks, peaks[4]]                       # a flutter wave '!' annotated on beat 4's sample
    symbol = np.array(["N"] * 8 + ["!"], dtype=object)
    order = np.argsort(sample, kind="stable")
    record = EcgRecord(name="x1", fs=360.0, lead="MLII", signal=sig.astype(np.float32),
                       ann_sample=sample[order], ann_symbol=symbol[order],
                       excluded_annotations={"outside_signal": {"N": 1}})
    plain = segment_annotations(record, SegmentConfig.from_params({}, "annotations"))
    assert plain.counts["excluded_annotations"] == {"outside_signal": {"N": 1}}   # '!' is not a beat here
    assert plain.n_beats == 6 and plain.counts["skipped_non_beat"] == {"!": 1}
    vfw = segment_annotations(record, SegmentConfig.from_params({"extra_symbols": ["!"]}, "annotations"))
    assert vfw.counts["excluded_annotations"] == {"conflicting_beats": {"!": 1, "N": 1}, "outside_signal": {"N": 1}}
    assert int(peaks[4]) not in vfw.r_sample.tolist() and vfw.counts["reference_beats"] == 7
