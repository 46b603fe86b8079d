"""From followed columns to a signal in mV at the record's sampling rate.

A trace drawn ``thickness`` px thick leaves in each column an ink run ``[top, bottom]``. Where the
trace is flat the run is about ``thickness`` long and its darkness-weighted centre is the trace. A
longer run is a steep stroke crossing the column: its middle is where the stroke crosses the
column's centre, except at a turning point (an R or S apex) where the stroke comes back: there the
trace's extreme lies half a thickness inside the run's end (:func:`column_points`). Along a steep stroke
each row crosses the stroke as a short horizontal run of ink, whose darkness-weighted centre is the
stroke's column at that row (:func:`stroke_points`): a point per row, where a column gives two. Columns are
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

import numba
import numpy as np


def thickness(top: np.ndarray, bot: np.ndarray) -> float:
    """The trace's thickness (px): the lower quartile of the run lengths among the columns' shorter
    half (flat stretches; a sloped or noisy trace leaves longer runs).

    A flat anti-aliased line leaves runs of two lengths, one pixel apart, as its sub-pixel row changes
    (this project's 2 px pen: 3 and 4 px in about equal numbers), so their most common length flipped
    between strips; the lower quartile takes the shorter where the two are common, and is the length
    the stroke geometry of :func:`column_points` needs (clean strips: 25.8 dB with it, 25.0 with the
    mode, every fourth strip; docs/benchmarks/digitize.md).

    >>> thickness(np.array([3., 3., 1., 5., 0., 0.]), np.array([4., 4., 6., 5., 20., 20.]))
    1.0
    >>> thickness(np.zeros(8), np.array([2., 3., 2., 3., 3., 2., 9., 9.]))   # runs of 3 and 4 px
    3.0
    """
    runs = (bot - top + 1)[np.isfinite(top)].astype(np.int64)
    if not len(runs):
        return float("nan")
    short = runs[runs <= np.median(runs)]
    return float(np.percentile(short, 25, method="lower"))


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
    return merge_points(*_column_point_sets(top, bot, cen, thick))


def _column_point_sets(top: np.ndarray, bot: np.ndarray, cen: np.ndarray, thick: float
                       ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """:func:`column_points` before merging: the columns' single points (flat runs, apexes), and the
    end points ``(x -+ r, top / bottom)`` of the strokes."""
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
    return ((xc[one], single[one]),
            (np.concatenate([xc[down] - r, xc[down] + r, xc[up] - r, xc[up] + r]),
             np.concatenate([top[down], bot[down], bot[up], top[up]])))


@numba.njit(cache=True, nogil=True)
def _stroke_points(top, bot, weight, x0, thick, max_width):  # pragma: no cover - compiled
    n = len(top)
    size = 0
    for j in range(n):
        if np.isfinite(top[j]) and bot[j] - top[j] + 1 > thick + 1.0:
            size += int(bot[j]) - int(top[j]) + 1
    xs = np.empty(size)
    ys = np.empty(size)
    m = 0
    w = weight.shape[1]
    for j in range(n):
        if not (np.isfinite(top[j]) and bot[j] - top[j] + 1 > thick + 1.0):
            continue
        c = x0 + j
        for y in range(int(top[j]), int(bot[j]) + 1):
            if weight[y, c] <= 0:
                continue
            lo = c
            hi = c
            while lo > 0 and weight[y, lo - 1] > 0 and hi - lo + 1 <= max_width:
                lo -= 1
            while hi + 1 < w and weight[y, hi + 1] > 0 and hi - lo + 1 <= max_width:
                hi += 1
            if hi - lo + 1 > max_width:  # two strokes merged near a turning point, or a shallow slope
                continue
            sw = 0.0
            sx = 0.0
            for q in range(lo, hi + 1):
                sw += weight[y, q]
                sx += weight[y, q] * q
            xs[m] = sx / sw - x0
            ys[m] = y
            m += 1
    return xs[:m], ys[:m]


def stroke_points(top: np.ndarray, bot: np.ndarray, weight: np.ndarray, x0: int, thick: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(x, y)`` of the steep strokes, one per row they cross (x relative to column ``x0``).

    A column whose run is long (:func:`column_points`: a stroke) is crossed, in each of its rows, by the
    stroke as a horizontal run of ink about ``thick`` px wide; its darkness-weighted centre is where the
    stroke's centre line crosses that row. A row whose ink run is wider than ``thick`` (two strokes
    merged near an R or S apex, or a slope too shallow to be read across rows) gives no point, and
    a row's run is seen from each of its columns, so a point can come more than once (the caller merges
    them with :func:`merge_points`).
    Where a column gives a stroke only at ``x +- r``, rows place it to a few hundredths of a pixel,
    which is what the steep QRS strokes, the largest part of the error, need.

    Parameters
    ----------
    top, bot : float arrays
        The followed runs (:func:`pipelines.digitizer.trace.follow`), columns ``x0, x0 + 1, ...``.
    weight : float32 array (h, w)
        Ink darkness (0 paper .. 1 black) of the page.
    x0 : int
        The page column of ``top[0]``.
    thick : float
        The flat trace's run length (:func:`thickness`): the widest row run read.

    >>> wt = np.zeros((12, 8), np.float32); wt[1:11, 3] = 1.0; wt[1:11, 4] = 0.5   # a vertical stroke
    >>> top = np.array([10., 10., 10., 1., 1., 10., 10., 10.]); bot = top + 1; bot[3:5] = 10.
    >>> x, y = stroke_points(top, bot, wt, 0, 2.0)
    >>> np.round(x[:3], 3).tolist(), y[:3].tolist()
    ([3.333, 3.333, 3.333], [1.0, 2.0, 3.0])
    """
    top = np.asarray(top, np.float64)
    bot = np.asarray(bot, np.float64)
    h, w = weight.shape
    finite = np.isfinite(top) & np.isfinite(bot)
    if not np.isfinite(thick) or thick < 1 or not finite.any():
        return np.zeros(0), np.zeros(0)
    if x0 < 0 or x0 + len(top) > w or top[finite].min() < 0 or bot[finite].max() >= h:
        raise ValueError(f"runs outside the page: columns {x0}..{x0 + len(top) - 1} of {w}, rows "
                         f"{top[finite].min():g}..{bot[finite].max():g} of {h}")
    return _stroke_points(top, bot,
                          np.ascontiguousarray(weight, dtype=np.float32), int(x0), float(thick),
                          int(np.floor(thick)))


def merge_points(*points: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One point per x of several ``(x, y)`` point sets: sorted by x, the y of equal x averaged.

    >>> x, y = merge_points((np.array([0., 2.]), np.array([1., 5.])), (np.array([2., 1.]), np.array([7., 3.])))
    >>> x.tolist(), y.tolist()
    ([0.0, 1.0, 2.0], [1.0, 3.0, 6.0])
    """
    xs = np.concatenate([p[0] for p in points])
    ys = np.concatenate([p[1] for p in points])
    ux, inv = np.unique(xs, return_inverse=True)
    return ux, np.bincount(inv, weights=ys) / np.bincount(inv)


def trace_points(top: np.ndarray, bot: np.ndarray, cen: np.ndarray, weight: np.ndarray, x0: int, thick: float,
                 supersede_px: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """The trace's centre-line points (x relative to column ``x0``): the columns' points
    (:func:`column_points`) and the strokes' rows (:func:`stroke_points`), where a row's sub-pixel
    centre replaces a column's stroke end point in that row (``(x -+ r, top / bottom)``, placed from
    the run's length alone) when they lie within ``supersede_px`` of each other: both say where the
    stroke crosses that row, and on a stroke of 20 px per px an x off by 0.1 px is 2 px in y.

    >>> wt = np.zeros((12, 8), np.float32)            # flat at row 1, a stroke down to row 10, flat
    >>> wt[1, :4] = 1; wt[1:7, 3] = 1; wt[5:11, 4] = 1; wt[10, 4:] = 1
    >>> top = np.array([1., 1., 1., 1., 5., 10., 10., 10.]); bot = np.array([2., 2., 2., 6., 10., 11., 11., 11.])
    >>> x, y = trace_points(top, bot, (top + bot) / 2, wt, 0, 2.0)
    >>> [(float(a), float(b)) for a, b in zip(x, y)][3:8]   # rows 2-4 cross at x 3, rows 5-6 at 3.5, 7-9 at 4
    [(2.5, 1.0), (3.0, 3.0), (3.5, 5.5), (4.0, 8.0), (4.5, 10.0)]
    """
    single, ends = _column_point_sets(top, bot, cen, thick)
    sx, sy = stroke_points(top, bot, weight, x0, thick)
    ex, ey = ends
    if len(sx) and len(ex):
        order = np.lexsort((sx, sy))                      # by row, then x
        rx, ry = sx[order], sy[order]
        key = ry * 1e6 + rx                               # rows are whole numbers, x < 1e5
        at = np.searchsorted(key, ey * 1e6 + ex)
        near = np.full(len(ex), np.inf)
        for i in (at - 1, at):                            # the row's stroke points either side in x
            ok = (i >= 0) & (i < len(rx))
            j = np.clip(i, 0, len(rx) - 1)
            same = ok & (ry[j] == ey)
            near = np.where(same, np.minimum(near, np.abs(rx[j] - ex)), near)
        keep = near > supersede_px
        ex, ey = ex[keep], ey[keep]
    return merge_points(single, (ex, ey), (sx, sy))


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
