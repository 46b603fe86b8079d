"""training.selection: the prior correction of the decision rule and its choice on validation beats."""
from __future__ import annotations

import numpy as np
import pytest

from training.selection import TAUS, adjust, choose_tau, macro_f1, prior_bias


def test_bias_moves_from_equal_priors_to_the_training_frequencies():
    y = np.array([0] * 900 + [1] * 100)
    balanced = np.array([1000 / 1800, 1000 / 200])
    # balanced weights: the model was fitted to equal priors; tau = 0 keeps them, tau = 1 restores 9:1
    b0, b1 = prior_bias(y, balanced, 2, 0.0), prior_bias(y, balanced, 2, 1.0)
    assert b0[0] == pytest.approx(b0[1])
    assert b1[0] - b1[1] == pytest.approx(np.log(9.0), rel=1e-6)
    # no weights: the model already carries the training prior; tau = 1 adds nothing, tau = 0 removes it
    ones = np.ones(2)
    assert np.ptp(prior_bias(y, ones, 2, 1.0)) == pytest.approx(0.0, abs=1e-6)
    assert prior_bias(y, ones, 2, 0.0)[1] - prior_bias(y, ones, 2, 0.0)[0] == pytest.approx(np.log(9.0), rel=1e-6)


def test_adjust_is_a_softmax_of_shifted_logits():
    p = adjust(np.array([[0.5, 0.5]], np.float32), np.array([np.log(3.0), 0.0], np.float32))
    np.testing.assert_allclose(p, [[0.75, 0.25]], rtol=1e-6)


def test_choose_tau_maximises_validation_macro_f1():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(950, int), np.ones(50, int)]
    # a weak rare-class score: equal priors call many frequent beats rare; the training prior fixes that
    s = np.clip(0.5 + 0.2 * (2 * y - 1) + rng.normal(0, 0.15, y.size), 0.01, 0.99)
    probs = np.c_[1 - s, s]
    y_train, w = np.r_[np.zeros(950, int), np.ones(50, int)], np.array([1000 / 1900, 1000 / 100])
    tau, score = choose_tau(probs, y, y_train, w)
    scores = {t: macro_f1(y, adjust(probs, prior_bias(y_train, w, 2, t)).argmax(1), 2) for t in TAUS}
    assert score == max(scores.values()) and scores[tau] == score
    assert tau > 0.0


def test_macro_f1_counts_a_never_predicted_class_as_zero():
    assert macro_f1(np.array([0, 0, 1]), np.array([0, 0, 0]), 2) == pytest.approx((0.8 + 0.0) / 2)


def test_a_class_with_too_few_validation_beats_does_not_choose_tau():
    # 200 N, 100 S and 2 F validation beats; 20 N beats look a little like F. tau = 0 finds both F beats
    # at the price of 20 false F: macro F1 over all three classes prefers it, the F1 of N and S alone
    # (F has fewer than min_beats) prefers tau = 0.25, which calls the 22 beats N
    y = np.array([0] * 200 + [1] * 100 + [2] * 2)
    probs = np.full((y.size, 3), 0.1)
    probs[np.arange(y.size), y] = 0.8
    probs[:20] = [0.35, 0.1, 0.55]
    probs[300:] = [0.3, 0.1, 0.6]
    y_train = np.array([0] * 900 + [1] * 90 + [2] * 10)
    w = np.array([1000 / 2700, 1000 / 270, 1000 / 30])   # balanced: uniform effective prior
    assert choose_tau(probs, y, y_train, w)[0] == 0.0
    assert choose_tau(probs, y, y_train, w, min_beats=50)[0] == 0.25
