"""Speed of the evaluation: our NumPy metrics against scikit-learn, and the whole stage on one big run.

Synthetic predictions with roughly the MIT-BIH AAMI class mix (101,000 beats: N 90,000, S 2,800, V 7,000,
F 800, Q 400), 5 folds. Timings on a shared machine are noisy, so the metrics are compared with a
scikit-learn baseline measured in the same process, interleaved (``--repeat`` pairs), and reported as a ratio.

Usage: ``python benchmarks/bench_evaluation.py [--repeat 5]``
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from evaluation.metrics import classification_scores

CLASSES = ("N", "S", "V", "F", "Q")
COUNTS = (90_000, 2_800, 7_000, 800, 400)
K = 5


def synthetic(seed: int = 0):
    """Labels, folds and softmax scores of a noisy classifier with the AAMI class mix."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(CLASSES)), COUNTS)
    rng.shuffle(y)
    logits = rng.normal(size=(y.size, len(CLASSES)))
    logits[np.arange(y.size), y] += 2.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba.argmax(axis=1), proba, np.arange(y.size) % K


def ours(y, pred, proba, fold):
    out = [classification_scores(y, pred, proba, len(CLASSES))]
    for f in range(K):
        s = fold == f
        out.append(classification_scores(y[s], pred[s], proba[s], len(CLASSES)))
    return out


def sklearn_baseline(y, pred, proba, fold):
    from sklearn import metrics as skm

    labels = list(range(len(CLASSES)))

    def one(t, p, pr):
        return (skm.confusion_matrix(t, p, labels=labels), skm.accuracy_score(t, p),
                skm.precision_recall_fscore_support(t, p, labels=labels, zero_division=np.nan),
                [skm.recall_score(t != c, p != c) for c in labels],
                [skm.roc_auc_score(t == c, pr[:, c]) for c in labels])

    out = [one(y, pred, proba)]
    for f in range(K):
        s = fold == f
        out.append(one(y[s], pred[s], proba[s]))
    return out


def best_of(fn, repeat, *args):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return min(times)


def whole_stage(y, pred, proba, fold, repeat: int) -> dict[str, float]:
    """Write one run folder of these predictions, then time the evaluate stage on it (best of ``repeat``)."""
    import json

    import pandas as pd
    import yaml

    from evaluation.evaluate import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = root / "models" / "bench"
        names = np.array(CLASSES, dtype=object)
        for f in range(K):
            s = fold == f
            d = run / f"fold-{f:02d}"
            d.mkdir(parents=True)
            df = pd.DataFrame({"beat_id": [f"b-{i}" for i in np.flatnonzero(s)], "record": "100",
                               "fold": f, "y_true": names[y[s]], "y_pred": names[pred[s]]})
            for j, c in enumerate(CLASSES):
                df[f"p_{c}"] = proba[s, j].astype(np.float32)
            df.to_parquet(d / "predictions.parquet", index=False)
        pd.DataFrame({"fold": np.repeat(np.arange(K), 4), "epoch": np.tile(np.arange(1, 5), K), "loss": 0.5,
                      "accuracy": 0.9, "val_loss": 0.6, "val_accuracy": 0.88}).to_csv(run / "history.csv", index=False)
        (run / "run.json").write_text(json.dumps({
            "run": "bench", "model": "small_cnn", "method": "annotations", "folds": "record", "labels": "aami",
            "classes": list(CLASSES), "k": K, "params_hash": "0" * 12, "data_hash": "0" * 64,
            "n_test_beats": int(y.size)}))
        (root / "detector.json").write_text(json.dumps({"tolerance_ms": 150, "total": {"tp": 1, "fp": 0, "fn": 0},
                                                        "records": {"100": {"tp": 1, "fp": 0, "fn": 0}}}))
        (root / "params.yaml").write_text(yaml.safe_dump({"train": {"runs": {"bench": {}}}}))
        with open(os.devnull, "w") as null:
            seconds = best_of(lambda: evaluate(root / "params.yaml", root / "models", root / "detector.json",
                                               root / "reports", revision="bench", stream=null), repeat)
    return {"seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    y, pred, proba, fold = synthetic()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"data: {y.size:,} beats, {len(CLASSES)} classes, {K} folds (pooled + per-fold figures)")
    # interleaved, so that both see the same load; the ratio of each pair is the figure to compare
    pairs = [(best_of(ours, 1, y, pred, proba, fold), best_of(sklearn_baseline, 1, y, pred, proba, fold))
             for _ in range(args.repeat)]
    t_ours, t_sk = min(p[0] for p in pairs), min(p[1] for p in pairs)
    ratios = sorted(sk / o for o, sk in pairs)
    print(f"metrics, evaluation.metrics: best {t_ours:.3f} s ({y.size / t_ours:,.0f} beats/s)")
    print(f"metrics, scikit-learn baseline (same figures): best {t_sk:.3f} s ({y.size / t_sk:,.0f} beats/s)")
    print(f"ratio scikit-learn / ours, per interleaved pair: median {np.median(ratios):.2f}x "
          f"(range {ratios[0]:.2f}x to {ratios[-1]:.2f}x, {len(ratios)} pairs)")
    stage = whole_stage(y, pred, proba, fold, args.repeat)
    print(f"whole evaluate stage on one run of {y.size:,} test beats (read, check, metrics, 2 figures, write): "
          f"{stage['seconds']:.2f} s")


if __name__ == "__main__":
    main()
