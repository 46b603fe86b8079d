"""One-to-one matching of detected beats to reference beats, and detection scores.

A detection ``d`` and a reference beat ``r`` can match when ``|d - r| <= tolerance`` (samples).
Among all such candidate pairs, matching is *nearest first*: the closest pair is matched, both its
members are removed, and so on (a greedy assignment by distance). Ties are broken deterministically
by the position of the detection in ``detected`` and then by the reference beat's position in time
(earlier first), so that

* two detections equally close to one reference beat: the first of them in ``detected`` matches,
  the other is a false positive (unless it has another reference beat in reach);
* one detection exactly halfway between two reference beats: it matches the earlier one.

The greedy assignment is computed without a per-beat loop: candidate pairs come from
``np.searchsorted``; a pair is final when it is the best remaining pair of both its detection and
its reference beat (a "mutual best"), and mutual-best pairs are taken in vectorised rounds until no
candidate pair is left. Taking every mutual-best pair of a round at once gives exactly the result
of the sequential nearest-first greedy (each such pair is the smallest among all pairs that could
conflict with it); on MIT-BIH detections one round usually settles every pair.

Examples
--------
>>> import numpy as np
>>> match_beats(np.array([10, 52, 200]), np.array([0, 50, 100]), tolerance=5).tolist()
[-1, 1, -1]
>>> s = detection_scores(np.array([10, 52, 200]), np.array([0, 50, 100]), tolerance=10)
>>> s["tp"], s["fp"], s["fn"]
(2, 1, 1)
"""
from __future__ import annotations

import numpy as np

__all__ = ["match_beats", "detection_scores"]


def _as_samples(values, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of sample indices, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{what} contains NaN or infinite sample indices")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{what} contains non-integer sample indices")
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"{what} must hold integer sample indices, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _check_tolerance(tolerance) -> int:
    tol = float(tolerance)
    if not np.isfinite(tol) or tol < 0 or tol != int(tol):
        raise ValueError(f"tolerance must be a non-negative whole number of samples, got {tolerance!r}")
    return int(tol)


def match_beats(detected, reference, tolerance: int) -> np.ndarray:
    """Match each detection to at most one reference beat, nearest pairs first.

    Parameters
    ----------
    detected : array_like of int
        Detected beat positions (sample indices), in any order; duplicates allowed.
    reference : array_like of int
        Reference beat positions (sample indices), in any order.
    tolerance : int
        Largest allowed ``|detected - reference|`` in samples (inclusive).

    Returns
    -------
    ndarray of int64, shape ``(len(detected),)``
        For each detection, the index into ``reference`` of its matched reference beat, or -1.
        Every reference index appears at most once.

    Examples
    --------
    >>> import numpy as np
    >>> match_beats(np.array([100, 104]), np.array([102]), tolerance=2).tolist()  # tie: first wins
    [0, -1]
    >>> match_beats(np.array([150]), np.array([100, 200]), tolerance=50).tolist()  # halfway: earlier
    [0]
    >>> match_beats(np.array([100]), np.array([103]), tolerance=2).tolist()
    [-1]
    """
    det = _as_samples(detected, "detected")
    ref = _as_samples(reference, "reference")
    tol = _check_tolerance(tolerance)
    out = np.full(det.size, -1, dtype=np.int64)
    if det.size == 0 or ref.size == 0:
        return out

    ref_order = np.argsort(ref, kind="stable")
    ref_sorted = ref[ref_order]
    lo = np.searchsorted(ref_sorted, det - tol, side="left")
    hi = np.searchsorted(ref_sorted, det + tol, side="right")
    counts = hi - lo
    n_pairs = int(counts.sum())
    if n_pairs == 0:
        return out

    # every candidate pair (detection i, sorted reference j) with |d - r| <= tol
    pair_det = np.repeat(np.arange(det.size, dtype=np.int64), counts)
    starts = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    pair_ref = starts + np.arange(n_pairs, dtype=np.int64)
    dist = np.abs(det[pair_det] - ref_sorted[pair_ref])

    # strict total order of pairs: distance, then detection index, then reference position
    order = np.lexsort((pair_ref, pair_det, dist))
    pair_det, pair_ref = pair_det[order], pair_ref[order]

    det_taken = np.zeros(det.size, dtype=bool)
    ref_taken = np.zeros(ref.size, dtype=bool)
    alive = np.ones(n_pairs, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)  # still in rank order
        pd, pr = pair_det[idx], pair_ref[idx]
        best_for_det = np.zeros(idx.size, dtype=bool)
        best_for_det[np.unique(pd, return_index=True)[1]] = True
        best_for_ref = np.zeros(idx.size, dtype=bool)
        best_for_ref[np.unique(pr, return_index=True)[1]] = True
        take = best_for_det & best_for_ref  # never empty: the top-ranked pair is always taken
        out[pd[take]] = ref_order[pr[take]]
        det_taken[pd[take]] = True
        ref_taken[pr[take]] = True
        alive[idx] = ~(det_taken[pd] | ref_taken[pr])
    return out


def detection_scores(detected, reference, tolerance) -> dict:
    """True/false positives, false negatives, sensitivity and positive predictivity.

    Parameters
    ----------
    detected, reference : array_like of int
        Sample indices (see :func:`match_beats`).
    tolerance : int
        Matching tolerance in samples (inclusive).

    Returns
    -------
    dict
        ``{"tp", "fp", "fn"}`` as ints, ``"sensitivity"`` = tp / (tp + fn) and ``"ppv"`` (positive
        predictivity) = tp / (tp + fp) as floats; a ratio whose denominator is zero is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> detection_scores(np.array([0, 100, 300]), np.array([2, 98, 200, 400]), tolerance=5)
    {'tp': 2, 'fp': 1, 'fn': 2, 'sensitivity': 0.5, 'ppv': 0.6666666666666666}
    """
    det = _as_samples(detected, "detected")
    ref = _as_samples(reference, "reference")
    matched = match_beats(det, ref, tolerance)
    tp = int(np.count_nonzero(matched >= 0))
    fp = int(det.size - tp)
    fn = int(ref.size - tp)
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
        "ppv": tp / (tp + fp) if tp + fp else float("nan"),
    }
