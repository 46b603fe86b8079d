"""Digitise, then classify (``python -m evaluation.digitized_classify``) on tiny synthetic inputs.

Two DS2 records of 8 s, a beats table of their beats, the render stage's image set of it and a one-fold
rhythm "run" (a small random Keras model with a zero prior correction) whose ``predictions.parquet`` is
what ``training.predict`` gives on that image set: the original side comes from the render stage and the
tf.data path, the digitised side from this stage's in-memory drawing, so a digitised table equal to the
original signals must give the same predictions.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from evaluation.benchmark import digitized_classify_section
from evaluation.digitized_classify import EXCLUSIONS, main, run_classify
from evaluation.evaluate import CLASSIFY_KEYS, check_keys
from pipelines import RR_COLUMNS, TEMPLATE_COLUMNS, map_symbols, rr_intervals, template_features
from pipelines.digitize import SCHEMA as DIGITIZED_SCHEMA
from pipelines.formats.beats import BEATS_SCHEMA
from pipelines.imaging.draw import RenderConfig
from pipelines.render import run_render
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]
FS = 360.0
SECONDS = 2.0
N_STRIP = int(SECONDS * FS)           # samples per strip
LENGTH = 4 * N_STRIP                  # 8 s records
HALF = 90                             # beat window: [r - 90, r + 90)
RECORDS = ("100", "103")              # DS2
INPUT_SIZE = 16
RHYTHM = ["log_pre_local", "log_post_local", "rr_missing"]
RENDER = {"size": 32, "workers": 1, "crops": {"materialise": False, "size": 24, "offsets": [0, 4, 8]}}
SCALES = {"recipe": {}, "record": {"time": "fixed", "ms_per_px": 8.0, "amplitude": "record"}}


def synthetic_record(seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """An 8 s signal (mV) with beats every 0.5-0.7 s: N, A (AAMI S) and V; R samples and symbols."""
    rng = np.random.default_rng(seed)
    r = [150]
    while r[-1] + 260 < LENGTH - 150:
        r.append(r[-1] + int(rng.integers(180, 260)))
    r = np.array(r)
    symbols = list(rng.choice(["N", "N", "N", "A", "V"], size=len(r)))
    t = np.arange(LENGTH, dtype=np.float64)
    x = 0.15 * np.sin(2 * np.pi * t / (3 * FS)) + 0.01 * rng.standard_normal(LENGTH)
    for ri, sym in zip(r, symbols):
        if sym == "V":
            x += -1.3 * np.exp(-0.5 * ((t - ri) / 10) ** 2) + 0.4 * np.exp(-0.5 * ((t - ri - 45) / 18) ** 2)
        else:
            x += rng.uniform(0.8, 1.4) * np.exp(-0.5 * ((t - ri) / 3) ** 2) + 0.2 * np.exp(
                -0.5 * ((t - ri - 60) / 15) ** 2)
    return x.astype(np.float32), r, symbols


SIGNALS = {rec: synthetic_record(i) for i, rec in enumerate(RECORDS)}


def write_beats(path: Path) -> Path:
    """The beats table (public schema) of :data:`SIGNALS`, lead MLII, windows ``[r - HALF, r + HALF)``."""
    rows: dict[str, list] = {f.name: [] for f in BEATS_SCHEMA}
    for rec, (sig, r, symbols) in SIGNALS.items():
        for ri, sym in zip(r.tolist(), symbols):
            rows["beat_id"].append(f"{rec}-{ri}"); rows["record"].append(rec); rows["lead"].append("MLII")
            rows["fs"].append(FS); rows["r_sample"].append(ri); rows["symbol"].append(sym)
            rows["start"].append(ri - HALF); rows["end"].append(ri + HALF)
            rows["signal"].append(sig[ri - HALF:ri + HALF].tolist())
    rows["aami"] = list(map_symbols(rows["symbol"], "aami"))
    rows["jun8"] = list(map_symbols(rows["symbol"], "jun8"))
    rr = rr_intervals(np.array(rows["r_sample"]), np.array(rows["record"]), FS)
    rows.update({c: [None if np.isnan(v) else float(v) for v in rr[c]] for c in RR_COLUMNS})
    tpl = [template_features(sig, r, FS) for sig, r, _ in SIGNALS.values()]
    rows.update({c: [None if np.isnan(v) else float(v) for t in tpl for v in t[c]] for c in TEMPLATE_COLUMNS})
    pq.write_table(pa.Table.from_pydict(rows, schema=BEATS_SCHEMA), path)
    return path


def write_params(path: Path, scale: dict, **sections) -> Path:
    params = {"render": {**RENDER, "scale": scale}, "paper": {"seconds": SECONDS}, **sections}
    path.write_text(yaml.safe_dump({k: v for k, v in params.items() if v is not None}))
    return path


def write_digitized(path: Path, strips: dict[str, list[int]], *, leads=("MLII", "V1"), transform=None,
                    nan_at: dict[str, list[int]] | None = None, failed: tuple[str, ...] = ()) -> Path:
    """A digitised table: per record the strips starting at the given samples, every lead the record's signal
    (``transform``-ed), NaN at the record samples ``nan_at[record]``, strips ``failed`` (ids) null."""
    rows: dict[str, list] = {f.name: [] for f in DIGITIZED_SCHEMA}
    for rec, starts in strips.items():
        sig = SIGNALS[rec][0].copy()
        if transform is not None:
            sig = transform(sig)
        for i in (nan_at or {}).get(rec, []):
            sig[i] = np.nan
        for start in starts:
            sid = f"{rec}-{start}"
            for lead in leads:
                bad = sid in failed
                rows["strip_id"].append(sid); rows["lead"].append(lead); rows["fs"].append(FS)
                rows["signal"].append(None if bad else sig[start:start + N_STRIP].tolist())
                rows["status"].append("trace_lost" if bad else "ok"); rows["detail"].append("x" if bad else "")
    pq.write_table(pa.Table.from_pydict(rows, schema=DIGITIZED_SCHEMA), path)
    return path


def write_model(run_dir: Path, n_beats: int) -> None:
    """A one-fold rhythm run: a small random model (image and rhythm inputs), zero prior correction, run.json."""
    keras = require("keras")
    from training.selection import write_prior

    keras.utils.set_random_seed(3)
    image = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="image")
    rhythm = keras.Input((len(RHYTHM),), name="rhythm")
    h = keras.layers.Dense(8, activation="tanh")(keras.layers.Flatten()(image))
    logits = keras.layers.Add()([keras.layers.Dense(4)(h), keras.layers.Dense(4)(rhythm)])
    model = keras.Model([image, rhythm], keras.layers.Softmax()(logits))
    fold = run_dir / "fold-00"
    fold.mkdir(parents=True)
    model.save(fold / "model.keras")
    write_prior(fold / "prior.json", ("N", "S", "V", "F"), np.zeros(4), 0.0)
    run = {"run": run_dir.name, "model": "small_cnn", "method": "annotations", "folds": "ds1ds2", "labels": "aami",
           "classes": ["N", "S", "V", "F"], "label_classes": ["N", "S", "V", "F", "Q"], "k": 1, "rhythm": True,
           "image_size": RENDER["size"], "input_size": INPUT_SIZE, "params_hash": "p", "data_hash": "d",
           "n_test_beats": n_beats, "params": {"input_size": INPUT_SIZE, "rhythm_features": RHYTHM}}
    (run_dir / "run.json").write_text(json.dumps(run))


@pytest.fixture(scope="module", params=sorted(SCALES))
def inputs(request, tmp_path_factory):
    """Params, beats table, and a run whose predictions are training.predict's on the render stage's images."""
    from training.predict import predict

    d = tmp_path_factory.mktemp(f"digitized-{request.param}")
    params = write_params(d / "params.yaml", SCALES[request.param])
    beats = write_beats(d / "beats.parquet")
    cfg = RenderConfig.from_params(yaml.safe_load(params.read_text())["render"])
    run_render("annotations", beats, d / "images", cfg, stream=io.StringIO())
    run = d / "models" / "r"
    n = sum(len(r) for _, r, _ in SIGNALS.values())
    write_model(run, n)
    table = predict(run, d / "images")
    assert table.num_rows == n and table.column("y_true").null_count == 0
    pq.write_table(table, run / "fold-00" / "predictions.parquet")
    assert len(set(table.column("y_pred").to_pylist())) > 1, "the random model calls every beat the same"
    return d, params, beats, run


def _expected(strips: dict[str, list[int]]) -> dict[str, int]:
    """Test beats of each record whose window lies inside one of ``strips``."""
    return {rec: sum(any(s <= ri - HALF and ri + HALF <= s + N_STRIP for s in strips.get(rec, [])) for ri in r)
            for rec, (_, r, _) in SIGNALS.items()}


ALL = {"100": [0, N_STRIP, 2 * N_STRIP, 3 * N_STRIP], "103": [0, 2 * N_STRIP]}


def test_identical_signals_give_the_original_predictions(inputs):
    d, params, beats, run = inputs
    dig, out = write_digitized(d / "same.parquet", ALL), d / "same.json"
    err = io.StringIO()
    report = run_classify(params, dig, beats, run, out, stream=err)
    on_disk = json.loads(out.read_text())
    assert on_disk["changed"] == {"beats": 0, "fraction": 0.0, "pairs": {}}
    assert on_disk["digitized"] == on_disk["original"]
    expected = _expected(ALL)
    n = sum(len(r) for _, r, _ in SIGNALS.values())
    assert report["test_beats"] == n and report["beats"] == sum(expected.values()) > 0
    assert report["excluded"] == {"lead_not_digitised": 0, "outside_strips": n - report["beats"], "not_recovered": 0}
    for rec, (_, r, _) in SIGNALS.items():
        assert on_disk["records"][rec] == {"test_beats": len(r), "beats": expected[rec], "lead_not_digitised": 0,
                                           "outside_strips": len(r) - expected[rec], "not_recovered": 0}
    assert on_disk["original"]["n"] == report["beats"] and set(on_disk["original"]["sensitivity"]) == set("NSVF")
    assert on_disk["run"] == "r" and on_disk["rhythm_features"] == RHYTHM and on_disk["strip_seconds"] == SECONDS
    assert "classify_digitized:" in err.getvalue() and "changed class" in err.getvalue().splitlines()[-1]
    check_keys(on_disk, CLASSIFY_KEYS, str(out))           # what the evaluate stage reads for benchmark.md
    rows = [line for line in digitized_classify_section(on_disk) if line.startswith("| ")]
    assert rows[1].split("|")[2:] == rows[2].split("|")[2:]  # original signals, digitised strips: the same


def test_the_digitised_samples_are_what_is_drawn(inputs):
    d, params, beats, run = inputs
    dig = write_digitized(d / "flipped.parquet", ALL, transform=np.negative)
    report = run_classify(params, dig, beats, run, d / "flipped.json", stream=io.StringIO())
    assert report["beats"] == sum(_expected(ALL).values()) and report["changed"]["beats"] > 0
    assert sum(report["changed"]["pairs"].values()) == report["changed"]["beats"]


def test_exclusions_are_counted_per_reason_and_record(inputs):
    d, params, beats, run = inputs
    _, r100, _ = SIGNALS["100"]
    inside = [ri for ri in r100 if ri - HALF >= N_STRIP and ri + HALF <= 2 * N_STRIP]
    dig = write_digitized(d / "gaps.parquet", {"100": ALL["100"]}, nan_at={"100": [inside[0]]},
                          failed=(f"100-{3 * N_STRIP}",))
    both = write_digitized(d / "v1.parquet", {"103": ALL["103"]}, leads=("V1",))
    table = pa.concat_tables([pq.read_table(dig), pq.read_table(both)])
    pq.write_table(table, d / "mixed.parquet")
    report = run_classify(params, d / "mixed.parquet", beats, run, d / "mixed.json", stream=io.StringIO())
    in_failed = sum(3 * N_STRIP <= ri - HALF and ri + HALF <= LENGTH for ri in r100)
    rec = report["records"]
    assert rec["100"]["not_recovered"] == 1 + in_failed
    assert rec["100"]["beats"] == _expected(ALL)["100"] - 1 - in_failed
    assert rec["103"] == {"test_beats": len(SIGNALS["103"][1]), "beats": 0, "outside_strips": 0,
                          "lead_not_digitised": len(SIGNALS["103"][1]), "not_recovered": 0}
    assert report["excluded"] == {r: sum(v[r] for v in rec.values()) for r in EXCLUSIONS}
    assert report["beats"] + sum(report["excluded"].values()) == report["test_beats"]


def _fails(capsys, *args: str | Path) -> str:
    names = ("--params", "--digitized", "--beats", "--run", "--out")
    argv = [str(x) for pair in zip(names, args) for x in pair]
    assert main(argv) == 2
    assert not Path(args[-1]).exists()
    err = capsys.readouterr().err
    assert err.startswith("classify_digitized: error: ") and len(err.strip().splitlines()) == 1
    return err


def test_bad_inputs_name_the_file_or_key(inputs, tmp_path, capsys):
    d, params, beats, run = inputs
    good = write_digitized(tmp_path / "good.parquet", ALL)
    out = tmp_path / "out.json"
    assert f"{tmp_path / 'none.parquet'}: digitised table not found" in _fails(
        capsys, params, tmp_path / "none.parquet", beats, run, out)
    assert f"{tmp_path / 'b.parquet'}: beats table not found" in _fails(capsys, params, good, tmp_path / "b.parquet",
                                                                         run, out)
    v1 = write_digitized(tmp_path / "v1.parquet", ALL, leads=("V1", "V2"))
    assert f"{v1}: no strip of the test beats' lead(s) ['MLII']; digitised leads: ['V1', 'V2']" in _fails(
        capsys, params, v1, beats, run, out)
    no_paper = write_params(tmp_path / "p.yaml", SCALES["recipe"], paper=None)
    assert "no section 'paper'" in _fails(capsys, no_paper, good, beats, run, out)

    broken = tmp_path / "r"
    shutil.copytree(run, broken)
    (broken / "fold-00" / "predictions.parquet").unlink()
    assert f"{broken / 'fold-00' / 'predictions.parquet'}: predictions.parquet not found" in _fails(
        capsys, params, good, beats, broken, out)
    info = json.loads((run / "run.json").read_text())
    (broken / "run.json").write_text(json.dumps({**info, "run": "r", "k": 2}))
    assert f"{broken / 'run.json'}: 2 folds" in _fails(capsys, params, good, beats, broken, out)
    (broken / "run.json").unlink()
    assert f"{broken / 'run.json'}: run.json not found" in _fails(capsys, params, good, beats, broken, out)


def test_cli_exit_status_and_one_error_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "evaluation.digitized_classify", "--params", str(ROOT / "params.yaml"),
                           "--digitized", "missing.parquet", "--beats", "b.parquet", "--run", "models/r",
                           "--out", "o.json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and not (tmp_path / "o.json").exists()
    assert "models/r/run.json: run.json not found" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("classify_digitized: error: ")
