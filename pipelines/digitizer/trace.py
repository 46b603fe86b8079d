"""Find the leads of a strip and follow each trace column by column (numba kernel).

* :func:`trace_mask` keeps the ink of long connected components (the traces), dropping the
  calibration pulses, lead names and specks.
* :func:`lead_rows` finds each lead's row: the peaks of the trace ink's row projection (a trace
  spends most of its time near its baseline).
* :func:`follow` walks a trace from its first to its last column; in each column it takes the ink
  run nearest the previous position (so a trace crossing into the neighbour lead's row is kept),
  recording the run's top, bottom and darkness-weighted centre (near ties go to the run nearer the
  lead's own row); a column without ink within reach
  is NaN (interpolated later if short). Near-vertical QRS strokes are long runs: their value is
  settled in :mod:`pipelines.digitizer.calibrate`.

Examples
--------
>>> ink = np.zeros((9, 6), bool); ink[4, :] = True; ink[2:5, 3] = True
>>> top, bot, cen = follow(ink, np.where(ink, 1.0, 0.0).astype(np.float32), 0, 5, 4.0, 9)
>>> top.tolist(), bot.tolist()
([4.0, 4.0, 4.0, 2.0, 4.0, 4.0], [4.0, 4.0, 4.0, 4.0, 4.0, 4.0])
"""
from __future__ import annotations

import cv2
import numba
import numpy as np


def trace_mask(ink: np.ndarray, min_width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ink pixels of 8-connected components at least ``min_width`` px wide: ``(mask, labels, stats)``
    (``labels``/``stats`` of ``cv2.connectedComponentsWithStats``, every component)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.view(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_WIDTH] >= min_width
    keep[0] = False
    return keep[labels], labels, stats


def trace_extent(labels: np.ndarray, stats: np.ndarray, band: slice, min_width: int) -> tuple[int, int] | None:
    """First and last column of the widest component (at least ``min_width`` px) with ink in the rows
    ``band``: a lead's trace, its ends undisturbed by other leads' ink passing through the band."""
    top, height = stats[:, cv2.CC_STAT_TOP], stats[:, cv2.CC_STAT_HEIGHT]
    cand = np.nonzero((stats[:, cv2.CC_STAT_WIDTH] >= min_width) & (top < band.stop) & (top + height > band.start))[0]
    cand = cand[cand > 0]
    cand = cand[np.argsort(-stats[cand, cv2.CC_STAT_WIDTH], kind="stable")]
    rows = labels[band]
    best = next((int(c) for c in cand if (rows == c).any()), None)  # widest first: a few at most
    if best is None:
        return None
    left = int(stats[best, cv2.CC_STAT_LEFT])
    return left, left + int(stats[best, cv2.CC_STAT_WIDTH]) - 1


def lead_rows(mask: np.ndarray, min_gap: float, min_share: float = 0.15, limit: int | None = None) -> np.ndarray:
    """Rows (px, ascending) of the leads: peaks of the smoothed row projection of ``mask``, at least
    ``min_gap`` px apart and ``min_share`` of the highest peak; the ``limit`` highest at most.

    >>> m = np.zeros((100, 50), bool); m[20, :] = True; m[70, 5:45] = True; m[90, :3] = True
    >>> lead_rows(m, 20.0).tolist()
    [20, 70]
    """
    prof = mask.sum(axis=1).astype(np.float64)
    sigma = max(1.0, min_gap / 12.0)
    r = int(3 * sigma)
    kern = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    prof = np.convolve(prof, kern / kern.sum(), mode="same")
    if prof.max() <= 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-prof, kind="stable")
    chosen: list[int] = []
    floor = min_share * prof[order[0]]
    for i in order:  # greedy non-maximum suppression, highest first
        if prof[i] < floor:
            break
        if all(abs(int(i) - c) >= min_gap for c in chosen):
            chosen.append(int(i))
            if limit is not None and len(chosen) == limit:
                break
    return np.array(sorted(chosen), dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def _follow(ink, weight, x0, x1, y0, reach, home, pull):  # pragma: no cover - compiled
    n = x1 - x0 + 1
    top = np.full(n, np.nan)
    bot = np.full(n, np.nan)
    cen = np.full(n, np.nan)
    h = ink.shape[0]
    prev = y0
    for j in range(n):
        col = x0 + j
        lo = max(0, int(prev - reach))
        hi = min(h - 1, int(prev + reach) + 1)
        best_d = 1e18
        bt = -1
        bb = -1
        i = lo
        while i <= hi:
            if ink[i, col]:
                s = i
                while i + 1 < h and ink[i + 1, col]:
                    i += 1
                e = i
                if prev < s:
                    d = s - prev
                elif prev > e:
                    d = prev - e
                else:
                    d = 0.0
                if home < s:  # near ties go to the run nearer the lead's own row
                    d += pull * (s - home)
                elif home > e:
                    d += pull * (home - e)
                if d < best_d:
                    best_d = d
                    bt = s
                    bb = e
            i += 1
        if bt >= 0:
            # extend the run upwards past lo (the loop started inside it)
            while bt > 0 and ink[bt - 1, col]:
                bt -= 1
            sw = 0.0
            sy = 0.0
            for r in range(max(0, bt - 1), min(h, bb + 2)):  # the anti-aliased fringe too
                sw += weight[r, col]
                sy += weight[r, col] * r
            top[j] = bt
            bot[j] = bb
            cen[j] = sy / sw if sw > 0 else 0.5 * (bt + bb)
            prev = 0.5 * (bt + bb)
    return top, bot, cen


def follow(ink: np.ndarray, weight: np.ndarray, x0: int, x1: int, y0: float, reach: float,
           home: float | None = None, pull: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Follow a trace over columns ``x0..x1`` from row ``y0``: per column the chosen run's top and
    bottom rows and darkness-weighted centre (float64, NaN where no ink within ``reach`` px).

    Parameters
    ----------
    ink : bool array (h, w)
    weight : float32 array (h, w)
        Ink darkness (0 paper .. 1 black), for the sub-pixel centre.
    x0, x1 : int
        First and last column (inclusive).
    y0 : float
        Starting row.
    reach : float
        Farthest a run may lie from the previous position (px).
    home, pull : float
        The lead's own row (default ``y0``) and how much a run's distance from it adds to its
        distance from the previous position: where this lead's stroke touches another lead's trace
        (a deep S wave reaching the next row), the path back home wins the near tie.
    """
    return _follow(np.ascontiguousarray(ink), np.ascontiguousarray(weight, dtype=np.float32),
                   int(x0), int(x1), float(y0), float(reach), float(y0 if home is None else home), float(pull))
