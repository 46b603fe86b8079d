"""Read and check one trained run: ``models/<run>/`` as the ``train`` stage writes it.

Layout (see ``docs/architecture.md``)::

    models/<run>/run.json                      {"run", "model", "method", "folds", "labels", "classes",
                                                "k", "params_hash", "data_hash", "n_test_beats", ...}
    models/<run>/fold-XX/predictions.parquet   beat_id, record, fold, y_true, y_pred, p_<class>...
    models/<run>/history.csv                   fold, member, epoch, loss, accuracy, val_loss, val_accuracy, ...
    models/<run>/fold-XX/baselines.parquet     optional: the predictions columns plus ``model``
                                               ("majority" | "rhythm" | "features"), for the same test beats

Everything that does not hold together (a missing column, a label outside ``classes``, a fold
number that differs from its folder, a beat tested twice, NaN scores, a test-beat count that
differs from ``run.json``) raises :class:`~pipelines.core.errors.DataError` naming the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipelines import DataError, read_json

from .metrics import encode_labels

#: Keys ``run.json`` must hold.
RUN_KEYS: tuple[str, ...] = ("run", "model", "method", "folds", "labels", "classes", "params_hash",
                             "data_hash", "n_test_beats")

#: Baselines the train stage may write (``baselines.parquet``, column ``model``), in report order.
BASELINES: tuple[str, ...] = ("majority", "rhythm", "features")

#: Baselines every ``baselines.parquet`` holds (``features`` only runs with template features have).
REQUIRED_BASELINES: tuple[str, ...] = ("majority", "rhythm")

#: Columns of ``history.csv`` (``fold`` and ``epoch`` required; ``member``, the ensemble member, 0 when absent;
#: the others null when absent).
HISTORY_COLUMNS: tuple[str, ...] = ("fold", "member", "epoch", "loss", "accuracy", "val_loss", "val_accuracy")

_FOLD_DIR = re.compile(r"^fold-(\d+)$")


@dataclass(frozen=True)
class AllBeats:
    """Every test beat of a run, untrained classes included (what EC57 scores), labels as indices into
    ``classes`` (``run.json`` ``label_classes``: the label scheme's classes)."""

    classes: tuple[str, ...]
    fold: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    record: np.ndarray


@dataclass(frozen=True)
class RunResults:
    """The test predictions of every fold of one run, checked and encoded.

    Attributes
    ----------
    name : str
        Run name (the folder name, equal to ``run.json["run"]``).
    info : dict
        ``run.json`` as read.
    classes : tuple of str
        Class names, in model output order.
    fold : (n,) int64
        Fold of each test beat.
    y_true, y_pred : (n,) int64
        Class indices into ``classes``.
    proba : (n, k) float64
        The ``p_<class>`` columns.
    history : pandas.DataFrame
        :data:`HISTORY_COLUMNS`, sorted by fold, member and epoch.
    record : (n,) str array
        Record of each test beat.
    all_beats : AllBeats
        Every test beat, those of classes the run did not train (``run.json`` ``label_classes``
        minus ``classes``, e.g. AAMI Q) included; the arrays above hold only the beats of the
        trained ``classes``, which the classification figures score. EC57 scores ``all_beats``.
    baselines : dict
        Baseline name -> a :class:`RunResults` of the same test beats, in the same order, with that
        baseline's ``y_pred`` and ``proba`` (empty when the run has no ``baselines.parquet``).
    """

    name: str
    info: dict[str, Any]
    classes: tuple[str, ...]
    fold: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray
    history: pd.DataFrame = field(repr=False)
    record: np.ndarray | None = field(default=None, repr=False)
    all_beats: AllBeats | None = field(default=None, repr=False)
    baselines: dict[str, "RunResults"] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        """Number of test beats over all folds."""
        return int(self.y_true.size)

    @property
    def untrained(self) -> dict[str, int]:
        """Test beats of each class outside ``classes`` (left out of the classification figures)."""
        if self.all_beats is None:
            return {}
        counts = np.bincount(self.all_beats.y_true, minlength=len(self.all_beats.classes))
        return {c: int(counts[i]) for i, c in enumerate(self.all_beats.classes)
                if c not in self.classes and counts[i]}

    @property
    def folds(self) -> list[int]:
        """Fold numbers present, ascending."""
        return np.unique(self.fold).tolist()


def read_run_info(run_dir: Path, name: str) -> dict[str, Any]:
    """Read and check ``run.json`` of ``run_dir``."""
    path = run_dir / "run.json"
    info = read_json(path, "run.json not found (the train stage writes it last; did it finish?)")
    missing = [k for k in RUN_KEYS if k not in info]
    if missing:
        raise DataError(str(path), f"missing keys {missing}")
    if info["run"] != name:
        raise DataError(str(path), f"run name {info['run']!r} differs from its folder name {name!r}")
    classes = info["classes"]
    if (not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes)
            or len(set(classes)) != len(classes)):
        raise DataError(str(path), f"'classes' must be a non-empty list of distinct names, got {classes!r}")
    return info


def fold_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """``(fold number, folder)`` of every ``fold-XX`` folder, by fold number."""
    found = []
    for child in run_dir.iterdir():
        m = _FOLD_DIR.match(child.name)
        if m and child.is_dir():
            found.append((int(m.group(1)), child))
    if not found:
        raise DataError(str(run_dir), "no fold-XX folders with predictions")
    return sorted(found)


def read_predictions(path: Path, fold: int, classes: tuple[str, ...], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read one ``predictions.parquet`` (or ``baselines.parquet``, with ``extra=("model",)``) and check it
    against its fold number and the classes."""
    if not path.is_file():
        raise DataError(str(path), f"{path.name} not found")
    prob_cols = [f"p_{c}" for c in classes]
    wanted = ["beat_id", "record", "fold", "y_true", "y_pred", *prob_cols, *extra]
    try:
        names = pq.read_schema(path).names
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise DataError(str(path), f"not a readable Parquet file: {exc}") from None
    missing = [c for c in wanted if c not in names]
    if missing:
        raise DataError(str(path), f"missing columns {missing} (classes from run.json: {list(classes)})")
    df = pq.read_table(path, columns=wanted).to_pandas()
    if df.empty:
        raise DataError(str(path), "no test beats")
    nulls = [c for c in ("beat_id", "fold", "y_true", "y_pred", *extra) if df[c].isna().any()]
    if nulls:
        raise DataError(str(path), f"null values in columns {nulls}")
    folds = pd.unique(df["fold"])
    if len(folds) != 1 or int(folds[0]) != fold:
        raise DataError(str(path), f"column 'fold' holds {sorted(map(int, folds))}, expected only {fold}")
    proba = df[prob_cols].to_numpy(dtype=np.float64)
    if not np.isfinite(proba).all():
        raise DataError(str(path), f"{int((~np.isfinite(proba)).any(axis=1).sum())} rows with NaN or "
                                   "infinite p_<class> scores")
    return df


def _encode(df: pd.DataFrame, path: Path, classes: tuple[str, ...],
            label_classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` (any of ``label_classes``) and ``y_pred`` (one of ``classes``) as indices into ``label_classes``."""
    to_label = np.array([label_classes.index(c) for c in classes], dtype=np.int64)
    try:
        return (encode_labels(df["y_true"].to_numpy(dtype=object), label_classes),
                to_label[encode_labels(df["y_pred"].to_numpy(dtype=object), classes)])
    except ValueError as exc:
        raise DataError(str(path), f"y_true/y_pred: {exc}") from None


def read_baselines(path: Path, fold: int, classes: tuple[str, ...], label_classes: tuple[str, ...],
                   beat_ids: pd.Series, y_true: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The baselines of one fold, aligned to the beats of its ``predictions.parquet``.

    Returns
    -------
    dict
        Baseline name (each of :data:`BASELINES` the file holds; :data:`REQUIRED_BASELINES` always) ->
        ``(y_pred, proba)`` in the order of ``beat_ids``, ``y_pred`` as indices into ``label_classes``.

    Raises
    ------
    DataError
        Naming the file: a missing baseline or an unknown one, test beats other than those of
        ``predictions.parquet`` (or one twice), or a ``y_true`` that differs from it.
    """
    df = read_predictions(path, fold, classes, extra=("model",))
    unknown = sorted(set(df["model"].astype(str)) - set(BASELINES))
    if unknown:
        raise DataError(str(path), f"unknown baselines {unknown} in column 'model'; expected {list(BASELINES)}")
    out = {}
    for name in BASELINES:
        part = df[df["model"] == name]
        if part.empty and name not in REQUIRED_BASELINES:
            continue
        if part.empty:
            raise DataError(str(path), f"no rows for baseline {name!r}")
        index = pd.Index(part["beat_id"].to_numpy(dtype=object))
        pos = index.get_indexer(beat_ids.to_numpy(dtype=object)) if index.is_unique else None
        if pos is None or len(part) != len(beat_ids) or (pos < 0).any():
            raise DataError(str(path), f"baseline {name!r}: its {len(part)} beats are not the {len(beat_ids)} test "
                                       "beats of predictions.parquet (each once)")
        part = part.iloc[pos]
        t, p = _encode(part, path, classes, label_classes)
        if not np.array_equal(t, y_true):
            raise DataError(str(path), f"baseline {name!r}: y_true differs from predictions.parquet for "
                                       f"{int((t != y_true).sum())} beats")
        out[name] = (p, part[[f"p_{c}" for c in classes]].to_numpy(np.float64))
    return out


def read_history(run_dir: Path, fold_numbers: list[int]) -> pd.DataFrame:
    """``history.csv`` of the run (or, without it, the ``fold-XX/history.csv`` files)."""
    path = run_dir / "history.csv"
    if path.is_file():
        frames = [_read_csv(path)]
    else:
        frames = []
        for fold in fold_numbers:
            fold_path = run_dir / f"fold-{fold:02d}" / "history.csv"
            if not fold_path.is_file():
                raise DataError(str(path), "history.csv not found (nor per-fold history.csv files)")
            df = _read_csv(fold_path)
            if "fold" not in df.columns:
                df.insert(0, "fold", fold)
            frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    for col in ("fold", "epoch"):
        if col not in df.columns:
            raise DataError(str(path), f"missing column {col!r}")
    member = df["member"].astype(np.int64) if "member" in df.columns else 0
    out = pd.DataFrame({"fold": df["fold"].astype(np.int64), "member": member, "epoch": df["epoch"].astype(np.int64)})
    for col in HISTORY_COLUMNS[3:]:
        out[col] = pd.to_numeric(df[col], errors="coerce") if col in df.columns else np.nan
    return out.sort_values(["fold", "member", "epoch"], kind="stable").reset_index(drop=True)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(str(path), f"not a readable CSV file: {exc}") from None


def load_run(models_dir: str | Path, name: str) -> RunResults:
    """Read, check and encode everything the evaluation needs from ``models_dir/name``.

    Raises
    ------
    DataError
        Naming the file at fault: a missing run folder, ``run.json``, fold folder or column; labels
        outside the run's classes; inconsistent fold numbers or test-beat counts; duplicated beats.
    """
    run_dir = Path(models_dir) / name
    if not run_dir.is_dir():
        raise DataError(str(run_dir), "run directory not found")
    info = read_run_info(run_dir, name)
    classes = tuple(info["classes"])
    label_classes = tuple(info.get("label_classes") or classes)
    if not set(classes) <= set(label_classes):
        raise DataError(str(run_dir / "run.json"), f"classes {list(classes)} not all in label_classes "
                                                   f"{list(label_classes)}")
    folds = fold_dirs(run_dir)
    frames = []
    for fold, path in folds:
        pred_path = path / "predictions.parquet"
        df = read_predictions(pred_path, fold, classes)
        frames.append((df, *_encode(df, pred_path, classes, label_classes)))
    with_baselines = [path for _, path in folds if (path / "baselines.parquet").is_file()]
    if with_baselines and len(with_baselines) != len(folds):
        lacking = [path.name for _, path in folds if path not in with_baselines]
        raise DataError(str(run_dir), f"baselines.parquet in some folds only (missing in {lacking})")
    base_parts = [read_baselines(path / "baselines.parquet", fold, classes, label_classes, f[0]["beat_id"], f[1])
                  for (fold, path), f in zip(folds, frames)] if with_baselines else []
    beat_ids = pd.concat([f[0]["beat_id"] for f in frames], ignore_index=True)
    dup = beat_ids[beat_ids.duplicated()]
    if not dup.empty:
        raise DataError(str(run_dir), f"{dup.size} beats appear in more than one test fold or twice, "
                                      f"e.g. {dup.iloc[:3].tolist()}")
    n = int(beat_ids.size)
    if int(info["n_test_beats"]) != n:
        raise DataError(str(run_dir / "run.json"),
                        f"n_test_beats is {info['n_test_beats']} but the fold predictions hold {n} beats")
    every = AllBeats(
        classes=label_classes,
        fold=np.concatenate([np.full(len(f[0]), fold, np.int64) for f, (fold, _) in zip(frames, folds)]),
        y_true=np.concatenate([f[1] for f in frames]),
        y_pred=np.concatenate([f[2] for f in frames]),
        record=np.concatenate([f[0]["record"].astype(str).to_numpy(dtype=object) for f in frames]),
    )
    # label index -> trained class index (-1: untrained); the classification figures score trained beats
    to_class = np.full(len(label_classes), -1, np.int64)
    to_class[[label_classes.index(c) for c in classes]] = np.arange(len(classes))
    trained = to_class[every.y_true] >= 0
    proba = np.concatenate([f[0][[f"p_{c}" for c in classes]].to_numpy(np.float64) for f in frames])
    run = RunResults(
        name=name, info=info, classes=classes, fold=every.fold[trained], y_true=to_class[every.y_true[trained]],
        y_pred=to_class[every.y_pred[trained]], proba=proba[trained],
        history=read_history(run_dir, [fold for fold, _ in folds]), record=every.record[trained], all_beats=every,
    )
    baselines = {}
    for b in [b for b in BASELINES if base_parts and all(b in part for part in base_parts)]:
        y_pred = np.concatenate([part[b][0] for part in base_parts])
        baselines[b] = replace(run, y_pred=to_class[y_pred[trained]],
                               proba=np.concatenate([part[b][1] for part in base_parts])[trained],
                               all_beats=replace(every, y_pred=y_pred))
    return replace(run, baselines=baselines)
