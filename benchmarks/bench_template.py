"""What record-relative morphology adds on the inter-patient split: a features-only classifier, DS1 -> DS2.

The rhythm-only baseline's classifier (:func:`training.baselines.fit_rhythm`: gradient boosting, balanced class
weights, seeded) is fitted on the DS1 beats of the beats table (AAMI N, S, V, F; paced records left out) with
the RR features of ``train.rhythm_features`` alone, then with those and the template columns of
``train.template_features`` (:mod:`pipelines.signal.template`), and scored with AAMI EC57 on DS2 at the
plain argmax of the balanced fit (``tau`` 0) and at the training prior (``tau`` 1, the Bayes decision under
DS1's class frequencies). Nothing is chosen on DS2: both settings are printed. The always-N row is the
majority baseline on the same beats.

Usage::

    python benchmarks/bench_template.py [--beats datasets/beats/annotations.parquet] [--params params.yaml]

Prints one line per row (accuracy, S and V Se / +P, F Se) and the time to compute the template columns of
one record (the segment stage's added cost).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation.ec57 import ec57_confusion, ec57_scores  # noqa: E402
from pipelines import DS1, DS2, FEATURE_COLUMNS, PACED_RECORDS, TemplateSpec, template_features  # noqa: E402
from training.baselines import features_matrix, fit_rhythm, rhythm_matrix  # noqa: E402

CLASSES = ("N", "S", "V", "F")


def load(beats: Path) -> pd.DataFrame:
    cols = ["record", "aami", *FEATURE_COLUMNS]
    table = pq.read_table(beats, columns=cols).to_pandas()
    keep = table["aami"].isin(CLASSES) & ~table["record"].isin(PACED_RECORDS)
    return table[keep].reset_index(drop=True)


def score(y: np.ndarray, pred: np.ndarray, records: np.ndarray) -> dict:
    return ec57_scores(ec57_confusion(y, pred, records, CLASSES))


def line(name: str, s: dict) -> str:
    se, pp = s["sensitivity"], s["ppv"]
    return (f"{name:<34} acc {100 * s['accuracy']:5.1f}  S {100 * se['S']:5.1f} / {100 * pp['S']:5.1f}  "
            f"V {100 * se['V']:5.1f} / {100 * pp['V']:5.1f}  F Se {100 * se['F']:5.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beats", type=Path, default=ROOT / "datasets/beats/annotations.parquet")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    args = ap.parse_args(argv)
    params = yaml.safe_load(args.params.read_text())
    train_p = params["train"]
    rhythm, template = list(train_p["rhythm_features"]), list(train_p.get("template_features") or [])
    frame = load(args.beats)
    ds1, ds2 = frame["record"].isin(DS1).to_numpy(), frame["record"].isin(DS2).to_numpy()
    y = frame["aami"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy(np.int64)
    records = frame["record"].to_numpy(dtype=object)
    prior = np.bincount(y[ds1], minlength=len(CLASSES)) / ds1.sum()
    print(f"DS1 {ds1.sum():,} beats, DS2 {ds2.sum():,} beats (AAMI N S V F, paced records out); "
          f"rhythm {rhythm}; template {len(template)} columns")
    print(line("always N (majority)", score(y[ds2], np.zeros(ds2.sum(), np.int64), records[ds2])))
    for name, tpl in (("rhythm only", []), ("rhythm + template", template)):
        X = features_matrix(frame, rhythm, tpl) if tpl else rhythm_matrix(frame, rhythm)
        t0 = time.perf_counter()
        model = fit_rhythm(X[ds1], y[ds1], len(CLASSES), int(train_p["seed"]),
                           max_weight_ratio=float(train_p.get("class_weight_max_ratio", 0.0)))
        fit_s = time.perf_counter() - t0
        logp = np.log(np.clip(model.predict_proba(X[ds2]), 1e-12, None))
        for tau in (0.0, 1.0):
            pred = np.argmax(logp + tau * np.log(prior), axis=1)
            print(line(f"{name}, tau {tau:g}", score(y[ds2], pred, records[ds2])) + f"  (fit {fit_s:.1f} s)")
    # the segment stage's added cost: template columns of one 30-min record
    rng = np.random.default_rng(0)
    fs, n = 360.0, 650_000
    r = np.cumsum(rng.integers(250, 330, size=2300))
    r = r[r < n - 200]
    sig = rng.standard_normal(n) * 0.05
    t0 = time.perf_counter()
    template_features(sig, r, fs, TemplateSpec.from_params(params["segment"].get("template")))
    print(f"template columns of one 30-min record ({r.size:,} beats): {1000 * (time.perf_counter() - t0):.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
