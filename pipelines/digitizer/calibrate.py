"""From followed columns to a signal in mV at the record's sampling rate.

A trace drawn ``thickness`` px thick leaves in each column an ink run ``[top, bottom]``. Where the
trace is flat the run is about ``thickness`` long and its darkness-weighted centre is the trace. A
longer run is a steep stroke crossing the column: its middle is where the stroke crosses the
column's centre, except at a turning point (an R or S apex) where the stroke comes back: there the
trace's extreme lies half a thickness inside the run's end (:func:`column_points`). Columns are
mapped to time with the grid pitch (``px_per_s = mm_per_s * px_per_mm``) and to mV with
``px_per_mv = mm_per_mv * px_per_mm``, then linearly interpolated at ``i / fs`` (:func:`resample`).

Examples
--------
>>> top = np.array([10., 10., 4., 2., 10.]); bot = np.array([11., 11., 11., 8., 11.])
>>> x, y = column_points(top, bot, (top + bot) / 2, 2.0)   # flat, a stroke up, an apex, flat
>>> x.tolist(), y.tolist()    # the stroke runs from (1.5, 11) to (2.5, 4)
([0.0, 1.0, 1.5, 2.5, 3.0, 4.0], [10.5, 10.5, 11.0, 4.0, 2.5, 10.5])
"""
from __future__ import annotations

import numpy as np


def thickness(top: np.ndarray, bot: np.ndarray) -> float:
    """The trace's thickness (px): the most common run length among the columns' shorter half (flat
    stretches; a sloped or noisy trace leaves longer runs).

    >>> thickness(np.array([3., 3., 1., 5., 0., 0.]), np.array([4., 4., 6., 5., 20., 20.]))
    2.0
    """
    runs = (bot - top + 1)[np.isfinite(top)].astype(np.int64)
    if not len(runs):
        return float("nan")
    short = runs[runs <= np.median(runs)]
    return float(np.argmax(np.bincount(short)))


def column_points(top: np.ndarray, bot: np.ndarray, cen: np.ndarray, thick: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(x, y)`` of the trace's centre line from the columns' runs (x relative to column 0).

    A short run (flat trace) gives its centre at the column's centre. A long run is a steep stroke;
    a column sees the stroke while it passes within half a line width of the column's centre, i.e.
    over ``x +- r`` with ``r = (thick - 1) / 2`` (``thick``: the flat run length, one more than the
    line width), so a stroke going down the page gives ``(x - r, top)`` and ``(x + r, bottom)``
    (going up: the other way round). At a turning point (both neighbours
    lower on the page: a peak) the apex is half a thickness inside the run's top, at the column's
    centre (a trough: inside its bottom). Points are sorted by x; several at one x are averaged.

    >>> top = np.array([10., 10., 2., 10., 10.]); bot = np.array([11., 11., 11., 11., 11.])
    >>> x, y = column_points(top, bot, (top + bot) / 2, 2.0)       # a one-column spike up to row 2
    >>> x.tolist(), y.tolist()
    ([0.0, 1.0, 2.0, 3.0, 4.0], [10.5, 10.5, 2.5, 10.5, 10.5])
    """
    n = len(top)
    xc = np.arange(n, dtype=np.float64)
    mid = 0.5 * (top + bot)
    long = (bot - top + 1) > thick + 1.0
    prev = np.concatenate([mid[:1], mid[:-1]])
    nxt = np.concatenate([mid[1:], mid[-1:]])
    prev = np.where(np.isfinite(prev), prev, mid)
    nxt = np.where(np.isfinite(nxt), nxt, mid)
    half = thick / 2.0 - 0.5
    apex_up = long & (prev > mid) & (nxt > mid)
    apex_down = long & (prev < mid) & (nxt < mid)
    down = long & ~apex_up & ~apex_down & (nxt >= prev)
    up = long & ~apex_up & ~apex_down & (nxt < prev)
    single = np.where(apex_up, top + half, np.where(apex_down, bot - half, cen))
    one = np.isfinite(top) & ~(down | up)
    r = (thick - 1.0) / 2.0  # a column sees a stroke within half a line width of its centre
    xs = np.concatenate([xc[one], xc[down] - r, xc[down] + r, xc[up] - r, xc[up] + r])
    ys = np.concatenate([single[one], top[down], bot[down], bot[up], top[up]])
    ux, inv = np.unique(xs, return_inverse=True)
    uy = np.bincount(inv, weights=ys) / np.bincount(inv)
    return ux, uy


def fill_gaps(values: np.ndarray, max_gap: int) -> np.ndarray:
    """Linearly interpolate NaN runs of at most ``max_gap`` columns between finite values.

    >>> fill_gaps(np.array([1.0, np.nan, 3.0, np.nan, np.nan, np.nan, 7.0]), 2).tolist()
    [1.0, 2.0, 3.0, nan, nan, nan, 7.0]
    """
    v = np.asarray(values, dtype=np.float64).copy()
    bad = ~np.isfinite(v)
    if not bad.any() or bad.all():
        return v
    idx = np.arange(len(v))
    good = idx[~bad]
    filled = np.interp(idx, good, v[good])
    # length of the NaN run each NaN belongs to
    edges = np.diff(np.concatenate([[0], bad.astype(np.int8), [0]]))
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    run_len = np.zeros(len(v), dtype=np.int64)
    for s, e in zip(starts, ends):  # one per gap, not per sample
        run_len[s:e] = e - s if (s > 0 and e < len(v)) else len(v) + 1
    ok = bad & (run_len <= max_gap)
    v[ok] = filled[ok]
    return v


def resample(x: np.ndarray, y: np.ndarray, covered_cols: np.ndarray, *, x_first: float, px_per_s: float,
             baseline: float, px_per_mv: float, fs: float, n: int) -> np.ndarray:
    """Samples ``i / fs`` (i < n) of a trace given by points ``(x, y)`` (page px), in mV (float32).

    ``covered_cols`` (bool, one per page column from column 0) says which columns hold the trace; a
    sample whose nearest column does not is NaN (not recovered).

    >>> x = np.arange(10.0); y = 50.0 - x          # a ramp of 1 px per px
    >>> resample(x, y, np.ones(10, bool), x_first=0.0, px_per_s=2.0, baseline=50.0, px_per_mv=4.0,
    ...          fs=1.0, n=4).tolist()
    [0.0, 0.5, 1.0, 1.5]
    """
    if len(x) < 2:
        return np.full(int(n), np.nan, dtype=np.float32)
    xs = x_first + np.arange(int(n), dtype=np.float64) / float(fs) * px_per_s
    rows = np.interp(xs, x, y)
    col = np.clip(np.rint(xs).astype(np.int64), 0, len(covered_cols) - 1)
    ok = covered_cols[col] & (xs >= x[0] - 1.0) & (xs <= x[-1] + 1.0)
    return np.where(ok, (baseline - rows) / px_per_mv, np.nan).astype(np.float32)
