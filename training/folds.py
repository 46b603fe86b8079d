"""Cross-validation folds at the beat level, and the guard that checks them before every training.

Three schemes (``train.runs.<run>.folds``):

``beat``
    Stratified K-fold over beats: the intra-patient protocol of Jun et al. 2018 (K=10 there). Beats of
    one record land on both sides, which inflates scores; it is there to reproduce the paper.
``record``
    K-fold grouped by record (inter-patient): no record on both sides of a fold. Records are assigned
    greedily, rarest class first, so that every test fold gets every class when each class occurs in
    at least K records; ties go to the smaller fold, then to a seeded fold order.
``ds1ds2``
    de Chazal et al. 2004: train on DS1, test on DS2, a single fold.

The assignment is computed from (beat_id, record, label) only, in beat_id order, so it does not
depend on row order and is the same for the same seed. A validation set for early stopping is carved
from the training side of each fold only (``validation_fraction``; by record for ``record`` and
``ds1ds2``, by beat, stratified, for ``beat``), never from the test fold, and never takes the last
training example(s) of a class.

Examples
--------
>>> import numpy as np
>>> ids = np.array([f"{r}-{i}" for r in ("100", "101", "102", "103") for i in range(6)], dtype=object)
>>> rec = np.array([b.split("-")[0] for b in ids], dtype=object)
>>> y = np.tile([0, 0, 0, 0, 1, 1], 4)
>>> plan = make_folds(ids, rec, y, scheme="record", k=2, seed=0, validation_fraction=0.0, classes=("a", "b"))
>>> [sorted(set(rec[f.test])) for f in plan.folds]
[['100', '103'], ['101', '102']]
>>> check_plan(plan, ids, rec, y, classes=("a", "b"))   # the guard: raises on any leak
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from pipelines import DS1, DS2, ConfigError, DataError

#: Fold schemes, by name.
FOLD_SCHEMES: tuple[str, ...] = ("beat", "record", "ds1ds2")


class LeakError(DataError):
    """The guard found a beat, record or crop on the wrong side of a fold."""


@dataclass(frozen=True)
class Fold:
    """One fold: sorted positions into the beat arrays given to :func:`make_folds`."""

    index: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class FoldPlan:
    """Every fold of a scheme, with the parameters that made it."""

    scheme: str
    k: int
    seed: int
    validation_fraction: float
    folds: tuple[Fold, ...]
    trained: tuple[int, ...] | None = None

    def test_fold(self, n_beats: int) -> np.ndarray:
        """Per beat, the fold whose test side holds it (-1: tested in no fold)."""
        out = np.full(n_beats, -1, np.int64)
        for fold in self.folds:
            out[fold.test] = fold.index
        return out

    def same_as(self, other: "FoldPlan") -> bool:
        """True when both plans put every beat on the same side of every fold."""
        if len(self.folds) != len(other.folds):
            return False
        return all(np.array_equal(a.train, b.train) and np.array_equal(a.val, b.val)
                   and np.array_equal(a.test, b.test) for a, b in zip(self.folds, other.folds))


def _names(classes: tuple[str, ...] | None, n: int) -> tuple[str, ...]:
    return tuple(classes) if classes is not None else tuple(str(i) for i in range(n))


def _class_counts(groups_inv: np.ndarray, y: np.ndarray, n_groups: int, n_classes: int) -> np.ndarray:
    counts = np.zeros((n_groups, n_classes), np.int64)
    np.add.at(counts, (groups_inv, y), 1)
    return counts


def _record_folds(records: np.ndarray, y: np.ndarray, k: int, rng: np.random.Generator,
                  n_classes: int) -> np.ndarray:
    """Test fold of each beat, records kept whole, rarest class first (see the module docstring)."""
    inv, recs = pd.factorize(pd.Series(records, dtype=object).astype(str), sort=True)
    counts = _class_counts(inv, y, len(recs), n_classes)
    present = counts > 0
    rarity = present.sum(0)
    weight = 1.0 / np.maximum(rarity, 1)
    rare_key = np.where(present, rarity[None, :], len(recs) + 1).min(1)
    perm = rng.permutation(len(recs))
    order = perm[np.argsort(rare_key[perm], kind="stable")]
    rank = np.argsort(rng.permutation(k))          # seeded tie-break between folds
    has = np.zeros((k, n_classes), bool)
    size = np.zeros(k, np.int64)
    fold_of = np.empty(len(recs), np.int64)
    for r in order:                                 # one step per record (48 at most on MIT-BIH)
        gain = ((~has) & present[r]).astype(float) @ weight
        f = np.lexsort((rank, size, -gain))[0]
        fold_of[r] = f
        has[f] |= present[r]
        size[f] += counts[r].sum()
    return fold_of[inv]


def _carve_by_beat(train: np.ndarray, y: np.ndarray, fraction: float, rng: np.random.Generator,
                   n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified: ``round(fraction * n_c)`` beats of each class, at least 1 and at most ``n_c - 1``."""
    if fraction <= 0:
        return train, train[:0]
    val_parts = []
    for c in range(n_classes):
        idx = train[y[train] == c]
        n_val = min(max(int(round(fraction * idx.size)), 1), max(idx.size - 1, 0))
        val_parts.append(rng.permutation(idx)[:n_val])
    val = np.sort(np.concatenate(val_parts)) if val_parts else train[:0]
    return train[~np.isin(train, val, assume_unique=True, kind="table")], val


def _carve_by_record(train: np.ndarray, records: np.ndarray, y: np.ndarray, fraction: float,
                     rng: np.random.Generator, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Whole records: for each class (rarest first) the record holding most of its beats among those holding
    at most half of each class's training beats, unless validation already holds as many (none such: the
    first in seeded order), then more in seeded order
    until ``fraction`` of the beats; never a class's last record on the training side.

    So the validation records hold every class that occurs in at least two training records, and as many
    of its beats as can be spared: model selection and the decision prior are measured on them, and a
    rare class's F1 on two or three beats is noise (MIT-BIH DS1: a seeded first choice put 2 F beats and
    one atrial-fibrillation record's 128 S beats in validation; this rule picks 223 and 209: 14 F and
    456 S beats).
    """
    if fraction <= 0:
        return train, train[:0]
    inv, recs = pd.factorize(pd.Series(records[train], dtype=object).astype(str), sort=True)
    counts = _class_counts(inv, y[train], len(recs), n_classes)
    present = counts > 0
    left = present.sum(0)
    target = fraction * len(train)
    taken, chosen = 0, []
    order = rng.permutation(len(recs))
    in_val = np.zeros(n_classes, bool)
    totals, held = counts.sum(0), np.zeros(n_classes, counts.dtype)
    for c in np.argsort(left, kind="stable"):                # rarest class first
        if left[c] < 2:
            continue
        ok = [r for r in order if present[r, c] and r not in chosen and not np.any(left[present[r]] <= 1)]
        spare = [r for r in ok if np.all(2 * counts[r] <= totals)]
        if spare:
            r = max(spare, key=lambda i: counts[i, c])           # max: the first of equals (seeded order)
            if counts[r, c] <= held[c]:
                continue
        elif ok and not in_val[c]:
            r = ok[0]
        else:
            continue
        chosen.append(r)
        held += counts[r]
        left -= present[r]
        in_val |= present[r]
        taken += counts[r].sum()
    for r in order:
        if taken >= target:
            break
        if r in chosen or np.any(left[present[r]] <= 1):
            continue
        chosen.append(r)
        left -= present[r]
        taken += counts[r].sum()
    is_val = np.isin(inv, chosen)
    return train[~is_val], train[is_val]


def make_folds(beat_ids: np.ndarray, records: np.ndarray, y: np.ndarray, *, scheme: str, k: int, seed: int,
               validation_fraction: float, classes: tuple[str, ...] | None = None,
               trained: tuple[int, ...] | None = None) -> FoldPlan:
    """Assign every beat to the train, validation or test side of each fold.

    Parameters
    ----------
    beat_ids, records : array of str
        One entry per beat (originals only; crops follow their beat).
    y : array of int
        Class index per beat, ``0 <= y < len(classes)``.
    scheme : {"beat", "record", "ds1ds2"}
    k : int
        Number of folds for ``beat`` and ``record`` (ignored by ``ds1ds2``: one fold).
    seed : int
    validation_fraction : float
        Share of the training side moved to validation, ``0 <= f < 1``.
    classes : tuple of str, optional
        Class names, for error messages.
    trained : tuple of int, optional
        The classes a model learns (default: all). Beats of other classes (AAMI ``Q``) are split into
        test folds like the others but kept off the training and validation sides, and no fold needs
        them.

    Returns
    -------
    FoldPlan

    Raises
    ------
    ConfigError
        Unknown scheme, bad k or fraction, or a class that would be missing from a fold's training or
        test side (too few beats/records for K, a class absent from DS1 or DS2).
    """
    beat_ids = np.asarray(beat_ids, dtype=object)
    records = np.asarray(records, dtype=object)
    y = np.asarray(y, dtype=np.int64)
    n = len(beat_ids)
    if not (len(records) == len(y) == n):
        raise ValueError("beat_ids, records and y must have the same length")
    if scheme not in FOLD_SCHEMES:
        raise ConfigError(f"train.runs.<run>.folds: unknown scheme {scheme!r}; expected one of {list(FOLD_SCHEMES)}")
    if not 0 <= validation_fraction < 1:
        raise ConfigError(f"train.folds.validation_fraction must be in [0, 1), got {validation_fraction}")
    if n == 0:
        raise ConfigError(f"folds {scheme!r}: no labelled beats to split")
    if (y < 0).any():
        raise ValueError("y holds negative class indices: drop unlabelled beats first")
    n_classes = len(classes) if classes is not None else int(y.max()) + 1
    names = _names(classes, n_classes)

    # Work in beat_id order so that the assignment does not depend on the order of the rows.
    order = pd.Series(beat_ids.astype(str)).argsort(kind="stable").to_numpy()
    ids_s, rec_s, y_s = beat_ids[order], records[order].astype(str), y[order]
    rng = np.random.default_rng([seed, 0])
    beat_counts = np.bincount(y_s, minlength=n_classes)
    required = np.zeros(n_classes, bool)
    required[list(trained) if trained is not None else slice(None)] = True

    if scheme in ("beat", "record"):
        if not isinstance(k, (int, np.integer)) or k < 2:
            raise ConfigError(f"train.folds.k must be an integer >= 2 for the {scheme!r} scheme, got {k!r}")
        if scheme == "beat":
            short = [(names[c], int(m)) for c, m in enumerate(beat_counts) if m < k and required[c]]
            if short:
                raise ConfigError(
                    f"folds 'beat' with k={k}: class(es) " + ", ".join(f"{c} ({m} beats)" for c, m in short)
                    + f" have fewer beats than k, so a test fold would have none; lower train.folds.k")
            skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
            test_fold_s = np.empty(n, np.int64)
            for f, (_, test_idx) in enumerate(skf.split(np.zeros(n), y_s)):
                test_fold_s[test_idx] = f
        else:
            inv, recs = pd.factorize(pd.Series(rec_s, dtype=object), sort=True)
            recs = np.asarray(recs, dtype=object)
            if len(recs) < k:
                raise ConfigError(f"folds 'record' with k={k}: only {len(recs)} records; lower train.folds.k")
            present = _class_counts(inv, y_s, len(recs), n_classes) > 0
            short = [(names[c], recs[present[:, c]].tolist()) for c in range(n_classes)
                     if present[:, c].sum() < k and required[c]]
            if short:
                raise ConfigError(
                    f"folds 'record' with k={k}: " + "; ".join(
                        f"class {c} is in only {len(r)} record(s) {r}" for c, r in short)
                    + f", fewer than k, so a test fold would have none of it; lower train.folds.k "
                    f"(at most {min(len(r) for _, r in short)}) or use other labels/records")
            test_fold_s = _record_folds(rec_s, y_s, k, rng, n_classes)
        n_folds = k
    else:
        in1, in2 = np.isin(rec_s, DS1), np.isin(rec_s, DS2)
        for side, mask in (("DS1 (train)", in1), ("DS2 (test)", in2)):
            counts = np.bincount(y_s[mask], minlength=n_classes)
            empty = [names[c] for c in range(n_classes) if counts[c] == 0 and required[c]]
            if empty:
                raise ConfigError(f"folds 'ds1ds2': class {', '.join(empty)} has no beats in {side} "
                                  f"(counts {dict(zip(names, counts.tolist()))}); use other labels or folds")
        test_fold_s = np.where(in2, 0, np.where(in1, -2, -1))   # -2: train pool, -1: unused
        n_folds = 1

    folds = []
    for f in range(n_folds):
        frng = np.random.default_rng([seed, 1, f])
        if scheme == "ds1ds2":
            test_s, pool_s = np.flatnonzero(test_fold_s == 0), np.flatnonzero(test_fold_s == -2)
        else:
            test_s, pool_s = np.flatnonzero(test_fold_s == f), np.flatnonzero(test_fold_s != f)
        pool_s = pool_s[required[y_s[pool_s]]]                  # untrained classes: test side only
        if scheme == "beat":
            train_s, val_s = _carve_by_beat(pool_s, y_s, validation_fraction, frng, n_classes)
        else:
            train_s, val_s = _carve_by_record(pool_s, rec_s, y_s, validation_fraction, frng, n_classes)
        for side, idx in (("training", train_s), ("test", test_s)):
            counts = np.bincount(y_s[idx], minlength=n_classes)
            empty = [names[c] for c in range(n_classes) if counts[c] == 0 and required[c]]
            if empty:
                raise ConfigError(
                    f"folds {scheme!r} (k={k}, seed={seed}), fold {f}: class {', '.join(empty)} has no beats on "
                    f"the {side} side (beats per class overall {dict(zip(names, beat_counts.tolist()))}); "
                    f"lower train.folds.k, try another train.seed, or use other labels")
        folds.append(Fold(index=f, train=np.sort(order[train_s]), val=np.sort(order[val_s]),
                          test=np.sort(order[test_s])))
    return FoldPlan(scheme=scheme, k=n_folds, seed=seed, validation_fraction=validation_fraction,
                    folds=tuple(folds), trained=None if trained is None else tuple(int(c) for c in trained))


def _leak(where: str, problem: str) -> LeakError:
    return LeakError(where, problem)


def _codes(values: np.ndarray) -> np.ndarray:
    """Integer code per value (equal values, equal codes), by hashing: O(n)."""
    return pd.factorize(pd.Series(np.asarray(values, dtype=object)).astype(str))[0]


def _first_shared(codes: np.ndarray, values: np.ndarray, a: np.ndarray, b: np.ndarray) -> str | None:
    """A value whose code occurs both at positions ``a`` and ``b`` (None when none does)."""
    mark = np.zeros(int(codes.max()) + 1 if codes.size else 0, bool)
    mark[codes[a]] = True
    hit = np.flatnonzero(mark[codes[b]])
    return None if hit.size == 0 else str(values[b[hit[0]]])


def _check_disjoint(where: str, sides: dict[str, np.ndarray], beats: tuple[np.ndarray, np.ndarray],
                    records: tuple[np.ndarray, np.ndarray] | None, *, beat_note: str) -> None:
    """Raise :class:`LeakError` when a beat (or, given ``records``, a record) is on two of ``sides``.

    ``beats`` and ``records`` are ``(codes, values)`` pairs from :func:`_codes`.
    """
    names = list(sides)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = _first_shared(*beats, sides[a], sides[b])
            if both is not None:
                raise _leak(where, f"beat {both}{beat_note} on both the {a} and {b} sides")
            if records is not None:
                both = _first_shared(*records, sides[a], sides[b])
                if both is not None:
                    raise _leak(where, f"record {both} on both the {a} and {b} sides")


def check_plan(plan: FoldPlan, beat_ids: np.ndarray, records: np.ndarray, y: np.ndarray, *,
               classes: tuple[str, ...] | None = None) -> None:
    """The beat-level guard: raise :class:`LeakError` unless the plan is clean and reproducible.

    Checks, for every fold: train, validation and test disjoint (by beat, and by record for the
    ``record`` and ``ds1ds2`` schemes); every beat tested exactly once over the K folds (``ds1ds2``: the
    test side is exactly the DS2 beats, training and validation only DS1 beats); and that making the
    plan again from the same (beat_id, record, label, params) gives the same assignment.
    """
    beat_ids = np.asarray(beat_ids, dtype=object)
    records = np.asarray(records, dtype=object)
    bcode, rcode = _codes(beat_ids), _codes(records)
    by_record = plan.scheme in ("record", "ds1ds2")
    tested = np.zeros(len(beat_ids), np.int64)
    for fold in plan.folds:
        where = f"folds {plan.scheme!r}, fold {fold.index}"
        _check_disjoint(where, {"train": fold.train, "validation": fold.val, "test": fold.test},
                        (bcode, beat_ids), (rcode, records) if by_record else None, beat_note="")
        tested[fold.test] += 1
        if plan.trained is not None:
            side = np.concatenate([fold.train, fold.val])
            off = side[~np.isin(np.asarray(y)[side], plan.trained)]
            if off.size:
                raise _leak(where, f"beat {beat_ids[off[0]]} of an untrained class on the training side")
        if plan.scheme == "ds1ds2":
            rec_test = records[fold.test].astype(str)
            rec_train = records[np.concatenate([fold.train, fold.val])].astype(str)
            if not np.isin(rec_test, DS2).all() or not np.isin(rec_train, DS1).all():
                raise _leak(where, "a beat outside DS2 on the test side or outside DS1 on the training side")
            expected = np.isin(records.astype(str), DS2)
            if not np.array_equal(np.flatnonzero(expected), np.sort(fold.test)):
                raise _leak(where, "the test side is not exactly the DS2 beats")
    if plan.scheme != "ds1ds2" and not (tested == 1).all():
        bad = int(np.flatnonzero(tested != 1)[0])
        raise _leak(f"folds {plan.scheme!r}", f"beat {beat_ids[bad]} tested {tested[bad]} times (expected once)")
    again = make_folds(beat_ids, records, y, scheme=plan.scheme, k=plan.k if plan.scheme != "ds1ds2" else 1,
                       seed=plan.seed, validation_fraction=plan.validation_fraction, classes=classes,
                       trained=plan.trained)
    if not plan.same_as(again):
        raise _leak(f"folds {plan.scheme!r}", "the same params and beats gave a different assignment")


def check_fold_rows(fold: int, beat_id: np.ndarray, record: np.ndarray, crop: np.ndarray, *,
                    train: np.ndarray, val: np.ndarray, test: np.ndarray, by_record: bool,
                    test_beats: np.ndarray | None = None) -> None:
    """The row-level guard for one fold: raise :class:`LeakError` on any leak.

    Parameters
    ----------
    fold : int
    beat_id, record, crop : array
        Metadata of every image row.
    train, val, test : array of int
        Row indices selected for each side.
    by_record : bool
        Also require no record on two sides.
    test_beats : array of str, optional
        The beat ids the plan puts on the test side: every one must be scored, once, on its original.

    Checks: test and validation rows are originals (crop 0); no beat id (so no crop of a beat) on two
    sides; no record on two sides when ``by_record``; each test beat scored exactly once.
    """
    where = f"fold {fold}"
    crop = np.asarray(crop)
    beat_id = np.asarray(beat_id, dtype=object)
    record = np.asarray(record, dtype=object)
    bcode, rcode = _codes(beat_id), _codes(record)
    train, val, test = (np.asarray(a, dtype=np.int64) for a in (train, val, test))
    for side, rows in (("test", test), ("validation", val)):
        if rows.size and (crop[rows] != 0).any():
            raise _leak(where, f"{side} rows include crops (crop != 0); only originals may be scored")
    _check_disjoint(where, {"train": train, "validation": val, "test": test}, (bcode, beat_id),
                    (rcode, record) if by_record else None, beat_note=" (or one of its crops)")
    if test_beats is not None:
        scored = pd.Series(beat_id[test].astype(str))
        expected = pd.Series(np.asarray(test_beats, dtype=object).astype(str))
        if scored.duplicated().any() or len(scored) != len(expected) or not scored.isin(expected).all():
            raise _leak(where, "the test rows are not exactly one original per test beat")
