"""What the decision prior trades: a trained run's test predictions re-decided at every tau.

A diagnostic of the **test side**: it chooses nothing (the runs choose tau on their validation records,
``training.selection``); it shows how far the chosen operating point is from the others, e.g. how much
S sensitivity an accuracy gain costs.

Usage::

    python benchmarks/sweep_prior.py models/small_cnn-ds1ds2 models/crnn-ds1ds2 [--taus 0 0.25 0.5 1]
        [--worst-records 8]

Each fold's stored probabilities (``predictions.parquet``: softmax(log p + bias) with the fold's
``prior.json`` bias) are taken back to the network's log-probabilities, then re-decided with
``bias(tau) = tau * log(pi) - log(pi_eff)``: ``pi`` the fold's training-side beats per class
(``run.json`` ``fold_summaries[].prior_beats``), ``pi_eff`` its training images per class times their
class weights (``train_class_images``, ``class_weights``): :func:`training.selection.prior_bias` up to the
6-decimal rounding of the stored weights (checked against ``prior.json`` at the run's own tau).
Folds are pooled. AAMI runs are scored as EC57 (:mod:`evaluation.ec57`); others by accuracy and macro
sensitivity. The row of the run's own tau is marked ``*``. ``--worst-records N`` also lists the test
records with most N beats called another class at the run's own decision.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.ec57 import ec57_confusion, ec57_scores, is_ec57_run  # noqa: E402
from training.selection import PRIOR_FILE, TAUS  # noqa: E402


def fold_log_probs(run_dir: Path, summary: dict, classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                                np.ndarray]:
    """``(log p up to a per-row constant, y_true names, records, prior pieces)`` of one fold."""
    fold_dir = run_dir / f"fold-{summary['fold']:02d}"
    table = pq.read_table(fold_dir / "predictions.parquet").to_pandas()
    stored = json.loads((fold_dir / PRIOR_FILE).read_text())
    p = table[[f"p_{c}" for c in classes]].to_numpy(np.float64)
    log_p = np.log(np.maximum(p, 1e-30)) - np.asarray(stored["bias"], np.float64)
    prior = np.array([summary["prior_beats"][c] for c in classes], np.float64)
    eff = np.array([summary["train_class_images"][c] * summary["class_weights"][c] for c in classes], np.float64)
    pieces = np.stack([np.log(np.maximum(prior, 1e-12) / prior.sum()), np.log(np.maximum(eff, 1e-12) / eff.sum())])
    rebuilt = float(summary["decision_tau"]) * pieces[0] - pieces[1]
    if np.abs(rebuilt - np.asarray(stored["bias"])).max() > 1e-4:
        raise SystemExit(f"{fold_dir / PRIOR_FILE}: bias {stored['bias']} is not the one rebuilt from run.json "
                         f"({rebuilt.round(6).tolist()}): training.selection.prior_bias changed?")
    return log_p, table["y_true"].to_numpy(dtype=object), table["record"].to_numpy(dtype=object), pieces


def sweep(run_dir: Path, taus: tuple[float, ...]) -> list[str]:
    """One line per tau: the pooled test figures of the run re-decided at that tau."""
    run = json.loads((run_dir / "run.json").read_text())
    classes = list(run["classes"])
    folds = run["fold_summaries"]
    missing = [k for k in ("prior_beats", "train_class_images") if k not in folds[0]]
    if missing:
        raise SystemExit(f"{run_dir / 'run.json'}: no {missing} (trained before 2026-11-30): retrain the run")
    parts = [fold_log_probs(run_dir, f, classes) for f in folds]
    chosen = sorted({float(f["decision_tau"]) for f in folds})
    lines = [f"{run_dir.name} ({run['labels']}, {len(folds)} fold(s); tau chosen on validation: {chosen})"]
    names = classes + [c for c in run["label_classes"] if c not in classes]
    for tau in taus:
        pred, true, rec = [], [], []
        for log_p, y_true, records, (log_pi, log_eff) in parts:
            pred.append((log_p - log_eff + tau * log_pi).argmax(1))
            true.append(y_true)
            rec.append(records)
        y_pred, y_true, records = np.concatenate(pred), np.concatenate(true), np.concatenate(rec)
        mark = "*" if tau in chosen else " "
        labelled = np.array([isinstance(t, str) and t in names for t in y_true], dtype=bool)
        yi = np.array([names.index(t) for t in y_true[labelled]])
        if is_ec57_run(names):
            s = ec57_scores(ec57_confusion(yi, y_pred[labelled], records[labelled], names))
            cell = "  ".join(f"{c} {100 * s['sensitivity'][c]:5.1f}/{100 * s['ppv'][c]:5.1f}"
                             for c in ("N", "S", "V", "F"))
            lines.append(f" {mark}tau {tau:4.2f}: EC57 accuracy {100 * s['accuracy']:5.1f}  Se/+P {cell}")
        else:
            trained = yi < len(classes)
            acc = float((y_pred[labelled][trained] == yi[trained]).mean())
            se = [float((y_pred[labelled][yi == c] == c).mean()) for c in range(len(classes)) if (yi == c).any()]
            lines.append(f" {mark}tau {tau:4.2f}: accuracy {100 * acc:5.1f}  macro Se {100 * np.mean(se):5.1f}")
    return lines


def worst_records(run_dir: Path, n: int, reference: str = "N") -> list[str]:
    """The ``n`` test records with most ``reference`` beats called another class, at the run's own decision
    (the stored ``y_pred``), with what they were called."""
    import pandas as pd

    run = json.loads((run_dir / "run.json").read_text())
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
                    help="also list the N test records with most N beats called another class")
    args = ap.parse_args(argv)
    for run in args.runs:
        print("\n".join(sweep(Path(run), tuple(args.taus))), flush=True)
        if args.worst_records:
            print("\n".join(worst_records(Path(run), args.worst_records)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
