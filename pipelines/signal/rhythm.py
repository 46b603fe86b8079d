"""Rhythm (RR-interval) features of beats: the timing that a stretched beat image erases.

A premature supraventricular beat (AAMI S) looks like a normal beat; what marks it is *when* it comes:
its pre-RR interval is short against the rhythm around it. On MIT-BIH DS2 the single ratio pre-RR / mean
of the previous 10 RR separates S from N with ROC AUC 0.94. This module computes, per beat, from the
R-peak positions of the beat sequence of each record (reference beats for ``annotations``, detections for
``christov``):

============== ===================================================================================
column         meaning
============== ===================================================================================
rr_pre_ms      time from the previous R-peak of the sequence to this one (null: first beat)
rr_post_ms     time from this R-peak to the next one (null: last beat)
rr_local_ms    mean of the up to :data:`LOCAL_BEATS` RR intervals *before* ``rr_pre_ms`` (causal,
               excludes the beat's own pre-RR so that a premature beat does not dilute its own
               reference; null when there is none, i.e. for the first two beats)
rr_record_ms   median of all RR intervals of the record's sequence (a record-level reference; null
               when the record has fewer than two beats)
============== ===================================================================================

Model inputs are scale-free log ratios (:func:`rhythm_features`), so that they transfer between
patients of different heart rates; missing values become 0 with an indicator.

Examples
--------
>>> import numpy as np
>>> r = np.array([0, 360, 720, 1000, 1440, 1800])          # 1 s rhythm, a premature beat at 1000
>>> rr = rr_intervals(r, np.zeros(6, int), fs=360.0)
>>> rr["rr_pre_ms"].round(1).tolist()
[nan, 1000.0, 1000.0, 777.8, 1222.2, 1000.0]
>>> rr["rr_local_ms"].round(1).tolist()
[nan, nan, 1000.0, 1000.0, 925.9, 1000.0]
>>> f = rhythm_features(rr["rr_pre_ms"], rr["rr_post_ms"], rr["rr_local_ms"], rr["rr_record_ms"])
>>> f.shape, RHYTHM_FEATURES[0]
((6, 6), 'log_pre_local')
>>> bool(f[3, 0] < 0)                                       # the premature beat: pre-RR below its local mean
True
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..core.errors import DataError

#: The RR columns of the beats table and of the image shards (float32, null where undefined).
RR_COLUMNS: tuple[str, ...] = ("rr_pre_ms", "rr_post_ms", "rr_local_ms", "rr_record_ms")

#: RR intervals averaged into ``rr_local_ms``.
LOCAL_BEATS = 10

#: Columns of :func:`rhythm_features`, in order.
RHYTHM_FEATURES: tuple[str, ...] = (
    "log_pre_local", "log_post_local", "log_pre_record", "log_post_record", "log_local_record", "rr_missing")


def _group_starts(groups: np.ndarray) -> np.ndarray:
    """Boolean mask: True where a new group starts (``groups`` sorted so that groups are contiguous)."""
    start = np.ones(groups.size, dtype=bool)
    if groups.size > 1:
        start[1:] = groups[1:] != groups[:-1]
    return start


def rr_intervals(r_sample: np.ndarray, groups: np.ndarray, fs: float | np.ndarray, *,
                 local_beats: int = LOCAL_BEATS) -> dict[str, np.ndarray]:
    """RR columns of a beat sequence (one or several records), vectorised.

    Parameters
    ----------
    r_sample : array of int, shape (n,)
        R-peak sample of each beat, increasing within each group.
    groups : array, shape (n,)
        Record (or sequence) of each beat; the beats of one group must be contiguous.
    fs : float or array of float
        Sampling rate (Hz), one for all beats or one per beat.
    local_beats : int
        RR intervals averaged into ``rr_local_ms``.

    Returns
    -------
    dict of str -> float64 array (n,)
        :data:`RR_COLUMNS`, NaN where undefined.

    Raises
    ------
    DataError
        When R-peaks do not increase within a group, or a group is not contiguous.
    """
    r = np.asarray(r_sample, dtype=np.int64)
    groups = np.asarray(groups)
    n = r.size
    if groups.shape != (n,):
        raise ValueError(f"groups: expected shape ({n},), got {groups.shape}")
    if local_beats < 1:
        raise ValueError(f"local_beats: expected >= 1, got {local_beats}")
    fs = np.broadcast_to(np.asarray(fs, dtype=np.float64), (n,))
    out = {name: np.full(n, np.nan) for name in RR_COLUMNS}
    if n == 0:
        return out
    start = _group_starts(groups)
    gid = np.cumsum(start) - 1
    if np.unique(groups[start]).size != int(start.sum()):
        raise DataError("rr_intervals", "the beats of a record are not contiguous (sort by record, r_sample)")
    diff = np.diff(r).astype(np.float64)
    same = ~start[1:]
    if np.any(diff[same] <= 0):
        bad = groups[1:][same & (diff <= 0)][0]
        raise DataError(str(bad), "R-peaks are not strictly increasing")
    rr_ms = np.where(same, diff / fs[1:] * 1000.0, np.nan)           # rr_ms[i]: beat i -> beat i + 1
    pre = np.concatenate([[np.nan], rr_ms])
    post = np.concatenate([rr_ms, [np.nan]])
    out["rr_pre_ms"], out["rr_post_ms"] = pre, post

    # rr_local: mean of pre[i-k..i-1] (the intervals before the beat's own pre-RR), within the group.
    valid = ~np.isnan(pre)
    csum = np.concatenate([[0.0], np.cumsum(np.where(valid, pre, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(valid)])
    idx = np.arange(n)
    hi = idx                                    # exclusive end: intervals pre[lo:hi]
    # A window reaching into the previous record would average its intervals: cut windows at the
    # record's second beat (its first interval).
    first = np.flatnonzero(start)[gid]          # index of the record's first beat
    lo = np.minimum(np.maximum(idx - local_beats, first + 1), hi)
    total, count = csum[hi] - csum[lo], ccount[hi] - ccount[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["rr_local_ms"] = np.where(count > 0, total / np.maximum(count, 1), np.nan)

    # rr_record: median RR of the group.
    order_groups = gid[1:][same]
    vals = rr_ms[same]
    med = np.full(int(gid[-1]) + 1, np.nan)
    if vals.size:
        order = np.lexsort((vals, order_groups))
        sg, sv = order_groups[order], vals[order]
        bounds = np.flatnonzero(np.concatenate([[True], sg[1:] != sg[:-1], [True]]))
        for a, b in zip(bounds[:-1], bounds[1:]):   # one iteration per record, not per beat
            med[sg[a]] = np.median(sv[a:b])
    out["rr_record_ms"] = med[gid]
    return out


def rhythm_features(rr_pre_ms: np.ndarray, rr_post_ms: np.ndarray, rr_local_ms: np.ndarray,
                    rr_record_ms: np.ndarray) -> np.ndarray:
    """Model inputs from the RR columns: log ratios, and an indicator of missing values.

    Parameters
    ----------
    rr_pre_ms, rr_post_ms, rr_local_ms, rr_record_ms : array of float, shape (n,)
        The :data:`RR_COLUMNS` (NaN or None where undefined).

    Returns
    -------
    ndarray of float32, shape (n, 6)
        Columns :data:`RHYTHM_FEATURES`: log(pre/local), log(post/local), log(pre/record),
        log(post/record), log(local/record) (0 where a term is missing) and ``rr_missing``
        (1.0 when any term is missing).

    Examples
    --------
    >>> rhythm_features([500.0], [1000.0], [1000.0], [1000.0]).astype(float).round(3).tolist()
    [[-0.693, 0.0, -0.693, 0.0, 0.0, 0.0]]
    >>> rhythm_features([None], [800.0], [None], [800.0])[0, -1]
    np.float32(1.0)
    """
    cols = [np.asarray(c, dtype=np.float64) for c in (rr_pre_ms, rr_post_ms, rr_local_ms, rr_record_ms)]
    n = cols[0].shape[0]
    if any(c.shape != (n,) for c in cols):
        raise ValueError(f"rhythm_features: the four RR columns must have shape ({n},)")
    pre, post, local, record = cols
    pairs = ((pre, local), (post, local), (pre, record), (post, record), (local, record))
    out = np.zeros((n, len(RHYTHM_FEATURES)), dtype=np.float32)
    missing = np.zeros(n, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        for j, (a, b) in enumerate(pairs):
            ok = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
            out[:, j] = np.where(ok, np.log(np.where(ok, a, 1.0) / np.where(ok, b, 1.0)), 0.0)
            missing |= ~ok
    out[:, -1] = missing
    return out


def rhythm_columns(table: Mapping[str, np.ndarray]) -> np.ndarray:
    """:func:`rhythm_features` of a table-like mapping holding the :data:`RR_COLUMNS`.

    Raises
    ------
    KeyError
        Naming the missing RR columns.
    """
    missing = [c for c in RR_COLUMNS if c not in table]
    if missing:
        raise KeyError(f"no RR columns {missing}: the image set or beats table predates rhythm features")
    return rhythm_features(*(np.asarray(table[c], dtype=np.float64) for c in RR_COLUMNS))
