"""benchmarks/compare_fold.py's --cv helpers: DS1 rows only, features carried, EC57 figures as bxb counts them."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import DS1, DS2, RR_COLUMNS
from tests._scripts import load_benchmark
from training.meta import ImageSet


@pytest.fixture(scope="module")
def compare_fold():
    return load_benchmark("compare_fold")


def test_ec57_figures_do_not_count_f_called_v_and_leave_q_unscored(compare_fold):
    pred = pd.DataFrame({"y_true": ["N", "N", "S", "V", "F", "Q", None],
                         "y_pred": ["N", "S", "N", "V", "V", "N", "N"],
                         "record": ["101"] * 7})
    fig = compare_fold.ec57_figures(pred, ("N", "S", "V", "F", "Q"))
    assert fig["beats"] == 5                       # Q and unlabelled beats are not scored
    assert fig["accuracy"] == pytest.approx(40.0)  # N and V right of five
    assert fig["S_se"] == 0.0 and fig["S_ppv"] == 0.0
    assert fig["V_se"] == 100.0 and fig["V_ppv"] == 100.0     # the F beat called V is no V false positive


def test_ec57_figures_give_none_where_undefined(compare_fold):
    pred = pd.DataFrame({"y_true": ["N", "S"], "y_pred": ["N", "N"], "record": ["101", "101"]})
    fig = compare_fold.ec57_figures(pred, ("N", "S", "V", "F"))
    assert fig["S_ppv"] is None and fig["V_se"] is None
    assert compare_fold._cell(None, 6) == "     -"


def test_summarise_gives_mean_and_sample_sd_skipping_undefined_figures(compare_fold):
    rows = [{"accuracy": 90.0, "S_se": 70.0, "S_ppv": None, "V_se": 90.0, "V_ppv": 80.0},
            {"accuracy": 92.0, "S_se": 74.0, "S_ppv": 50.0, "V_se": 94.0, "V_ppv": 84.0}]
    stats = compare_fold.summarise(rows)
    assert stats["accuracy"] == (91.0, 1.41) and stats["S_se"] == (72.0, 2.83)
    assert stats["S_ppv"][0] == 50.0 and math.isnan(stats["S_ppv"][1])       # one seed defines it: no sd
    assert math.isnan(compare_fold.summarise(rows[:1])["V_se"][1])


def test_ds1_images_keeps_ds1_rows_with_their_own_features(compare_fold):
    records = [DS1[0], DS2[0], DS1[1], DS2[1]]
    rows = pd.DataFrame({"record": records, "beat_id": [f"b{i}" for i in range(4)], "crop": 0,
                         **{c: np.arange(4.0) + 10 * j for j, c in enumerate(RR_COLUMNS)}})
    images = ImageSet(root=Path("."), shards=(), manifest={}, data_hash="", rows=rows, image_size=128,
                      crops_materialised=False)
    sub = compare_fold.ds1_images(images, ())
    assert sub.rows["record"].tolist() == [DS1[0], DS1[1]]
    assert sub.rows[RR_COLUMNS[0]].tolist() == [0.0, 2.0]     # still the values of those rows
    assert images.rows.shape[0] == 4                          # the original is untouched


@pytest.mark.slow
def test_fold_comparison_reports_the_chosen_decision_on_validation_beats(tmp_path):
    """A whole ``compare_fold.py`` run on tiny shards: the row holds the validation accuracy and per-class Se of
    the saved model's prior-corrected decision, and the accuracy is those Se weighted by the class counts."""
    import json
    import os
    import subprocess
    import sys

    from tests._shards import train_params, write_params, write_shards

    root = Path(__file__).resolve().parents[1]
    records = {r: {"N": 14, "A": 3, "V": 4, "F": 2, "Q": 2} for r in (DS1[0], DS1[1], DS2[0], DS2[1])}
    write_shards(tmp_path / "images", records, size=16, n_shards=1, row_group_rows=32, rr=True)
    write_params(tmp_path / "params.yaml", train_params(runs={
        "tiny": {"model": "small_cnn", "method": "annotations", "folds": "beat", "labels": "aami"}}))
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "compare_fold.py"), "--run", "tiny",
                           "--params", "params.yaml", "--images", "images", "--variant", "default"],
                          cwd=tmp_path, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("{")))
    assert row["variant"] == "default" and 0 <= row["val_accuracy"] <= 100
    assert set(row["val_se"]) == set(row["val_beats"]) and set(row["val_se"]) <= {"N", "S", "V", "F"}
    n = sum(row["val_beats"].values())
    assert n > 0 and all(0 <= v <= 100 for v in row["val_se"].values())
    weighted = sum(row["val_se"][c] * row["val_beats"][c] for c in row["val_se"]) / n
    assert row["val_accuracy"] == pytest.approx(weighted, abs=0.01 * len(row["val_se"]))
    assert "validation accuracy" in proc.stdout and "min Se" in proc.stdout


def test_seeds_need_cross_validation():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "compare_fold.py"), "--run", "tiny",
                           "--seeds", "1", "2", "--variant", "default"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "--seeds needs --cv" in proc.stderr


@pytest.mark.slow
def test_cross_validation_over_seeds_prints_each_seed_and_their_mean(tmp_path):
    """``--cv 2 --seeds 1 2`` on tiny shards: one row per seed (the seed among its changes, DS2 never read),
    then the variant's mean and sd over the seeds, equal to those of the rows."""
    import json
    import os
    import subprocess
    import sys

    from tests._shards import train_params, write_params, write_shards

    root = Path(__file__).resolve().parents[1]
    records = {r: {"N": 14, "A": 3, "V": 4, "F": 2, "Q": 2} for r in (*DS1[:6], DS2[0])}
    write_shards(tmp_path / "images", records, size=16, n_shards=1, row_group_rows=32, rr=True)
    write_params(tmp_path / "params.yaml", train_params(runs={
        "tiny-ds": {"model": "small_cnn", "method": "annotations", "folds": "ds1ds2", "labels": "aami"}}))
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "compare_fold.py"), "--run", "tiny-ds",
                           "--params", "params.yaml", "--images", "images", "--cv", "2", "--seeds", "1", "2",
                           "--variant", "default"],
                          cwd=tmp_path, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["seed"] for r in rows] == [1, 2]
    assert [r["changes"] for r in rows] == [["train.seed=1"], ["train.seed=2"]]
    n_ds1 = sum(sum(c for k, c in counts.items() if k != "Q") for r, counts in records.items() if r in DS1)
    assert all(r["model"]["beats"] == n_ds1 for r in rows)          # every DS1 beat held out once, no DS2 beat
    compare_fold = load_benchmark("compare_fold")
    stats = compare_fold.summarise([r["model"] for r in rows])
    mean_line = next(line for line in proc.stdout.splitlines() if "default mean +- sd" in line
                     and "RR + template" not in line)
    assert f"{stats['accuracy'][0]:.2f}+-{stats['accuracy'][1]:.2f}" in mean_line
