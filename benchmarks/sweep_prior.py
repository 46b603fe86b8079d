"""What the decision prior trades: a trained run's test predictions re-decided at every tau.

A diagnostic of the **test side**: it chooses nothing (the runs choose tau on their validation records,
``training.selection``); it shows how far the chosen operating point is from the others, e.g. how much
S sensitivity an accuracy gain costs.

Usage::

    python benchmarks/sweep_prior.py models/small_cnn-ds1ds2 models/crnn-ds1ds2 [--taus 0 0.25 0.5 1]
        [--worst-records 8]

Each fold's stored probabilities (``predictions.parquet``: softmax(log p + bias) with the fold's
``prior.json`` bias) are taken back to the network's log-probabilities, then re-decided with the bias
:func:`training.selection.prior_bias` gives at each tau, from the fold's ``run.json`` summary: training
images per class (``train_class_images``), class weights (``class_weights``, stored to 6 decimals) and
training-side beats per class (``prior_beats``); the bias at the run's own tau is checked against
``prior.json``.
Folds are pooled. AAMI runs are scored as EC57 (:mod:`evaluation.ec57`); others by accuracy and macro
sensitivity. The row of the run's own tau is marked ``*``. ``--worst-records N`` also lists the test
records with most normal beats (the run's first class) called another class at the run's own decision.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.ec57 import ec57_confusion, ec57_scores, is_ec57_run  # noqa: E402
from training.selection import PRIOR_FILE, TAUS, prior_bias  # noqa: E402


def fold_parts(run_dir: Path, summary: dict, classes: list[str]) -> tuple[np.ndarray, Callable[[float], np.ndarray]]:
    """``(log p up to a per-row constant, tau -> the fold's bias)`` of one fold."""
    fold_dir = run_dir / f"fold-{summary['fold']:02d}"
    stored = json.loads((fold_dir / PRIOR_FILE).read_text())
    p = pq.read_table(fold_dir / "predictions.parquet", columns=[f"p_{c}" for c in classes]).to_pandas()
    log_p = np.log(np.maximum(p.to_numpy(np.float64), 1e-30)) - np.asarray(stored["bias"], np.float64)
    n = len(classes)
    y_images = np.repeat(np.arange(n), [summary["train_class_images"][c] for c in classes])
    weights = np.array([summary["class_weights"][c] for c in classes])
    prior = np.array([summary["prior_beats"][c] for c in classes])

    def bias(tau: float) -> np.ndarray:
        return prior_bias(y_images, weights, n, tau, prior)

    if np.abs(bias(float(summary["decision_tau"])) - np.asarray(stored["bias"])).max() > 1e-4:
        raise SystemExit(f"{fold_dir / PRIOR_FILE}: bias {stored['bias']} is not prior_bias of run.json's fold "
                         "summary: training.selection.prior_bias changed since the run?")
    return log_p, bias


def sweep(run_dir: Path, taus: tuple[float, ...]) -> list[str]:
    """One line per tau: the pooled test figures of the run re-decided at that tau."""
    run = json.loads((run_dir / "run.json").read_text())
    classes = list(run["classes"])
    folds = run["fold_summaries"]
    missing = [k for k in ("prior_beats", "train_class_images") if k not in folds[0]]
    if missing:
        raise SystemExit(f"{run_dir / 'run.json'}: no {missing} (trained before 2026-11-30): retrain the run")
    parts = [fold_parts(run_dir, f, classes) for f in folds]
    truth = pd.concat([pq.read_table(run_dir / f"fold-{f['fold']:02d}" / "predictions.parquet",
                                     columns=["record", "y_true"]).to_pandas() for f in folds])
    chosen = sorted({float(f["decision_tau"]) for f in folds})
    lines = [f"{run_dir.name} ({run['labels']}, {len(folds)} fold(s); tau chosen on validation: {chosen})"]
    names = classes + [c for c in run["label_classes"] if c not in classes]
    y_true, records = truth["y_true"].to_numpy(dtype=object), truth["record"].to_numpy(dtype=object)
    labelled = np.array([isinstance(t, str) and t in names for t in y_true], dtype=bool)
    yi = np.array([names.index(t) for t in y_true[labelled]], np.int64)
    trained = yi < len(classes)
    for tau in taus:
        y_pred = np.concatenate([(log_p + bias(tau)).argmax(1) for log_p, bias in parts])[labelled]
        mark = "*" if tau in chosen else " "
        if is_ec57_run(names):
            s = ec57_scores(ec57_confusion(yi, y_pred, records[labelled], names))
            cell = "  ".join(f"{c} {100 * s['sensitivity'][c]:5.1f}/{100 * s['ppv'][c]:5.1f}"
                             for c in ("N", "S", "V", "F"))
            lines.append(f" {mark}tau {tau:4.2f}: EC57 accuracy {100 * s['accuracy']:5.1f}  Se/+P {cell}")
        else:
            acc = float((y_pred[trained] == yi[trained]).mean())
            se = [float((y_pred[yi == c] == c).mean()) for c in range(len(classes)) if (yi == c).any()]
            lines.append(f" {mark}tau {tau:4.2f}: accuracy {100 * acc:5.1f}  macro Se {100 * np.mean(se):5.1f}")
    return lines


def worst_records(run_dir: Path, n: int) -> list[str]:
    """The ``n`` test records with most beats of the run's first class (the normal one: AAMI N, jun8 NOR)
    called another class, at the run's own decision (the stored ``y_pred``), with what they were called."""
    run = json.loads((run_dir / "run.json").read_text())
    reference = run["classes"][0]
    table = pd.concat([pq.read_table(run_dir / f"fold-{f['fold']:02d}" / "predictions.parquet",
                                     columns=["record", "y_true", "y_pred"]).to_pandas()
                       for f in run["fold_summaries"]])
    wrong = table[(table["y_true"] == reference) & (table["y_pred"] != reference)]
    counts = wrong.groupby(["record", "y_pred"]).size().unstack(fill_value=0)
    total = table[table["y_true"] == reference].groupby("record").size()
    order = counts.sum(axis=1).sort_values(ascending=False, kind="stable").index[:n]
    lines = [f"{run_dir.name}: {len(wrong):,} of {int(total.sum()):,} {reference} beats called another class; "
             f"records with most:"]
    for rec in order:
        called = ", ".join(f"{c} {int(counts.loc[rec, c]):,}" for c in counts.columns if counts.loc[rec, c])
        lines.append(f"  {rec}: {int(counts.loc[rec].sum()):,} of {int(total[rec]):,} ({called})")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="trained run directories, models/<run>")
    ap.add_argument("--taus", type=float, nargs="+", default=list(TAUS), help="prior weights (default: TAUS)")
    ap.add_argument("--worst-records", type=int, default=0, metavar="N",
                    help="also list the N test records with most normal beats called another class")
    args = ap.parse_args(argv)
    for run in args.runs:
        print("\n".join(sweep(Path(run), tuple(args.taus))), flush=True)
        if args.worst_records:
            print("\n".join(worst_records(Path(run), args.worst_records)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
