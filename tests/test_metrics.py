"""evaluation.metrics against scikit-learn on hand-made and random inputs, and its edge cases."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from evaluation.ec57 import ec57_confusion, ec57_exclusions, ec57_mask, ec57_scores, is_ec57_run
from evaluation.metrics import (CLASS_METRICS, classification_scores, confusion_matrix, downsample_curve, encode_labels, nan_mean, nan_std, one_vs_rest_auc,
                                overall_accuracy, per_class_scores, roc_auc, roc_curve, safe_divide)

AAMI = ("N", "S", "V", "F", "Q")


def random_predictions(seed: int, n: int = 500, k: int = 5, absent: tuple[int, ...] = (), ties: bool = False):
    """Labels, predictions and softmax scores of a noisy classifier (``absent`` classes never true)."""
    rng = np.random.default_rng(seed)
    prior = np.arange(k, 0, -1, dtype=float)
    prior[list(absent)] = 0.0
    y = rng.choice(k, size=n, p=prior / prior.sum())
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if ties:
        proba = proba.round(1)  # many tied scores
    return y, proba.argmax(axis=1), proba


# -- hand-made example, every number checked by hand and by scikit-learn ---------------------------------

HAND_TRUE = ["N", "N", "N", "N", "S", "S", "V", "V", "V", "F"]
HAND_PRED = ["N", "N", "N", "S", "S", "N", "V", "V", "F", "N"]


def test_hand_made_confusion_and_scores():
    t = encode_labels(HAND_TRUE, AAMI)
    p = encode_labels(HAND_PRED, AAMI)
    cm = confusion_matrix(t, p, 5)
    assert cm.tolist() == [[3, 1, 0, 0, 0],
                           [1, 1, 0, 0, 0],
                           [0, 0, 2, 1, 0],
                           [1, 0, 0, 0, 0],
                           [0, 0, 0, 0, 0]]
    s = per_class_scores(cm)
    np.testing.assert_allclose(s["sensitivity"], [3 / 4, 1 / 2, 2 / 3, 0.0, np.nan])
    np.testing.assert_allclose(s["ppv"], [3 / 5, 1 / 2, 1.0, 0.0, np.nan])
    np.testing.assert_allclose(s["specificity"], [4 / 6, 7 / 8, 7 / 7, 8 / 9, 10 / 10])
    np.testing.assert_allclose(s["f1"], [6 / 9, 2 / 4, 4 / 5, 0.0, np.nan])
    np.testing.assert_allclose(s["accuracy"], [7 / 10, 8 / 10, 9 / 10, 8 / 10, 10 / 10])
    assert s["support"].tolist() == [4, 2, 3, 1, 0]
    assert overall_accuracy(cm) == 0.6
    # the same figures from scikit-learn
    assert cm.tolist() == skm.confusion_matrix(HAND_TRUE, HAND_PRED, labels=list(AAMI)).tolist()
    prec, rec, f1, support = skm.precision_recall_fscore_support(HAND_TRUE, HAND_PRED, labels=list(AAMI),
                                                                 zero_division=np.nan)
    np.testing.assert_allclose(s["sensitivity"], rec)
    np.testing.assert_allclose(s["ppv"], prec)
    np.testing.assert_allclose(s["f1"], f1)
    assert s["support"].tolist() == support.tolist()
    assert overall_accuracy(cm) == skm.accuracy_score(HAND_TRUE, HAND_PRED)


# -- AAMI EC57 (bxb) on a hand-made set: every figure computed by hand ----------------------------------

#: (record, reference, predicted, count). Record 102 is paced: left out. Q reference beats: left out.
EC57_BEATS = [
    ("100", "N", "N", 5), ("100", "N", "S", 1), ("100", "N", "V", 2), ("100", "N", "Q", 1),
    ("101", "S", "S", 3), ("101", "S", "N", 1),
    ("100", "V", "V", 4), ("100", "V", "F", 1),
    ("101", "F", "V", 2), ("101", "F", "F", 1), ("101", "F", "N", 1),
    ("100", "Q", "S", 2), ("101", "Q", "V", 1),
    ("102", "N", "V", 3), ("102", "V", "V", 2), ("102", "Q", "Q", 4),
]


def ec57_arrays(classes):
    rec, t, p = [], [], []
    for r, a, b, n in EC57_BEATS:
        if b in classes:
            rec += [r] * n
            t += [a] * n
            p += [b] * n
    return np.array(rec), encode_labels(t, classes), encode_labels(p, classes)


def test_hand_made_ec57_matrix_and_figures():
    classes = ("N", "S", "V", "F", "Q")
    rec, t, p = ec57_arrays(classes)
    cm = ec57_confusion(t, p, rec, classes)
    assert cm.tolist() == [[5, 1, 2, 0, 1], [1, 3, 0, 0, 0], [0, 0, 4, 1, 0], [1, 0, 2, 1, 0]]
    assert ec57_exclusions(t, rec, classes) == {"paced": 9, "q": 3}
    s = ec57_scores(cm)
    assert s["n"] == 22 and s["accuracy"] == pytest.approx(13 / 22)
    assert s["support"] == {"N": 9, "S": 4, "V": 5, "F": 4}
    expected = {  # class: (Se, +P, FPR, F1), by hand from the matrix above
        "N": (5 / 9, 5 / 7, 2 / 13, 10 / 16),
        "S": (3 / 4, 3 / 4, 1 / 18, 6 / 8),     # Q beats called S (2) are not S false positives
        "V": (4 / 5, 4 / 6, 2 / 15, 8 / 11),    # F beats called V (2): neither FP nor TN of V
        "F": (1 / 4, 1 / 2, 1 / 18, 2 / 6),     # ... but F misses all the same
    }
    for c, (se, ppv, fpr, f1) in expected.items():
        got = (s["sensitivity"][c], s["ppv"][c], s["fpr"][c], s["f1"][c])
        assert got == pytest.approx((se, ppv, fpr, f1)), c


def test_ec57_f_called_v_is_not_a_v_false_positive():
    """Moving F beats from 'called F' to 'called V' leaves V +P and F1 as they are and lowers F Se.

    V FPR keeps its numerator (Nv + Sv); as in bxb (VTN omits Fv) the moved beats leave its denominator."""
    base = np.array([[50, 0, 2, 0, 0], [0, 5, 0, 0, 0], [0, 0, 8, 0, 0], [0, 0, 0, 4, 0]])
    moved = base.copy()
    moved[3] = [0, 0, 4, 0, 0]
    a, b = ec57_scores(base), ec57_scores(moved)
    for fig in ("ppv", "f1", "sensitivity"):
        assert a[fig]["V"] == b[fig]["V"], fig
    assert (a["fpr"]["V"], b["fpr"]["V"]) == (2 / 61, 2 / 57)
    assert a["ppv"]["V"] == 0.8 and b["sensitivity"]["F"] == 0.0 and b["accuracy"] < a["accuracy"]
    nv = base.copy()
    nv[0] = [46, 0, 6, 0, 0]  # N beats called V do count
    assert ec57_scores(nv)["ppv"]["V"] == pytest.approx(8 / 14)


def test_ec57_four_class_runs_other_orders_and_undefined_figures():
    rec, t, p = ec57_arrays(("N", "S", "V", "F", "Q"))
    full = ec57_confusion(t, p, rec, ("N", "S", "V", "F", "Q"))
    # the same beats with the classes in another order give the same matrix
    order = ("Q", "F", "V", "S", "N")
    rec2, t2, p2 = ec57_arrays(order)
    assert ec57_confusion(t2, p2, rec2, order).tolist() == full.tolist()
    # a 4-class model never predicts Q: its Q column is empty; Q reference beats simply are not there
    four = ("N", "S", "V", "F")
    keep = np.isin(np.array(AAMI)[t], four) & np.isin(np.array(AAMI)[p], four)
    cm4 = ec57_confusion(encode_labels(np.array(AAMI)[t][keep], four), encode_labels(np.array(AAMI)[p][keep], four),
                         rec[keep], four)
    assert cm4[:, 4].sum() == 0 and cm4[:, :4].tolist() == full[:, :4].tolist()
    empty = ec57_scores(np.zeros((4, 5), np.int64))
    assert np.isnan(empty["accuracy"]) and np.isnan(empty["ppv"]["S"]) and np.isnan(empty["sensitivity"]["F"])
    assert ec57_mask(np.array([0, 0, 0, 0]), np.array(["104", "107", "217", "105"]), AAMI).tolist() == [
        False, False, False, True]
    assert not is_ec57_run(("N", "abnormal"))
    with pytest.raises(ValueError, match="EC57 scoring needs classes"):
        ec57_confusion(np.array([0]), np.array([0]), np.array(["100"]), ("N", "S", "V"))
    with pytest.raises(ValueError, match="4 x 5"):
        ec57_scores(np.zeros((5, 5), np.int64))


# -- random inputs against scikit-learn -------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_against_sklearn_all_classes_present(seed):
    y, pred, proba = random_predictions(seed)
    r = classification_scores(y, pred, proba, 5)
    labels = list(range(5))
    assert r["confusion"].tolist() == skm.confusion_matrix(y, pred, labels=labels).tolist()
    assert r["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    prec, rec, f1, _ = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=np.nan)
    pc = r["per_class"]
    np.testing.assert_allclose(pc["sensitivity"], rec, atol=1e-12)
    np.testing.assert_allclose(pc["ppv"], prec, atol=1e-12)
    np.testing.assert_allclose(pc["f1"], f1, atol=1e-12)
    for c in labels:  # specificity = recall of the negative class; per-class accuracy = one-vs-rest accuracy
        assert pc["specificity"][c] == pytest.approx(skm.recall_score(y != c, pred != c), abs=1e-12)
        assert pc["accuracy"][c] == pytest.approx(skm.accuracy_score(y == c, pred == c), abs=1e-12)
        assert pc["auc"][c] == pytest.approx(skm.roc_auc_score(y == c, proba[:, c]), abs=1e-12)
    macro = skm.precision_recall_fscore_support(y, pred, labels=labels, average="macro", zero_division=np.nan)
    assert r["macro"]["ppv"] == pytest.approx(macro[0], abs=1e-12)
    assert r["macro"]["sensitivity"] == pytest.approx(macro[1], abs=1e-12)
    assert r["macro"]["f1"] == pytest.approx(macro[2], abs=1e-12)
    assert r["macro"]["sensitivity"] == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-12)
    assert r["macro"]["auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"),
                                              abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_against_sklearn_with_a_missing_class(seed):
    """Class 4 (Q) never occurs in the truth: its Se and AUC are undefined, macro figures skip it."""
    y, pred, proba = random_predictions(seed, absent=(4,))
    assert 4 not in y and 4 in pred  # predicted although absent: +P = 0, F1 = 0 (defined)
    r = classification_scores(y, pred, proba, 5)
    pc = r["per_class"]
    assert np.isnan(pc["sensitivity"][4]) and np.isnan(pc["auc"][4])
    assert pc["ppv"][4] == 0.0 and pc["f1"][4] == 0.0 and pc["support"][4] == 0
    labels = list(range(5))
    prec, rec, f1, _ = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=np.nan)
    np.testing.assert_allclose(pc["sensitivity"], rec, atol=1e-12)
    np.testing.assert_allclose(pc["ppv"], prec, atol=1e-12)
    np.testing.assert_allclose(pc["f1"], f1, atol=1e-12)
    macro = skm.precision_recall_fscore_support(y, pred, labels=labels, average="macro", zero_division=np.nan)
    assert r["macro"]["sensitivity"] == pytest.approx(macro[1], abs=1e-12)
    assert r["macro"]["f1"] == pytest.approx(macro[2], abs=1e-12)
    present_auc = [skm.roc_auc_score(y == c, proba[:, c]) for c in range(4)]
    np.testing.assert_allclose(pc["auc"][:4], present_auc, atol=1e-12)
    assert r["macro"]["auc"] == pytest.approx(np.mean(present_auc), abs=1e-12)
    # scikit-learn's multi-class AUC needs every class in y_true: on the present classes it agrees
    sub = proba[:, :4] / proba[:, :4].sum(axis=1, keepdims=True)
    ovr = [skm.roc_auc_score(y == c, sub[:, c]) for c in range(4)]
    assert skm.roc_auc_score(y, sub, multi_class="ovr", average="macro") == pytest.approx(np.mean(ovr))


def test_class_never_predicted_and_never_true_is_undefined_everywhere_but_specificity():
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    s = per_class_scores(confusion_matrix(y, pred, 3))
    assert np.isnan([s["sensitivity"][2], s["ppv"][2], s["f1"][2]]).all()
    assert s["specificity"][2] == 1.0 and s["accuracy"][2] == 1.0
    assert nan_mean(s["f1"]) == pytest.approx(np.mean(skm.f1_score(y, pred, labels=[0, 1], average=None)))


@pytest.mark.parametrize("seed", range(3))
def test_roc_curve_equals_sklearn(seed):
    y, _, proba = random_predictions(seed, n=300, k=3, ties=True)
    fpr, tpr, thr = roc_curve(y == 1, proba[:, 1])
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y == 1, proba[:, 1], drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, sk_tpr, atol=1e-12)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])
    assert np.isinf(thr[0])
    assert roc_auc(y == 1, proba[:, 1]) == pytest.approx(skm.roc_auc_score(y == 1, proba[:, 1]), abs=1e-12)


def test_auc_undefined_cases_and_ties():
    assert np.isnan(roc_auc(np.array([True, True]), np.array([0.1, 0.9])))
    assert np.isnan(roc_auc(np.array([False, False]), np.array([0.1, 0.9])))
    assert np.isnan(roc_auc(np.array([], bool), np.array([])))
    assert roc_auc(np.array([True, False]), np.array([0.5, 0.5])) == 0.5  # a tie counts one half
    auc = one_vs_rest_auc(np.array([0, 0, 0]), np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]))
    assert np.isnan(auc).all()  # class 0 is everything, class 1 nothing


def test_encode_labels_rejects_unknown_and_missing_labels():
    assert encode_labels(np.array(["abnormal", "normal"], dtype=object), ("normal", "abnormal")).tolist() == [1, 0]
    with pytest.raises(ValueError, match="1 labels not in classes.*'X'"):
        encode_labels(["N", "X"], AAMI)
    with pytest.raises(ValueError, match="<missing>"):
        encode_labels(["N", None], AAMI)
    with pytest.raises(ValueError, match="duplicate"):
        encode_labels(["N"], ("N", "N"))
    with pytest.raises(ValueError, match="class indices"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_empty_and_zero_division():
    cm = confusion_matrix(np.array([], np.int64), np.array([], np.int64), 2)
    assert cm.tolist() == [[0, 0], [0, 0]]
    assert np.isnan(overall_accuracy(cm))
    s = per_class_scores(cm)
    assert all(np.isnan(s[m]).all() for m in ("accuracy", "sensitivity", "specificity", "ppv", "f1"))
    assert safe_divide(np.array([0.0]), np.array([0.0])).tolist() == [pytest.approx(np.nan, nan_ok=True)]
    assert np.isnan(nan_mean([np.nan, np.nan])) and np.isnan(nan_mean([]))


def test_fold_statistics():
    assert nan_mean([0.8, np.nan, 0.9]) == pytest.approx(0.85)
    assert nan_std([0.8, np.nan, 0.9]) == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert np.isnan(nan_std([0.8])) and np.isnan(nan_std([0.8, np.nan]))


def test_downsample_curve_keeps_ends_and_shape():
    y, _, proba = random_predictions(7, n=20000, k=2)
    fpr, tpr, _ = roc_curve(y == 1, proba[:, 1])
    assert fpr.size > 1000
    f, t = downsample_curve(fpr, tpr, 200)
    assert 100 <= f.size <= 200
    assert (f[0], t[0], f[-1], t[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert (np.diff(f) >= 0).all() and (np.diff(t) >= 0).all()
    assert np.trapezoid(t, f) == pytest.approx(np.trapezoid(tpr, fpr), abs=2e-3)
    short = downsample_curve(np.array([0.0, 1.0]), np.array([0.0, 1.0]), 200)
    assert short[0].tolist() == [0.0, 1.0]
    with pytest.raises(ValueError):
        downsample_curve(fpr, tpr, 1)


def test_classification_scores_macro_keys():
    y, pred, proba = random_predictions(3, n=50, k=2)
    r = classification_scores(y, pred, proba, 2)
    assert set(r["macro"]) == set(CLASS_METRICS)
    assert r["n"] == 50 and r["confusion"].sum() == 50
