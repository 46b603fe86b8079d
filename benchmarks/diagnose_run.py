"""Where a trained run's errors come from: what the N beats were called, in which records, and the fold settings
behind it (decision tau, the training images' class mix, the validation beats per class).

Reads only what the train stage wrote (``models/<run>/run.json``, ``fold-XX/predictions.parquet``) and, with
``--images``, the fold plan of the run as ``params.yaml`` sets it (:class:`training.train.Prepared`, no training).
It chooses nothing: the figures are for reading a run, never for tuning on its test side.

Usage::

    python benchmarks/diagnose_run.py --run models/small_cnn-record [--images datasets/images/annotations]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def read_predictions(run_dir: Path) -> pd.DataFrame:
    """Every ``fold-XX/predictions.parquet`` of a run, concatenated (``y_true``, ``y_pred``, ``record``)."""
    paths = sorted(Path(run_dir).glob("fold-*/predictions.parquet"))
    if not paths:
        raise SystemExit(f"diagnose_run: {run_dir}: no fold-XX/predictions.parquet (train the run first)")
    return pd.concat([pd.read_parquet(p, columns=["record", "y_true", "y_pred"]) for p in paths], ignore_index=True)


def error_summary(pred: pd.DataFrame, majority: str = "N", top: int = 3) -> dict[str, Any]:
    """Errors (prediction unlike the reference label, beats of untrained classes included), what the
    ``majority`` beats were called, and for each other class the ``top`` records where most majority beats
    were called it.

    >>> p = pd.DataFrame({"record": ["1", "1", "2", "2"], "y_true": ["N", "N", "N", "S"],
    ...                   "y_pred": ["F", "N", "F", "N"]})
    >>> s = error_summary(p)
    >>> s["errors"], s["majority_called"], s["top_records"]["F"]
    (3, {'F': 2, 'N': 1}, {'1': 1, '2': 1})
    """
    wrong = pred["y_true"].astype(object) != pred["y_pred"].astype(object)
    maj = pred[pred["y_true"] == majority]
    called = maj["y_pred"].value_counts()
    tops = {}
    for cls in called.index:
        if cls != majority:
            by_record = maj.loc[maj["y_pred"] == cls, "record"].astype(str).value_counts()
            tops[str(cls)] = {str(r): int(n) for r, n in by_record.head(top).items()}
    return {"beats": int(len(pred)), "errors": int(wrong.sum()),
            "majority_called": {str(c): int(n) for c, n in called.items()}, "top_records": tops}


def fold_settings(run_json: dict[str, Any]) -> list[dict[str, Any]]:
    """Per fold: the decision tau, the tau macro F1 alone would have chosen (a difference: the floor bound),
    whether it met ``train.decision_floor`` (None: no floor, or a run from before it), the training images
    per class and the first class's share of them.

    >>> fold_settings({"classes": ["N", "S"], "fold_summaries": [
    ...     {"fold": 0, "decision_tau": 0.1, "train_class_images": {"N": 3, "S": 1}}]})[0]["first_class_share"]
    0.75
    """
    first = run_json["classes"][0]                         # N for AAMI, NOR for jun8 (the keys below are sorted)
    out = []
    for f in run_json["fold_summaries"]:
        images = f["train_class_images"]
        out.append({"fold": f["fold"], "decision_tau": f["decision_tau"],
                    "decision_tau_unfloored": f.get("decision_tau_unfloored"),
                    "decision_floor_met": f.get("decision_floor_met"), "train_class_images": images,
                    "first_class_share": round(images[first] / max(sum(images.values()), 1), 3)})
    return out


def validation_beats(run: str, params: Path, images: Path) -> list[dict[str, int]]:
    """Validation beats per trained class of each fold, from the run's fold plan under ``params``."""
    import numpy as np

    from pipelines import load_params
    from training import open_images, run_config
    from training.train import Prepared

    cfg = run_config(load_params(params, "train"), run)
    prep = Prepared(cfg, open_images(images))
    return [dict(zip(cfg.train_classes, np.bincount(s["val"].y, minlength=len(cfg.train_classes)).tolist()))
            for s in prep.selections]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, type=Path, help="a trained run directory, models/<run>")
    ap.add_argument("--images", type=Path, help="its image set: also count each fold's validation beats per class")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    args = ap.parse_args(argv)
    run_json = json.loads((args.run / "run.json").read_text())
    report = {"run": run_json["run"], **error_summary(read_predictions(args.run)),
              "folds": fold_settings(run_json)}
    if args.images:
        for fold, counts in zip(report["folds"], validation_beats(run_json["run"], args.params, args.images)):
            fold["val_beats"] = counts
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
