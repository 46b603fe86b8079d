"""``python -m training.predict``: a trained run (a CRNN with the rhythm input) scores an image set or a
beats table (``--beats``: drawn as the render stage draws it, so it must give what the image set gives)."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from pipelines import RR_COLUMNS, TEMPLATE_COLUMNS, DataError
from pipelines.signal.labels import DS1, DS2
from tests.conftest import require
from tests._shards import train_params, write_params, write_shards

require("tensorflow")

from training.predict import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_USED = ("tpl_corr_qrs", "tpl_width")           # the run's template features (train.template_features)
RECORDS = {r: {"N": 14, "A": 3, "V": 4, "F": 2, "Q": 2} for r in (DS1[0], DS1[1], DS2[0], DS2[1])}
RECORDS[DS2[1]] = {**RECORDS[DS2[1]], None: 2}          # unlabelled detections: y_true null


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-fold rhythm CRNN run (ds1ds2, AAMI; RR and two template features) trained by the CLI in a
    subprocess."""
    d = tmp_path_factory.mktemp("predict")
    write_shards(d / "images", RECORDS, size=16, n_shards=2, row_group_rows=32, rr=True)
    crnn = {"input_size": 16, "batch_size": 16, "epochs": 2, "learning_rate": 0.003, "patience": 1,
            "max_train_images": 0}
    write_params(d / "params.yaml", train_params(
        runs={"r": {"model": "crnn", "method": "annotations", "folds": "ds1ds2", "labels": "aami", "rhythm": True}},
        crnn=crnn, class_weight="none", decision_prior=0.0, template_features=list(TEMPLATE_USED)))
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
    assert run["params"]["template_features"] == list(TEMPLATE_USED)
    baselines = pd.read_parquet(trained / "models/r/fold-00/baselines.parquet")
    assert list(dict.fromkeys(baselines["model"])) == ["majority", "rhythm", "features"]
    assert model.inputs[1].shape == (None, len(run["params"]["rhythm_features"]) + len(TEMPLATE_USED))
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


# ------------------------------------------------------------------------------------- --beats

FS = 360.0
HALF = 90                                                # beat windows [r - HALF, r + HALF)
NAN_BEAT = f"{DS1[0]}-400"                               # a window with a NaN sample: not drawn
RENDER = {"size": 16, "workers": 1, "crops": {"materialise": True, "size": 12, "offsets": [0, 2, 4]}}
SCALES = {"recipe": {}, "record": {"time": "fixed", "ms_per_px": 32.0, "amplitude": "record"}}
_HEIGHT = {"N": 1.0, "A": 0.7, "F": -0.6, "Q": 0.3, None: 0.5}


def beats_table(records=RECORDS, *, method: str = "annotations", seed: int = 0):
    """A beats table (pyarrow, the segment stage's schema and ``ecg_beats`` metadata) of synthetic beats:
    per record the symbols of ``records`` in a seeded order, R every 300 samples from 100, RR columns."""
    from types import SimpleNamespace

    from pipelines import rr_intervals
    from pipelines.formats.beats import beats_table as assemble

    rng = np.random.default_rng(seed)
    t = np.arange(-HALF, HALF, dtype=np.float64)
    results = []
    for rec in sorted(records):
        symbols = [s for s, n in records[rec].items() for _ in range(n)]
        symbols = [symbols[i] for i in rng.permutation(len(symbols))]
        r = 100 + 300 * np.arange(len(symbols), dtype=np.int64)
        windows = [(-1.2 * np.exp(-0.5 * (t / 10) ** 2) + 0.4 * np.exp(-0.5 * ((t - 45) / 18) ** 2)) if s == "V"
                   else _HEIGHT[s] * rng.uniform(0.8, 1.2) * np.exp(-0.5 * (t / 3) ** 2)
                   + 0.2 * np.exp(-0.5 * ((t - 60) / 15) ** 2) for s in symbols]
        values = (np.concatenate(windows) + 0.02 * rng.standard_normal(len(symbols) * t.size)).astype(np.float32)
        if rec == DS1[0]:
            values[t.size + 7] = np.nan                  # the second beat (r = 400): NAN_BEAT
        results.append(SimpleNamespace(
            record=rec, lead="MLII", fs=FS, r_sample=r, symbol=np.array(symbols, dtype=object), start=r - HALF,
            end=r + HALF, values=values, offsets=np.arange(len(symbols) + 1, dtype=np.int64) * t.size,
            rr=rr_intervals(r, np.zeros(len(r), np.int8), FS),
            template={c: np.where(np.array(symbols, dtype=object) == "V", 0.2, 0.95) for c in TEMPLATE_COLUMNS}))
    meta = {"schema_version": 1, "method": method, "params": {}, "database": "mitdb", "version": None,
            "counts": {"beats": sum(len(x.r_sample) for x in results)}}
    return assemble(results, meta)


@pytest.fixture(scope="module", params=sorted(SCALES))
def rendered(request, trained):
    """The run of :func:`trained`, a beats table, its params file and the render stage's image set of it."""
    from pipelines.formats.beats import write_beats
    from pipelines.imaging.draw import RenderConfig
    from pipelines.render import run_render

    d = trained / f"beats-{request.param}"
    d.mkdir()
    beats = d / "annotations.parquet"
    write_beats(beats_table(), beats)
    params = d / "params.yaml"
    params.write_text(yaml.safe_dump({"render": {**RENDER, "scale": SCALES[request.param]}}))
    cfg = RenderConfig.from_params(yaml.safe_load(params.read_text())["render"])
    run_render("annotations", beats, d / "images", cfg, stream=io.StringIO())
    return trained / "models/r", beats, params, d / "images"


def _beats_argv(run: Path, beats: Path, params: Path, out: Path) -> list[str]:
    return ["--run", str(run), "--beats", str(beats), "--params", str(params), "--out", str(out)]


def test_beats_are_drawn_and_classified_as_their_image_set(rendered, tmp_path, capsys):
    run, beats, params, images = rendered
    by_images, by_beats = tmp_path / "images.parquet", tmp_path / "beats.parquet"
    assert main(["--run", str(run), "--images", str(images), "--out", str(by_images)]) == 0
    assert main(_beats_argv(run, beats, params, by_beats)) == 0
    err = capsys.readouterr().err
    assert "1 beat(s) the render stage does not draw left out" in err
    assert f"predict: {sum(sum(v.values()) for v in RECORDS.values()) - 1} beats -> {by_beats}" in err
    p, q = pd.read_parquet(by_beats), pd.read_parquet(by_images)
    assert list(p.columns) == list(q.columns)
    order = pd.read_parquet(beats, columns=["beat_id"])["beat_id"]
    assert p["beat_id"].tolist() == [b for b in order if b != NAN_BEAT]        # beats-table order
    assert sorted(p["beat_id"]) == sorted(q["beat_id"])                         # the originals (crop 0) of the set
    q = q.set_index("beat_id").loc[p["beat_id"]].reset_index()
    assert p["y_pred"].tolist() == q["y_pred"].tolist()
    np.testing.assert_allclose(p.filter(like="p_").to_numpy(), q.filter(like="p_").to_numpy(), atol=1e-5)
    pd.testing.assert_frame_equal(p[["beat_id", "record", "fold", "y_true"]], q[["beat_id", "record", "fold",
                                                                                  "y_true"]])
    assert p["y_true"].isna().sum() == 2 and (p["fold"] == 0).all()
    # the tiny run calls most of these drawn beats the same class: the probabilities carry the comparison, and
    # they do see the drawing (a thicker line moves them far more than the tolerance)
    thick = tmp_path / "thick.yaml"
    render = yaml.safe_load(params.read_text())["render"]
    thick.write_text(yaml.safe_dump({"render": {**render, "line_width": 3.0}}))
    assert main(_beats_argv(run, beats, thick, tmp_path / "thick.parquet")) == 0
    moved = pd.read_parquet(tmp_path / "thick.parquet").filter(like="p_").to_numpy() - p.filter(like="p_").to_numpy()
    assert np.abs(moved).max() > 1e-4


def test_beats_bad_inputs_name_the_file(rendered, tmp_path, capsys):
    from pipelines.formats.beats import write_beats

    run, beats, params, _ = rendered
    out = tmp_path / "p.parquet"

    def fails(table: Path, params_path: Path = params) -> str:
        assert main(_beats_argv(run, table, params_path, out)) == 2
        assert not out.exists()
        err = capsys.readouterr().err
        assert err.startswith("error: ")
        return err

    assert f"{tmp_path / 'none.parquet'}: beats table not found" in fails(tmp_path / "none.parquet")
    text = tmp_path / "text.parquet"
    text.write_text("beat_id,record\n")
    assert f"{text}: not a readable Parquet file" in fails(text)
    plain = tmp_path / "plain.parquet"
    pq.write_table(pq.read_table(beats).replace_schema_metadata(None), plain)
    assert f"{plain}: no 'ecg_beats' schema metadata: not a beats table" in fails(plain)
    other = tmp_path / "christov.parquet"
    write_beats(beats_table(method="christov"), other)
    assert (f"{other}: beats of method 'christov' (its 'ecg_beats' metadata), the run was trained on "
            "'annotations'") in fails(other)
    no_rr = tmp_path / "no_rr.parquet"
    table = pq.read_table(beats)
    pq.write_table(table.drop_columns(list(RR_COLUMNS)).replace_schema_metadata(table.schema.metadata), no_rr)
    assert f"{no_rr}: no column(s) {list(RR_COLUMNS)}: the run has a rhythm input" in fails(no_rr)
    no_tpl = tmp_path / "no_tpl.parquet"
    pq.write_table(table.drop_columns(list(TEMPLATE_USED)).replace_schema_metadata(table.schema.metadata), no_tpl)
    assert f"{no_tpl}: no column(s) {list(TEMPLATE_USED)}: the run has a rhythm input" in fails(no_tpl)

    big = tmp_path / "params.yaml"
    big.write_text(yaml.safe_dump({"render": {**RENDER, "size": 24}}))
    assert f"{big}: render.size is 24, the run ({run / 'run.json'}: image_size) was trained on 16 px" in fails(
        beats, big)
    assert f"{tmp_path / 'none.yaml'}" in fails(beats, tmp_path / "none.yaml")
    assert main(_beats_argv(tmp_path, beats, params, out)) == 2 and not out.exists()
    assert f"{tmp_path / 'run.json'}: missing" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["--images", "i", "--beats", "b"], ["--images", "i", "--params", "p.yaml"]])
def test_exactly_one_source(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--run", "r", "--out", "o.parquet", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert ("--params: only with --beats" if "--params" in argv else "--images") in err


def test_the_output_is_written_atomically(rendered, tmp_path, monkeypatch, capsys):
    import training.predict as tp

    run, beats, params, _ = rendered
    out = tmp_path / "p.parquet"
    out.write_bytes(b"previous output")
    calls = []
    real = tp.predict_arrays

    def second_chunk_fails(*args, **kwargs):
        calls.append(len(args[1]))
        if len(calls) == 2:
            raise DataError("fold-00/model.keras", "failed mid-run")
        return real(*args, **kwargs)

    monkeypatch.setattr(tp, "CHUNK_BEATS", 16)
    monkeypatch.setattr(tp, "predict_arrays", second_chunk_fails)
    assert main(_beats_argv(run, beats, params, out)) == 2 and calls == [16, 16]
    assert "failed mid-run" in capsys.readouterr().err
    assert out.read_bytes() == b"previous output" and sorted(tmp_path.iterdir()) == [out]
    monkeypatch.undo()

    def partial(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise DataError(str(where), "disk full")

    monkeypatch.setattr(pq, "write_table", partial)
    assert main(_beats_argv(run, beats, params, out)) == 2 and "disk full" in capsys.readouterr().err
    assert out.read_bytes() == b"previous output" and sorted(tmp_path.iterdir()) == [out]
    monkeypatch.undo()
    assert main(_beats_argv(run, beats, params, out)) == 0
    assert len(pd.read_parquet(out)) == sum(sum(v.values()) for v in RECORDS.values()) - 1
    assert sorted(tmp_path.iterdir()) == [out]
