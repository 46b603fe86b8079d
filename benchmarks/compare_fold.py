"""Compare settings of one training run on its first fold, by the validation figure the run selects on.

Trains fold 1 of ``train.runs.<run>`` once per variant (each variant a set of ``params.yaml`` keys changed
from the file's values) and prints, per variant, the best validation macro F1 (the figure that picks the
run's epoch and decision prior, :class:`training.selection.MacroF1Selection`), the epoch and tau it chose,
the fold's wall time, and the accuracy and per-class Se of the chosen decision on the same validation beats.
The test side of the fold is predicted (``train_fold`` writes its predictions into a scratch directory) but
never read or printed: settings are chosen on validation beats only.

Usage::

    python benchmarks/compare_fold.py --run small_cnn-beat-jun8 \\
        --variant default \\
        --variant b128 train.small_cnn.batch_size=128 train.runs.small_cnn-beat-jun8.learning_rate=0.008

Values are YAML (``true``, ``0.008``, ``[S]``). A variant's keys are applied to a copy of the params and
checked by the params schema as a whole, exactly as ``dvc repro`` would.

``--cv K`` (DS1 -> DS2 runs): record-grouped K-fold cross-validation inside DS1, the run's training side.
DS1's 22 records are split into K folds by record (the ``record`` scheme of :func:`training.make_folds`,
each fold's validation records carved from its training records as the run does); each variant trains K
models and is scored with EC57 on the held-out DS1 records, pooled over the folds, beside the run's RR +
template features baseline on the same beats. DS2 is never read. A DS1 validation side of two or three
records is too small to choose a setting on (docs/training.md); K held-out parts of DS1 are the whole of it::

    python benchmarks/compare_fold.py --run small_cnn-ds1ds2 --cv 3 \
        --variant default --variant b128 train.small_cnn.batch_size=128

``--seeds S [S ...]`` (with ``--cv``): each variant is cross-validated once per ``train.seed`` (the seed also
draws the folds, the training images and the initial weights), and its rows are followed by the mean and
sample sd over the seeds. Inside DS1 one seed is not enough to rank two settings: the same setting's held-out
S Se ranged from 2 to 35 % over three seeds (docs/training.md)::

    python benchmarks/compare_fold.py --run small_cnn-ds1ds2 --cv 3 --seeds 42 1 2 \
        --variant default --variant cw_none train.class_weight=none
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipelines.core.params import load_params  # noqa: E402


def apply(params: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """``params`` with each ``dotted.key=yaml-value`` set (a copy; missing mappings are created).

    >>> apply({"a": {"b": 1}}, ["a.b=2", "a.c=[S]"])
    {'a': {'b': 2, 'c': ['S']}}
    """
    out = copy.deepcopy(params)
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"compare_fold: {item!r}: expected dotted.key=value")
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="run name under train.runs")
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--images", default=None, help="image shards (default datasets/images/<the run's method>)")
    ap.add_argument("--variant", nargs="+", action="append", required=True, metavar=("NAME", "KEY=VALUE"),
                    help="a variant: its name, then the keys it changes (none: the params as they are)")
    ap.add_argument("--cv", type=int, default=0, metavar="K",
                    help="DS1 -> DS2 runs: K-fold cross-validation by record inside DS1, scored with EC57")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, metavar="S",
                    help="with --cv: cross-validate each variant once per train.seed; print mean and sd over them")
    args = ap.parse_args(argv)
    if args.seeds and not args.cv:
        raise SystemExit("compare_fold: --seeds needs --cv (fold 1's validation figure is one fold of one seed)")
    if args.cv:
        return cross_validate(args)

    from training import models
    from training.meta import open_images
    from training.runtime import configure
    from training.train import Prepared, train_fold

    base = yaml.safe_load(Path(args.params).read_text())
    rows = []
    for name, *assignments in args.variant:
        cfg = variant_config(base, assignments, args.run)
        with tempfile.TemporaryDirectory() as tmp:
            images = open_images(args.images or ROOT / "datasets" / "images" / cfg.method)
            t0 = time.perf_counter()
            prep = Prepared(cfg, images)
            configure(cfg.seed)
            summary = train_fold(prep, 0, Path(tmp) / "work", precision=models.resolve_precision(cfg.mixed_precision),
                                 stream=sys.stderr)
            seconds = round(time.perf_counter() - t0, 1)
            val = validation_figures(prep, Path(tmp) / "work" / "fold-00")
        row = {"variant": name, "changes": assignments, "val_macro_f1": summary["best_val_macro_f1"],
               "best_epoch": summary["best_epoch"], "tau": summary["decision_tau"],
               "train_images": summary["train_images"], "seconds": seconds, **val}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{args.run}, fold 1, validation macro F1 (the run's selection figure), and the validation accuracy "
          "and lowest class Se of the decision it chose (percent):")
    for r in rows:
        f1 = "n/a" if r["val_macro_f1"] is None else f"{r['val_macro_f1']:.4f}"
        low = min(r["val_se"].items(), key=lambda kv: kv[1]) if r["val_se"] else ("-", float("nan"))
        print(f"  {r['variant']:<20} {f1:>8}  acc {r['val_accuracy']:6.2f}  min Se {low[0]} {low[1]:5.1f}  "
              f"epoch {r['best_epoch']}  tau {r['tau']:.1f}  {r['seconds']:7.1f} s  " + " ".join(r["changes"]))
    return 0


def validation_figures(prep: Any, fold_dir: Path) -> dict[str, Any]:
    """Accuracy and per-class Se (percent) of fold 1's saved model and decision rule on its validation beats.

    The model and prior correction are the ones :func:`training.train.train_fold` wrote (the selected epoch,
    the chosen tau); the beats are the fold's validation side, the side the run selects on, over the classes
    the run trains (AAMI Q left out), unweighted: for ``record`` and ``ds1ds2`` runs, whose validation records
    are chosen for their rare classes, this accuracy is not the one at the training side's class frequencies
    that the decision floor uses. The test side is not read.
    """
    import keras
    import numpy as np

    from evaluation import confusion_matrix, overall_accuracy, per_class_scores
    from training.data import make_dataset
    from training.selection import PRIOR_FILE, adjust, read_prior

    cfg, sel = prep.cfg, prep.selections[0]["val"]
    if not (np.asarray(sel.y) >= 0).any():          # no validation beat of a trained class
        return {"val_accuracy": float("nan"), "val_se": {}, "val_beats": {}}
    model = keras.models.load_model(fold_dir / "model.keras", compile=False)
    bias = read_prior(fold_dir / PRIOR_FILE, cfg.train_classes)
    feats = {} if prep.rhythm is None else {"features": prep.rhythm[sel.rows]}
    ds = make_dataset(prep.images, sel, input_size=cfg.input_size, batch_size=1024, shuffle=False, seed=0, **feats)
    pred = adjust(np.asarray(model.predict(ds, verbose=0), np.float32), bias).argmax(1)
    keras.backend.clear_session()
    y = np.asarray(sel.y)
    trained = y >= 0                                  # -1: a class the run does not train (AAMI Q)
    cm = confusion_matrix(y[trained], pred[trained], len(cfg.train_classes))
    scores = per_class_scores(cm)
    present = [(i, c) for i, c in enumerate(cfg.train_classes) if scores["support"][i]]
    return {"val_accuracy": round(100 * overall_accuracy(cm), 2),
            "val_se": {c: round(100 * float(scores["sensitivity"][i]), 2) for i, c in present},
            "val_beats": {c: int(scores["support"][i]) for i, c in present}}


def variant_config(base: dict[str, Any], assignments: list[str], run: str) -> Any:
    """The :class:`training.RunConfig` of ``run`` under ``base`` with ``assignments`` applied, the params validated
    as a whole from a file, as a stage would."""
    from training.config import run_config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "params.yaml"
        path.write_text(yaml.safe_dump(apply(base, assignments), sort_keys=False))
        return run_config(load_params(path, "train"), run)


def ds1_images(images: Any, features: tuple[str, ...]) -> Any:
    """``images`` restricted to DS1's rows, with the RR and template columns carried in its ``rows`` (read from
    the shards once, while the rows still line up with them)."""
    import dataclasses

    from pipelines import DS1, RR_COLUMNS
    from training.data import rr_columns

    rows = images.rows.assign(**rr_columns(images, tuple(dict.fromkeys((*RR_COLUMNS, *features)))))
    keep = rows["record"].astype(str).isin(DS1).to_numpy()
    return dataclasses.replace(images, rows=rows[keep].reset_index(drop=True))


def ec57_figures(pred: Any, classes: tuple[str, ...]) -> dict[str, float]:
    """EC57 accuracy, S and V Se / +P of a predictions table (``y_true``, ``y_pred``, ``record``), in percent."""
    import numpy as np

    from evaluation.ec57 import ec57_confusion, ec57_scores

    pred = pred[pred["y_true"].notna()]
    index = {c: i for i, c in enumerate(classes)}
    cm = ec57_confusion(pred["y_true"].map(index).to_numpy(np.int64), pred["y_pred"].map(index).to_numpy(np.int64),
                        pred["record"].astype(str).to_numpy(), classes)
    s = ec57_scores(cm)

    def pct(x: float) -> float | None:            # None (JSON null, printed "-") where undefined
        return None if np.isnan(x) else round(100 * x, 2)

    return {"beats": s["n"], "accuracy": pct(s["accuracy"]),
            **{f"{c}_{k}": pct(s[name][c]) for c in ("S", "V") for k, name in (("se", "sensitivity"), ("ppv", "ppv"))}}


#: The EC57 figures of :func:`ec57_figures` that the comparisons print.
FIGURES = ("accuracy", "S_se", "S_ppv", "V_se", "V_ppv")


def summarise(rows: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Mean and sample standard deviation (nan for one row) of each EC57 figure over ``rows`` (one per seed);
    an undefined figure (None) is left out of its mean.

    >>> summarise([{"accuracy": 90.0, "S_se": 70.0, "S_ppv": 50.0, "V_se": 90.0, "V_ppv": 80.0},
    ...            {"accuracy": 92.0, "S_se": 74.0, "S_ppv": 50.0, "V_se": 94.0, "V_ppv": None}])["S_se"]
    (72.0, 2.83)
    """
    import numpy as np

    from evaluation import nan_mean, nan_std

    out = {}
    for key in FIGURES:
        v = np.array([np.nan if r.get(key) is None else r[key] for r in rows], np.float64)
        out[key] = (round(nan_mean(v), 2), round(nan_std(v), 2))
    return out


def _cell(x: float | None, width: int) -> str:
    return f"{'-':>{width}}" if x is None else f"{x:{width}.1f}"


def cross_validate(args: argparse.Namespace) -> int:
    """``--cv K``: each variant (once per ``--seeds`` seed) trained on K record-grouped folds of DS1, scored on the
    held-out records."""
    if args.cv < 2:
        raise SystemExit(f"compare_fold: --cv {args.cv}: K must be at least 2")
    base = yaml.safe_load(Path(args.params).read_text())
    rows: list[dict[str, Any]] = []
    sets: dict[tuple[str, tuple[str, ...]], Any] = {}   # DS1 image sets, read once per (method, feature columns)
    for name, *assignments in args.variant:
        for seed in args.seeds or [None]:
            changes = assignments + ([] if seed is None else [f"train.seed={seed}"])
            row = {"variant": name, "changes": changes, "seed": seed,
                   **cross_validate_variant(args, variant_config(base, changes, args.run), sets)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    seeds = "" if not args.seeds else f", per train.seed ({' '.join(map(str, args.seeds))}) and mean +- sd over them"
    print(f"\n{args.run}, {args.cv}-fold cross-validation by record inside DS1, EC57 on the held-out DS1 records "
          f"(pooled; percent){seeds}:")
    print(f"  {'variant':<24} {'accuracy':>8} {'S Se':>6} {'S +P':>6} {'V Se':>6} {'V +P':>6} {'s':>7}")
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == name]
        for r in mine:
            tag = r["variant"] if r["seed"] is None else f"{r['variant']} seed {r['seed']}"
            for label, fig in (("", r["model"]), ("  majority", r.get("majority")),
                               ("  RR + template", r.get("rr_template"))):
                if fig is not None:
                    print(f"  {(tag + label):<24} {_cell(fig['accuracy'], 8)} "
                          + " ".join(_cell(fig[k], 6) for k in FIGURES[1:])
                          + f" {r['seconds'] if not label else '':>7}")
        if len(mine) > 1:
            for label, key in (("", "model"), ("  RR + template", "rr_template")):
                figs = [r[key] for r in mine if key in r]
                if len(figs) == len(mine):
                    stats = summarise(figs)
                    print(f"  {(name + ' mean +- sd' + label):<24} "
                          + " ".join(f"{stats[k][0]:.2f}+-{stats[k][1]:.2f}" for k in FIGURES))
    return 0


def cross_validate_variant(args: argparse.Namespace, cfg: Any, sets: dict[tuple[str, tuple[str, ...]], Any]
                           ) -> dict[str, Any]:
    """One variant's ``--cv`` figures: ``seconds``, and the EC57 figures (:func:`ec57_figures`) of the model
    (``model``) and of the baselines (``majority``, ``rr_template``), pooled over the K held-out parts of DS1.
    ``sets`` holds the DS1 image sets already read (:func:`ds1_images`), by method and template columns: the
    variants and seeds of one command share them instead of reading the shards' columns again."""
    import dataclasses

    import pandas as pd

    from training import models
    from training.meta import open_images
    from training.runtime import configure
    from training.train import Prepared, train_fold

    if cfg.folds != "ds1ds2":
        raise SystemExit(f"compare_fold: --cv needs a DS1 -> DS2 run; {args.run} has folds {cfg.folds!r}")
    key = (cfg.method, tuple(cfg.template_features))
    if key not in sets:
        sets[key] = ds1_images(open_images(args.images or ROOT / "datasets" / "images" / cfg.method),
                               cfg.template_features)
    images = sets[key]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        prep = Prepared(dataclasses.replace(cfg, folds="record", k=args.cv), images)
        model_parts, base_parts = [], {"majority": [], "features": []}
        for i in range(args.cv):
            configure(cfg.seed)
            train_fold(prep, i, Path(tmp) / "work", precision=models.resolve_precision(cfg.mixed_precision),
                       stream=sys.stderr)
            fold_dir = Path(tmp) / "work" / f"fold-{i:02d}"
            model_parts.append(pd.read_parquet(fold_dir / "predictions.parquet"))
            if (fold_dir / "baselines.parquet").exists():
                b = pd.read_parquet(fold_dir / "baselines.parquet")
                for kind, parts in base_parts.items():
                    parts.append(b[b["model"] == kind])
    classes = tuple(prep.classes)
    out = {"seconds": round(time.perf_counter() - t0, 1), "model": ec57_figures(pd.concat(model_parts), classes)}
    for kind, key in (("majority", "majority"), ("features", "rr_template")):
        if sum(len(b) for b in base_parts[kind]):
            out[key] = ec57_figures(pd.concat(base_parts[kind]), classes)
    return out


if __name__ == "__main__":
    sys.exit(main())
