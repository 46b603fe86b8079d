"""The evaluate stage end to end on fake run folders, its inputs checks, determinism and outputs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from sklearn import metrics as skm

from evaluation.benchmark import RunReport, render_benchmark
from evaluation.detector import parse_detector, read_detector
from evaluation.evaluate import evaluate, git_revision, main
from evaluation.published import parse_published
from evaluation.runs import load_run
from evaluation.summary import run_metrics
from pipelines.core.errors import ConfigError, DataError
from pipelines.signal.labels import class_names
from tests._shards import train_params

REPO = Path(__file__).resolve().parents[1]


# -- fake inputs in the train and segment stages' formats --------------------------------------------------

def make_run(models_dir: Path, name: str, *, model: str = "small_cnn", method: str = "annotations",
             folds: str = "record", labels: str = "aami", k: int = 3, n: int = 600, seed: int = 0,
             class_prior: list[float] | None = None, absent: tuple[str, ...] = (),
             history: str = "run") -> Path:
    """Write a run folder with ``k`` folds of ``n`` test beats in total; return the folder.

    Scores are a softmax of noisy logits favouring the true class, so the metrics are good but not
    perfect. ``absent`` classes never occur in the truth (they can still be predicted).
    ``history``: ``"run"`` writes ``history.csv`` at run level, ``"folds"`` per fold only.
    """
    rng = np.random.default_rng(seed)
    classes = list(class_names(labels))
    prior = np.asarray(class_prior if class_prior is not None else [len(classes) - i for i in range(len(classes))],
                       dtype=float)
    for c in absent:
        prior[classes.index(c)] = 0.0
    prior /= prior.sum()
    y = rng.choice(len(classes), size=n, p=prior)
    logits = rng.normal(0.0, 1.0, size=(n, len(classes)))
    logits[np.arange(n), y] += 2.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    records = np.array([f"{100 + i % 12}" for i in range(n)])
    fold = np.arange(n) % k if folds == "beat" else (np.arange(n) % 12) % k
    run_dir = models_dir / name
    run_dir.mkdir(parents=True)
    hist_frames = []
    for f in range(k):
        sel = fold == f
        fold_dir = run_dir / f"fold-{f:02d}"
        fold_dir.mkdir()
        df = pd.DataFrame({
            "beat_id": [f"{r}-{i}" for r, i in zip(records[sel], np.flatnonzero(sel))],
            "record": records[sel],
            "fold": np.full(int(sel.sum()), f, dtype=np.int64),
            "y_true": np.array(classes, dtype=object)[y[sel]],
            "y_pred": np.array(classes, dtype=object)[pred[sel]],
        })
        for j, c in enumerate(classes):
            df[f"p_{c}"] = proba[sel, j].astype(np.float32)
        df.to_parquet(fold_dir / "predictions.parquet", index=False)
        epochs = np.arange(1, 4)
        h = pd.DataFrame({"epoch": epochs, "loss": 1.0 / epochs + 0.01 * f, "accuracy": 0.8 + 0.03 * epochs,
                          "val_loss": 1.1 / epochs, "val_accuracy": 0.78 + 0.03 * epochs,
                          "seconds": 1.5, "images_per_s": 400.0})
        h.to_csv(fold_dir / "history.csv", index=False)
        hist_frames.append(h.assign(fold=f))
    if history == "run":
        pd.concat(hist_frames)[["fold", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds",
                                "images_per_s"]].to_csv(run_dir / "history.csv", index=False)
    info = {"run": name, "model": model, "method": method, "folds": folds, "labels": labels, "classes": classes,
            "k": k, "params_hash": f"{seed:012d}", "data_hash": f"{seed:064x}", "n_test_beats": n,
            "train_images_per_s": 1234.5}
    (run_dir / "run.json").write_text(json.dumps(info, indent=2))
    return run_dir


def make_detector(path: Path) -> Path:
    """A two-record detector report in the segment stage's format."""
    report = {
        "method": "christov", "tolerance_ms": 150.0,
        "total": {"tp": 4000, "fp": 10, "fn": 50, "sensitivity": 4000 / 4050, "ppv": 4000 / 4010, "records": 2},
        "records": {"101": {"tp": 1800, "fp": 4, "fn": 45, "beats": 1849},
                    "100": {"tp": 2200, "fp": 6, "fn": 5, "beats": 2206}},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    return path


#: The ``evaluate.published`` entries proposed for params.yaml.
PUBLISHED = [
    {"source": "Jun et al. 2018 (VGG, 8 classes, 10-fold over beats)", "labels": "jun8", "folds": "beat",
     "accuracy": 0.9905, "sensitivity": 0.9785},
    {"source": "de Chazal et al. 2004 (linear discriminants, AAMI classes, trained on DS1, tested on DS2)",
     "labels": "aami", "folds": "ds1ds2", "accuracy": 0.862,
     "classes": {"N": {"sensitivity": 0.869, "ppv": 0.992}, "S": {"sensitivity": 0.759, "ppv": 0.385},
                 "V": {"sensitivity": 0.777, "ppv": 0.819}, "F": {"sensitivity": 0.894, "ppv": 0.086}}},
]


def make_params(path: Path, runs: dict[str, dict], published: list[dict] | None = None) -> Path:
    """A params file with ``train.runs`` (complete sections: the schema checks them) and ``evaluate.published``."""
    runs = {name: {"model": "small_cnn", "method": "annotations", "folds": "record", "labels": "aami", **spec}
            for name, spec in runs.items()}
    params = {"train": train_params(runs=runs), "evaluate": {"published": PUBLISHED if published is None else published}}
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


RUNS = {"cnn-record-aami": dict(folds="record", labels="aami", k=3, n=900, seed=1, absent=("Q",)),
        "vgg-beat-binary": dict(model="vgg", method="christov", folds="beat", labels="binary", k=2, n=400, seed=2)}


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    """Two fake runs, a detector report and params; the stage run once as `python -m`, once in-process."""
    root = tmp_path_factory.mktemp("stage")
    for name, kw in RUNS.items():
        make_run(root / "models", name, **kw)
    make_detector(root / "segment" / "detector.json")
    make_params(root / "params.yaml", {name: {"model": kw.get("model", "small_cnn")} for name, kw in RUNS.items()})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "evaluation.evaluate", "--params", "params.yaml", "--models",
                           "models", "--detector", "segment/detector.json", "--out", "reports"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return root, done.stderr


def test_every_output_exists_and_is_valid(stage):
    root, stderr = stage
    out = root / "reports"
    assert "evaluate: 2/2 done" in stderr and "2 runs, 1,300 test beats" in stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics) == sorted(RUNS)
    for name in ("confusion", "roc", "history"):
        assert isinstance(json.loads((out / "plots" / f"{name}.json").read_text()), list)
    for name in RUNS:
        for kind in ("confusion", "roc"):
            with Image.open(out / "figures" / "evaluation" / f"{kind}_{name}.png") as im:
                im.verify()
                assert im.format == "PNG" and im.size[0] >= 400
    assert (out / "benchmark.md").is_file()
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["confusion.json", "history.json", "roc.json"]


def test_metrics_json_matches_sklearn_on_the_parquet_files(stage):
    root, _ = stage
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    for name, kw in RUNS.items():
        files = sorted((root / "models" / name).glob("fold-*/predictions.parquet"))
        preds = pd.concat([pd.read_parquet(p) for p in files])
        classes = list(class_names(kw["labels"]))
        m = metrics[name]
        assert m["n_test_beats"] == kw["n"] and m["n_folds"] == kw["k"]
        pooled = m["pooled"]
        assert pooled["accuracy"] == pytest.approx(skm.accuracy_score(preds.y_true, preds.y_pred), abs=1e-6)
        prec, rec, f1, support = skm.precision_recall_fscore_support(preds.y_true, preds.y_pred, labels=classes,
                                                                     zero_division=np.nan)
        for i, c in enumerate(classes):
            pc = pooled["per_class"][c]
            assert pc["support"] == support[i]
            for key, ref in (("sensitivity", rec[i]), ("ppv", prec[i]), ("f1", f1[i])):
                assert (pc[key] is None) if np.isnan(ref) else pc[key] == pytest.approx(ref, abs=1e-6)
            if support[i]:
                assert pc["auc"] == pytest.approx(skm.roc_auc_score(preds.y_true == c, preds[f"p_{c}"]), abs=1e-6)
            else:
                assert pc["auc"] is None  # the absent class: null, not a crash
        per_fold = [skm.accuracy_score(g.y_true, g.y_pred) for _, g in preds.groupby("fold")]
        assert m["fold_mean"]["accuracy"] == pytest.approx(np.mean(per_fold), abs=1e-6)
        assert m["fold_std"]["accuracy"] == pytest.approx(np.std(per_fold, ddof=1), abs=1e-6)
        assert sorted(m) == (["de_chazal"] if kw["labels"] == "aami" else []) + [
            "fold_mean", "fold_std", "n_folds", "n_test_beats", "pooled"]
    assert "de_chazal" in metrics["cnn-record-aami"] and "de_chazal" not in metrics["vgg-beat-binary"]
    assert metrics["cnn-record-aami"]["pooled"]["macro"]["auc"] == pytest.approx(
        np.mean([metrics["cnn-record-aami"]["pooled"]["per_class"][c]["auc"] for c in "NSVF"]), abs=1e-6)


def test_plot_data(stage):
    root, _ = stage
    plots = root / "reports" / "plots"
    confusion = json.loads((plots / "confusion.json").read_text())
    for name, kw in RUNS.items():
        cells = [r for r in confusion if r["run"] == name]
        assert len(cells) == len(class_names(kw["labels"])) ** 2
        assert sum(r["count"] for r in cells) == kw["n"]
    roc = pd.DataFrame(json.loads((plots / "roc.json").read_text()))
    assert set(roc.columns) == {"run", "class", "fpr", "tpr"}
    for (run, cls), curve in roc.groupby(["run", "class"], sort=False):
        assert 2 <= len(curve) <= 200
        assert curve.iloc[0][["fpr", "tpr"]].tolist() == [0.0, 0.0]
        assert curve.iloc[-1][["fpr", "tpr"]].tolist() == [1.0, 1.0]
        assert curve.fpr.is_monotonic_increasing and curve.tpr.is_monotonic_increasing
    assert "Q" not in set(roc[roc.run == "cnn-record-aami"]["class"])  # undefined curve left out
    history = pd.DataFrame(json.loads((plots / "history.json").read_text()))
    assert len(history) == sum(kw["k"] * 3 for kw in RUNS.values())
    assert {"run", "fold", "epoch", "loss", "val_loss", "accuracy", "val_accuracy"} <= set(history.columns)


def test_benchmark_rows_provenance_and_sections(stage):
    root, _ = stage
    text = (root / "reports" / "benchmark.md").read_text()
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    rev = git_revision(root)  # the stage ran there (not a git checkout: "unknown")
    for name, kw in RUNS.items():
        info = json.loads((root / "models" / name / "run.json").read_text())
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` | {info['model']} |"))
        acc = f"{100 * metrics[name]['pooled']['accuracy']:.2f}"
        for expected in (info["method"], kw["folds"], kw["labels"], f"{kw['n']:,}", acc, f"`{rev}`",
                         f"`{info['params_hash']}`", f"`{info['data_hash'][:12]}`"):
            assert expected in row, (expected, row)
        assert f"`{info['data_hash']}`" in text  # full hash in the provenance table
    assert "beat (2) †" in text and "Beat-level folds leak patients" in text
    jun = "*Jun et al. 2018 (VGG, 8 classes, 10-fold over beats)* [1]"
    assert f"{jun} | — | — | beat | jun8 | — | 99.05 | 97.85 |" in text
    assert "## AAMI inter-patient classes (de Chazal et al. 2004 table)" in text
    assert "| 86.9 | 99.2 | 75.9 | 38.5 | 77.7 | 81.9 | 89.4 | 8.6 | 86.2 |" in text
    dc = metrics["cnn-record-aami"]["de_chazal"]
    assert f"| `cnn-record-aami` | record (3) | 900 | {100 * dc['N_se']:.1f} |" in text
    assert "| 101 | 1,800 | 4 | 45 | 97.56 | 99.78 |" in text
    assert "| **total** | 4,000 | 10 | 50 | 98.77 | 99.75 |" in text


def test_deterministic_bytes(stage, tmp_path, monkeypatch):
    """A second run (in-process, same working folder, other output folder) writes byte-identical files."""
    root, _ = stage
    monkeypatch.chdir(root)
    evaluate(root / "params.yaml", root / "models", root / "segment" / "detector.json", tmp_path / "again",
             stream=open(os.devnull, "w"))
    first = {p.relative_to(root / "reports"): p.read_bytes() for p in (root / "reports").rglob("*") if p.is_file()}
    second = {p.relative_to(tmp_path / "again"): p.read_bytes() for p in (tmp_path / "again").rglob("*") if p.is_file()}
    assert sorted(first) == sorted(second) and len(first) == 9
    for rel in first:
        assert first[rel] == second[rel], f"{rel} differs between two runs"


# -- inputs that must be refused with a clear error --------------------------------------------------------

@pytest.fixture()
def one_run(tmp_path):
    make_run(tmp_path / "models", "r", k=2, n=200, seed=5)
    make_detector(tmp_path / "detector.json")
    make_params(tmp_path / "params.yaml", {"r": {}})
    return tmp_path


def test_missing_run_dir_is_named_and_nothing_written(one_run, capsys):
    make_params(one_run / "params.yaml", {"r": {}, "ghost-run": {}, "other": {}})
    code = main(["--params", str(one_run / "params.yaml"), "--models", str(one_run / "models"),
                 "--detector", str(one_run / "detector.json"), "--out", str(one_run / "reports")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("evaluate: error: ") and err.count("\n") == 1
    assert "ghost-run" in err and "other" in err and "train.runs" in err
    assert not (one_run / "reports").exists()


def test_bad_predictions_are_refused_naming_the_file(one_run):
    path = one_run / "models" / "r" / "fold-01" / "predictions.parquet"
    df = pd.read_parquet(path)
    df.loc[df.index[0], "y_true"] = "Z"
    df.to_parquet(path)
    with pytest.raises(DataError, match=r"fold-01/predictions.parquet: y_true/y_pred: 1 labels not in classes.*'Z'"):
        load_run(one_run / "models", "r")
    df.drop(columns=["p_Q"]).to_parquet(path)
    with pytest.raises(DataError, match=r"fold-01/predictions.parquet: missing columns \['p_Q'\]"):
        load_run(one_run / "models", "r")
    df = pd.read_parquet(one_run / "models" / "r" / "fold-00" / "predictions.parquet")
    df.assign(fold=1).to_parquet(path)
    with pytest.raises(DataError, match="beats appear in more than one test fold"):
        load_run(one_run / "models", "r")
    df.assign(fold=0).to_parquet(path)
    with pytest.raises(DataError, match=r"column 'fold' holds \[0\], expected only 1"):
        load_run(one_run / "models", "r")
    df.assign(fold=1, y_pred=None).to_parquet(path)
    with pytest.raises(DataError, match=r"null values in columns \['y_pred'\]"):
        load_run(one_run / "models", "r")


def test_nan_scores_and_count_mismatch_are_refused(one_run):
    path = one_run / "models" / "r" / "fold-00" / "predictions.parquet"
    df = pd.read_parquet(path)
    df.assign(p_N=np.nan).to_parquet(path)
    with pytest.raises(DataError, match="NaN or infinite"):
        load_run(one_run / "models", "r")
    df.iloc[1:].to_parquet(path)
    with pytest.raises(DataError, match="n_test_beats is 200 but the fold predictions hold 199 beats"):
        load_run(one_run / "models", "r")


def test_bad_run_json_is_refused(one_run):
    path = one_run / "models" / "r" / "run.json"
    info = json.loads(path.read_text())
    path.write_text(json.dumps({**info, "run": "other"}))
    with pytest.raises(DataError, match="differs from its folder name"):
        load_run(one_run / "models", "r")
    path.write_text(json.dumps({k: v for k, v in info.items() if k != "data_hash"}))
    with pytest.raises(DataError, match=r"run.json: missing keys \['data_hash'\]"):
        load_run(one_run / "models", "r")
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_run(one_run / "models", "r")


def test_history_falls_back_to_fold_files(tmp_path):
    make_run(tmp_path, "r", k=2, n=100, history="folds")
    run = load_run(tmp_path, "r")
    assert run.history.fold.tolist() == [0, 0, 0, 1, 1, 1]
    assert list(run.history.columns) == ["fold", "epoch", "loss", "accuracy", "val_loss", "val_accuracy"]


def test_single_fold_run_has_null_std_and_de_chazal(tmp_path):
    make_run(tmp_path, "ds", folds="ds1ds2", k=1, n=300, seed=9)
    m = run_metrics(load_run(tmp_path, "ds"))
    assert np.isnan(m["fold_std"]["accuracy"]) and m["fold_mean"]["accuracy"] == m["pooled"]["accuracy"]
    assert set(m["de_chazal"]) == {"N_se", "N_ppv", "S_se", "S_ppv", "V_se", "V_ppv", "F_se", "F_ppv", "accuracy"}


def test_published_entries_are_checked():
    entries = parse_published(PUBLISHED)
    assert entries[1].classes["S"] == {"sensitivity": 0.759, "ppv": 0.385}
    assert entries[1].compares_with({"labels": "aami", "folds": "ds1ds2"})
    assert not entries[1].compares_with({"labels": "aami", "folds": "record"})
    assert not parse_published([{"source": "x", "accuracy": 0.9}])[0].compares_with({"labels": "aami"})
    assert parse_published([{"source": "x", "labels": "aami"}])[0].compares_with({"labels": "aami", "folds": "beat"})
    assert parse_published(None) == []
    for bad, msg in (([{"source": "x", "accuracy": 99.05}], "not a fraction"),
                     ([{"accuracy": 0.9}], r"evaluate.published\[0\].source is missing"),
                     ([{"source": "x", "recall": 0.9}], r"published\[0\].recall: unknown key"),
                     ([{"source": "x", "labels": "aami5"}], "labels: expected .*, got 'aami5'"),
                     ([{"source": "x", "classes": {"N": {"se": 0.9}}}], "classes.N.se: unknown key"),
                     ({"source": "x"}, "evaluate.published: expected a list")):
        with pytest.raises(ConfigError, match=msg):
            parse_published(bad)


def test_bad_params_and_detector(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": {"runs": {}}}))
    with pytest.raises(ConfigError, match="train.runs"):
        evaluate(tmp_path / "params.yaml", tmp_path, tmp_path / "d.json", tmp_path / "out")
    with pytest.raises(DataError, match="detector report not found"):
        read_detector(tmp_path / "missing.json")
    with pytest.raises(DataError, match="record 100: 'fp' must be a non-negative integer"):
        parse_detector({"total": {"tp": 1, "fp": 0, "fn": 0}, "records": {"100": {"tp": 1, "fp": -1, "fn": 0}}})
    with pytest.raises(DataError, match="missing key 'records'"):
        parse_detector({"total": {"tp": 1, "fp": 0, "fn": 0}})


def test_failure_in_a_later_run_writes_nothing(one_run):
    make_run(one_run / "models", "s", k=2, n=100, seed=6)
    (one_run / "models" / "s" / "fold-01" / "predictions.parquet").write_bytes(b"not parquet")
    make_params(one_run / "params.yaml", {"r": {}, "s": {}})
    with pytest.raises(DataError, match="not a readable Parquet file"):
        evaluate(one_run / "params.yaml", one_run / "models", one_run / "detector.json", one_run / "reports")
    assert not (one_run / "reports").exists()


def test_benchmark_without_inter_patient_runs_says_so():
    info = {"model": "m", "method": "annotations", "folds": "beat", "labels": "binary", "params_hash": "p",
            "data_hash": "d" * 64}
    nan = float("nan")
    section = {"accuracy": 0.5, "macro": dict.fromkeys(("sensitivity", "specificity", "ppv", "f1", "auc"), nan),
               "per_class": {}}
    metrics = {"n_test_beats": 10, "n_folds": 2, "pooled": section, "fold_mean": section,
               "fold_std": {**section, "accuracy": nan}}
    text = render_benchmark([RunReport("b", info, metrics)], [], None, "abc1234")
    assert "No run with AAMI labels and `record` or `ds1ds2` folds" in text
    assert "No detector report." in text
    row = ("| `b` | m | annotations | beat (2) † | binary | 10 | 50.00 | — | — | — | — | — | — "
           "| `abc1234` |")
    assert row in text
