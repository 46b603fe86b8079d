"""AAMI EC57 beat-classification figures, scored as PhysioNet's ``bxb`` does (pure NumPy, no I/O).

``bxb`` (WFDB software, ``app/bxb.c``) pairs each reference beat with a test label and counts a
confusion matrix whose rows are the reference classes N, S, V, F, Q (and the pseudo-beats O, X of
detection errors) and whose columns are the test labels n, s, v, f, q, o, x. Our beats are the
reference beats themselves, each classified once, so there is no O or X: the matrix here has the
reference classes N, S, V, F on rows and the predicted labels N, S, V, F, Q on columns.

Scored beats (see ``docs/evaluation.md``):

* records with paced beats (MIT-BIH 102, 104, 107, 217; ``pipelines.PACED_RECORDS``) are left out,
  as the AAMI recommended practice leaves them out of its reporting requirements;
* reference Q beats are left out: EC57 counts them for QRS detection only;
* a prediction of Q (by a model that knows Q) for an N, S, V or F beat is a miss of that class
  (bxb's ``Nq``, ``Sq``, ``Vq``, ``Fq`` cells) and a false positive of no class.

Per class *c* (one against the rest, on the scored beats): TP = ``cm[c, c]``, FN = the rest of row
*c*, FP = column *c* outside row *c*, TN = the beats of the other rows predicted other than *c*;
Se = TP/(TP+FN), +P = TP/(TP+FP), FPR = FP/(TN+FP), F1 = 2TP/(2TP+FP+FN). One exception, bxb's:

* **VEB**: an F beat called V is neither a V false positive nor a V true negative
  (``VFP = Nv + Sv``, ``VTN = Nn+Ns+Nf+Nq + Sn+Ss+Sf+Sq + Fn+Fs+Ff+Fq``), so it does not lower
  V +P, V FPR or V F1. It is still an error of the F class (F Se) and of the overall accuracy.
* **SVEB**: bxb's ``SFP = Ns + Vs + Fs`` (a Q beat called S is not an S false positive: Q rows are
  gone already).

Accuracy = (Nn + Ss + Vv + Ff) / scored beats. Undefined figures (a zero denominator) are NaN.

Examples
--------
>>> classes = ("N", "S", "V", "F", "Q")
>>> t = np.array([0, 0, 2, 3, 3, 4])          # N N V F F Q
>>> p = np.array([0, 1, 2, 2, 3, 2])          # N S V V F V
>>> rec = np.array(["100"] * 6)
>>> cm = ec57_confusion(t, p, rec, classes)
>>> cm.tolist()                               # the Q beat is not scored
[[1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 1, 1, 0]]
>>> s = ec57_scores(cm)
>>> s["ppv"]["V"], s["ppv"]["S"], s["sensitivity"]["F"]   # F called V: not a V false positive
(1.0, 0.0, 0.5)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pipelines import PACED_RECORDS

from .metrics import safe_divide

#: Reference classes scored by EC57, in matrix row order.
EC57_CLASSES: tuple[str, ...] = ("N", "S", "V", "F")
#: Predicted labels, in matrix column order: the four classes and Q (a miss of every class).
EC57_COLUMNS: tuple[str, ...] = ("N", "S", "V", "F", "Q")
#: Figures per class.
EC57_FIGURES: tuple[str, ...] = ("sensitivity", "ppv", "fpr", "f1")
#: Cells ``(reference row, predicted column)`` that are neither FP nor TN of the column's class
#: (bxb: an F beat called V does not count against V).
NOT_COUNTED: tuple[tuple[str, str], ...] = (("F", "V"),)


def is_ec57_run(classes: Sequence[str]) -> bool:
    """True when a run's classes include N, S, V and F (AAMI labels), so that EC57 applies.

    Examples
    --------
    >>> is_ec57_run(("N", "S", "V", "F", "Q")), is_ec57_run(("N", "abnormal"))
    (True, False)
    """
    return all(c in tuple(classes) for c in EC57_CLASSES)


def ec57_mask(y_true: np.ndarray, records: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Boolean mask of the scored beats: reference class N, S, V or F, record not paced.

    Examples
    --------
    >>> ec57_mask(np.array([0, 4, 1, 0]), np.array(["100", "100", "102", "217"]), "NSVFQ").tolist()
    [True, False, False, False]
    """
    names = list(classes)
    scored_idx = np.array([names.index(c) for c in EC57_CLASSES], dtype=np.int64)
    rec = np.asarray(records).astype(str)
    return np.isin(np.asarray(y_true, dtype=np.int64), scored_idx) & ~np.isin(rec, np.array(PACED_RECORDS))


def ec57_confusion(y_true: np.ndarray, y_pred: np.ndarray, records: np.ndarray,
                   classes: Sequence[str]) -> np.ndarray:
    """The EC57 matrix (int64, 4 x 5) of the scored beats: rows N, S, V, F; columns N, S, V, F, Q.

    ``y_true`` and ``y_pred`` are indices into ``classes`` (which must hold N, S, V, F; Q optional).
    A prediction of any class outside N, S, V, F falls in the Q column (a miss).

    Raises
    ------
    ValueError
        When ``classes`` lacks one of N, S, V, F.
    """
    names = list(classes)
    if not is_ec57_run(names):
        raise ValueError(f"EC57 scoring needs classes {list(EC57_CLASSES)}; got {names}")
    # run class index -> EC57 column (N S V F -> 0..3, anything else -> 4 = Q)
    to_col = np.array([EC57_COLUMNS.index(c) if c in EC57_CLASSES else 4 for c in names], dtype=np.int64)
    keep = ec57_mask(y_true, records, names)
    rows = to_col[np.asarray(y_true, dtype=np.int64)[keep]]
    cols = to_col[np.asarray(y_pred, dtype=np.int64)[keep]]
    k, m = len(EC57_CLASSES), len(EC57_COLUMNS)
    return np.bincount(rows * m + cols, minlength=k * m).reshape(k, m).astype(np.int64)


def ec57_counts(cm: np.ndarray) -> dict[str, np.ndarray]:
    """TP, FN, FP, TN of each of N, S, V, F from a 4 x 5 EC57 matrix, with bxb's exclusions.

    Examples
    --------
    >>> cm = np.zeros((4, 5), np.int64); cm[3, 2] = 7; cm[0, 0] = 10   # 7 F beats called V
    >>> c = ec57_counts(cm)
    >>> int(c["fp"][2]), int(c["tn"][2]), int(c["fn"][3])
    (0, 10, 7)
    """
    cm = np.asarray(cm, dtype=np.int64)
    k = len(EC57_CLASSES)
    if cm.shape != (k, len(EC57_COLUMNS)):
        raise ValueError(f"EC57 matrix must be {k} x {len(EC57_COLUMNS)}, got {cm.shape}")
    excluded = np.zeros(k, np.int64)          # cells of each predicted column that are not counted
    for ref, pred in NOT_COUNTED:
        excluded[EC57_COLUMNS.index(pred)] += cm[EC57_CLASSES.index(ref), EC57_COLUMNS.index(pred)]
    tp = np.diag(cm[:, :k]).copy()
    support = cm.sum(axis=1)
    called = cm[:, :k].sum(axis=0)             # beats predicted as each class
    fn = support - tp
    fp = called - tp - excluded
    # beats of the other rows predicted other than the class (a not-counted cell is predicted as the
    # class, so it is not a TN either: bxb's VTN omits Fv)
    tn = (cm.sum() - support) - (called - tp)
    return {"tp": tp, "fn": fn, "fp": fp, "tn": tn, "support": support}


def ec57_scores(cm: np.ndarray) -> dict:
    """Every EC57 figure of a 4 x 5 matrix.

    Returns
    -------
    dict
        ``n`` (scored beats), ``accuracy`` ((Nn+Ss+Vv+Ff) / n), and ``sensitivity``, ``ppv``,
        ``fpr``, ``f1``, ``support``: each a dict ``{class: value}`` over N, S, V, F (NaN where
        undefined; support as int).

    Examples
    --------
    >>> cm = np.array([[90, 5, 5, 0, 0], [2, 8, 0, 0, 0], [1, 0, 9, 0, 0], [0, 0, 4, 1, 0]])
    >>> s = ec57_scores(cm)
    >>> s["accuracy"], s["ppv"]["V"], round(s["fpr"]["V"], 4), s["sensitivity"]["F"]
    (0.864, 0.6428571428571429, 0.045, 0.2)
    """
    cm = np.asarray(cm, dtype=np.int64)
    c = ec57_counts(cm)
    tp, fn, fp, tn = c["tp"], c["fn"], c["fp"], c["tn"]
    n = int(cm.sum())
    figures = {
        "sensitivity": safe_divide(tp, tp + fn),
        "ppv": safe_divide(tp, tp + fp),
        "fpr": safe_divide(fp, tn + fp),
        "f1": safe_divide(2 * tp, 2 * tp + fp + fn),
    }
    out: dict = {"n": n, "accuracy": float(safe_divide(tp.sum(), n))}
    for name, values in figures.items():
        out[name] = {cls: float(values[i]) for i, cls in enumerate(EC57_CLASSES)}
    out["support"] = {cls: int(c["support"][i]) for i, cls in enumerate(EC57_CLASSES)}
    return out


def ec57_exclusions(y_true: np.ndarray, records: np.ndarray, classes: Sequence[str]) -> dict[str, int]:
    """How many test beats EC57 leaves out, and why: ``paced`` (beats of paced records) and
    ``q`` (reference Q beats, or any class outside N, S, V, F, of the other records).

    Examples
    --------
    >>> ec57_exclusions(np.array([0, 4, 1, 4]), np.array(["100", "100", "102", "102"]), "NSVFQ")
    {'paced': 2, 'q': 1}
    """
    rec = np.asarray(records).astype(str)
    paced = np.isin(rec, np.array(PACED_RECORDS))
    scored = ec57_mask(y_true, rec, classes)
    return {"paced": int(paced.sum()), "q": int((~paced & ~scored).sum())}
