"""Model selection on the rare classes, and the class-prior correction of the decision rule.

Accuracy and the validation loss are dominated by the majority class (about 89 % of MIT-BIH beats are
AAMI N), so a model that calls every beat N looks good on both. Each epoch, :class:`MacroF1Selection`
scores the validation records with the **macro F1 over the trained classes** (each class counts the
same; a class with fewer than ``train.selection_min_beats`` validation beats is left out; beats weighted
to the training side's class frequencies, :func:`prevalence_weights`), keeps the weights of the best
epoch and stops after ``patience`` epochs without improvement.

The decision rule is corrected for the class prior by **logit adjustment** (Menon et al. 2021,
"Long-tail learning via logit adjustment"): the model's probabilities are fitted to the *effective*
training prior ``pi_eff`` (the training images' class counts, after ``max_train_images`` and crops
included, times their class weights: uniform under ``class_weight: balanced``); the decision is
``argmax_c log p(c | x) - log pi_eff(c) + tau * log pi(c)``, with ``pi`` the training-side class
frequencies *before* ``max_train_images`` subsamples the training images (the population the test side
resembles, counted over original beats, not crops). ``tau = 0`` decides as if the classes were equally
likely (high sensitivity of the rare classes, low +P where N is 89 % of beats); ``tau = 1`` is the Bayes
decision under the training frequencies (fewer false alarms). ``train.decision_prior`` sets ``tau``, or
``auto`` chooses it from :data:`TAUS` by the macro F1 of the validation records (the training side),
never the test side, each validation beat weighted so that the classes have the training-side frequencies
``pi`` (validation records are chosen for their rare beats: unweighted, their S and V +P would be those of
a population several times richer in S and V than any test set). With ``train.decision_floor: majority``
only a ``tau`` whose validation accuracy (weighted alike) reaches that of "always the majority class" is
chosen (:func:`choose_tau`). The correction is stored beside each
fold's model (``prior.json``) so that :mod:`training.predict` applies the same rule.

Examples
--------
>>> import numpy as np
>>> y, w = np.array([0] * 90 + [1] * 10), np.array([100 / 180, 100 / 20])    # balanced weights
>>> [round(float(b), 3) for b in prior_bias(y, w, 2, tau=1.0)]                 # + log pi - log(1/2)
[0.588, -1.609]
>>> [round(float(b), 3) for b in prior_bias(y, w, 2, tau=0.0)]                 # uniform effective prior: no bias
[0.693, 0.693]
>>> [round(float(p), 3) for p in adjust(np.array([[0.4, 0.6]], np.float32), prior_bias(y, w, 2, 1.0))[0]]
[0.857, 0.143]
>>> macro_f1(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]), 2)
0.7333333333333334
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pipelines import DataError

#: File beside ``model.keras`` holding the fold's prior correction.
PRIOR_FILE = "prior.json"

#: ``train.decision_floor`` values: ``majority`` keeps ``decision_prior: auto`` from a ``tau`` whose validation
#: accuracy is below "always the majority class"; ``none`` chooses by macro F1 alone.
FLOORS: tuple[str, ...] = ("majority", "none")

#: Weights of the training prior tried by ``decision_prior: auto``.
TAUS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, min_beats: int = 1,
             sample_weight: np.ndarray | None = None) -> float:
    """Mean F1 over the classes ``0..n_classes-1`` with at least ``min_beats`` true beats (all classes
    when none has; a class with no true and no predicted beat scores 0). ``sample_weight`` weights each
    beat in the counts (:func:`prevalence_weights`); ``min_beats`` counts beats, unweighted.

    A class's F1 on a handful of beats is noise: with ``min_beats`` it does not choose the epoch or ``tau``
    (MIT-BIH DS1's validation records can spare 14 F beats: record 208 holds 90 % of DS1's F).

    >>> y, pred = np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0])
    >>> round(macro_f1(y, pred, 2), 3), round(macro_f1(y, pred, 2, min_beats=2), 3)   # class 1 (1 beat) left out
    (0.429, 0.857)
    """
    counted = np.bincount(np.asarray(y_true, np.int64), minlength=n_classes)[:n_classes] >= min_beats
    return _macro_f1(*_counts(y_true, y_pred, n_classes, sample_weight), counted)


def _counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int,
            sample_weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class, weighted: true positives, true beats, predicted beats (one pass feeds F1 and accuracy)."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    w = np.ones(y_true.size) if sample_weight is None else np.asarray(sample_weight, np.float64)
    hit = y_true == y_pred
    tp = np.bincount(y_true[hit], weights=w[hit], minlength=n_classes)[:n_classes]
    n_true = np.bincount(y_true, weights=w, minlength=n_classes)[:n_classes]
    n_pred = np.bincount(y_pred, weights=w, minlength=n_classes)[:n_classes]
    return tp, n_true, n_pred


def _macro_f1(tp: np.ndarray, n_true: np.ndarray, n_pred: np.ndarray, counted: np.ndarray) -> float:
    denom = n_true + n_pred
    f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
    return float(np.mean(f1[counted] if counted.any() else f1))


def _ratio(part: float, whole: float) -> float:
    return float(part / whole) if whole > 0 else 0.0


def prior_bias(y_train: np.ndarray, weights: np.ndarray, n_classes: int, tau: float,
               prior_counts: np.ndarray | None = None) -> np.ndarray:
    """``tau * log(pi) - log(pi_eff)`` per class: ``pi_eff`` the frequencies of the training images
    ``y_train`` times their class weights (what the model was fitted to), ``pi`` the class frequencies
    of ``prior_counts`` (the training side's beats before any subsampling; ``y_train``'s when None),
    both normalised.

    >>> y, w = np.array([0] * 50 + [1] * 50), np.array([1.0, 1.0])      # water-filled 50/50 images
    >>> [round(float(b), 3) for b in prior_bias(y, w, 2, 1.0, prior_counts=np.array([900, 100]))]
    [0.588, -1.609]
    """
    counts = np.maximum(np.bincount(np.asarray(y_train, np.int64), minlength=n_classes).astype(np.float64), 1e-12)
    mass = counts * np.asarray(weights, np.float64)
    effective = mass / mass.sum()
    population = counts if prior_counts is None else np.maximum(np.asarray(prior_counts, np.float64), 1e-12)
    if population.shape != (n_classes,):
        raise ValueError(f"prior_counts: {population.shape[0]} classes, expected {n_classes}")
    prior = population / population.sum()
    return (tau * np.log(prior) - np.log(effective)).astype(np.float32)


def prevalence_weights(y: np.ndarray, prior_counts: np.ndarray) -> np.ndarray:
    """Per-beat weights giving the classes of ``y`` the frequencies of ``prior_counts``: a beat of class
    ``c`` weighs ``pi(c) / freq_y(c)``, so the weights sum to ``len(y)`` over the classes present.

    >>> prevalence_weights(np.array([0, 0, 1, 1]), np.array([90, 10])).tolist()
    [1.8, 1.8, 0.2, 0.2]
    """
    y = np.asarray(y, np.int64)
    prior = np.asarray(prior_counts, np.float64)
    if y.size == 0:
        return np.zeros(0)
    present = np.bincount(y, minlength=prior.size)[:prior.size] > 0
    pi = np.where(present, prior, 0.0)
    pi = pi / pi.sum() if pi.sum() > 0 else np.full(prior.size, 1.0 / prior.size)
    freq = np.bincount(y, minlength=prior.size)[:prior.size] / y.size
    return (pi / np.where(freq > 0, freq, 1.0))[y]


class TauChoice(NamedTuple):
    """What :func:`choose_tau` chose.

    ``tau`` and its validation macro F1 ``score``; ``floor_met``: whether some ``tau`` reaches the (weighted)
    validation accuracy of calling every beat the majority class (None without a floor); ``margin``: the
    chosen ``tau``'s accuracy minus that majority accuracy (None without a floor); ``free_tau``: the ``tau``
    macro F1 alone chooses, so ``free_tau != tau`` means the floor changed the decision."""

    tau: float
    score: float
    floor_met: bool | None
    margin: float | None
    free_tau: float


def weighted_accuracy(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Accuracy with each beat weighted by ``sample_weight`` (:func:`prevalence_weights`); 0 on no beats.

    >>> weighted_accuracy(np.array([0, 0, 1]), np.array([0, 1, 1]), np.array([1.0, 1.0, 2.0]))
    0.75
    """
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    n = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    tp, n_true, _ = _counts(y_true, y_pred, n, sample_weight)
    return _ratio(tp.sum(), n_true.sum())


def majority_accuracy(y_true: np.ndarray, n_classes: int, sample_weight: np.ndarray | None = None) -> float:
    """The (weighted) accuracy of calling every beat the class with the most (weighted) beats.

    >>> majority_accuracy(np.array([0, 0, 1]), 2), majority_accuracy(np.array([0, 0, 1]), 2, np.array([1.0, 1, 6]))
    (0.6666666666666666, 0.75)
    """
    _, n_true, _ = _counts(y_true, y_true, n_classes, sample_weight)
    return _ratio(n_true.max(initial=0.0), n_true.sum())


def choose_tau(probs: np.ndarray, y: np.ndarray, y_train: np.ndarray, weights: np.ndarray,
               taus: tuple[float, ...] = TAUS, min_beats: int = 1,
               prior_counts: np.ndarray | None = None, floor: str = "none") -> TauChoice:
    """The ``tau`` of ``taus`` whose corrected decision has the best macro F1 on ``(probs, y)``; that F1; and
    whether the floor is met.

    With ``prior_counts`` the prior is theirs (:func:`prior_bias`) and the validation beats are weighted
    to their class frequencies (:func:`prevalence_weights`). Ties keep the smaller ``tau``.
    ``floor="majority"`` chooses only among the ``tau`` whose validation accuracy (weighted alike) is at
    least :func:`majority_accuracy` ("always N"); when none is, the ``tau`` of the best accuracy, with
    ``floor_met`` False. A macro-F1 optimum may call thousands of N beats S or F; on a test side where
    89 % of the beats are N that is worse than calling every beat N. The floor does not ask for more than
    "always N": a ``tau`` that calls every beat N meets it exactly, and is chosen when it alone does.

    100 N and 10 S validation beats, classes fitted as equally likely (balanced weights). At tau = 0 all 10 S
    are found with 15 false S (accuracy 86.4 %, below the 90.9 % of "always N"); at tau = 0.1, 4 S with
    2 false S (92.7 %), a lower macro F1:

    >>> p_s = np.r_[[0.85] * 2, [0.55] * 13, [0.1] * 85, [0.8] * 4, [0.55] * 6]
    >>> probs, y = np.c_[1 - p_s, p_s], np.r_[[0] * 100, [1] * 10]
    >>> free = choose_tau(probs, y, y, np.array([0.55, 5.5]))
    >>> free.tau, round(free.score, 3), free.floor_met
    (0.0, 0.745, None)
    >>> floored = choose_tau(probs, y, y, np.array([0.55, 5.5]), floor="majority")
    >>> floored.tau, round(floored.score, 3), floored.floor_met, round(floored.margin, 3), floored.free_tau
    (0.1, 0.73, True, 0.018, 0.0)
    """
    if floor not in FLOORS:
        raise ValueError(f"floor must be one of {FLOORS}, got {floor!r}")
    if np.asarray(y).size == 0:
        raise ValueError("no validation beats to choose tau on")
    n = probs.shape[1]
    sw = None if prior_counts is None else prevalence_weights(y, prior_counts)
    counted = np.bincount(np.asarray(y, np.int64), minlength=n)[:n] >= min_beats
    counts = [_counts(y, adjust(probs, prior_bias(y_train, weights, n, tau, prior_counts)).argmax(1), n, sw)
              for tau in taus]
    scores = np.array([_macro_f1(*c, counted) for c in counts])
    free = int(np.argmax(scores))
    if floor == "none":
        return TauChoice(float(taus[free]), float(scores[free]), None, None, float(taus[free]))
    n_true = counts[0][1]                     # the same for every tau: the validation beats, weighted
    margins = np.array([_ratio(tp.sum(), n_true.sum()) for tp, _, _ in counts]) - _ratio(n_true.max(), n_true.sum())
    met = margins >= -1e-12
    best = int(np.argmax(np.where(met, scores, -np.inf))) if met.any() else int(np.argmax(margins))
    return TauChoice(float(taus[best]), float(scores[best]), bool(met.any()), float(margins[best]),
                     float(taus[free]))


def adjust(probs: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Softmax probabilities with ``bias`` added to their logits: ``softmax(log p + bias)``, float32."""
    logits = np.log(np.maximum(np.asarray(probs, np.float64), 1e-30)) + np.asarray(bias, np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def write_prior(path: Path, classes: tuple[str, ...], bias: np.ndarray, tau: float) -> None:
    """Write the correction of one fold (class order, ``tau``, per-class logit bias) as JSON."""
    doc = {"classes": list(classes), "tau": float(tau), "bias": [float(b) for b in bias],
           "rule": "argmax softmax(log p + bias); bias = tau * log(training prior) - log(effective training prior)"}
    Path(path).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def read_prior(path: Path, classes: tuple[str, ...]) -> np.ndarray:
    """The bias stored at ``path``; :class:`DataError` naming the file when missing, unreadable or for
    other classes than ``classes``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "missing: the fold's prior correction (retrain the run)")
    try:
        doc = json.loads(path.read_text())
        bias = np.asarray(doc["bias"], np.float32)
        stored = tuple(doc["classes"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(str(path), f"not a prior-correction file ({exc})") from None
    if stored != tuple(classes) or bias.shape != (len(classes),):
        raise DataError(str(path), f"holds classes {list(stored)}, the run has {list(classes)}")
    return bias


def _keras_callback() -> type:
    import keras

    return keras.callbacks.Callback


class MacroF1Selection(_keras_callback()):
    """Score the validation set each epoch; keep the best weights by macro F1; stop early.

    Writes ``val_loss``, ``val_accuracy`` (unweighted, on the uncorrected probabilities),
    ``val_macro_f1`` (on the prior-corrected decision) and ``val_seconds`` into the epoch's logs,
    so callbacks after it (:class:`training.callbacks.EpochLog`) see them. Ties keep the earlier
    epoch. At the end of training the best epoch's weights are restored.

    Parameters
    ----------
    dataset : tf.data.Dataset
        The validation batches, in the order of ``y``, unshuffled.
    y : ndarray of int
        Validation labels (model output indices).
    y_train, weights : ndarray
        Training labels and class weights (for :func:`prior_bias`).
    tau : float or None
        The prior weight; None chooses it each epoch from :data:`TAUS` (:func:`choose_tau`), and the
        best epoch's choice is kept (``best_tau``).
    patience : int
        Epochs without improvement before stopping.
    min_beats : int
        Classes with fewer validation beats are left out of the macro F1 (:func:`macro_f1`).
    prior_counts : ndarray or None
        Training-side class counts before subsampling: the prior of :func:`prior_bias`, and the class
        frequencies the validation beats are weighted to (:func:`prevalence_weights`).
    floor : {"none", "majority"}
        With ``tau`` None: :func:`choose_tau`'s floor; an epoch whose chosen ``tau`` meets it beats every
        epoch whose ``tau`` does not, whatever their macro F1, and of two epochs that miss it the one
        closer to it wins. ``best_met`` is the kept epoch's ``floor_met`` (None without a floor or with a
        fixed ``tau``) and ``best_free_tau`` the ``tau`` macro F1 alone would have chosen there.
    """

    def __init__(self, dataset: Any, y: np.ndarray, y_train: np.ndarray, weights: np.ndarray,
                 tau: float | None, patience: int, min_beats: int = 1, prior_counts: np.ndarray | None = None,
                 floor: str = "none"):
        super().__init__()
        self.dataset, self.y, self.patience = dataset, np.asarray(y, np.int64), patience
        self.min_beats, self.prior_counts = min_beats, prior_counts
        self.sample_weight = None if prior_counts is None else prevalence_weights(self.y, prior_counts)
        self.y_train, self.weights, self.tau = y_train, weights, tau
        if floor not in FLOORS:
            raise ValueError(f"floor must be one of {FLOORS}, got {floor!r}")
        self.floor = floor
        self.best, self.best_epoch, self.best_weights, self.wait = -1.0, 0, None, 0
        self.best_key: tuple[int, float] | None = None    # (1, macro F1) floor met or none; (0, margin) missed
        self.best_met: bool | None = None
        self.best_tau = 1.0 if tau is None else float(tau)
        self.best_free_tau: float | None = None

    def decide(self, probs: np.ndarray) -> tuple[float, float, bool | None, float | None, tuple[int, float]]:
        """The decision on validation probabilities ``probs`` (in the order of ``y``): ``(tau, macro F1, floor met,
        the tau of macro F1 alone, ranking key)``. ``tau`` is the fixed one or :func:`choose_tau`'s; floor met and
        the unfloored tau are None with a fixed ``tau``. The key ranks epochs: ``(1, macro F1)`` when the floor is
        met or none applies, ``(0, accuracy margin)`` when it is missed. :func:`training.train.train_fold` calls it
        once more on an ensemble's averaged probabilities."""
        probs = np.asarray(probs, np.float64)
        if self.tau is None:
            choice = choose_tau(probs, self.y, self.y_train, self.weights, min_beats=self.min_beats,
                                prior_counts=self.prior_counts, floor=self.floor)
            key = (0, choice.margin) if choice.floor_met is False else (1, choice.score)
            return choice.tau, choice.score, choice.floor_met, choice.free_tau, key
        n = probs.shape[1]
        bias = prior_bias(self.y_train, self.weights, n, float(self.tau), self.prior_counts)
        score = macro_f1(self.y, adjust(probs, bias).argmax(1), n, self.min_beats, self.sample_weight)
        return float(self.tau), score, None, None, (1, score)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        t0 = time.perf_counter()
        probs = np.asarray(self.model.predict(self.dataset, verbose=0), np.float64)
        logs["val_loss"] = float(-np.mean(np.log(np.maximum(probs[np.arange(self.y.size), self.y], 1e-12))))
        logs["val_accuracy"] = float((probs.argmax(1) == self.y).mean())
        tau, score, met, free_tau, key = self.decide(probs)
        logs["val_macro_f1"] = score
        logs["val_tau"] = tau
        logs["val_seconds"] = time.perf_counter() - t0
        if self.best_key is None or key > self.best_key:
            self.best, self.best_epoch, self.wait, self.best_tau = score, epoch + 1, 0, tau
            self.best_key, self.best_met, self.best_free_tau = key, met, free_tau
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait > self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
