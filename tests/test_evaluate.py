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
             history: str = "run", baselines: bool = False, untrained: tuple[str, ...] = ()) -> Path:
    """Write a run folder with ``k`` folds of ``n`` test beats in total; return the folder.

    Scores are a softmax of noisy logits favouring the true class, so the metrics are good but not
    perfect. ``absent`` classes never occur in the truth (they can still be predicted).
    ``history``: ``"run"`` writes ``history.csv`` at run level, ``"folds"`` per fold only.
    ``baselines``: also write ``fold-XX/baselines.parquet`` (majority: always the first class; rhythm:
    right for 60 % of the beats), rows in another order than the predictions.
    ``untrained``: classes the model does not know (as ``train_classes`` leaves out AAMI Q): they occur
    in ``y_true`` but have no ``p_<class>`` column and are never predicted; ``run.json`` lists them in
    ``label_classes`` only.
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
    logits[:, [classes.index(c) for c in untrained]] = -np.inf
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    label_classes, classes = classes, [c for c in classes if c not in untrained]
    keep = [label_classes.index(c) for c in classes]
    proba = proba[:, keep]
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
            "y_true": np.array(label_classes, dtype=object)[y[sel]],
            "y_pred": np.array(label_classes, dtype=object)[pred[sel]],
        })
        for j, c in enumerate(classes):
            df[f"p_{c}"] = proba[sel, j].astype(np.float32)
        df.to_parquet(fold_dir / "predictions.parquet", index=False)
        if baselines:
            base_frames = []
            for model in ("rhythm", "majority"):
                if model == "majority":
                    p = np.tile(np.linspace(1.0, 0.1, len(classes)), (int(sel.sum()), 1))
                else:
                    p = rng.dirichlet(np.ones(len(classes)), size=int(sel.sum()))
                    right = rng.random(int(sel.sum())) < 0.6
                    yk = np.array([keep.index(v) if v in keep else 0 for v in y[sel]])
                    p[right, yk[right]] += 1.0
                p /= p.sum(axis=1, keepdims=True)
                b = df[["beat_id", "record", "fold", "y_true"]].assign(
                    y_pred=np.array(classes, dtype=object)[p.argmax(axis=1)])
                for j, c in enumerate(classes):
                    b[f"p_{c}"] = p[:, j].astype(np.float32)
                base_frames.append(b.assign(model=model).iloc[::-1])
            pd.concat(base_frames).to_parquet(fold_dir / "baselines.parquet", index=False)
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
            **({"label_classes": label_classes} if untrained else {}),
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


#: The ``evaluate.published`` entries of the repository's params.yaml (so the real entries are checked).
PUBLISHED = yaml.safe_load((REPO / "params.yaml").read_text())["evaluate"]["published"]


def make_params(path: Path, runs: dict[str, dict], published: list[dict] | None = None) -> Path:
    """A params file with ``train.runs`` (complete sections: the schema checks them) and ``evaluate.published``."""
    runs = {name: {"model": "small_cnn", "method": "annotations", "folds": "record", "labels": "aami", **spec}
            for name, spec in runs.items()}
    params = {"train": train_params(runs=runs), "evaluate": {"published": PUBLISHED if published is None else published}}
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


RUNS = {"cnn-record-aami": dict(folds="record", labels="aami", k=3, n=900, seed=1, absent=("Q",), baselines=True),
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
        extra = ["baselines", "ec57"] if kw["labels"] == "aami" else []
        assert sorted(m) == [*extra, "fold_mean", "fold_std", "n_folds", "n_test_beats", "pooled"]
    assert "ec57" in metrics["cnn-record-aami"] and "ec57" not in metrics["vgg-beat-binary"]
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
    assert (history["line"] == "fold " + history["fold"].astype(str)).all()        # single models: one line a fold


def test_history_of_an_ensemble_has_a_line_per_fold_and_member(tmp_path):
    from evaluation.summary import history_rows

    make_run(tmp_path, "r", k=2, n=100)
    h = pd.read_csv(tmp_path / "r" / "history.csv")
    both = pd.concat([h.assign(member=0), h.assign(member=1, loss=h["loss"] + 1)], ignore_index=True)
    both.to_csv(tmp_path / "r" / "history.csv", index=False)
    run = load_run(tmp_path, "r")
    assert run.history[["fold", "member"]].drop_duplicates().values.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    rows = pd.DataFrame(history_rows(run))
    assert rows.groupby("line").size().to_dict() == {f"fold {f} member {m}": len(h) // 2 for f in (0, 1) for m in (1, 2)}
    np.testing.assert_allclose(rows.loc[rows.member == 1, "loss"].to_numpy(), rows.loc[rows.member == 0, "loss"] + 1)


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
    assert f"{jun} | — | — | beat | intra-patient | jun8 | — | 99.05 | 97.85 |" in text
    assert "## AAMI EC57 classes" in text
    # de Chazal: only the checked figures (N, S, V); the unverified F and accuracy figures are not shown
    assert ("| *de Chazal et al. 2004 (linear discriminants)* [2] | ds1ds2 | inter-patient | — | — | 86.9 | 99.2 "
            "| 75.9 | 38.5 | 77.7 | 81.9 | — | — | — | — | — | — |") in text
    assert "| 89.4 |" not in text and "| 8.6 |" not in text and "| 86.2 |" not in text
    assert "| *Niu et al. 2020 (symbolic representation + CNN)* [7] | ds1ds2 | inter-patient | — | 96.4 |" in text
    assert text.count("| 76.6 | 89.7 |") == 1
    assert "Checked: abstract." in text and "Mondejar-Guerra et al. 2019" in text
    e = metrics["cnn-record-aami"]["ec57"]
    mean, std = e["fold_mean"], e["fold_std"]
    assert (f"| `cnn-record-aami` | record (3) | inter-patient | {e['pooled']['n']:,} | "
            f"{100 * mean['accuracy']:.1f} ± {100 * std['accuracy']:.1f} | "
            f"{100 * mean['sensitivity']['N']:.1f} ± {100 * std['sensitivity']['N']:.1f} |") in text
    # two baseline rows under the AAMI run in every table of runs; the binary run says it has none
    lines = text.splitlines()
    for head in ("## Beat classification", "## Across folds", "## AAMI EC57 classes"):
        section = lines[lines.index(head):]
        i = next(j for j, line in enumerate(section) if line.startswith("| `cnn-record-aami` |"))
        assert section[i + 1].startswith("| ↳ majority class |") and section[i + 2].startswith("| ↳ rhythm only |")
        if head != "## AAMI EC57 classes":
            i = next(j for j, line in enumerate(section) if line.startswith("| `vgg-beat-binary` |"))
            assert section[i + 1].startswith("| ↳ baselines | none: this run has no `fold-XX/baselines.parquet`")
    base = metrics["cnn-record-aami"]["baselines"]["majority"]["ec57"]
    assert (f"| ↳ majority class | record (3) | inter-patient | {base['pooled']['n']:,} | "
            f"{100 * base['fold_mean']['accuracy']:.1f} ± ") in text
    assert "| N | ↳ majority class | " in text and "| N | ↳ rhythm only | " in text
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
    assert list(run.history.columns) == ["fold", "member", "epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert (run.history.member == 0).all()                      # files written before ensembles: one member


def test_single_fold_run_has_null_std_and_ec57(tmp_path):
    make_run(tmp_path, "ds", folds="ds1ds2", k=1, n=300, seed=9)
    run = load_run(tmp_path, "ds")
    m = run_metrics(run)
    assert np.isnan(m["fold_std"]["accuracy"]) and m["fold_mean"]["accuracy"] == m["pooled"]["accuracy"]
    assert set(m["ec57"]) == {"pooled", "fold_mean", "fold_std", "excluded"} and "baselines" not in m
    assert set(m["ec57"]["pooled"]) == {"n", "accuracy", "sensitivity", "ppv", "fpr", "f1", "support"}
    assert np.isnan(m["ec57"]["fold_std"]["ppv"]["V"]) and run.baselines == {}
    text = render_benchmark([RunReport("ds", run.info, m)], parse_published(PUBLISHED), None, "abc")
    row = next(line for line in text.splitlines() if line.startswith("| `ds` | ds1ds2 (1) | inter-patient |"))
    assert f"| {100 * m['ec57']['pooled']['accuracy']:.1f} |" in row and "±" not in row


def test_ec57_figures_follow_bxb_on_the_parquet_files(stage):
    """Paced records and Q beats left out; V +P ignores F beats called V; checked with pandas by hand."""
    root, _ = stage
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    preds = pd.concat([pd.read_parquet(p) for p in sorted((root / "models" / "cnn-record-aami").glob(
        "fold-*/predictions.parquet"))])
    e = metrics["cnn-record-aami"]["ec57"]
    paced = preds.record.isin(["102", "104", "107", "217"])
    assert paced.any() and e["excluded"] == {"paced": int(paced.sum()), "q": int((~paced & (preds.y_true == "Q")).sum())}
    scored = preds[~paced & preds.y_true.isin(list("NSVF"))]
    cm = pd.crosstab(scored.y_true, scored.y_pred).reindex(index=list("NSVF"), columns=list("NSVFQ"), fill_value=0)
    assert cm.loc["F", "V"] > 0  # the rule below is exercised
    pooled = e["pooled"]
    assert pooled["n"] == len(scored)
    assert pooled["accuracy"] == pytest.approx((scored.y_true == scored.y_pred).mean(), abs=1e-6)
    vv, nv, sv = cm.loc["V", "V"], cm.loc["N", "V"], cm.loc["S", "V"]
    assert pooled["ppv"]["V"] == pytest.approx(vv / (vv + nv + sv), abs=1e-6)
    assert pooled["ppv"]["S"] == pytest.approx(cm.loc["S", "S"] / cm["S"].sum(), abs=1e-6)
    assert pooled["sensitivity"]["F"] == pytest.approx(cm.loc["F", "F"] / cm.loc["F"].sum(), abs=1e-6)
    v_tn = cm.drop(index="V").drop(columns="V").to_numpy().sum()
    assert pooled["fpr"]["V"] == pytest.approx((nv + sv) / (nv + sv + v_tn), abs=1e-6)
    per_fold = []
    for _, g in scored.groupby("fold"):
        c = pd.crosstab(g.y_true, g.y_pred).reindex(index=list("NSVF"), columns=list("NSVFQ"), fill_value=0)
        per_fold.append(c.loc["V", "V"] / (c.loc["V", "V"] + c.loc["N", "V"] + c.loc["S", "V"]))
    assert e["fold_mean"]["ppv"]["V"] == pytest.approx(np.mean(per_fold), abs=1e-6)
    assert e["fold_std"]["ppv"]["V"] == pytest.approx(np.std(per_fold, ddof=1), abs=1e-6)


def test_baseline_metrics_match_sklearn_on_baselines_parquet(stage):
    root, _ = stage
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    base = pd.concat([pd.read_parquet(p) for p in sorted((root / "models" / "cnn-record-aami").glob(
        "fold-*/baselines.parquet"))])
    for name in ("majority", "rhythm"):
        b = base[base.model == name]
        m = metrics["cnn-record-aami"]["baselines"][name]
        assert m["n_test_beats"] == 900 and m["n_folds"] == 3
        assert m["pooled"]["accuracy"] == pytest.approx(skm.accuracy_score(b.y_true, b.y_pred), abs=1e-6)
        assert sorted(m) == ["ec57", "fold_mean", "fold_std", "n_folds", "n_test_beats", "pooled"]
    assert metrics["cnn-record-aami"]["baselines"]["majority"]["pooled"]["per_class"]["N"]["sensitivity"] == 1.0


def test_bad_baselines_are_refused_naming_the_file(tmp_path):
    make_run(tmp_path, "r", k=2, n=200, seed=5, baselines=True)
    path = tmp_path / "r" / "fold-01" / "baselines.parquet"
    good = pd.read_parquet(path)
    run = load_run(tmp_path, "r")
    assert list(run.baselines) == ["majority", "rhythm"]
    majority = run.baselines["majority"]
    assert (majority.y_true == run.y_true).all() and (majority.y_pred == 0).all()  # aligned to predictions' order
    cases = ((good[good.model == "rhythm"], "no rows for baseline 'majority'"),
             (good.assign(model=good.model.replace("rhythm", "cnn")), r"unknown baselines \['cnn'\]"),
             (good.iloc[1:], "baseline 'rhythm': its 99 beats are not the 100 test beats"),
             (good.assign(y_true="N"), "y_true differs from predictions.parquet"),
             (good.drop(columns=["model"]), r"missing columns \['model'\]"))
    for bad, msg in cases:
        bad.to_parquet(path)
        with pytest.raises(DataError, match=f"fold-01/baselines.parquet: .*{msg}"):
            load_run(tmp_path, "r")
    # the optional third baseline (RR + template features) is read when every fold has it
    good.to_parquet(path)
    for fold in ("fold-00", "fold-01"):
        p = tmp_path / "r" / fold / "baselines.parquet"
        b = pd.read_parquet(p)
        pd.concat([b, b[b.model == "rhythm"].assign(model="features")]).to_parquet(p)
    assert list(load_run(tmp_path, "r").baselines) == ["majority", "rhythm", "features"]
    good.to_parquet(path)                                          # fold-01 without it: left out, not an error
    assert list(load_run(tmp_path, "r").baselines) == ["majority", "rhythm"]
    path.unlink()
    with pytest.raises(DataError, match=r"baselines.parquet in some folds only \(missing in \['fold-01'\]\)"):
        load_run(tmp_path, "r")


def test_published_entries_are_checked():
    entries = parse_published(PUBLISHED)
    assert entries[1].classes["S"] == {"sensitivity": 0.759, "ppv": 0.385}
    assert "F" not in entries[1].classes and "accuracy" not in entries[1].figures  # unverified figures left out
    assert all(e.checked and e.source and e.name for e in entries)
    assert {e.label.split(" (")[0]: e.figures.get("accuracy") for e in entries if e.labels == "aami"} == {
        "de Chazal et al. 2004": None, "Llamedo & Martinez 2011": 0.93, "Zhang et al. 2014": None,
        "Garcia et al. 2017": 0.924, "Mondejar-Guerra et al. 2019": 0.945, "Niu et al. 2020": 0.964}
    assert entries[-1].classes == {"S": {"f1": 0.766}, "V": {"f1": 0.897}}
    with pytest.raises(ConfigError, match="'checked' is missing"):
        parse_published([{"source": "x", "accuracy": 0.9}])
    assert entries[1].compares_with({"labels": "aami", "folds": "ds1ds2"})
    assert not entries[1].compares_with({"labels": "aami", "folds": "record"})
    ok = {"source": "x", "checked": "abstract"}
    assert not parse_published([{**ok, "accuracy": 0.9}])[0].compares_with({"labels": "aami"})
    assert parse_published([{**ok, "labels": "aami"}])[0].compares_with({"labels": "aami", "folds": "beat"})
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
    assert "No run with AAMI labels in `train.runs`." in text
    assert "No run with AAMI labels and `record` or `ds1ds2` folds" in text
    assert "No detector report." in text
    row = ("| `b` | m | annotations | beat (2) † | intra-patient | binary | 10 | 50.00 | — | — | — | — | — | — "
           "| `abc1234` |")
    assert row in text


def test_untrained_q_beats_leave_the_classification_figures_but_not_the_test_set(tmp_path):
    """A 4-class run (Q untrained, as train_classes leaves it by default): Q reference beats are in its
    predictions and baselines but not in its classes; they are counted, left out of the classification
    figures, and not scored by EC57 either (Q rows are dropped); the model never predicts Q."""
    make_run(tmp_path, "q4", k=2, n=600, seed=11, class_prior=[50, 10, 10, 5, 25], untrained=("Q",),
             baselines=True)
    preds = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "q4").glob("fold-*/predictions.parquet"))])
    n_q = int((preds.y_true == "Q").sum())
    assert n_q > 50 and "p_Q" not in preds.columns and "Q" not in set(preds.y_pred)
    run = load_run(tmp_path, "q4")
    assert run.classes == ("N", "S", "V", "F") and run.untrained == {"Q": n_q} and run.n == 600 - n_q
    m = run_metrics(run)
    assert m["n_test_beats"] == 600 - n_q and m["untrained_beats"] == {"Q": n_q}
    trained = preds[preds.y_true != "Q"]
    assert m["pooled"]["accuracy"] == pytest.approx(skm.accuracy_score(trained.y_true, trained.y_pred), abs=1e-6)
    paced = preds.record.isin(["102", "104", "107", "217"])
    assert m["ec57"]["excluded"] == {"paced": int(paced.sum()), "q": int((~paced & (preds.y_true == "Q")).sum())}
    assert m["ec57"]["pooled"]["n"] == int((~paced & (preds.y_true != "Q")).sum())
    assert m["baselines"]["majority"]["untrained_beats"] == {"Q": n_q}
    assert m["baselines"]["majority"]["ec57"]["pooled"]["sensitivity"]["N"] == 1.0
    text = render_benchmark([RunReport("q4", run.info, m)], [], None, "abc")
    assert f"| {600 - n_q:,} (+{n_q:,} Q, untrained) |" in text


# -- the paper-ECG sections (reports/digitize.json, reports/digitized_classify.json) --------------------------

def _rpeak(tp: int, fp: int, fn: int, edge: int = 2) -> dict:
    return {"tp": tp, "fp": fp, "fn": fn, "edge": edge, "sensitivity": tp / (tp + fn), "ppv": tp / (tp + fp),
            "ppv_edges_as_fp": tp / (tp + fp + edge)}


def _side(accuracy: float, s: tuple[float, float], v: tuple[float, float]) -> dict:
    figures = {"N": 0.95, "S": None, "V": None, "F": None}
    return {"n": 1200, "accuracy": accuracy, "sensitivity": {**figures, "S": s[0], "V": v[0]},
            "ppv": {**figures, "S": s[1], "V": v[1]}, "fpr": figures, "f1": figures,
            "support": {"N": 1000, "S": 100, "V": 90, "F": 10}, "excluded": {"paced": 0, "q": 2}}


def make_paper_reports(out: Path) -> tuple[Path, Path]:
    """``digitize.json`` and ``digitized_classify.json`` in ``out``, in their writers' formats."""
    out.mkdir(parents=True, exist_ok=True)
    variant = {"strips": 240, "leads": 480, "status": {"ok": 238, "trace_lost": 2}, "snr_db": 20.4123,
               "snr_aligned_db": 22.5, "recovered": 0.995, "rpeak": {"digitized": _rpeak(2800, 5, 20),
                                                                     "truth": _rpeak(2810, 3, 10)}}
    failed = {**variant, "status": {"no_grid": 240}, "snr_db": 0.0, "snr_aligned_db": 0.0, "recovered": 0.0,
              "rpeak": {"digitized": {"tp": 0, "fp": 0, "fn": 2820, "sensitivity": 0.0, "ppv": float("nan")},
                        "truth": _rpeak(2810, 3, 10)}}
    digitize = {"snr": "helper_code.compute_snr", "alignment": {"max_shift_s": 0.5, "max_offset_mv": 1.0},
                "variants": {"clean": variant, "scan": failed}}
    classify = {"run": "small_cnn-ds1ds2", "inputs": {}, "strip_seconds": 10.0, "rhythm_features": None,
                "test_beats": 49712, "beats": 1234,
                "excluded": {"lead_not_digitised": 0, "outside_strips": 48470, "not_recovered": 8}, "records": {},
                "original": _side(0.91234, (0.5, 0.25), (0.8, 0.9)),
                "digitized": _side(0.87654, (0.4, 0.2), (0.7, 0.85)),
                "changed": {"beats": 37, "fraction": 0.03, "pairs": {"N->S": 17, "N->V": 20}}}
    (out / "digitize.json").write_text(json.dumps(digitize))          # NaN as the writer writes it
    (out / "digitized_classify.json").write_text(json.dumps(classify))
    return out / "digitize.json", out / "digitized_classify.json"


def test_paper_sections_say_when_their_reports_are_absent(stage):
    root, _ = stage
    text = (root / "reports" / "benchmark.md").read_text()
    assert "## Paper ECG: digitiser\n\nNo digitiser report: `reports/digitize.json` is absent" in text
    assert "## Digitise, then classify\n\nNo digitise-then-classify report: `reports/digitized_classify.json`" in text
    assert text.index("## R-peak detector") < text.index("## Paper ECG: digitiser") < text.index("## Provenance")


def test_paper_sections_show_the_reports(one_run):
    make_paper_reports(one_run / "reports")       # the default place: beside the outputs
    evaluate(one_run / "params.yaml", one_run / "models", one_run / "detector.json", one_run / "reports",
             stream=open(os.devnull, "w"))
    text = (one_run / "reports" / "benchmark.md").read_text()
    assert "| clean | 238 / 240 | 20.41 | 22.50 | 99.50 | 99.29 | 99.82 | 2 | 99.75 | 99.65 | 99.89 |" in text
    assert "| scan | 0 / 240 | 0.00 | 0.00 | 0.00 | 0.00 | — | — | — | 99.65 | 99.89 |" in text
    assert "| original signals | 1,200 | 91.2 | 50.0 | 25.0 | 80.0 | 90.0 |" in text
    assert "| digitised strips | 1,200 | 87.7 | 40.0 | 20.0 | 70.0 | 85.0 |" in text
    assert "Run `small_cnn-ds1ds2`" in text and "1,234 of its 49,712 test beats" in text
    assert "48,470 outside the strips" in text and "37 beats (3.00%) change class (N->V 20, N->S 17)." in text

    elsewhere = make_paper_reports(one_run / "elsewhere")     # explicit paths (the dvc.yaml command line)
    (one_run / "reports" / "digitize.json").unlink()
    (one_run / "reports" / "digitized_classify.json").unlink()
    assert main(["--params", str(one_run / "params.yaml"), "--models", str(one_run / "models"), "--detector",
                 str(one_run / "detector.json"), "--digitize", str(elsewhere[0]), "--digitized-classify",
                 str(elsewhere[1]), "--out", str(one_run / "reports")]) == 0
    assert (one_run / "reports" / "benchmark.md").read_text() == text


def test_bad_paper_reports_are_refused_naming_the_file(one_run):
    digitize, classify = make_paper_reports(one_run / "in")
    doc = json.loads(classify.read_text())
    del doc["changed"]["pairs"]
    classify.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"digitized_classify.json: missing key 'changed.pairs'"):
        evaluate(one_run / "params.yaml", one_run / "models", one_run / "detector.json", one_run / "reports",
                 digitize_path=digitize, classify_path=classify)
    doc = json.loads(digitize.read_text())
    del doc["variants"]["scan"]["rpeak"]["truth"]
    digitize.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"digitize.json: missing key 'variants.scan.rpeak.truth'"):
        evaluate(one_run / "params.yaml", one_run / "models", one_run / "detector.json", one_run / "reports",
                 digitize_path=digitize, classify_path=one_run / "absent.json")
    digitize.write_text("{not json")
    with pytest.raises(DataError, match="digitize.json: not valid JSON"):
        evaluate(one_run / "params.yaml", one_run / "models", one_run / "detector.json", one_run / "reports",
                 digitize_path=digitize)
    assert not (one_run / "reports").exists()


def test_provenance_says_when_folds_were_resumed():
    from evaluation.benchmark import provenance_section

    info = {"params_hash": "p", "data_hash": "d", "k": 5, "train_images_per_s": 1800.0, "seconds": 0.1,
            "peak_rss_mb": 900.0}
    fresh = RunReport("fresh", {**info, "seconds": 220.7, "resumed_folds": []}, {"n_test_beats": 10, "n_folds": 5})
    reused = RunReport("reused", {**info, "resumed_folds": [0, 1, 2, 3, 4]}, {"n_test_beats": 10, "n_folds": 5})
    rows = {line.split(" | ")[0]: line for line in provenance_section([fresh, reused], "abc") if line.startswith("| `")}
    assert "| 221 | 900 |" in rows["| `fresh`"] and "resumed" not in rows["| `fresh`"]
    assert "| 0 (5 of 5 folds resumed) | 900 |" in rows["| `reused`"]
