import numpy as np
import wfdb

from tests._wfdb_records import edit_header, synthetic_ecg, write_record


def test_write_record_round_trips(tmp_path):
    sig, peaks = synthetic_ecg(n_beats=5)
    write_record(tmp_path, "t1", sig, ann_sample=peaks, ann_symbol=["N"] * len(peaks))
    rec = wfdb.rdrecord(str(tmp_path / "t1"))
    ann = wfdb.rdann(str(tmp_path / "t1"), "atr")
    assert rec.fs == 360 and rec.sig_name == ["MLII", "V5"]
    np.testing.assert_allclose(rec.p_signal[:, 0], sig, atol=0.01)
    np.testing.assert_array_equal(ann.sample, peaks)


def test_edit_header_replaces_or_cuts_a_field(tmp_path):
    sig, _ = synthetic_ecg(n_beats=3)
    write_record(tmp_path, "t1", sig)
    edit_header(tmp_path / "t1.hea", 0, 2, "500")
    assert wfdb.rdheader(str(tmp_path / "t1")).fs == 500
    edit_header(tmp_path / "t1.hea", 1, 2, None)
    lines = (tmp_path / "t1.hea").read_text().splitlines()
    assert lines[1].split() == ["t1.dat", "212"] and lines[0].split()[:3] == ["t1", "2", "500"]
