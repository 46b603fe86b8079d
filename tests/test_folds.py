"""Fold schemes (beat, record, ds1ds2), validation carving, and the leak guard."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipelines.core.errors import ConfigError
from pipelines.signal.labels import DS1, DS2
from training.folds import LeakError, check_fold_rows, check_plan, make_folds

CLASSES = ("N", "S", "V", "F", "Q")


def beat_table(seed: int, n_records: int = 12, beats: tuple[int, int] = (20, 80), names=None,
               rare_every: int = 1):
    """Random beats: each record has N, and each rarer class with some probability (always >= 6 records)."""
    rng = np.random.default_rng(seed)
    names = names or [str(100 + i) for i in range(n_records)]
    ids, recs, ys = [], [], []
    for j, r in enumerate(names):
        n = int(rng.integers(*beats))
        y = np.zeros(n, np.int64)
        for c in range(1, len(CLASSES)):
            if j % rare_every == 0 and (j < 6 or rng.random() < 0.5):
                k = int(rng.integers(1, max(2, n // (3 * c))))
                y[rng.choice(n, k, replace=False)] = c
        ids += [f"{r}-{i * 360}" for i in range(n)]
        recs += [r] * n
        ys.append(y)
    return np.array(ids, dtype=object), np.array(recs, dtype=object), np.concatenate(ys)


def assert_invariants(plan, ids, recs, y, scheme):
    n = len(ids)
    tested = np.zeros(n, int)
    for fold in plan.folds:
        sides = [fold.train, fold.val, fold.test]
        for a in range(3):
            for b in range(a + 1, 3):
                assert not set(sides[a]) & set(sides[b])
                if scheme != "beat":
                    assert not set(recs[sides[a]]) & set(recs[sides[b]])
        tested[fold.test] += 1
        for side in (fold.train, fold.test):
            assert set(y[side]) == set(y), "every class on both sides"
    if scheme != "ds1ds2":
        assert (tested == 1).all()


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("scheme", ["beat", "record"])
def test_kfold_schemes_invariants_on_random_tables(seed, scheme):
    ids, recs, y = beat_table(seed)
    plan = make_folds(ids, recs, y, scheme=scheme, k=3, seed=seed, validation_fraction=0.2, classes=CLASSES)
    assert len(plan.folds) == 3
    assert_invariants(plan, ids, recs, y, scheme)
    check_plan(plan, ids, recs, y, classes=CLASSES)


def test_beat_scheme_is_stratified():
    ids, recs, y = beat_table(1, n_records=20)
    plan = make_folds(ids, recs, y, scheme="beat", k=5, seed=0, validation_fraction=0.0, classes=CLASSES)
    total = np.bincount(y, minlength=5)
    for fold in plan.folds:
        counts = np.bincount(y[fold.test], minlength=5)
        assert np.all(np.abs(counts - total / 5) <= 1)


def test_record_scheme_keeps_records_whole_and_covers_rare_class():
    # class 4 ("Q") lives in exactly k records: each test fold must get one of them
    ids, recs, y = beat_table(3, n_records=15)
    y[y == 4] = 0
    q_records = np.unique(recs)[[1, 5, 9, 13]]
    for r in q_records:
        y[np.flatnonzero(recs == r)[:2]] = 4
    plan = make_folds(ids, recs, y, scheme="record", k=4, seed=7, validation_fraction=0.1, classes=CLASSES)
    for fold in plan.folds:
        assert (y[fold.test] == 4).any() and (y[fold.train] == 4).any()
        for r in np.unique(recs[fold.test]):
            assert (recs[fold.test] == r).sum() == (recs == r).sum()


def test_record_scheme_class_in_fewer_records_than_k_is_an_error():
    ids, recs, y = beat_table(2)
    y[y == 3] = 0
    y[np.flatnonzero(recs == "100")[:3]] = 3                  # F only in record 100
    with pytest.raises(ConfigError, match=r"class F is in only 1 record.*'100'.*lower train.folds.k"):
        make_folds(ids, recs, y, scheme="record", k=3, seed=0, validation_fraction=0.1, classes=CLASSES)


def test_beat_scheme_class_with_fewer_beats_than_k_is_an_error():
    ids, recs, y = beat_table(2)
    y[y == 4] = 0
    y[:2] = 4
    with pytest.raises(ConfigError, match=r"Q \(2 beats\).*fewer beats than k"):
        make_folds(ids, recs, y, scheme="beat", k=3, seed=0, validation_fraction=0.1, classes=CLASSES)


def test_ds1ds2_is_de_chazal_split():
    names = list(DS1[:5]) + list(DS2[:5]) + ["102"]             # 102: paced, in neither set
    ids, recs, y = beat_table(4, names=names)
    for r in names:                                             # every class in both sets
        y[np.flatnonzero(recs == r)[:4]] = [1, 2, 3, 4]
    plan = make_folds(ids, recs, y, scheme="ds1ds2", k=10, seed=0, validation_fraction=0.2, classes=CLASSES)
    assert len(plan.folds) == 1
    fold = plan.folds[0]
    assert set(recs[fold.test]) == set(DS2[:5])
    assert set(recs[fold.train]) | set(recs[fold.val]) <= set(DS1[:5])
    assert len(set(recs[fold.val])) >= 1 and not set(recs[fold.val]) & set(recs[fold.train])
    assert not (recs[np.concatenate([fold.train, fold.val, fold.test])] == "102").any()
    np.testing.assert_array_equal(fold.test, np.flatnonzero(np.isin(recs, DS2)))
    check_plan(plan, ids, recs, y, classes=CLASSES)


def test_ds1ds2_class_missing_from_a_side_is_an_error():
    names = list(DS1[:3]) + list(DS2[:3])
    ids, recs, y = beat_table(4, names=names)
    y[np.isin(recs, DS2) & (y == 3)] = 0
    y[np.isin(recs, DS1)] = np.maximum(y[np.isin(recs, DS1)], 0)
    y[np.flatnonzero(np.isin(recs, DS1))[:4]] = [1, 2, 3, 4]
    with pytest.raises(ConfigError, match=r"class F has no beats in DS2"):
        make_folds(ids, recs, y, scheme="ds1ds2", k=2, seed=0, validation_fraction=0.1, classes=CLASSES)


@pytest.mark.parametrize("scheme", ["beat", "record", "ds1ds2"])
def test_same_params_same_assignment_whatever_the_row_order(scheme):
    names = list(DS1[:6]) + list(DS2[:6])
    ids, recs, y = beat_table(5, names=names)
    for r in names:
        y[np.flatnonzero(recs == r)[:4]] = [1, 2, 3, 4]
    kw = dict(scheme=scheme, k=3, seed=11, validation_fraction=0.2, classes=CLASSES)
    a = make_folds(ids, recs, y, **kw)
    b = make_folds(ids, recs, y, **kw)
    assert a.same_as(b)
    perm = np.random.default_rng(0).permutation(len(ids))
    c = make_folds(ids[perm], recs[perm], y[perm], **kw)
    np.testing.assert_array_equal(a.test_fold(len(ids))[perm], c.test_fold(len(ids)))
    for fa, fc in zip(a.folds, c.folds):
        assert set(ids[fa.val]) == set(ids[perm][fc.val])
    if scheme != "ds1ds2":
        d = make_folds(ids, recs, y, **{**kw, "seed": 12})
        assert not a.same_as(d)


def test_validation_is_carved_from_the_training_side_only():
    ids, recs, y = beat_table(6, n_records=20)
    for scheme in ("beat", "record"):
        plan = make_folds(ids, recs, y, scheme=scheme, k=4, seed=0, validation_fraction=0.25, classes=CLASSES)
        for fold in plan.folds:
            pool = len(ids) - len(fold.test)
            assert 0.1 * pool < len(fold.val) < 0.45 * pool
            assert set(y[fold.train]) == set(y)               # the carve never empties a class
    plan = make_folds(ids, recs, y, scheme="record", k=4, seed=0, validation_fraction=0.0, classes=CLASSES)
    assert all(f.val.size == 0 for f in plan.folds)


def test_record_carve_never_takes_the_last_training_record_of_a_class():
    names = list(DS1[:3]) + list(DS2[:3])
    ids, recs, y = beat_table(8, names=names, beats=(30, 31))
    y[:] = 0
    # each DS1 record is the only DS1 record with some class: none may move to validation
    for r, classes in ((DS1[0], [1]), (DS1[1], [2]), (DS1[2], [3, 4])):
        y[np.flatnonzero(recs == r)[:len(classes)]] = classes
    for r in DS2[:3]:
        y[np.flatnonzero(recs == r)[:4]] = [1, 2, 3, 4]
    plan = make_folds(ids, recs, y, scheme="ds1ds2", k=2, seed=0, validation_fraction=0.5, classes=CLASSES)
    assert plan.folds[0].val.size == 0
    assert set(y[plan.folds[0].train]) == {0, 1, 2, 3, 4}


def test_bad_params_are_config_errors():
    ids, recs, y = beat_table(0)
    with pytest.raises(ConfigError, match="unknown scheme"):
        make_folds(ids, recs, y, scheme="patient", k=2, seed=0, validation_fraction=0.1)
    with pytest.raises(ConfigError, match="k must be an integer >= 2"):
        make_folds(ids, recs, y, scheme="beat", k=1, seed=0, validation_fraction=0.1)
    with pytest.raises(ConfigError, match="validation_fraction"):
        make_folds(ids, recs, y, scheme="beat", k=2, seed=0, validation_fraction=1.0)
    with pytest.raises(ConfigError, match="only 12 records"):
        make_folds(ids, recs, y, scheme="record", k=13, seed=0, validation_fraction=0.1)


# ----------------------------------------------------------------------------- the guard

@pytest.fixture
def record_plan():
    ids, recs, y = beat_table(9)
    plan = make_folds(ids, recs, y, scheme="record", k=3, seed=0, validation_fraction=0.2, classes=CLASSES)
    return plan, ids, recs, y


def _tamper(plan, index, **sides):
    folds = list(plan.folds)
    folds[index] = dataclasses.replace(folds[index], **sides)
    return dataclasses.replace(plan, folds=tuple(folds))


def test_guard_catches_a_beat_on_two_sides(record_plan):
    plan, ids, recs, y = record_plan
    f = plan.folds[0]
    bad = _tamper(plan, 0, train=np.sort(np.append(f.train, f.test[0])))
    with pytest.raises(LeakError, match=rf"fold 0: beat {ids[f.test[0]]} on both the train and test sides"):
        check_plan(bad, ids, recs, y, classes=CLASSES)


def test_guard_catches_a_record_on_two_sides(record_plan):
    plan, ids, recs, y = record_plan
    f = plan.folds[1]
    moved = f.test[:1]                                   # one beat of a test record moves to validation
    bad = _tamper(plan, 1, val=np.sort(np.append(f.val, moved)), test=f.test[1:])
    with pytest.raises(LeakError, match=rf"record {recs[moved[0]]} on both the validation and test sides"):
        check_plan(bad, ids, recs, y, classes=CLASSES)


def test_guard_catches_a_beat_tested_twice_or_never(record_plan):
    plan, ids, recs, y = record_plan
    f = plan.folds[2]
    bad = _tamper(plan, 2, test=f.test[1:])
    with pytest.raises(LeakError, match="tested 0 times"):
        check_plan(bad, ids, recs, y, classes=CLASSES)


def test_guard_catches_an_irreproducible_plan(record_plan):
    plan, ids, recs, y = record_plan
    f0, f1 = plan.folds[0], plan.folds[1]
    swapped = dataclasses.replace(plan, folds=(dataclasses.replace(f1, index=0), dataclasses.replace(f0, index=1),
                                               plan.folds[2]))
    with pytest.raises(LeakError, match="different assignment"):
        check_plan(swapped, ids, recs, y, classes=CLASSES)


def rows_of(ids, recs, crops_for):
    """Image rows: each beat's original, plus crop rows 1..9 for the beats in ``crops_for``."""
    beat_id, record, crop = [], [], []
    for b, r in zip(ids, recs):
        for c in range(10 if b in crops_for else 1):
            beat_id.append(b), record.append(r), crop.append(c)
    return np.array(beat_id, dtype=object), np.array(record, dtype=object), np.array(crop, np.int8)


def test_row_guard(record_plan):
    plan, ids, recs, y = record_plan
    fold = plan.folds[0]
    crops_for = set(ids[y > 0])
    beat_id, record, crop = rows_of(ids, recs, crops_for)
    side = {b: s for s, idx in (("train", fold.train), ("val", fold.val), ("test", fold.test)) for b in ids[idx]}
    train = np.flatnonzero(np.array([side[b] == "train" for b in beat_id]))
    val = np.flatnonzero(np.array([side[b] == "val" for b in beat_id]) & (crop == 0))
    test = np.flatnonzero(np.array([side[b] == "test" for b in beat_id]) & (crop == 0))
    kw = dict(by_record=True, test_beats=ids[fold.test])
    check_fold_rows(0, beat_id, record, crop, train=train, val=val, test=test, **kw)   # clean
    test_crop = np.flatnonzero(np.array([side[b] == "test" for b in beat_id]) & (crop == 3))[:1]
    with pytest.raises(LeakError, match="test rows include crops"):
        check_fold_rows(0, beat_id, record, crop, train=train, val=val, test=np.append(test, test_crop), **kw)
    with pytest.raises(LeakError, match="one of its crops\\) on both the train and test sides"):
        check_fold_rows(0, beat_id, record, crop, train=np.append(train, test_crop), val=val, test=test, **kw)
    with pytest.raises(LeakError, match="not exactly one original per test beat"):
        check_fold_rows(0, beat_id, record, crop, train=train, val=val, test=test[1:], **kw)
    # a test beat's original moved to the train side: no beat on two sides, but its record is
    with pytest.raises(LeakError, match=rf"record {record[test[0]]} on both the train and test sides"):
        check_fold_rows(0, beat_id, record, crop, train=np.append(train, test[:1]), val=val, test=test[1:],
                        by_record=True)
    check_fold_rows(0, beat_id, record, crop, train=np.append(train, test[:1]), val=val, test=test[1:],
                    by_record=False)                      # the beat scheme allows it


def test_untrained_class_is_tested_but_never_trained_or_validated():
    # class 2 (an AAMI Q stand-in) in one record only: K=3 still works since it is not trained
    recs = [f"1{i:02d}" for i in range(6)]
    ids = np.array([f"{r}-{j}" for r in recs for j in range(10)], dtype=object)
    rec = np.array([b.split("-")[0] for b in ids], dtype=object)
    y = np.tile([0] * 7 + [1] * 3, 6)
    y[:2] = 2
    for scheme in ("record", "beat"):
        plan = make_folds(ids, rec, y, scheme=scheme, k=3, seed=1, validation_fraction=0.3,
                          classes=("a", "b", "q"), trained=(0, 1))
        check_plan(plan, ids, rec, y, classes=("a", "b", "q"))
        tested = np.concatenate([f.test for f in plan.folds])
        assert sorted(tested.tolist()) == list(range(len(ids)))           # every beat tested once, Q included
        for f in plan.folds:
            assert not (y[np.concatenate([f.train, f.val])] == 2).any()
            assert set(y[f.val]) == {0, 1}                              # validation sees every trained class
    with pytest.raises(ConfigError, match="class q is in only 1 record"):
        make_folds(ids, rec, y, scheme="record", k=3, seed=1, validation_fraction=0.3, classes=("a", "b", "q"))


def test_record_validation_holds_every_class_with_two_training_records():
    recs = [f"2{i:02d}" for i in range(8)]
    ids = np.array([f"{r}-{j}" for r in recs for j in range(20)], dtype=object)
    rec = np.array([b.split("-")[0] for b in ids], dtype=object)
    y = np.zeros(len(ids), np.int64)
    for r, c in zip(recs, (1, 1, 2, 2, 1, 2, 0, 0)):                    # rare classes in few records
        y[(rec == r) & (np.arange(len(ids)) % 20 < 2)] = c
    for seed in range(5):
        plan = make_folds(ids, rec, y, scheme="record", k=2, seed=seed,
                          validation_fraction=0.05, classes=("a", "b", "c"))
        for f in plan.folds:
            train_counts = {c: len(set(rec[f.train][y[f.train] == c]) | set(rec[f.val][y[f.val] == c]))
                            for c in (0, 1, 2)}
            for c, n in train_counts.items():
                if n >= 2:
                    assert (y[f.val] == c).any(), (seed, f.index, c)


def test_record_validation_takes_the_record_with_most_beats_of_a_rare_class_it_can_spare():
    # DS1-like training side: class 1 in four records (5, 40, 60, 300 beats), class 2 in two (2 and 90),
    # 300 N beats in each of 12 records. The record holding 300 of class 1's 405 beats (over half) and
    # the one holding 90 of class 2's 92 are never taken; validation gets the 60 beats of class 1 and
    # the 2 of class 2 (its only spare holder), whatever the seed
    from training.folds import _carve_by_record

    sizes = {"r0": {1: 5}, "r1": {1: 40}, "r2": {1: 60}, "r3": {1: 300}, "r4": {2: 2}, "r5": {2: 90}}
    recs, y = [], []
    for r in [f"r{i}" for i in range(12)]:
        for c, n in sizes.get(r, {}).items():
            recs += [r] * n
            y += [c] * n
        recs += [r] * 300
        y += [0] * 300
    rec, y = np.array(recs, dtype=object), np.array(y, np.int64)
    for seed in range(6):
        train, val = _carve_by_record(np.arange(len(y)), rec, y, 0.01, np.random.default_rng(seed), 3)
        assert {"r2", "r4"} <= set(rec[val]) and not {"r3", "r5"} & set(rec[val]), (seed, set(rec[val]))
        assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(y)
