"""The training stage end to end on tiny synthetic shards: outputs, determinism, resume, errors."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.signal.labels import DS1, DS2
from tests.conftest import require
from tests._shards import train_params, write_params, write_shards

require("tensorflow")

from training.train import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def train_cli(cwd: Path, run: str, params: Path | str, images: Path | str, out: Path, cache: Path) -> tuple[dict, str]:
    """``python -m training.train`` in a fresh process, as DVC runs it; return run.json and the log.

    Training runs in a subprocess, not in the pytest process: that process has already built
    TensorFlow models and datasets, run dask clusters and set TensorFlow's thread pools for other
    tests, none of which a real stage run shares.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-m", "training.train", "--run", run, "--params", str(params),
                           "--images", str(images), "--out", str(out), "--cache", str(cache)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((Path(cwd) / out / "run.json").read_text()), proc.stderr
# two DS1 and two DS2 records, every AAMI class in each
RECORDS = {r: {"N": 14, "A": 3, "V": 4, "F": 2, "Q": 2} for r in (DS1[0], DS1[1], DS2[0], DS2[1])}
N_BEATS = len(RECORDS) * 25


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Shards and a params file, and one CLI run of ``tiny`` (record folds) in a subprocess."""
    d = tmp_path_factory.mktemp("train")
    write_shards(d / "images", RECORDS, crops=["A", "V", "F", "Q"], size=16, n_shards=2, row_group_rows=32, rr=True)
    write_params(d / "params.yaml", train_params(runs={
        "tiny": {"model": "small_cnn", "method": "annotations", "folds": "record", "labels": "aami"},
        "tiny-ds": {"model": "small_cnn", "method": "annotations", "folds": "ds1ds2", "labels": "aami"},
        "tiny-vgg": {"model": "vgg", "method": "annotations", "folds": "beat", "labels": "binary"},
        "tiny-jun8": {"model": "small_cnn", "method": "annotations", "folds": "beat", "labels": "jun8"},
        "tiny-christov": {"model": "small_cnn", "method": "christov", "folds": "record", "labels": "aami"},
    }))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-m", "training.train", "--run", "tiny", "--params", "params.yaml",
                           "--images", "images", "--out", "models/tiny", "--cache", "cache"],
                          cwd=d, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return d, proc.stderr


def test_cli_writes_every_output(workdir):
    d, log = workdir
    out = d / "models" / "tiny"
    assert sorted(p.name for p in out.iterdir()) == ["fold-00", "fold-01", "history.csv", "run.json"]
    run = json.loads((out / "run.json").read_text())
    for key in ("run", "model", "method", "folds", "labels", "classes", "k", "params_hash", "data_hash",
                "n_test_beats", "train_images_per_s"):
        assert key in run
    assert (run["run"], run["model"], run["folds"], run["labels"], run["k"]) == ("tiny", "small_cnn", "record", "aami", 2)
    # AAMI Q is not trained but stays in the test predictions
    assert run["classes"] == ["N", "S", "V", "F"] and run["n_test_beats"] == N_BEATS
    assert run["label_classes"] == ["N", "S", "V", "F", "Q"] and run["untrained_classes"] == ["Q"]
    assert run["image_size"] == 16 and run["rhythm"] is False and run["selection"] == "val_macro_f1"
    assert run["train_images_per_s"] > 0 and run["precision"] == "float32"
    preds = []
    for i in range(2):
        fold = out / f"fold-{i:02d}"
        assert sorted(p.name for p in fold.iterdir()) == ["baselines.parquet", "history.csv", "model.keras",
                                                          "predictions.parquet", "prior.json"]
        p = pd.read_parquet(fold / "predictions.parquet")
        assert list(p.columns) == ["beat_id", "record", "fold", "y_true", "y_pred", "p_N", "p_S", "p_V", "p_F"]
        assert set(p["y_true"]) == {"N", "S", "V", "F", "Q"} and set(p["y_pred"]) <= {"N", "S", "V", "F"}
        b = pd.read_parquet(fold / "baselines.parquet")
        assert list(b.columns) == list(p.columns) + ["model"] and sorted(set(b["model"])) == ["majority", "rhythm"]
        for _, part in b.groupby("model"):
            assert part["beat_id"].tolist() == p["beat_id"].tolist() and part["y_true"].tolist() == p["y_true"].tolist()
        prior = json.loads((fold / "prior.json").read_text())
        assert prior["classes"] == ["N", "S", "V", "F"] and len(prior["bias"]) == 4
        assert (p["fold"] == i).all()
        np.testing.assert_allclose(p.filter(like="p_").sum(axis=1), 1.0, rtol=1e-5)
        assert (p["y_pred"] == p.filter(like="p_").idxmax(axis=1).str[2:]).all()
        h = pd.read_csv(fold / "history.csv")
        assert list(h.columns) == ["member", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_macro_f1",
                                   "seconds", "images_per_s"]
        assert (h["member"] == 0).all()
        assert h["val_macro_f1"].between(0, 1).all()
        preds.append(p)
    p = pd.concat(preds)
    assert p["beat_id"].is_unique and len(p) == N_BEATS                # every beat tested once, originals only
    assert not set(preds[0]["record"]) & set(preds[1]["record"])        # record folds
    truth = {f"{r}-{100 + 300 * i}" for r in RECORDS for i in range(25)}
    assert set(p["beat_id"]) == truth
    hist = pd.read_csv(out / "history.csv")
    assert list(hist.columns)[:3] == ["fold", "member", "epoch"] and sorted(hist["fold"].unique()) == [0, 1]
    import keras

    model = keras.models.load_model(out / "fold-00" / "model.keras")
    assert model.output_shape == (None, 4)
    assert "fold 1/2 epoch 1/1: loss" in log and "images/s" in log
    assert "train tiny: 2/2 done in" in log and "accuracy" in log.splitlines()[-1]


@pytest.mark.slow
def test_rerun_in_another_process_is_bit_identical_and_resumes(workdir, tmp_path):
    d, _ = workdir
    out = tmp_path / "tiny"
    train_cli(d, "tiny", "params.yaml", "images", out, tmp_path / "cache")
    for name in ("fold-00/model.keras", "fold-00/predictions.parquet", "fold-01/model.keras",
                 "fold-01/predictions.parquet"):
        assert (out / name).read_bytes() == (d / "models" / "tiny" / name).read_bytes(), name
    # a crash after fold 0: its work dir survives, fold 1 is redone
    work = next((tmp_path / "cache" / "tiny").iterdir())
    shutil.rmtree(work / "fold-01")
    doc, log = train_cli(d, "tiny", "params.yaml", "images", out, tmp_path / "cache")
    assert doc["resumed_folds"] == [0]
    assert "fold 1 reused" in log
    assert (out / "fold-01/predictions.parquet").read_bytes() == \
        (d / "models" / "tiny" / "fold-01/predictions.parquet").read_bytes()


def test_ds1ds2_trains_on_ds1_and_tests_on_ds2(workdir, tmp_path):
    d, _ = workdir
    doc, _ = train_cli(d, "tiny-ds", d / "params.yaml", d / "images", tmp_path / "ds", tmp_path / "cache")
    assert doc["k"] == 1 and doc["folds"] == "ds1ds2"
    p = pd.read_parquet(tmp_path / "ds" / "fold-00" / "predictions.parquet")
    assert set(p["record"]) == {DS2[0], DS2[1]} and len(p) == 50
    assert doc["fold_summaries"][0]["train_records"] == 1                # one DS1 record held out for validation
    fold = doc["fold_summaries"][0]
    assert fold["decision_floor_met"] is None                           # train.decision_floor defaults to none
    assert fold["decision_tau_unfloored"] == fold["decision_tau"]       # so macro F1 alone chose the tau


def test_an_ensemble_fold_averages_members_of_its_own_seeds(workdir, tmp_path):
    """``ensemble: 2``: member 0 is the single model of ``ensemble: 1`` (same seed, same history); the saved model
    averages both members; the decision prior is chosen on the average; ``training.predict`` reads it as it is."""
    import keras

    from training.predict import main as predict

    d, _ = workdir
    run = {"model": "small_cnn", "method": "annotations", "folds": "ds1ds2", "labels": "aami", "rhythm": True,
           "timed_classes": ["S"]}
    write_params(tmp_path / "params.yaml", train_params(runs={"one": run, "two": {**run, "ensemble": 2}}))
    one, _ = train_cli(d, "one", tmp_path / "params.yaml", d / "images", tmp_path / "one", tmp_path / "cache")
    two, log = train_cli(d, "two", tmp_path / "params.yaml", d / "images", tmp_path / "two", tmp_path / "cache")
    assert "2 members" in log and "member 2/2 epoch 1/" in log
    fold = two["fold_summaries"][0]
    assert fold["members"] == 2 and len(fold["member_best_epochs"]) == 2 and len(fold["member_val_macro_f1"]) == 2
    assert one["fold_summaries"][0]["members"] == 1 and two["params"]["ensemble"] == 2
    h1, h2 = (pd.read_csv(tmp_path / r / "fold-00" / "history.csv") for r in ("one", "two"))
    assert sorted(set(h2["member"])) == [0, 1] and fold["epochs_run"] == len(h2)
    pd.testing.assert_series_equal(h2.loc[h2["member"] == 0, "loss"].reset_index(drop=True), h1["loss"])
    assert h2.loc[h2["member"] == 1, "loss"].iloc[0] != h1["loss"].iloc[0]          # member 1: its own seed

    model = keras.models.load_model(tmp_path / "two" / "fold-00" / "model.keras", compile=False)
    members = [layer for layer in model.layers if layer.name.startswith("member")]
    assert [m.name for m in members] == ["member0", "member1"] and [i.name for i in model.inputs] == ["image", "rhythm"]
    rng = np.random.default_rng(0)
    x = [rng.random((5, *model.inputs[0].shape[1:]), np.float32), rng.random((5, model.inputs[1].shape[1]), np.float32)]
    np.testing.assert_allclose(model.predict(x, verbose=0), np.mean([m.predict(x, verbose=0) for m in members], 0),
                               atol=1e-6)
    assert two["fold_summaries"][0]["n_params"] == 2 * one["fold_summaries"][0]["n_params"]
    # the run's own predictions are what training.predict gives with the saved ensemble and its prior
    out = tmp_path / "p.parquet"
    assert predict(["--run", str(tmp_path / "two"), "--images", str(d / "images"), "--out", str(out)]) == 0
    fold_p = pd.read_parquet(tmp_path / "two" / "fold-00" / "predictions.parquet")
    same = pd.read_parquet(out).set_index("beat_id").loc[fold_p["beat_id"]]
    np.testing.assert_allclose(same.filter(like="p_").to_numpy(), fold_p.filter(like="p_").to_numpy(), atol=1e-5)


@pytest.mark.slow
def test_vgg_with_crops_and_image_cap(workdir, tmp_path):
    d, _ = workdir
    params = train_params(runs={"v": {"model": "vgg", "method": "annotations", "folds": "beat", "labels": "binary"}},
                          crops="all", folds={"k": 2, "validation_fraction": 0.0})     # no validation: all epochs
    write_params(tmp_path / "params.yaml", params)
    doc, _ = train_cli(d, "v", tmp_path / "params.yaml", d / "images", tmp_path / "v", tmp_path / "cache")
    assert doc["classes"] == ["normal", "abnormal"] and doc["model"] == "vgg"
    for s in doc["fold_summaries"]:
        assert s["train_images"] == 60 and s["train_crops"] > 0       # water-filled cap, crops on the train side
        assert s["val_images"] == 0 and s["epochs_run"] == 1
    p = pd.concat(pd.read_parquet(tmp_path / "v" / f"fold-{i:02d}" / "predictions.parquet") for i in range(2))
    assert len(p) == N_BEATS and p["beat_id"].is_unique


def _fails(capsys, *args):
    code = main(list(args))
    assert code == 2
    return capsys.readouterr().err


def test_errors_before_training(workdir, tmp_path, capsys):
    d, _ = workdir
    images, params = str(d / "images"), str(d / "params.yaml")
    out = tmp_path / "out"
    err = _fails(capsys, "--run", "tiny-jun8", "--params", params, "--images", images, "--out", str(out))
    assert "labels 'jun8': class PAB, RBB, LBB, VFW, VEB has no beats" in err
    assert 'segment.extra_symbols: ["!"]' in err
    err = _fails(capsys, "--run", "nope", "--params", params, "--images", images, "--out", str(out))
    assert "no run 'nope' under train.runs" in err
    err = _fails(capsys, "--run", "tiny-christov", "--params", params, "--images", images, "--out", str(out))
    assert "images of method 'annotations'" in err
    write_params(tmp_path / "k5.yaml", train_params(folds={"k": 5, "validation_fraction": 0.1}))
    err = _fails(capsys, "--run", "tiny", "--params", str(tmp_path / "k5.yaml"), "--images", images, "--out", str(out))
    assert "folds 'record' with k=5: only 4 records" in err
    broken = tmp_path / "images"
    shutil.copytree(d / "images", broken)
    gone = sorted(broken.glob("data/*/*.parquet"))[-1]
    gone.unlink()
    err = _fails(capsys, "--run", "tiny", "--params", params, "--images", str(broken), "--out", str(out))
    assert "shards on disk differ from manifest.json: missing" in err and gone.relative_to(broken).as_posix() in err
    write_params(tmp_path / "bad.yaml", train_params(class_weight="inverse"))
    err = _fails(capsys, "--run", "tiny", "--params", str(tmp_path / "bad.yaml"), "--images", images, "--out", str(out))
    assert "train.class_weight: expected 'balanced' or 'none', got 'inverse'" in err
    write_params(tmp_path / "cap.yaml", train_params(class_weight_max_ratio=0.5))
    err = _fails(capsys, "--run", "tiny", "--params", str(tmp_path / "cap.yaml"), "--images", images, "--out", str(out))
    assert "train.class_weight_max_ratio: must be 0 (no cap) or >= 1, got 0.5" in err
    write_params(tmp_path / "key.yaml", train_params(small_cnn={**train_params()["small_cnn"], "widht": 0.5}))
    err = _fails(capsys, "--run", "tiny", "--params", str(tmp_path / "key.yaml"), "--images", images, "--out", str(out))
    assert "train.small_cnn.widht: unknown key" in err
    assert not out.exists()
