"""Baselines scored on the same test beats as every model: majority class, rhythm only, and (with template
features) RR + template features.

A model is worth citing only if it beats what needs no image at all:

``majority``
    Predicts the most frequent training class for every beat; its scores are the training class
    frequencies (the same row for every beat). On MIT-BIH with AAMI classes that is N, about 89 %
    accuracy on DS2: an accuracy below it means the model does worse than saying "normal".
``rhythm``
    A scikit-learn classifier on the rhythm features alone (:func:`pipelines.rhythm_features` of the
    beat's RR intervals, :data:`pipelines.RR_COLUMNS`): a histogram gradient-boosting classifier
    with class-balanced sample weights (capped, as ``train.class_weight_max_ratio`` caps the
    model's), a fixed seed and no early stopping, so the same inputs give the same predictions.
    One OpenMP thread (:data:`RHYTHM_THREADS`); a few seconds on 50,000 beats.
``features``
    The same classifier on the rhythm features and the template columns (record-relative morphology,
    :data:`pipelines.TEMPLATE_COLUMNS`, ``train.template_features``): everything the rhythm branch of a
    model sees, and no image. Written only when ``train.template_features`` names columns. A model row
    below it gains nothing from its image.

All are fitted on the training side of each fold only (never the test side) and predict its test
beats. :func:`baseline_predictions` writes them in the layout of ``fold-XX/predictions.parquet``
plus a ``model`` column (``"majority"``, ``"rhythm"``, ``"features"``); the ``train`` stage saves it as
``fold-XX/baselines.parquet`` and the ``evaluate`` stage scores it beside the model
(``docs/evaluation.md``).

Examples
--------
>>> import numpy as np
>>> m = fit_majority(np.array([0, 0, 2, 0]), n_classes=3)
>>> m.predict_proba(np.zeros((2, 6))).tolist()
[[0.75, 0.0, 0.25], [0.75, 0.0, 0.25]]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from pipelines import rhythm_columns, template_matrix

#: Baseline names, in report order (the ``model`` column of ``baselines.parquet``); ``features`` only with
#: template features.
BASELINES: tuple[str, ...] = ("majority", "rhythm", "features")

#: Settings of the rhythm-only classifier (small: the features are six numbers per beat).
RHYTHM_SETTINGS: dict[str, Any] = {"max_iter": 60, "max_leaf_nodes": 15, "learning_rate": 0.1,
                                   "min_samples_leaf": 20, "early_stopping": False}
#: OpenMP threads of the rhythm classifier: one. Its trees are small, and on a loaded machine (the
#: train stage runs beside TensorFlow) OpenMP threads spin against each other: measured 13.6 s with
#: one thread and 161 s with two for 50,000 beats (100 iterations) on 2 cores at load 6.
RHYTHM_THREADS = 1


@dataclass(frozen=True)
class MajorityClassifier:
    """Scores every beat with the training class frequencies; predicts the most frequent class."""

    prior: np.ndarray

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(len(X), n_classes)`` float64: the training frequencies on every row."""
        return np.tile(self.prior, (len(X), 1))


@dataclass(frozen=True)
class RhythmClassifier:
    """A fitted scikit-learn classifier, its scores spread over all ``n_classes`` columns."""

    model: HistGradientBoostingClassifier
    n_classes: int

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``(n, n_classes)`` float64 scores; classes absent from the training side score 0."""
        out = np.zeros((len(X), self.n_classes))
        with threadpool_limits(RHYTHM_THREADS):
            proba = self.model.predict_proba(np.asarray(X, np.float64))
        out[:, self.model.classes_.astype(np.int64)] = proba
        return out


def _check_labels(y: np.ndarray, n_classes: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.int64)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y_train must be a non-empty 1-D array of class indices, got shape {y.shape}")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"class indices must lie in [0, {n_classes}), got [{y.min()}, {y.max()}]")
    return y


def fit_majority(y_train: np.ndarray, n_classes: int) -> MajorityClassifier:
    """The majority-class baseline: class frequencies of the training beats (class indices).

    Ties go to the lowest class index (``argmax``), so the prediction is deterministic.
    """
    y = _check_labels(y_train, n_classes)
    return MajorityClassifier(np.bincount(y, minlength=n_classes) / y.size)


def balanced_weights(y: np.ndarray, n_classes: int, max_ratio: float = 20.0) -> np.ndarray:
    """Per-beat weights ``n / (k * count[class])`` (scikit-learn's "balanced"), capped.

    ``max_ratio`` caps every class weight at that multiple of the smallest one (0 = no cap), so a
    class of 30 beats does not dominate the fit.

    Examples
    --------
    >>> balanced_weights(np.array([0, 0, 0, 1]), 2).tolist()
    [0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 2.0]
    >>> balanced_weights(np.array([0, 0, 0, 1]), 2, max_ratio=2).tolist()
    [0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 1.3333333333333333]
    """
    y = _check_labels(y, n_classes)
    counts = np.bincount(y, minlength=n_classes)
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = y.size / (present.sum() * counts[present])
    if max_ratio:
        w = np.minimum(w, w[present].min() * max_ratio)
    return w[y]


def fit_rhythm(X_train: np.ndarray, y_train: np.ndarray, n_classes: int, seed: int, *,
               max_weight_ratio: float = 20.0) -> RhythmClassifier:
    """The rhythm-only baseline: gradient boosting on rhythm features, class-balanced, seeded.

    Parameters
    ----------
    X_train : (n, F) float array
        Rhythm features of the training beats (:func:`rhythm_matrix`).
    y_train : (n,) int array
        Class indices.
    n_classes : int
    seed : int
        ``random_state`` of the classifier.
    max_weight_ratio : float
        Cap of the balanced class weights (see :func:`balanced_weights`).
    """
    y = _check_labels(y_train, n_classes)
    X = np.asarray(X_train, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != y.size:
        raise ValueError(f"X_train must be (n, F) with n = {y.size}, got {X.shape}")
    model = HistGradientBoostingClassifier(random_state=seed, **RHYTHM_SETTINGS)
    with threadpool_limits(RHYTHM_THREADS):
        model.fit(X, y, sample_weight=balanced_weights(y, n_classes, max_weight_ratio))
    return RhythmClassifier(model, n_classes)


def rhythm_matrix(beats: pd.DataFrame, features: Sequence[str] | None = None) -> np.ndarray:
    """Rhythm features (:func:`pipelines.rhythm_features`) of a table with the :data:`pipelines.RR_COLUMNS`.

    ``features`` picks columns of :data:`pipelines.RHYTHM_FEATURES` (all when None), so that the
    rhythm-only baseline sees exactly what a run's rhythm branch sees.

    Raises
    ------
    KeyError
        Naming the missing RR columns (an image set that predates rhythm features).
    """
    from .data import select_features

    return select_features(rhythm_columns(beats), features)


def features_matrix(beats: pd.DataFrame, features: Sequence[str] | None, template: Sequence[str]) -> np.ndarray:
    """:func:`rhythm_matrix` and then the template columns ``template`` (NaN -> 0): the ``features`` baseline's
    input, the same numbers a rhythm run's second input holds.

    Raises
    ------
    KeyError
        Naming the missing RR or template columns.
    """
    return np.concatenate([rhythm_matrix(beats, features), template_matrix(beats, tuple(template))], axis=1)


def prediction_table(model: str, beats: pd.DataFrame, y_true: np.ndarray, proba: np.ndarray,
                     classes: Sequence[str], fold: int) -> pd.DataFrame:
    """One baseline's rows in the layout of ``predictions.parquet``, plus ``model``.

    ``y_pred`` is the argmax of ``proba`` (ties to the lowest class index); scores are float32 and
    ``fold`` int32, as the train stage writes them.
    """
    names = np.asarray(list(classes), dtype=object)
    table = pd.DataFrame({
        "beat_id": beats["beat_id"].astype(str).to_numpy(dtype=object),
        "record": beats["record"].astype(str).to_numpy(dtype=object),
        "fold": np.full(len(beats), fold, np.int32),
        "y_true": names[np.asarray(y_true, dtype=np.int64)],
        "y_pred": names[np.asarray(proba).argmax(axis=1)],
    })
    for c, name in enumerate(names):
        table[f"p_{name}"] = np.asarray(proba[:, c], dtype=np.float32)
    table["model"] = model
    return table


def baseline_predictions(train: pd.DataFrame, y_train: np.ndarray, test: pd.DataFrame, y_test: np.ndarray, *,
                         classes: Sequence[str], fold: int, seed: int,
                         max_weight_ratio: float = 20.0, features: Sequence[str] | None = None,
                         template: Sequence[str] = ()) -> pd.DataFrame:
    """Fit the baselines (majority, rhythm only and, with ``template``, RR + template features) on the
    training beats of a fold and predict its test beats.

    Parameters
    ----------
    train, test : pandas.DataFrame
        One row per beat with the :data:`pipelines.RR_COLUMNS` (NaN where missing); ``test`` also has
        ``beat_id`` and ``record``. Crops of one beat must not be repeated here: one row per beat.
    y_train, y_test : int arrays
        Class indices into ``classes``.
    classes : sequence of str
        Class names, in model output order.
    fold, seed : int
        Fold number (the ``fold`` column) and the rhythm classifier's seed.
    features : sequence of str, optional
        The rhythm features the rhythm-only baseline uses (all of :data:`pipelines.RHYTHM_FEATURES`
        when None).
    template : sequence of str
        Template columns (:data:`pipelines.TEMPLATE_COLUMNS`, held by ``train`` and ``test``): with any,
        the ``features`` baseline (``features`` and these) is fitted too.

    Returns
    -------
    pandas.DataFrame
        ``beat_id, record, fold, y_true, y_pred, p_<class>..., model``: the test beats in the
        order given, once per baseline of :data:`BASELINES` (``features`` only with ``template``).
    """
    k = len(classes)
    y_test = np.asarray(y_test, dtype=np.int64)
    if len(test) != y_test.size or len(train) != len(y_train):
        raise ValueError("train/test tables and their labels differ in length")
    x_test = rhythm_matrix(test, features)
    fitted = {"majority": (fit_majority(y_train, k), x_test),
              "rhythm": (fit_rhythm(rhythm_matrix(train, features), y_train, k, seed,
                                    max_weight_ratio=max_weight_ratio), x_test)}
    if template:
        fitted["features"] = (fit_rhythm(features_matrix(train, features, template), y_train, k, seed,
                                         max_weight_ratio=max_weight_ratio), features_matrix(test, features, template))
    return pd.concat([prediction_table(name, test, y_test, model.predict_proba(x), classes, fold)
                      for name, (model, x) in fitted.items()], ignore_index=True)
