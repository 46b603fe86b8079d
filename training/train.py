"""Stage ``train@<run>``: K-fold training of one run on an image-shard directory.

Usage (as in dvc.yaml)::

    python -m training.train --run small_cnn-record --params params.yaml \\
        --images datasets/images/annotations --out models/small_cnn-record

Everything is checked before the first epoch: params, the shards (presence and SHA-256 against the
manifest), the labels (a class without beats is an error that names it), the folds (every class on
both sides of every fold) and the leak guard (:func:`training.folds.check_plan` and
:func:`training.folds.check_fold_rows`). Then each fold trains with early stopping on its validation
set, predicts its test beats (originals only), and is kept in a work directory outside the DVC output,
``.cache/train/<run>/<key>/fold-XX/`` (key: hash of the run's params, the images manifest and the
training code). A rerun after a crash resumes from the last finished fold. At the end the folds are
copied into ``--out`` in one atomic step, with ``run.json`` and ``history.csv``.

Outputs (``models/<run>/``): ``run.json``, ``history.csv`` (all folds, ``fold`` column first) and per
fold ``fold-XX/model.keras``, ``fold-XX/prior.json`` (the prior correction of the decision rule,
:mod:`training.selection`), ``fold-XX/predictions.parquet`` (``beat_id``, ``record``, ``fold``,
``y_true``, ``y_pred``, ``p_<trained class>``...), ``fold-XX/history.csv`` and, when the image set
has the RR columns, ``fold-XX/baselines.parquet`` (:mod:`training.baselines`).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import (ConfigError, DataError, Progress, atomic_dir, load_params, params_hash, peak_rss_mb, run_stage,
                       write_json)

from .config import RunConfig, run_config
from .data import (Selection, beat_positions, branch_scale, cap_per_class, class_weights, fold_selections,
                   make_dataset, rhythm_inputs, rr_columns)
from .folds import FoldPlan, check_fold_rows, check_plan, make_folds
from .meta import ImageSet, check_classes, label_rows, open_images

DEFAULT_CACHE = Path(".cache/train")
#: Smallest batch for validation and test predictions (no gradients: memory is not the limit).
EVAL_BATCH = 256
_EPOCH = (1980, 1, 1, 0, 0, 0)


def code_hash() -> str:
    """SHA-256 (12 hex) of the training package's source: a code change invalidates cached folds."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def save_model(model: Any, path: Path) -> None:
    """``model.save`` with fixed zip timestamps and save date, so equal weights give equal bytes."""
    tmp = path.with_name(path.stem + ".tmp.keras")
    model.save(tmp)
    with zipfile.ZipFile(tmp) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta["date_saved"] = "1980-01-01@00:00:00"
                data = json.dumps(meta).encode()
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=_EPOCH), data, compress_type=info.compress_type)
    tmp.unlink()


def _seed(seed: int, *parts: int) -> int:
    return int(np.random.default_rng([seed, *parts]).integers(2**31 - 1))


class Prepared:
    """Everything checked before training: labels, folds, and each fold's guarded row selections."""

    def __init__(self, cfg: RunConfig, images: ImageSet):
        self.cfg, self.images = cfg, images
        rows = images.rows
        self.y_rows, self.classes, self.dropped = label_rows(rows, cfg.labels)
        crop = rows["crop"].to_numpy()
        self.beat_rows = np.flatnonzero((crop == 0) & (self.y_rows >= 0))
        y_beats = self.y_rows[self.beat_rows]
        check_classes(y_beats, self.classes, cfg.labels, str(images.root))
        #: scheme indices of the trained classes (model output order), and scheme index -> output index
        self.trained = tuple(self.classes.index(c) for c in cfg.train_classes)
        self.remap = np.full(len(self.classes), -1, np.int32)
        self.remap[list(self.trained)] = np.arange(len(self.trained), dtype=np.int32)
        self.baseline_features = cfg.rhythm_features
        self.rhythm = rhythm_inputs(images, names=cfg.branch_features) if cfg.rhythm else None  # fails early without RR
        beat_ids = rows["beat_id"].to_numpy(dtype=object)
        records = rows["record"].to_numpy(dtype=object)
        self.beat_ids, self.records = beat_ids[self.beat_rows], records[self.beat_rows]
        self.plan: FoldPlan = make_folds(self.beat_ids, self.records, y_beats, scheme=cfg.folds, k=cfg.k,
                                         seed=cfg.seed, validation_fraction=cfg.validation_fraction,
                                         classes=self.classes, trained=self.trained)
        check_plan(self.plan, self.beat_ids, self.records, y_beats, classes=self.classes)
        beat_pos = beat_positions(rows, self.beat_rows)
        n_classes = len(self.trained)
        if 0 < cfg.max_train_images < n_classes:
            raise ConfigError(f"params.yaml: train.{cfg.model}.max_train_images={cfg.max_train_images} is fewer "
                              f"than the {n_classes} classes")
        self.selections: list[dict[str, Selection]] = []
        #: per fold, the training side's beats per trained class before the cap (originals, not crops):
        #: the class prior of the decision rule (training.selection.prior_bias)
        self.prior_counts: list[np.ndarray] = []
        for fold in self.plan.folds:
            sels = fold_selections(images, self.y_rows, self.beat_rows, beat_pos, fold, crops=cfg.crops)
            original = (crop[sels["train"].rows] == 0) & (sels["train"].crop == 0)
            trained_y = self.remap[sels["train"].y[original]]
            self.prior_counts.append(np.bincount(trained_y[trained_y >= 0], minlength=n_classes)[:n_classes])
            for side in ("train", "val"):
                if cfg.max_train_images and len(sels[side]) > cfg.max_train_images:
                    rng = np.random.default_rng([cfg.seed, 2, fold.index, side == "val"])
                    # training: water-filled over classes; validation: a uniform sample, so that its class
                    # frequencies stay those of its records (the epoch and the decision prior are chosen there)
                    keep = (cap_per_class(sels[side].y, cfg.max_train_images, rng) if side == "train" else
                            np.sort(rng.choice(len(sels[side]), cfg.max_train_images, replace=False)))
                    sels[side] = sels[side].take(keep)
            check_fold_rows(fold.index, beat_ids, records, crop, train=sels["train"].rows, val=sels["val"].rows,
                            test=sels["test"].rows, by_record=cfg.folds in ("record", "ds1ds2"),
                            test_beats=self.beat_ids[fold.test])
            for side in ("train", "val"):                  # model output indices on the learning sides
                sels[side] = Selection(sels[side].rows, sels[side].crop, self.remap[sels[side].y])
            missing = [cfg.train_classes[c] for c in range(n_classes) if not (sels["train"].y == c).any()]
            if missing:
                raise ConfigError(f"fold {fold.index}: class {', '.join(missing)} has no training images")
            self.selections.append(sels)


def _history_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    from .callbacks import HISTORY_COLUMNS

    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def predictions_table(beat_ids: np.ndarray, records: np.ndarray, fold: int | np.ndarray, y_true: np.ndarray,
                      probs: np.ndarray, classes: tuple[str, ...]) -> pa.Table:
    """``beat_id, record, fold, y_true, y_pred, p_<class>...`` (the ``predictions.parquet`` layout).

    ``y_true`` holds class names or None (unlabelled); ``y_pred`` is the argmax of ``probs``.
    """
    names = np.array(classes, dtype=object)
    cols: dict[str, pa.Array] = {
        "beat_id": pa.array(np.asarray(beat_ids, dtype=object), pa.string()),
        "record": pa.array(np.asarray(records, dtype=object), pa.string()),
        "fold": pa.array(np.broadcast_to(np.asarray(fold, np.int32), (len(probs),)).copy()),
        "y_true": pa.array(np.asarray(y_true, dtype=object), pa.string()),
        "y_pred": pa.array(names[probs.argmax(1)], pa.string()),
    }
    for c, name in enumerate(classes):
        cols[f"p_{name}"] = pa.array(probs[:, c].astype(np.float32))
    return pa.table(cols)


def _predictions_table(prep: Prepared, fold: int, sel: Selection, probs: np.ndarray) -> pa.Table:
    meta = prep.images.rows
    return predictions_table(meta["beat_id"].to_numpy(dtype=object)[sel.rows],
                             meta["record"].to_numpy(dtype=object)[sel.rows], fold,
                             np.array(prep.classes, dtype=object)[sel.y], probs, prep.cfg.train_classes)


def _baselines_table(prep: Prepared, index: int, sels: dict[str, Selection]) -> pd.DataFrame | None:
    """Majority, rhythm-only and (with ``train.template_features``) RR + template baselines on the fold's test
    beats (None without RR columns)."""
    from pipelines import RR_COLUMNS

    from .baselines import baseline_predictions

    template = prep.cfg.template_features
    try:
        columns = rr_columns(prep.images, RR_COLUMNS + template)
    except DataError as exc:
        if not template:
            return None
        print(f"fold {index + 1}: no RR + template features baseline: {exc}", file=sys.stderr, flush=True)
        template = ()
        try:
            columns = rr_columns(prep.images)
        except DataError:
            return None
    meta = prep.images.rows
    train_rows = np.concatenate([sels["train"].rows[sels["train"].crop == 0], sels["val"].rows])
    train_rows = train_rows[meta["crop"].to_numpy()[train_rows] == 0]       # one row per beat
    test = sels["test"].rows
    frame = meta[["beat_id", "record"]].assign(**columns)
    y_train = prep.remap[prep.y_rows[train_rows]]
    y_test = np.maximum(prep.remap[sels["test"].y], 0)            # placeholder for untrained classes
    table = baseline_predictions(frame.iloc[train_rows].reset_index(drop=True), y_train,
                                 frame.iloc[test].reset_index(drop=True), y_test,
                                 classes=prep.cfg.train_classes, fold=index, seed=prep.cfg.seed,
                                 max_weight_ratio=prep.cfg.class_weight_max_ratio,
                                 features=prep.baseline_features, template=template)
    names = np.array(prep.classes, dtype=object)[sels["test"].y]
    table["y_true"] = np.tile(names, len(table) // max(len(names), 1))
    return table


class _Member(NamedTuple):
    """One trained member of a fold: the model (best epoch's weights restored), its selector and epoch log."""

    model: Any
    selector: Any
    log: Any
    fit_seconds: float


def member_seed(seed: int, fold: int, member: int) -> int:
    """The seed of member ``member`` of fold ``fold``: member 0's is the fold's seed of a single model, so that
    ``ensemble: 1`` trains exactly the model it always did.

    >>> member_seed(42, 0, 0) == _seed(42, 3, 0) != member_seed(42, 0, 1)
    True
    """
    return _seed(seed, 3, fold) if member == 0 else _seed(seed, 3, fold, member)


def ensemble_model(members: list[Any]) -> Any:
    """One Keras model averaging the softmax outputs of ``members`` (equal inputs, one output each).

    The members are nested (``member0``, ``member1``...), so the ensemble saves, loads and predicts as one
    ``model.keras`` with the inputs of a single member: :mod:`training.predict` and the web app need nothing
    else. One member is returned as it is.
    """
    import keras

    from .models import INPUT_NAMES

    if len(members) == 1:
        return members[0]
    first = members[0]
    inputs = [keras.Input(tuple(x.shape[1:]), name=name) for x, name in zip(first.inputs, INPUT_NAMES)]
    wrapped = [keras.Model(m.inputs, m.outputs[0], name=f"member{i}") for i, m in enumerate(members)]
    feed = inputs if len(inputs) > 1 else inputs[0]
    out = keras.layers.Average(dtype="float32", name="ensemble_mean")([w(feed) for w in wrapped])
    return keras.Model(feed, out, name=f"{first.name}_x{len(members)}")


def train_fold(prep: Prepared, index: int, work: Path, *, precision: str, stream: TextIO) -> dict[str, Any]:
    """Train, predict and write one fold into ``work/fold-XX`` (atomically); return its summary.

    With ``train.runs.<run>.ensemble`` = K > 1 the fold trains K members, each from its own seed (initial
    weights, batch order, dropout) on the same images, each keeping its own best epoch; the fold's model
    averages their probabilities (:func:`ensemble_model`), and the decision prior is chosen on that average's
    validation probabilities, exactly as for one model.
    """
    import keras

    from .callbacks import EpochLog
    from .models import build_model, compile_model
    from .selection import PRIOR_FILE, MacroF1Selection, adjust, prior_bias, write_prior

    cfg = prep.cfg
    sels = prep.selections[index]
    n_folds = len(prep.plan.folds)
    label = f"fold {index + 1}/{n_folds}"
    fold_seed = member_seed(cfg.seed, index, 0)
    n_out = len(cfg.train_classes)
    weights = class_weights(sels["train"].y, n_out, cfg.class_weight, cfg.class_weight_max_ratio)
    tau = None if cfg.decision_prior == "auto" else float(cfg.decision_prior)

    def feats(side: str) -> dict[str, Any]:
        return {} if prep.rhythm is None else {"features": prep.rhythm[sels[side].rows]}

    eval_batch = max(cfg.batch_size, EVAL_BATCH)     # inference only: bigger batches are cheaper per image
    # each side decoded once and held in memory when it fits train.image_cache_mb (10,000 images at 32 px: 10 MB):
    # the training and validation sides are read every epoch; the batches are the same either way
    def cache(side: str) -> bool:
        return len(sels[side]) * cfg.input_size ** 2 <= cfg.image_cache_mb * 2**20

    def dataset(side: str, seed: int, **kw: Any) -> Any:
        return make_dataset(prep.images, sels[side], input_size=cfg.input_size, seed=seed,
                            shuffle_buffer=cfg.shuffle_buffer, cache=cache(side), **kw, **feats(side))

    val_ds = (dataset("val", fold_seed, shuffle=False, batch_size=eval_batch) if len(sels["val"]) else None)
    test_ds = dataset("test", fold_seed, shuffle=False, batch_size=eval_batch)
    n_crops = int((prep.images.rows["crop"].to_numpy()[sels["train"].rows] > 0).sum() + (sels["train"].crop > 0).sum())
    print(f"{label}: train {len(sels['train']):,} images ({n_crops:,} crops), validation {len(sels['val']):,}, "
          f"test {len(sels['test']):,} beats; class weights "
          + ", ".join(f"{c} {w:.3g}" for c, w in zip(cfg.train_classes, weights))
          + f"; decision prior {cfg.decision_prior}"
          + (f"; {cfg.ensemble} members" if cfg.ensemble > 1 else ""), file=stream, flush=True)

    def fit_member(member: int) -> _Member:
        seed = member_seed(cfg.seed, index, member)
        keras.utils.set_random_seed(seed)          # resumed folds train exactly as in a full run
        train_ds = dataset("train", seed, shuffle=True, weights=weights, batch_size=cfg.batch_size)
        model = build_model(cfg.model, n_out, input_size=cfg.input_size, width=cfg.width, dtype=precision,
                            bn_momentum=cfg.bn_momentum,
                            rhythm_features=0 if prep.rhythm is None else int(prep.rhythm.shape[1]),
                            timed=tuple(cfg.train_classes.index(c) for c in cfg.timed_classes),
                            timed_features=len(cfg.rhythm_features) if cfg.template_features else 0,
                            image_dropout=cfg.image_dropout, rhythm_units=cfg.rhythm_units,
                            rhythm_scale=(branch_scale(prep.rhythm[sels["train"].rows])
                                          if prep.rhythm is not None and cfg.rhythm_standardize else None))
        # XLA is off: ~4x slower than the oneDNN kernels on the CPUs measured (benchmarks/bench_train.py).
        learning_rate: Any = cfg.learning_rate
        if cfg.lr_schedule == "cosine":    # to 0 over the planned steps: the last epochs settle instead of jumping
            steps = -(-len(sels["train"]) // cfg.batch_size) * cfg.epochs
            learning_rate = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=steps,
                                                                   name="cosine")
        compile_model(model, learning_rate=learning_rate, dtype=precision, jit_compile=False)
        name = label if cfg.ensemble == 1 else f"{label} member {member + 1}/{cfg.ensemble}"
        log = EpochLog(len(sels["train"]), cfg.batch_size, cfg.epochs, name, stream=stream)
        callbacks: list[Any] = [log]
        selector = None
        if val_ds is not None:     # selection by macro F1 on the validation records; it logs before EpochLog
            selector = MacroF1Selection(val_ds, sels["val"].y, sels["train"].y, weights, tau, cfg.patience,
                                        min_beats=cfg.selection_min_beats, prior_counts=prep.prior_counts[index],
                                        floor=cfg.decision_floor)
            callbacks.insert(0, selector)
        t0 = time.perf_counter()
        model.fit(train_ds, epochs=cfg.epochs, callbacks=callbacks, shuffle=False, verbose=0)
        return _Member(model, selector, log, time.perf_counter() - t0)

    members = [fit_member(m) for m in range(cfg.ensemble)]
    model = ensemble_model([m.model for m in members])
    first = members[0].selector
    best_score = None if first is None else float(first.best)
    met, free_tau = (None, None) if first is None else (first.best_met, first.best_free_tau)
    if first is not None and len(members) == 1:
        tau = first.best_tau
    elif first is not None:       # the ensemble's decision prior, by the same rule, on its own validation probabilities
        tau, best_score, met, free_tau, _ = first.decide(model.predict(val_ds, verbose=0))
    bias = prior_bias(sels["train"].y, weights, n_out, 1.0 if tau is None else tau, prep.prior_counts[index])
    t1 = time.perf_counter()
    probs = adjust(np.asarray(model.predict(test_ds, verbose=0), dtype=np.float32), bias)
    predict_s = time.perf_counter() - t1
    if probs.shape != (len(sels["test"]), n_out):
        raise RuntimeError(f"{label}: {probs.shape} predictions for {len(sels['test'])} test beats")
    table = _predictions_table(prep, index, sels["test"], probs)
    history = _history_frame([{"member": i, **row} for i, m in enumerate(members) for row in m.log.rows])
    bests = [m.selector.best_epoch if m.selector is not None and m.selector.best_epoch else len(m.log.rows)
             for m in members]
    baselines = _baselines_table(prep, index, sels)
    y_pred = np.asarray(cfg.train_classes, dtype=object)[probs.argmax(1)]
    y_true = np.asarray(prep.classes, dtype=object)[sels["test"].y]
    scored = np.isin(y_true, cfg.train_classes)
    summary = {
        "fold": index, "train_images": len(sels["train"]), "train_crops": n_crops,
        "val_images": len(sels["val"]), "test_beats": len(sels["test"]),
        "train_records": int(len(np.unique(prep.images.rows["record"].to_numpy(dtype=object)[sels["train"].rows]))),
        "test_records": int(len(np.unique(prep.images.rows["record"].to_numpy(dtype=object)[sels["test"].rows]))),
        # over all members: epochs trained, and training images seen (the run's images/s divides them by time)
        "epochs_run": len(history), "best_epoch": bests[0], "train_images_seen": len(sels["train"]) * len(history),
        "members": len(members), "member_best_epochs": bests,
        "member_val_macro_f1": [None if m.selector is None else float(m.selector.best) for m in members],
        "train_seconds": sum(m.log.train_seconds for m in members),
        "fit_seconds": sum(m.fit_seconds for m in members), "predict_seconds": predict_s,
        "accuracy": float((y_pred == y_true)[scored].mean()) if scored.any() else float("nan"),
        "best_val_macro_f1": best_score,
        "class_weights": dict(zip(cfg.train_classes, weights.round(6).tolist())),
        "prior_bias": dict(zip(cfg.train_classes, [round(float(b), 6) for b in bias])),
        "prior_beats": dict(zip(cfg.train_classes, prep.prior_counts[index].tolist())),
        "train_class_images": dict(zip(cfg.train_classes,
                                       np.bincount(sels["train"].y, minlength=n_out)[:n_out].tolist())),
        "decision_tau": 1.0 if tau is None else float(tau),
        "decision_floor_met": met,                  # None: no floor applied
        "decision_tau_unfloored": free_tau,         # macro F1 alone's tau
        "n_params": int(model.count_params()),
    }
    target = work / f"fold-{index:02d}"
    with atomic_dir(target) as tmp:
        save_model(model, tmp / "model.keras")
        write_prior(tmp / PRIOR_FILE, cfg.train_classes, bias, 1.0 if tau is None else float(tau))
        if baselines is not None:
            pq.write_table(pa.Table.from_pandas(baselines, preserve_index=False), tmp / "baselines.parquet",
                           compression="zstd")
        pq.write_table(table, tmp / "predictions.parquet", compression="zstd")
        history.to_csv(tmp / "history.csv", index=False)
        (tmp / "fold.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        (tmp / "DONE").write_text("")
    keras.backend.clear_session()
    return summary


def _scores(pred: pd.DataFrame, classes: tuple[str, ...]) -> dict[str, float]:
    """Accuracy and balanced accuracy over the test beats of the trained ``classes``."""
    pred = pred[pred["y_true"].isin(classes)]
    acc = float((pred["y_true"] == pred["y_pred"]).mean())
    recalls = [float((pred.loc[pred["y_true"] == c, "y_pred"] == c).mean()) for c in classes
               if (pred["y_true"] == c).any()]
    return {"accuracy": acc, "balanced_accuracy": float(np.mean(recalls))}


def train_run(run: str, params_path: str | os.PathLike, images_dir: str | os.PathLike, out: str | os.PathLike, *,
              cache_root: str | os.PathLike = DEFAULT_CACHE, stream: TextIO | None = None) -> dict[str, Any]:
    """Train every fold of ``run`` (resuming finished ones) and write ``out``; return ``run.json``'s content."""
    stream = stream if stream is not None else sys.stderr
    t_start = time.perf_counter()
    train_params = load_params(params_path, "train")
    cfg = run_config(train_params, run)
    images = open_images(images_dir)
    declared = images.manifest.get("method")
    if declared is not None and declared != cfg.method:
        raise ConfigError(f"{images_dir}: images of method {declared!r}, but train.runs.{run}.method is {cfg.method!r}")
    prep = Prepared(cfg, images)

    from . import models as _models
    from .runtime import configure

    settings = configure(cfg.seed)
    precision = _models.resolve_precision(cfg.mixed_precision)
    key = params_hash({"config": cfg.as_dict(), "data": images.data_hash, "code": code_hash()})
    work = Path(cache_root) / run / key
    n_folds = len(prep.plan.folds)
    print(f"train {run}: {cfg.model} ({precision}), labels {cfg.labels} {list(prep.classes)}, folds {cfg.folds} "
          f"x{n_folds}, {len(prep.beat_rows):,} beats from {images.root} (left out: {prep.dropped or 'none'}); "
          f"work dir {work}", file=stream, flush=True)

    progress = Progress(f"train {run}", total=n_folds, unit="folds", stream=stream, interval=0)
    summaries, resumed = [], []
    for index in range(n_folds):
        done = work / f"fold-{index:02d}" / "DONE"
        if done.exists():
            summaries.append(json.loads((done.parent / "fold.json").read_text()))
            resumed.append(index)
            progress.update(1, note=f"fold {index + 1} reused from {done.parent}")
            continue
        summaries.append(train_fold(prep, index, work, precision=precision, stream=stream))
        progress.update(1, note=f"fold {index + 1} accuracy {summaries[-1]['accuracy']:.4f}")

    preds = pd.concat([pd.read_parquet(work / f"fold-{i:02d}" / "predictions.parquet") for i in range(n_folds)],
                      ignore_index=True)
    histories = []
    for i in range(n_folds):
        h = pd.read_csv(work / f"fold-{i:02d}" / "history.csv")
        h.insert(0, "fold", i)
        histories.append(h)
    seen = sum(s["train_images_seen"] for s in summaries)
    train_s = sum(s["train_seconds"] for s in summaries)
    scores = _scores(preds, cfg.train_classes)
    import keras
    import tensorflow as tf

    doc = {
        "run": run, "model": cfg.model, "method": cfg.method, "folds": cfg.folds, "labels": cfg.labels,
        "classes": list(cfg.train_classes), "label_classes": list(prep.classes),
        "untrained_classes": [c for c in prep.classes if c not in cfg.train_classes],
        "rhythm": cfg.rhythm, "image_size": images.image_size, "input_size": cfg.input_size,
        "decision_prior": cfg.decision_prior, "selection": "val_macro_f1" if cfg.validation_fraction else "last",
        "k": n_folds, "params_hash": cfg.params_hash, "data_hash": images.data_hash,
        "code_hash": code_hash(), "params": cfg.as_dict(), "precision": precision,
        "n_beats": int(len(prep.beat_rows)), "n_test_beats": int(len(preds)), "excluded": prep.dropped,
        "train_images_per_s": seen / max(train_s, 1e-9), "train_seconds": train_s,
        "seconds": time.perf_counter() - t_start, "peak_rss_mb": peak_rss_mb(), "resumed_folds": resumed,
        "fold_summaries": summaries,
        **scores, "runtime": settings, "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    with atomic_dir(out) as tmp:
        for i in range(n_folds):
            src, dst = work / f"fold-{i:02d}", tmp / f"fold-{i:02d}"
            dst.mkdir()
            for name in ("model.keras", "prior.json", "predictions.parquet", "history.csv", "baselines.parquet"):
                if name != "baselines.parquet" or (src / name).exists():
                    shutil.copy2(src / name, dst / name)
        pd.concat(histories, ignore_index=True).to_csv(tmp / "history.csv", index=False)
        write_json(tmp / "run.json", doc)
    progress.done(f"{len(preds):,} test beats, accuracy {scores['accuracy']:.4f}, balanced accuracy "
                  f"{scores['balanced_accuracy']:.4f}, {doc['train_images_per_s']:,.0f} train images/s, "
                  f"peak RSS {doc['peak_rss_mb']:,.0f} MiB"
                  + (f", {len(resumed)} fold(s) resumed" if resumed else "") + f" -> {out}")
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="run name under train.runs in params.yaml")
    ap.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    ap.add_argument("--images", required=True, help="image-shard directory, datasets/images/<method>")
    ap.add_argument("--out", required=True, help="output directory, models/<run>")
    ap.add_argument("--cache", default=str(DEFAULT_CACHE),
                    help="work dir for finished folds, for resuming (default .cache/train)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run_stage("train", lambda: train_run(args.run, args.params, args.images, args.out,
                                                cache_root=args.cache))


if __name__ == "__main__":
    sys.exit(main())
