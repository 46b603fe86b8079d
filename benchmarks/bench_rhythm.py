"""How far the rhythm features alone separate S from N, DS1 against DS2 (the figures of docs/training.md).

Reads the beats table of the annotations method (``datasets/beats/annotations.parquet``, built by
``dvc repro segment@annotations``), keeps the N and S beats of the non-paced records, and prints:

* the ROC AUC of each single rhythm feature (lower ratio = more premature = S) on DS1 and on DS2;
* a class-balanced logistic regression of S vs N fitted on DS1, on the default features of
  ``train.rhythm_features`` and on all five ratios, scored (ROC AUC) on DS1 and on DS2.

Usage: ``python benchmarks/bench_rhythm.py [datasets/beats/annotations.parquet]``
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from pipelines import DS1, DS2, PACED_RECORDS, RHYTHM_FEATURES, rhythm_columns

DEFAULT = ("log_pre_local", "log_post_local", "rr_missing")


def main(path: str = "datasets/beats/annotations.parquet") -> None:
    t0 = time.perf_counter()
    table = pq.read_table(path, columns=["record", "aami", "rr_pre_ms", "rr_post_ms", "rr_local_ms",
                                         "rr_record_ms"]).to_pandas()
    X = rhythm_columns({c: table[c].to_numpy(dtype=float) for c in table.columns if c.startswith("rr_")})
    keep = table["aami"].isin(["N", "S"]).to_numpy() & ~table["record"].isin(PACED_RECORDS).to_numpy()
    y = (table["aami"] == "S").to_numpy()
    sides = {"DS1": keep & table["record"].isin(DS1).to_numpy(), "DS2": keep & table["record"].isin(DS2).to_numpy()}
    print(f"{path}: N+S beats DS1 {sides['DS1'].sum():,} ({y[sides['DS1']].sum():,} S), "
          f"DS2 {sides['DS2'].sum():,} ({y[sides['DS2']].sum():,} S)")
    print("single features, ROC AUC of -feature (S vs N):")
    for j, name in enumerate(RHYTHM_FEATURES[:-1]):
        print(f"  {name:18s} DS1 {roc_auc_score(y[sides['DS1']], -X[sides['DS1'], j]):.3f}   "
              f"DS2 {roc_auc_score(y[sides['DS2']], -X[sides['DS2'], j]):.3f}")
    print("logistic regression fitted on DS1 (balanced), ROC AUC:")
    for label, names in (("default features", DEFAULT), ("all five ratios", RHYTHM_FEATURES[:-1])):
        cols = [RHYTHM_FEATURES.index(n) for n in names]
        model = LogisticRegression(max_iter=2000, class_weight="balanced").fit(X[sides["DS1"]][:, cols],
                                                                               y[sides["DS1"]])
        print(f"  {label:18s} DS1 {roc_auc_score(y[sides['DS1']], model.decision_function(X[sides['DS1']][:, cols])):.3f}"
              f"   DS2 {roc_auc_score(y[sides['DS2']], model.decision_function(X[sides['DS2']][:, cols])):.3f}")
    print(f"bench_rhythm: done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main(*sys.argv[1:])
