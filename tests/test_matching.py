import math

import numpy as np
import pytest

from pipelines.signal.matching import detection_scores, match_beats


def _greedy_reference(det, ref, tol):
    """Plain-Python nearest-first matching, the definition match_beats must reproduce."""
    order = sorted(range(len(ref)), key=lambda j: (ref[j], j))
    pos = {j: k for k, j in enumerate(order)}
    pairs = sorted((abs(d - ref[j]), i, pos[j], j) for i, d in enumerate(det) for j in range(len(ref))
                   if abs(d - ref[j]) <= tol)
    out = [-1] * len(det)
    used = set()
    for _, i, _, j in pairs:
        if out[i] == -1 and j not in used:
            out[i] = j
            used.add(j)
    return out


@pytest.mark.parametrize("det, ref", [([], []), ([], [10, 20]), ([10, 20], [])])
def test_empty_inputs(det, ref):
    out = match_beats(np.array(det, dtype=np.int64), np.array(ref, dtype=np.int64), 5)
    assert out.dtype == np.int64 and out.tolist() == [-1] * len(det)
    s = detection_scores(det, ref, 5)
    assert (s["tp"], s["fp"], s["fn"]) == (0, len(det), len(ref))


def test_scores_of_empty_inputs_are_nan_only_where_undefined():
    s = detection_scores([], [], 5)
    assert math.isnan(s["sensitivity"]) and math.isnan(s["ppv"])
    s = detection_scores([], [1, 2], 5)
    assert s["sensitivity"] == 0.0 and math.isnan(s["ppv"])
    s = detection_scores([1, 2], [], 5)
    assert math.isnan(s["sensitivity"]) and s["ppv"] == 0.0


def test_tolerance_boundary_is_inclusive():
    ref = np.array([100])
    assert match_beats(np.array([95]), ref, 5).tolist() == [0]
    assert match_beats(np.array([105]), ref, 5).tolist() == [0]
    assert match_beats(np.array([94]), ref, 5).tolist() == [-1]
    assert match_beats(np.array([106]), ref, 5).tolist() == [-1]
    assert match_beats(np.array([100]), ref, 0).tolist() == [0]
    assert match_beats(np.array([101]), ref, 0).tolist() == [-1]


def test_two_detections_near_one_reference_nearest_wins():
    assert match_beats(np.array([95, 99]), np.array([100]), 10).tolist() == [-1, 0]
    assert match_beats(np.array([99, 95]), np.array([100]), 10).tolist() == [0, -1]


def test_equidistant_detections_first_in_input_order_wins():
    assert match_beats(np.array([98, 102]), np.array([100]), 10).tolist() == [0, -1]
    assert match_beats(np.array([102, 98]), np.array([100]), 10).tolist() == [0, -1]


def test_detection_halfway_between_references_takes_the_earlier():
    assert match_beats(np.array([150]), np.array([100, 200]), 50).tolist() == [0]
    assert match_beats(np.array([150]), np.array([200, 100]), 50).tolist() == [1]  # index into the input


def test_loser_falls_back_to_its_next_nearest_reference():
    # (10,12) and (14,12) tie at 2: detection 0 wins; detection 1 then takes 17 (distance 3)
    assert match_beats(np.array([10, 14]), np.array([12, 17]), 5).tolist() == [0, 1]
    # nearest first, not first come: 13 is closer to 12 than 10 is
    assert match_beats(np.array([10, 13]), np.array([12]), 5).tolist() == [-1, 0]


def test_duplicate_detections_match_once():
    out = match_beats(np.array([100, 100, 100]), np.array([101]), 3)
    assert out.tolist() == [0, -1, -1]
    s = detection_scores(np.array([100, 100, 100]), np.array([101]), 3)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 2, 0)


def test_duplicate_references_each_match_one_detection():
    out = match_beats(np.array([100, 101]), np.array([100, 100]), 3)
    assert sorted(out.tolist()) == [0, 1]


def test_unsorted_inputs_index_into_the_original_arrays():
    det = np.array([300, 100, 205])
    ref = np.array([200, 305, 99])
    assert match_beats(det, ref, 10).tolist() == [1, 2, 0]


def test_accepts_lists_and_float_whole_numbers():
    assert match_beats([10.0, 20.0], [11, 40], 2).tolist() == [0, -1]


@pytest.mark.parametrize("tol", [-1, 1.5, float("nan")])
def test_bad_tolerance_raises(tol):
    with pytest.raises(ValueError, match="tolerance"):
        match_beats(np.array([1]), np.array([1]), tol)


def test_bad_arrays_raise():
    with pytest.raises(ValueError, match="1-D"):
        match_beats(np.zeros((2, 2), dtype=int), np.array([1]), 1)
    with pytest.raises(ValueError, match="non-integer"):
        match_beats(np.array([1.5]), np.array([1]), 1)
    with pytest.raises(ValueError, match="NaN"):
        match_beats(np.array([np.nan]), np.array([1]), 1)
    with pytest.raises(ValueError, match="integer"):
        match_beats(np.array(["a"]), np.array([1]), 1)


def test_scores_values():
    s = detection_scores(np.array([0, 100, 300]), np.array([2, 98, 200, 400]), 5)
    assert s == {"tp": 2, "fp": 1, "fn": 2, "sensitivity": 0.5, "ppv": 2 / 3}


@pytest.mark.parametrize("seed", range(40))
def test_matches_plain_greedy_definition(seed):
    rng = np.random.default_rng(seed)
    ref = np.sort(rng.choice(400, size=rng.integers(0, 30), replace=False))
    det = np.concatenate([ref + rng.integers(-12, 13, ref.size), rng.integers(0, 400, rng.integers(0, 10))])
    det = rng.permutation(det)
    tol = int(rng.integers(0, 15))
    got = match_beats(det, ref, tol)
    assert got.tolist() == _greedy_reference(det.tolist(), ref.tolist(), tol)
    matched = got[got >= 0]
    assert matched.size == np.unique(matched).size  # one-to-one
    assert np.all(np.abs(det[got >= 0] - ref[matched]) <= tol)


def test_large_inputs_are_fast_and_one_to_one():
    rng = np.random.default_rng(0)
    ref = np.cumsum(rng.integers(90, 400, 3000))
    det = np.sort(np.concatenate([ref + rng.integers(-20, 21, ref.size), rng.integers(0, ref[-1], 300)]))
    out = match_beats(det, ref, 54)
    assert np.count_nonzero(out >= 0) == ref.size
    assert np.unique(out[out >= 0]).size == ref.size
