"""benchmarks/diagnose_run.py: errors and N calls pooled over a run's folds, fold settings from run.json."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests._scripts import load_benchmark


@pytest.fixture(scope="module")
def diagnose():
    return load_benchmark("diagnose_run")


def _fake_run(tmp_path: Path) -> Path:
    run = tmp_path / "models" / "r"
    folds = [pd.DataFrame({"record": ["101", "101", "102"], "y_true": ["N", "N", "S"], "y_pred": ["F", "N", "N"]}),
             pd.DataFrame({"record": ["103", "103", "103"], "y_true": ["N", "N", "V"], "y_pred": ["F", "S", "V"]})]
    for i, frame in enumerate(folds):
        (run / f"fold-{i:02d}").mkdir(parents=True)
        frame.to_parquet(run / f"fold-{i:02d}" / "predictions.parquet")
    (run / "run.json").write_text(json.dumps({"run": "r", "classes": ["N", "S", "V", "F"], "fold_summaries": [
        {"fold": i, "decision_tau": 0.1 * i, "train_class_images": {"F": 1, "N": 6, "S": 2, "V": 1}}
        for i in range(2)]}))
    return run


def test_main_pools_the_folds_and_reads_the_settings(diagnose, tmp_path, capsys):
    assert diagnose.main(["--run", str(_fake_run(tmp_path))]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["beats"] == 6 and report["errors"] == 4
    assert report["majority_called"] == {"F": 2, "N": 1, "S": 1}
    assert report["top_records"] == {"F": {"101": 1, "103": 1}, "S": {"103": 1}}
    assert [f["first_class_share"] for f in report["folds"]] == [0.6, 0.6]     # N, not the sorted first key F
    assert [f["decision_tau"] for f in report["folds"]] == [0.0, 0.1]


def test_a_run_without_predictions_is_refused_by_name(diagnose, tmp_path):
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(SystemExit, match="no fold-XX/predictions.parquet"):
        diagnose.read_predictions(tmp_path)
