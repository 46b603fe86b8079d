import numpy as np
import wfdb

from tests._wfdb_records import synthetic_ecg, write_record


def test_write_record_round_trips(tmp_path):
    sig, peaks = synthetic_ecg(n_beats=5)
    write_record(tmp_path, "t1", sig, ann_sample=peaks, ann_symbol=["N"] * len(peaks))
    rec = wfdb.rdrecord(str(tmp_path / "t1"))
    ann = wfdb.rdann(str(tmp_path / "t1"), "atr")
    assert rec.fs == 360 and rec.sig_name == ["MLII", "V5"]
    np.testing.assert_allclose(rec.p_signal[:, 0], sig, atol=0.01)
    np.testing.assert_array_equal(ann.sample, peaks)
