"""training.selection: the prior correction of the decision rule and its choice on validation beats."""
from __future__ import annotations

import numpy as np
import pytest

from training.selection import (TAUS, adjust, choose_tau, macro_f1, majority_accuracy, prevalence_weights, prior_bias,
                                weighted_accuracy)


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
    tau, score, met, margin, free_tau = choose_tau(probs, y, y_train, w)
    scores = {t: macro_f1(y, adjust(probs, prior_bias(y_train, w, 2, t)).argmax(1), 2) for t in TAUS}
    assert score == max(scores.values()) and scores[tau] == score
    assert tau > 0.0 and free_tau == tau
    assert met is None and margin is None            # no floor: nothing checked, nothing claimed


def test_macro_f1_counts_a_never_predicted_class_as_zero():
    assert macro_f1(np.array([0, 0, 1]), np.array([0, 0, 0]), 2) == pytest.approx((0.8 + 0.0) / 2)


def test_a_class_with_too_few_validation_beats_does_not_choose_tau():
    # 200 N, 100 S and 2 F validation beats; 20 N beats look a little like F. tau = 0 finds both F beats
    # at the price of 20 false F: macro F1 over all three classes prefers it, the F1 of N and S alone
    # (F has fewer than min_beats) prefers tau = 0.2, the first tau of TAUS that calls the 22 beats N
    y = np.array([0] * 200 + [1] * 100 + [2] * 2)
    probs = np.full((y.size, 3), 0.1)
    probs[np.arange(y.size), y] = 0.8
    probs[:20] = [0.35, 0.1, 0.55]
    probs[300:] = [0.3, 0.1, 0.6]
    y_train = np.array([0] * 900 + [1] * 90 + [2] * 10)
    w = np.array([1000 / 2700, 1000 / 270, 1000 / 30])   # balanced: uniform effective prior
    assert choose_tau(probs, y, y_train, w)[0] == 0.0
    assert choose_tau(probs, y, y_train, w, min_beats=50)[0] == 0.2


def test_the_prior_is_the_training_side_before_subsampling():
    # 300 N and 300 S training images (water-filled) out of 9,000 N and 300 S training beats: at tau = 1
    # the decision is Bayes under 30:1, not under the images' 1:1
    y_img = np.array([0] * 300 + [1] * 300)
    w = np.array([1.0, 1.0])
    capped = prior_bias(y_img, w, 2, 1.0)
    natural = prior_bias(y_img, w, 2, 1.0, prior_counts=np.array([9000, 300]))
    assert capped[0] - capped[1] == pytest.approx(0.0)
    assert natural[0] - natural[1] == pytest.approx(np.log(30.0), rel=1e-6)
    with pytest.raises(ValueError, match="prior_counts"):
        prior_bias(y_img, w, 2, 1.0, prior_counts=np.array([1, 2, 3]))


def test_validation_beats_are_weighted_to_the_training_prevalence():
    # validation records rich in S (half of the beats), training side 1 S in 31: 40 N beats that look
    # like S cost 40 false S. Unweighted, S keeps its F1 (100 true S) and tau = 0 wins; weighted to
    # the 30:1 training prevalence the 40 false S outweigh the 100 S beats (weight 1/15 each)
    y = np.array([0] * 100 + [1] * 100)
    probs = np.tile([0.9, 0.1], (200, 1))
    probs[100:] = [0.3, 0.7]
    probs[:40] = [0.2, 0.8]                 # more S-like than the S beats: no tau separates them
    y_train = np.array([0] * 300 + [1] * 300)
    w = np.array([1.0, 1.0])
    counts = np.array([9000, 300])
    sw = prevalence_weights(y, counts)
    assert sw[:100].sum() + sw[100:].sum() == pytest.approx(200.0)
    assert sw[0] / sw[150] == pytest.approx(30.0)
    unweighted = {t: macro_f1(y, adjust(probs, prior_bias(y_train, w, 2, t, counts)).argmax(1), 2) for t in TAUS}
    tau, score = choose_tau(probs, y, y_train, w, prior_counts=counts)[:2]
    assert max(unweighted, key=lambda t: (unweighted[t], -t)) == 0.0
    assert tau > 0.0
    assert score == pytest.approx(macro_f1(y, adjust(probs, prior_bias(y_train, w, 2, tau, counts)).argmax(1), 2,
                                           sample_weight=sw))


def _spilling_scores() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # 100 N, 10 S: at tau = 0 the 10 S are found with 15 false S, the macro F1 optimum, below "always N"
    p_s = np.r_[[0.85] * 2, [0.55] * 13, [0.1] * 85, [0.8] * 4, [0.55] * 6]
    return np.c_[1 - p_s, p_s], np.r_[[0] * 100, [1] * 10], np.array([0.55, 5.5])


def test_the_majority_floor_keeps_tau_from_below_always_n():
    probs, y, w = _spilling_scores()
    free, floored = choose_tau(probs, y, y, w), choose_tau(probs, y, y, w, floor="majority")
    assert free.tau == 0.0 and floored.tau == 0.1 and floored.floor_met
    assert weighted_accuracy(y, adjust(probs, prior_bias(y, w, 2, free.tau)).argmax(1)) < majority_accuracy(y, 2)
    assert weighted_accuracy(y, adjust(probs, prior_bias(y, w, 2, floored.tau)).argmax(1)) >= majority_accuracy(y, 2)
    assert floored.score < free.score
    with pytest.raises(ValueError, match="floor"):
        choose_tau(probs, y, y, w, floor="always")


def test_no_tau_above_the_floor_takes_the_most_accurate_one():
    # 20 N beats score S higher than any tau can undo (false S at every tau): every tau is below "always N"
    # (at best 90 of 110 right, against 100); the choice falls back to the most accurate tau
    y = np.r_[[0] * 100, [1] * 10]
    p_s = np.r_[[0.97] * 20, [0.05] * 80, [0.6] * 10]
    probs, w = np.c_[1 - p_s, p_s], np.array([0.55, 5.5])
    choice = choose_tau(probs, y, y, w, floor="majority")
    accuracy = {t: weighted_accuracy(y, adjust(probs, prior_bias(y, w, 2, t)).argmax(1)) for t in TAUS}
    assert not choice.floor_met
    assert accuracy[choice.tau] == max(accuracy.values())
    assert choice.tau == min(t for t in TAUS if accuracy[t] == max(accuracy.values()))


def test_majority_accuracy_is_weighted_like_the_macro_f1():
    y = np.r_[[0] * 10, [1] * 10]
    assert majority_accuracy(y, 2) == 0.5
    assert majority_accuracy(y, 2, prevalence_weights(y, np.array([90, 10]))) == pytest.approx(0.9)


class _Epochs:
    """A stand-in for a Keras model: ``predict`` returns the next epoch's validation probabilities."""

    def __init__(self, probs: list[np.ndarray]):
        self.probs, self.epoch, self.stop_training = probs, -1, False

    def predict(self, dataset, verbose=0):
        return self.probs[self.epoch]

    def get_weights(self):
        return [self.epoch]

    def set_weights(self, weights):
        self.restored = weights


def _select(epochs: list[np.ndarray], y: np.ndarray, w: np.ndarray, **kwargs):
    """Run :class:`MacroF1Selection` over the epochs' validation probabilities; the selector, the stand-in
    model and each epoch's macro F1."""
    from training.selection import MacroF1Selection

    model = _Epochs(epochs)
    sel = MacroF1Selection(None, y, y, w, patience=5, **kwargs)
    sel.set_model(model)
    scores = []
    for epoch in range(len(epochs)):
        model.epoch, logs = epoch, {}
        sel.on_epoch_end(epoch, logs)
        scores.append(logs["val_macro_f1"])
    sel.on_train_end()
    return sel, model, scores


@pytest.mark.parametrize("floor, best_epoch", [("majority", 2), ("none", 1)])
def test_an_epoch_above_the_floor_beats_a_better_f1_below_it(floor, best_epoch):
    # epoch 1: all 10 S found, but 12 N beats called S at every tau (98 of 110 at best, below "always N"'s 100);
    # epoch 2: the spilling scores, above the floor from tau = 0.1 on with a lower macro F1
    y = np.r_[[0] * 100, [1] * 10]
    p_s = np.r_[[0.97] * 12, [0.05] * 88, [0.9] * 10]
    below = np.c_[1 - p_s, p_s]
    spilling, _, w = _spilling_scores()
    sel, model, scores = _select([below, spilling], y, w, tau=None, floor=floor)
    if floor == "majority":
        assert scores[0] > scores[1]         # the unmet epoch has the better macro F1, and still loses
    assert sel.best_epoch == best_epoch and model.restored == [best_epoch - 1]
    assert sel.best_met is (None if floor == "none" else True)
    assert sel.best_free_tau == 0.0                   # both epochs: macro F1 alone takes tau 0


def test_of_two_epochs_below_the_floor_the_closer_one_is_kept():
    y = np.r_[[0] * 100, [1] * 10]
    far = np.r_[[0.97] * 30, [0.05] * 70, [0.9] * 10]      # 30 N called S at every tau: 80 of 110 at best
    near = np.r_[[0.97] * 12, [0.05] * 88, [0.3] * 10]     # 12 N called S, the S missed from tau 0.1: 98 of 110
    sel, _, scores = _select([np.c_[1 - near, near], np.c_[1 - far, far]], y, np.array([0.55, 5.5]), tau=None,
                             floor="majority")
    assert scores[1] > scores[0]                       # the far epoch finds its S: a better macro F1
    assert sel.best_epoch == 1 and sel.best_met is False


def test_a_fixed_tau_claims_no_floor_and_a_bad_floor_is_refused():
    from training.selection import MacroF1Selection

    probs, y, w = _spilling_scores()
    sel, _, _ = _select([probs], y, w, tau=0.5, floor="majority")
    assert sel.best_epoch == 1 and sel.best_met is None and sel.best_free_tau is None
    with pytest.raises(ValueError, match="floor"):
        MacroF1Selection(None, y, y, w, tau=0.5, patience=1, floor="always")
    with pytest.raises(ValueError, match="no validation beats"):
        choose_tau(probs[:0], y[:0], y, w)


def test_the_floor_is_weighted_to_the_training_prevalence():
    # validation records rich in S (50 N, 50 S) from a training side of 90 % N. Ten N beats score S high: on
    # these records, where "always N" gets 50 %, tau 0 passes the floor; weighted to 90 % N it does not
    y = np.r_[[0] * 50, [1] * 50]
    p_s = np.r_[[0.9] * 10, [0.1] * 40, [0.8] * 50]
    probs, w, counts = np.c_[1 - p_s, p_s], np.array([1.0, 1.0]), np.array([900, 100])
    unweighted = choose_tau(probs, y, y, w, floor="majority")
    weighted = choose_tau(probs, y, y, w, prior_counts=counts, floor="majority")
    assert unweighted.tau == 0.0 and unweighted.free_tau == 0.0
    assert weighted.free_tau == 0.0 and weighted.tau > 0.0 and weighted.floor_met   # the floor bound
    sw = prevalence_weights(y, counts)
    pred = adjust(probs, prior_bias(y, w, 2, weighted.tau, counts)).argmax(1)
    assert weighted.margin == pytest.approx(weighted_accuracy(y, pred, sw) - majority_accuracy(y, 2, sw))
