"""Classification metrics for beat predictions: pure NumPy, no I/O.

Every function takes arrays and returns arrays, floats or plain dicts of them, so that the
``evaluate`` stage, the tests and notebooks compute exactly the same numbers.

Conventions
-----------
* Labels are encoded as integer indices into the run's ``classes`` (:func:`encode_labels`);
  confusion matrices have the actual class on rows and the predicted class on columns.
* One-vs-rest per-class figures: for class ``c``, TP = actual ``c`` predicted ``c``,
  FN = actual ``c`` predicted otherwise, FP = predicted ``c`` actually otherwise, TN = the rest.
* **Undefined is NaN, never 0.** A ratio whose denominator is zero (sensitivity of a class with no
  test beats, positive predictivity of a class never predicted, specificity when every beat is of
  that class, the ROC AUC of a class absent from the truth or of a class that is everything) is
  ``NaN``; the report writers turn it into JSON ``null`` and ``—`` in tables.
  This is scikit-learn's ``zero_division=np.nan``.
* **Macro averages are over the classes where the figure is defined** (the NaNs are left out, as
  scikit-learn does with ``zero_division=np.nan``); a macro average with no defined class is NaN.
  F1 = 2TP / (2TP + FP + FN) is defined whenever the class occurs in the truth *or* the predictions,
  so a class that is predicted but absent from the truth counts as F1 = 0 in the macro F1.
* Fold statistics are over the folds where the figure is defined: the mean, and the sample standard
  deviation (``ddof=1``), which is NaN with fewer than two defined folds.

Examples
--------
>>> import numpy as np
>>> classes = ("N", "S", "V")
>>> t = encode_labels(["N", "N", "S", "V", "V"], classes)
>>> p = encode_labels(["N", "S", "S", "V", "N"], classes)
>>> confusion_matrix(t, p, len(classes)).tolist()
[[1, 1, 0], [0, 1, 0], [1, 0, 1]]
>>> s = per_class_scores(confusion_matrix(t, p, 3))
>>> s["sensitivity"].round(3).tolist()
[0.5, 1.0, 0.5]
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

#: Per-class (one-vs-rest) figures, in report order.
CLASS_METRICS: tuple[str, ...] = ("accuracy", "sensitivity", "specificity", "ppv", "f1", "auc")


def encode_labels(labels: Sequence[str] | np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Integer index of each label in ``classes`` (int64), vectorised.

    Raises
    ------
    ValueError
        When a label is not one of ``classes`` (the message names up to five such labels).

    Examples
    --------
    >>> encode_labels(["V", "N", "V"], ("N", "S", "V")).tolist()
    [2, 0, 2]
    """
    names = np.asarray(list(classes), dtype=str)
    if names.size == 0:
        raise ValueError("no classes given")
    if np.unique(names).size != names.size:
        raise ValueError(f"duplicate class names in {names.tolist()}")
    values = np.asarray(labels, dtype=object)
    # None / NaN would turn into the strings "None" / "nan"; reject them explicitly.
    values = np.where(values == None, "\x00<missing>", values)  # noqa: E711  (element-wise)
    values = values.astype(str)
    order = np.argsort(names, kind="stable")
    sorted_names = names[order]
    pos = np.clip(np.searchsorted(sorted_names, values), 0, names.size - 1)
    ok = sorted_names[pos] == values
    if not ok.all():
        bad = sorted({v.replace("\x00<missing>", "<missing>") for v in values[~ok].tolist()})
        raise ValueError(f"{int((~ok).sum())} labels not in classes {names.tolist()}: {bad[:5]}")
    return order[pos].astype(np.int64)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion counts (int64, ``n_classes`` x ``n_classes``): rows actual, columns predicted.

    ``y_true`` and ``y_pred`` are integer class indices (see :func:`encode_labels`).

    Examples
    --------
    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2).tolist()
    [[1, 0], [1, 1]]
    """
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length, got {t.shape} and {p.shape}")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise ValueError(f"class indices must lie in [0, {n_classes})")
    flat = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


def safe_divide(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    """``num / den`` as float64, NaN where ``den`` is 0 (no warning).

    Examples
    --------
    >>> safe_divide(np.array([1, 0]), np.array([2, 0])).tolist()
    [0.5, nan]
    """
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def overall_accuracy(cm: np.ndarray) -> float:
    """Fraction of beats on the diagonal of a confusion matrix (NaN for an empty matrix)."""
    cm = np.asarray(cm)
    return float(safe_divide(np.trace(cm), cm.sum()))


def per_class_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """One-vs-rest counts and scores of every class from a confusion matrix.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn``, ``tn``, ``support`` (int64 arrays) and ``accuracy``
        ((TP+TN)/n), ``sensitivity`` (TP/(TP+FN), recall), ``specificity`` (TN/(TN+FP)),
        ``ppv`` (TP/(TP+FP), positive predictivity, precision) and ``f1`` (2TP/(2TP+FP+FN)),
        float64 arrays with NaN where undefined.
    """
    cm = np.asarray(cm, dtype=np.int64)
    n = cm.sum()
    tp = np.diag(cm)
    fn = cm.sum(axis=1) - tp
    fp = cm.sum(axis=0) - tp
    tn = n - tp - fn - fp
    return {
        "tp": tp, "fp": fp, "fn": fn, "tn": tn, "support": tp + fn,
        "accuracy": safe_divide(tp + tn, np.full(tp.shape, n)),
        "sensitivity": safe_divide(tp, tp + fn),
        "specificity": safe_divide(tn, tn + fp),
        "ppv": safe_divide(tp, tp + fp),
        "f1": safe_divide(2 * tp, 2 * tp + fp + fn),
    }


def nan_mean(values: Sequence[float] | np.ndarray) -> float:
    """Mean of the defined (non-NaN) values; NaN when none is defined (no warning).

    Examples
    --------
    >>> nan_mean([0.5, float("nan"), 1.0])
    0.75
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")


def nan_std(values: Sequence[float] | np.ndarray) -> float:
    """Sample standard deviation (ddof=1) of the defined values; NaN with fewer than two.

    Examples
    --------
    >>> round(nan_std([1.0, 3.0, float("nan")]), 6)
    1.414214
    >>> nan_std([1.0])
    nan
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    return float(v.std(ddof=1)) if v.size >= 2 else float("nan")


def roc_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve of a binary problem: false and true positive rates at every distinct threshold.

    Parameters
    ----------
    y_true : array of bool
        True for the positive class.
    score : array of float
        Higher means more likely positive (e.g. ``p_<class>``).

    Returns
    -------
    fpr, tpr, thresholds : float64 arrays
        From (0, 0) at threshold +inf to (1, 1); all NaN-free when both classes occur, otherwise
        the undefined rate is NaN (no positives: ``tpr``; no negatives: ``fpr``).

    Examples
    --------
    >>> fpr, tpr, thr = roc_curve(np.array([0, 0, 1, 1], bool), np.array([0.1, 0.4, 0.35, 0.8]))
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    y = np.asarray(y_true, dtype=bool).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true and score differ in length: {y.size} != {s.size}")
    if y.size == 0:
        nan = np.array([np.nan])
        return nan, nan, np.array([np.inf])
    order = np.argsort(-s, kind="stable")
    s = s[order]
    y = y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # last index of each distinct score
    tps = np.cumsum(y, dtype=np.int64)[last]
    fps = (last + 1) - tps
    tps = np.r_[0, tps]
    fps = np.r_[0, fps]
    thresholds = np.r_[np.inf, s[last]]
    return safe_divide(fps, fps[-1]), safe_divide(tps, tps[-1]), thresholds


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (trapezoidal, ties count one half); NaN without both classes.

    Examples
    --------
    >>> roc_auc(np.array([0, 0, 1, 1], bool), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    >>> roc_auc(np.array([1, 1], bool), np.array([0.2, 0.9]))
    nan
    """
    fpr, tpr, _ = roc_curve(y_true, score)
    if np.isnan(fpr[-1]) or np.isnan(tpr[-1]):
        return float("nan")
    return float(np.trapezoid(tpr, fpr))


def one_vs_rest_auc(y_true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """ROC AUC of each class against the rest, from integer labels and an (n, k) score matrix.

    NaN for a class absent from ``y_true`` (or present in every row).
    """
    proba = np.asarray(proba, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.int64)
    if proba.ndim != 2 or proba.shape[0] != t.size:
        raise ValueError(f"proba must be (n, k) with n = {t.size}, got {proba.shape}")
    return np.array([roc_auc(t == c, proba[:, c]) for c in range(proba.shape[1])])


def downsample_curve(fpr: np.ndarray, tpr: np.ndarray, max_points: int = 200
                     ) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points of a ROC curve, spread evenly along its length.

    Both rates are non-decreasing, so the path length from (0, 0) to a point is ``fpr + tpr``;
    points are kept at evenly spaced path lengths, always with both end points. The steep
    low-FPR part of a good classifier's curve keeps as many points as its length deserves.

    Examples
    --------
    >>> f, t = downsample_curve(np.linspace(0, 1, 1001), np.linspace(0, 1, 1001) ** 0.5, 11)
    >>> len(f), float(f[0]), float(f[-1])
    (11, 0.0, 1.0)
    """
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    f = np.asarray(fpr, dtype=np.float64)
    t = np.asarray(tpr, dtype=np.float64)
    if f.size <= max_points:
        return f.copy(), t.copy()
    length = f + t
    targets = np.linspace(length[0], length[-1], max_points)
    idx = np.unique(np.r_[0, np.searchsorted(length, targets, side="left").clip(0, f.size - 1), f.size - 1])
    if idx.size > max_points:  # rounding can add one: keep the ends, thin the middle evenly
        keep = np.unique(np.linspace(0, idx.size - 1, max_points).round().astype(np.int64))
        idx = idx[keep]
    return f[idx], t[idx]


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray,
                          n_classes: int) -> dict:
    """Every figure of one set of predictions (a fold, or all folds pooled).

    Parameters
    ----------
    y_true, y_pred : int arrays
        Class indices.
    proba : (n, n_classes) float array
        Scores per class (the ``p_<class>`` columns).
    n_classes : int

    Returns
    -------
    dict
        ``n`` (beats), ``accuracy`` (overall), ``confusion`` (int64 matrix),
        ``per_class`` (dict of arrays, :func:`per_class_scores` plus ``auc``) and
        ``macro`` (dict of floats: the NaN-skipping mean of each per-class figure in
        :data:`CLASS_METRICS`).

    Examples
    --------
    >>> t = np.array([0, 0, 1, 1]); p = np.array([0, 1, 1, 1])
    >>> proba = np.array([[.9, .1], [.4, .6], [.2, .8], [.3, .7]])
    >>> r = classification_scores(t, p, proba, 2)
    >>> r["accuracy"], r["macro"]["sensitivity"], r["macro"]["auc"]
    (0.75, 0.75, 1.0)
    """
    cm = confusion_matrix(y_true, y_pred, n_classes)
    per_class = per_class_scores(cm)
    per_class["auc"] = one_vs_rest_auc(y_true, proba)
    return {
        "n": int(cm.sum()),
        "accuracy": overall_accuracy(cm),
        "confusion": cm,
        "per_class": per_class,
        "macro": {m: nan_mean(per_class[m]) for m in CLASS_METRICS},
    }
