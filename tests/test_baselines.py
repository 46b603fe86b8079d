"""The majority-class, rhythm-only and RR + template baselines (training/baselines.py)."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from pipelines import RR_COLUMNS, TEMPLATE_COLUMNS, rhythm_features
from training.baselines import (BASELINES, balanced_weights, baseline_predictions, features_matrix, fit_majority,
                                fit_rhythm, rhythm_matrix)

CLASSES = ("N", "S", "V", "F", "Q")


def synthetic_beats(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Beats whose class shows in their rhythm: S premature (short pre-RR), V premature with a long
    compensatory pause, N regular; F and Q rare and rhythm-like-N. A few RR values missing."""
    rng = np.random.default_rng(seed)
    y = rng.choice(5, size=n, p=[0.8, 0.08, 0.08, 0.03, 0.01])
    base = rng.uniform(600, 1100, size=n)                     # the patient's rhythm
    pre = base * np.select([y == 1, y == 2], [0.7, 0.75], 1.0) * rng.normal(1, 0.03, n)
    post = base * np.select([y == 1, y == 2], [1.05, 1.3], 1.0) * rng.normal(1, 0.03, n)
    local = base * rng.normal(1, 0.02, n)
    beats = pd.DataFrame({"beat_id": [f"{100 + i % 7}-{i:06d}" for i in range(n)],
                          "record": [f"{100 + i % 7}" for i in range(n)],
                          "rr_pre_ms": pre, "rr_post_ms": post, "rr_local_ms": local, "rr_record_ms": base})
    beats.loc[::97, "rr_pre_ms"] = np.nan
    beats.loc[::89, "rr_local_ms"] = np.nan
    return beats, y


def test_majority_predicts_the_most_frequent_training_class():
    m = fit_majority(np.array([1, 1, 0, 2, 1]), n_classes=4)
    p = m.predict_proba(np.zeros((3, 6)))
    assert p.shape == (3, 4)
    np.testing.assert_allclose(p[0], [0.2, 0.6, 0.2, 0.0])
    assert (p.argmax(1) == 1).all()
    assert fit_majority(np.array([2, 0]), 3).predict_proba(np.zeros((1, 1))).argmax() == 0  # tie: lowest
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        fit_majority(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="non-empty"):
        fit_majority(np.array([], dtype=int), 3)


def test_balanced_weights_equalise_classes_and_respect_the_cap():
    y = np.array([0] * 90 + [1] * 9 + [2] * 1)
    w = balanced_weights(y, 4, max_ratio=0)
    totals = np.bincount(y, weights=w, minlength=4)
    np.testing.assert_allclose(totals[:3], [100 / 3] * 3)     # each present class weighs the same
    capped = balanced_weights(y, 4, max_ratio=20)
    assert capped.max() == pytest.approx(20 * capped.min())   # class 2 (100/3) capped at 20 x class 0 (100/270)


def test_rhythm_model_learns_rhythm_and_is_deterministic():
    train, y_train = synthetic_beats(6000, 0)
    test, y_test = synthetic_beats(3000, 1)
    X_train, X_test = rhythm_matrix(train), rhythm_matrix(test)
    np.testing.assert_array_equal(X_train, rhythm_features(*(train[c].to_numpy() for c in RR_COLUMNS)))
    a = fit_rhythm(X_train, y_train, 5, seed=3).predict_proba(X_test)
    b = fit_rhythm(X_train, y_train, 5, seed=3).predict_proba(X_test)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3000, 5)
    np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-9)
    pred = a.argmax(1)
    for c in (1, 2):                                           # S and V are separable by rhythm here
        assert (pred[y_test == c] == c).mean() > 0.8, c
    majority = fit_majority(y_train, 5).predict_proba(X_test).argmax(1)
    assert (majority == 0).all()


def test_rhythm_model_scores_a_class_absent_from_training_zero():
    X = np.random.default_rng(0).normal(size=(200, 6))
    y = np.array([0, 2] * 100)
    p = fit_rhythm(X, y, 5, seed=0).predict_proba(X[:10])
    assert p.shape == (10, 5) and (p[:, [1, 3, 4]] == 0).all()


def test_baseline_table_has_the_predictions_layout_and_model_column():
    train, y_train = synthetic_beats(3000, 2)
    test, y_test = synthetic_beats(500, 3)
    t0 = time.perf_counter()
    table = baseline_predictions(train, y_train, test, y_test, classes=CLASSES, fold=4, seed=7)
    assert time.perf_counter() - t0 < 30
    assert list(table.columns) == ["beat_id", "record", "fold", "y_true", "y_pred",
                                   *[f"p_{c}" for c in CLASSES], "model"]
    assert table["model"].tolist() == ["majority"] * 500 + ["rhythm"] * 500
    assert BASELINES == ("majority", "rhythm", "features")
    for name, part in table.groupby("model", sort=False):
        assert part["beat_id"].tolist() == test["beat_id"].tolist()
        assert part["y_true"].tolist() == [CLASSES[i] for i in y_test]
        proba = part[[f"p_{c}" for c in CLASSES]].to_numpy()
        assert part["y_pred"].tolist() == [CLASSES[i] for i in proba.argmax(1)]
    assert (table["fold"] == 4).all() and table["fold"].dtype == np.int32
    assert table["p_N"].dtype == np.float32
    assert set(table.loc[table.model == "majority", "y_pred"]) == {"N"}
    again = baseline_predictions(train, y_train, test, y_test, classes=CLASSES, fold=4, seed=7)
    pd.testing.assert_frame_equal(table, again)


def test_missing_rr_columns_are_named():
    beats, y = synthetic_beats(50, 0)
    with pytest.raises(KeyError, match="rr_local_ms"):
        baseline_predictions(beats, y, beats.drop(columns=["rr_local_ms"]), y, classes=CLASSES, fold=0, seed=0)


def with_template(beats: pd.DataFrame, y: np.ndarray, seed: int) -> pd.DataFrame:
    """Template columns that show F (class 3, rhythm-like-N) as a beat unlike its record's template."""
    rng = np.random.default_rng(seed)
    unlike = np.where(y == 3, 0.3, 0.95) + rng.normal(0, 0.03, len(y))
    out = beats.assign(**{c: unlike for c in TEMPLATE_COLUMNS})
    out.loc[::53, list(TEMPLATE_COLUMNS)] = np.nan
    return out


def test_features_baseline_sees_the_template_columns_the_rhythm_one_does_not():
    train, y_train = synthetic_beats(4000, 4)
    test, y_test = synthetic_beats(1000, 5)
    train, test = with_template(train, y_train, 6), with_template(test, y_test, 7)
    used = ("tpl_corr_qrs", "tpl_width")
    X = features_matrix(test, ["log_pre_local", "rr_missing"], used)
    assert X.shape == (1000, 4) and np.isfinite(X).all() and (X[::53, 2:] == 0).all()
    table = baseline_predictions(train, y_train, test, y_test, classes=CLASSES, fold=0, seed=7, template=used)
    assert table["model"].tolist() == ["majority"] * 1000 + ["rhythm"] * 1000 + ["features"] * 1000
    f_recall = {m: (part["y_pred"].to_numpy()[y_test == 3] == "F").mean() for m, part in table.groupby("model")}
    assert f_recall["features"] > 0.8 > 0.3 > f_recall["rhythm"]
    with pytest.raises(KeyError, match="no template columns"):
        baseline_predictions(train.drop(columns=["tpl_width"]), y_train, test, y_test, classes=CLASSES, fold=0,
                             seed=7, template=used)
