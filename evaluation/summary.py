"""Turn one run's checked predictions into its metrics and plot data (pure, no I/O).

The nested dicts returned here hold plain Python numbers with ``NaN`` where a figure is undefined;
the writers (:func:`evaluation.output.clean`) round them and turn NaN into JSON ``null`` when written.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .ec57 import EC57_CLASSES, EC57_FIGURES, ec57_confusion, ec57_exclusions, ec57_scores, is_ec57_run
from .metrics import (CLASS_METRICS, classification_scores, confusion_matrix, downsample_curve, nan_mean, nan_std,
                      roc_curve)
from .runs import HISTORY_COLUMNS, RunResults

#: Fold schemes that keep each patient (record) on one side of the split.
INTER_PATIENT_FOLDS: tuple[str, ...] = ("record", "ds1ds2")

#: Points per ROC curve in ``reports/plots/roc.json``.
ROC_POINTS = 200


def is_aami_inter_patient(info: dict[str, Any]) -> bool:
    """True for runs with AAMI labels and patient-wise folds (comparable with the published DS1 -> DS2 rows).

    Examples
    --------
    >>> is_aami_inter_patient({"labels": "aami", "folds": "ds1ds2"})
    True
    >>> is_aami_inter_patient({"labels": "aami", "folds": "beat"})
    False
    """
    return info.get("labels") == "aami" and info.get("folds") in INTER_PATIENT_FOLDS


def score_section(scores: dict, classes: tuple[str, ...]) -> dict[str, Any]:
    """The JSON shape of one :func:`~evaluation.metrics.classification_scores` result.

    ``{"accuracy", "macro": {figure: value}, "per_class": {class: {figure: value, "support": int}}}``
    """
    pc = scores["per_class"]
    per_class = {}
    for i, c in enumerate(classes):
        entry = {m: float(pc[m][i]) for m in CLASS_METRICS}
        entry["support"] = int(pc["support"][i])
        per_class[c] = entry
    return {
        "accuracy": scores["accuracy"],
        "macro": {m: float(v) for m, v in scores["macro"].items()},
        "per_class": per_class,
    }


def _fold_statistic(sections: list[dict[str, Any]], reduce) -> dict[str, Any]:
    """Apply ``reduce`` (nan_mean or nan_std) over folds to every figure of the sections (counts left out)."""
    first = sections[0]
    out: dict[str, Any] = {"accuracy": reduce([s["accuracy"] for s in sections])}
    out["macro"] = {m: reduce([s["macro"][m] for s in sections]) for m in first["macro"]}
    out["per_class"] = {
        c: {m: reduce([s["per_class"][c][m] for s in sections]) for m in CLASS_METRICS}
        for c in first["per_class"]
    }
    return out


def _ec57_statistic(sections: list[dict[str, Any]], reduce) -> dict[str, Any]:
    """Apply ``reduce`` (nan_mean or nan_std) over folds to the accuracy and every EC57 figure."""
    out: dict[str, Any] = {"accuracy": reduce([s["accuracy"] for s in sections])}
    for fig in EC57_FIGURES:
        out[fig] = {c: reduce([s[fig][c] for s in sections]) for c in EC57_CLASSES}
    return out


def ec57_metrics(run: RunResults) -> dict[str, Any]:
    """EC57 figures of a run (:mod:`evaluation.ec57`): pooled, fold mean and fold std, and the beats left out.

    Scores ``run.all_beats``: every test beat, those of untrained classes (Q) included, so that the
    paced-record and Q exclusions are EC57's own.

    Returns
    -------
    dict
        ``pooled`` (``n``, ``accuracy``, ``sensitivity``/``ppv``/``fpr``/``f1``/``support`` per class),
        ``fold_mean`` and ``fold_std`` (accuracy and the four figures per class, over the folds where
        each is defined), ``excluded`` (``paced``, ``q``: test beats not scored).
    """
    b = run.all_beats
    folds = []
    for fold in np.unique(b.fold).tolist():
        sel = b.fold == fold
        folds.append(ec57_scores(ec57_confusion(b.y_true[sel], b.y_pred[sel], b.record[sel], b.classes)))
    return {
        "pooled": ec57_scores(ec57_confusion(b.y_true, b.y_pred, b.record, b.classes)),
        "fold_mean": _ec57_statistic(folds, nan_mean),
        "fold_std": _ec57_statistic(folds, nan_std),
        "excluded": ec57_exclusions(b.y_true, b.record, b.classes),
    }


def run_metrics(run: RunResults) -> dict[str, Any]:
    """Everything ``reports/metrics.json`` holds for one run.

    Returns
    -------
    dict
        ``n_test_beats`` (beats of the trained classes, which every figure but EC57 scores),
        ``untrained_beats`` (``{class: count}`` of test beats of untrained classes, when there are any),
        ``n_folds``; ``pooled`` (all test folds together), ``fold_mean`` and
        ``fold_std`` (over the folds, NaN-skipping, std with ddof=1) of the overall accuracy and of
        every macro and per-class figure; ``ec57`` (:func:`ec57_metrics`) for runs with the AAMI
        classes; and ``baselines`` (``{name: the same dict for that baseline}``) when the run has
        ``baselines.parquet`` files.
    """
    k = len(run.classes)
    pooled = classification_scores(run.y_true, run.y_pred, run.proba, k)
    sections = []
    for fold in run.folds:
        sel = run.fold == fold
        sections.append(score_section(classification_scores(run.y_true[sel], run.y_pred[sel], run.proba[sel], k),
                                      run.classes))
    out: dict[str, Any] = {
        "n_test_beats": run.n,
        "n_folds": len(run.folds),
        "pooled": score_section(pooled, run.classes),
        "fold_mean": _fold_statistic(sections, nan_mean),
        "fold_std": _fold_statistic(sections, nan_std),
    }
    if run.untrained:
        out["untrained_beats"] = run.untrained
    if run.all_beats is not None and is_ec57_run(run.all_beats.classes):
        out["ec57"] = ec57_metrics(run)
    if run.baselines:
        out["baselines"] = {name: run_metrics(base) for name, base in run.baselines.items()}
    return out


def pooled_confusion(run: RunResults) -> np.ndarray:
    """Confusion counts of all test folds together (rows actual, columns predicted)."""
    return confusion_matrix(run.y_true, run.y_pred, len(run.classes))


def confusion_rows(run: RunResults, cm: np.ndarray) -> list[dict[str, Any]]:
    """One row per cell of the pooled confusion matrix: ``{run, actual, predicted, count}``, class order."""
    return [
        {"run": run.name, "actual": a, "predicted": p, "count": int(cm[i, j])}
        for i, a in enumerate(run.classes) for j, p in enumerate(run.classes)
    ]


def roc_curves(run: RunResults, max_points: int = ROC_POINTS) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pooled one-vs-rest ROC curve of each class, at most ``max_points`` points each.

    Classes whose curve is undefined (absent from the truth, or every beat) are left out.
    """
    curves = {}
    for i, c in enumerate(run.classes):
        fpr, tpr, _ = roc_curve(run.y_true == i, run.proba[:, i])
        if np.isnan(fpr[-1]) or np.isnan(tpr[-1]):
            continue
        curves[c] = downsample_curve(fpr, tpr, max_points)
    return curves


def roc_rows(run: RunResults, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[dict[str, Any]]:
    """``{run, class, fpr, tpr}`` rows of :func:`roc_curves`, class by class, along each curve."""
    return [
        {"run": run.name, "class": c, "fpr": float(f), "tpr": float(t)}
        for c, (fpr, tpr) in curves.items() for f, t in zip(fpr.tolist(), tpr.tolist())
    ]


def history_rows(run: RunResults) -> list[dict[str, Any]]:
    """``{run, fold, member, line, epoch, loss, accuracy, val_loss, val_accuracy}`` rows, by fold, member and
    epoch; ``line`` names the curve: ``fold 1``, or ``fold 1 member 2`` in a run of ensembles."""
    h = run.history
    ensemble = bool(len(h)) and int(h["member"].max()) > 0
    rows = []
    for rec in h[list(HISTORY_COLUMNS)].to_dict("records"):
        fold, member = int(rec["fold"]), int(rec["member"])
        row = {"run": run.name, "fold": fold, "member": member,
               "line": f"fold {fold} member {member + 1}" if ensemble else f"fold {fold}", "epoch": int(rec["epoch"])}
        row.update({c: float(rec[c]) for c in HISTORY_COLUMNS[3:]})
        rows.append(row)
    return rows
