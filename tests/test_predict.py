"""``python -m training.predict``: a trained run (a CRNN with the rhythm input) scores an image set."""
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

from training.predict import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECORDS = {r: {"N": 14, "A": 3, "V": 4, "F": 2, "Q": 2} for r in (DS1[0], DS1[1], DS2[0], DS2[1])}
RECORDS[DS2[1]] = {**RECORDS[DS2[1]], None: 2}          # unlabelled detections: y_true null


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-fold rhythm CRNN run (ds1ds2, AAMI) trained by the CLI in a subprocess."""
    d = tmp_path_factory.mktemp("predict")
    write_shards(d / "images", RECORDS, size=16, n_shards=2, row_group_rows=32, rr=True)
    crnn = {"input_size": 16, "batch_size": 16, "epochs": 2, "learning_rate": 0.003, "patience": 1,
            "max_train_images": 0}
    write_params(d / "params.yaml", train_params(
        runs={"r": {"model": "crnn", "method": "annotations", "folds": "ds1ds2", "labels": "aami", "rhythm": True}},
        crnn=crnn, class_weight="none", decision_prior=0.0))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-m", "training.train", "--run", "r", "--params", "params.yaml",
                           "--images", "images", "--out", "models/r", "--cache", "cache"],
                          cwd=d, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return d


def _fails(capsys, run: Path, images: Path, out: Path) -> str:
    assert main(["--run", str(run), "--images", str(images), "--out", str(out)]) == 2
    assert not out.exists()
    return capsys.readouterr().err


def test_rhythm_run_trains_with_two_inputs_and_prior_correction(trained):
    import keras

    run = json.loads((trained / "models/r/run.json").read_text())
    assert run["rhythm"] is True and run["model"] == "crnn" and run["classes"] == ["N", "S", "V", "F"]
    model = keras.models.load_model(trained / "models/r/fold-00/model.keras")
    assert [i.name for i in model.inputs] == ["image", "rhythm"] and model.output_shape == (None, 4)
    prior = json.loads((trained / "models/r/fold-00/prior.json").read_text())
    # class_weight none, decision_prior 0: bias = -log(training prior), so N (the frequent class) is raised least
    assert prior["tau"] == 0.0 and prior["bias"][0] < min(prior["bias"][1:])


def test_predict_matches_the_fold_predictions(trained, tmp_path, capsys):
    out = tmp_path / "p.parquet"
    assert main(["--run", str(trained / "models/r"), "--images", str(trained / "images"), "--out", str(out)]) == 0
    p = pd.read_parquet(out)
    fold = pd.read_parquet(trained / "models/r/fold-00/predictions.parquet")
    assert list(p.columns) == list(fold.columns)
    assert len(p) == sum(sum(v.values()) for v in RECORDS.values())         # every original beat
    assert p["y_true"].isna().sum() == 2 and (p["y_true"] == "Q").sum() == 8
    same = p.set_index("beat_id").loc[fold["beat_id"]]
    np.testing.assert_allclose(same.filter(like="p_").to_numpy(), fold.filter(like="p_").to_numpy(), atol=1e-5)
    assert (same["y_pred"].to_numpy() == fold["y_pred"].to_numpy()).all() and (p["fold"] == 0).all()


def test_bad_inputs_name_the_file(trained, tmp_path, capsys):
    run, images, out = trained / "models/r", trained / "images", tmp_path / "p.parquet"
    other = tmp_path / "christov"
    shutil.copytree(images, other)
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "method": "christov"}))
    assert "images of method 'christov', the run was trained on 'annotations'" in _fails(capsys, run, other, out)

    big = write_shards(tmp_path / "big", RECORDS, size=24, n_shards=1, rr=True)
    assert "24 px images, the run was trained on 16 px images" in _fails(capsys, run, big, out)

    # (an image set without the RR columns for a rhythm run: training.data.rhythm_inputs, tests/test_data.py)

    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    model = broken / "fold-00" / "model.keras"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])        # truncated
    err = _fails(capsys, broken, images, out)
    assert f"{model}: cannot load the model" in err
    model.unlink()
    assert f"{model}: missing" in _fails(capsys, broken, images, out)
    assert "run.json: missing" in _fails(capsys, tmp_path, images, out)
