"""The NumPy reference of the raster engine (:func:`pipelines.imaging.raster.render_beats_box`).

The readable statement of the algorithm described in :mod:`pipelines.imaging.raster`, vectorised
over batches of beats with NumPy (gathers, min/max and scatters, 128 beats at a time): the oracle the
compiled kernel (:mod:`pipelines.imaging.kernel`) is tested against, byte for byte. Test-only code;
``benchmarks/bench_render.py`` also times it against the kernel.
"""
from __future__ import annotations

import math

import numpy as np

from pipelines.imaging.raster import BACKGROUND, INK, check_beats

#: Beats per vectorised batch: their images (128 x 128 x 128 = 2 MiB) stay in cache while drawn.
_BEAT_CHUNK = 128
#: Interior pixels every column writes at once (see _fill_interior); longer runs are expanded.
_ROWS = 3


def render_beats_numpy(values: np.ndarray, offsets: np.ndarray, *, size: int,
                       box: tuple[float, float, float, float], line_width: float = 1.5) -> np.ndarray:
    """The NumPy reference of :func:`pipelines.imaging.raster.render_beats_box`: the same pixels.

    Kept as the readable statement of the algorithm (and the oracle the compiled kernel is tested
    against, byte for byte); about three times slower than the kernel. Arguments as in
    :func:`render_beats_box`, already validated.
    """
    values, offsets = check_beats(values, offsets)
    n = offsets.size - 1
    out = np.empty((n, size, size), dtype=np.uint8)
    for a in range(0, n, _BEAT_CHUNK):
        b = min(a + _BEAT_CHUNK, n)
        _render_chunk(values, offsets[a:b + 1], out[a:b], size, box, float(line_width))
    return out


def column_extents(values: np.ndarray, offsets: np.ndarray, left: float, right: float
                   ) -> tuple[int, np.ndarray, np.ndarray]:
    """Per-column min and max of each beat's polyline, in the beats' own units.

    Sample ``j`` of a beat of ``L`` samples lies at ``x = left + j * (right - left) / (L - 1)``;
    column ``c`` covers ``[c, c + 1)``. The extent of column ``c`` is the min/max over the samples
    inside it and the polyline's interpolated values at ``max(c, left)`` and ``min(c + 1, right)``.

    Parameters
    ----------
    values, offsets : ndarray
        Validated beats (see :func:`check_beats`).
    left, right : float
        x of the first and last sample, ``0 <= left < right``.

    Returns
    -------
    first_col : int
        Column of the first extent (``floor(left)``); the extents cover columns
        ``first_col .. ceil(right) - 1``, the same for every beat.
    vmin, vmax : ndarray, float32, shape ``(n, n_columns)``

    Examples
    --------
    >>> c0, lo, hi = column_extents(np.array([0.0, 4.0], np.float32), np.array([0, 2]), 0.0, 2.0)
    >>> c0, lo.tolist(), hi.tolist()
    (0, [[0.0, 2.0]], [[2.0, 4.0]])
    """
    first_col, last_col = math.floor(left), math.ceil(right) - 1
    n_cols = last_col - first_col + 1
    base = offsets[:-1, None]
    steps = (offsets[1:] - offsets[:-1] - 1)[:, None]  # L - 1
    # Sample positions (in samples) of the column edges, clipped to the trace's x range.
    t = (np.clip(np.arange(first_col, last_col + 2, dtype=np.float64), left, right) - left) * (steps / (right - left))
    # The polyline's values on the column edges (linear interpolation between samples j, j + 1).
    j = t.astype(np.int64)
    np.minimum(j, steps - 1, out=j)
    frac = (t - j).astype(np.float32)
    j += base
    v0 = values[j]
    j += 1
    edge_vals = values[j]
    edge_vals -= v0
    edge_vals *= frac
    edge_vals += v0
    # Samples inside column c: from ceil(t[c]) to ceil(t[c + 1]) - 1 (the last column: to L - 1).
    first = np.ceil(t, out=t).astype(np.int64)
    first[:, -1] = steps[:, 0] + 1
    first += base
    start, last = first[:, :-1], first[:, 1:] - 1
    count = last - start + 1
    np.maximum(last, start, out=last)
    # The k-th sample of every column (clipped to its last one) for k below the beat's largest
    # count; beats sorted by that count make each step a prefix of them.
    per_beat = count.max(axis=1)
    order = np.argsort(-per_beat, kind="stable")
    active = np.searchsorted(-per_beat[order], -np.arange(1, int(per_beat.max()) + 1), side="right")
    left_vals, right_vals = edge_vals[:, :-1], edge_vals[:, 1:]
    vmin = np.minimum(left_vals, right_vals)
    vmax = np.maximum(left_vals, right_vals)
    n = per_beat.size
    for k, m in enumerate(active.tolist()):
        if m == n:
            sample = values[np.minimum(start + k, last)]
            np.minimum(vmin, sample, out=vmin)
            np.maximum(vmax, sample, out=vmax)
        elif m:
            rows = order[:m]
            sample = values[np.minimum(start[rows] + k, last[rows])]
            vmin[rows] = np.minimum(vmin[rows], sample)
            vmax[rows] = np.maximum(vmax[rows], sample)
    # Columns without a sample (beats sparser than one sample per pixel) keep the edge values;
    # the steps above gathered the next column's first sample there: undo it.
    empty = count == 0
    if empty.any():
        vmin[empty] = np.minimum(left_vals, right_vals)[empty]
        vmax[empty] = np.maximum(left_vals, right_vals)[empty]
    return first_col, vmin, vmax


def _render_chunk(values: np.ndarray, offsets: np.ndarray, out: np.ndarray, size: int,
                  box: tuple[float, float, float, float], line_width: float) -> None:
    """Draw the beats of ``offsets`` into ``out`` (their ``(n, size, size)`` slice, any content)."""
    left, top, right, bottom = box
    n = offsets.size - 1
    out.fill(BACKGROUND)
    first_col, cmin, cmax = column_extents(values, offsets, left, right)
    n_cols = cmin.shape[1]
    bmin = cmin.min(axis=1, keepdims=True)
    bmax = cmax.max(axis=1, keepdims=True)
    rng = bmax - bmin
    flat = rng <= 0
    # Amplitude v -> row y = y0 - v * scale; a constant beat gets scale 0, in the middle of the box.
    scale = np.where(flat, 0.0, (bottom - top) / np.where(flat, 1.0, rng)).astype(np.float32)
    y0 = np.where(flat, np.float32((top + bottom) / 2), top + bmax * scale).astype(np.float32)
    half = np.float32(line_width / 2)
    lo = cmax  # span top (float rows): y(column max) - w/2
    lo *= scale
    np.subtract(y0 - half, lo, out=lo)
    hi = cmin  # span bottom: y(column min) + w/2
    hi *= scale
    np.subtract(y0 + half, hi, out=hi)
    if top - half < 0 or bottom + half > size:
        np.clip(lo, 0, size, out=lo)
        np.clip(hi, 0, size, out=hi)
    # Each column's span covers rows r_top..r_bot: the two end rows partly (anti-aliased), the
    # rows between fully (ink). Interior first, then the ends on top (see _fill_interior).
    r_top = lo.astype(np.int64)
    np.minimum(r_top, size - 1, out=r_top)
    r_bot = np.ceil(hi).astype(np.int64)
    r_bot -= 1
    np.maximum(r_bot, r_top, out=r_bot)
    pix0 = (np.arange(n, dtype=np.int64) * (size * size))[:, None] + np.arange(first_col, first_col + n_cols)
    top_px = r_top * size
    top_px += pix0
    bot_px = r_bot * size
    bot_px += pix0
    flat_out = out.reshape(-1)
    _fill_interior(flat_out, top_px.ravel() + size, bot_px.ravel() - size, (r_bot - r_top - 1).ravel(), size)
    cov = r_top.astype(np.float32)  # top end pixel: [r_top, min(r_top + 1, hi)] covered from lo
    cov += 1
    np.minimum(cov, hi, out=cov)
    cov -= lo
    flat_out[top_px.ravel()] = _grey(cov).ravel()
    np.maximum(r_bot.astype(np.float32), lo, out=cov)  # bottom end pixel: [max(r_bot, lo), hi]
    np.subtract(hi, cov, out=cov)
    flat_out[bot_px.ravel()] = _grey(cov).ravel()


def _fill_interior(flat_out: np.ndarray, first: np.ndarray, last: np.ndarray, run: np.ndarray, stride: int) -> None:
    """Ink the pixels ``first + i * stride`` for ``i < run`` (``last`` is the final one), per column.

    Every column writes ``_ROWS`` pixels ``min(first + i * stride, max(last, first - stride))`` at
    once (a short run rewrites its last pixel, an empty run its top end pixel, which the caller
    overwrites afterwards); the rows of longer runs after those are expanded one by one.
    """
    steps = np.arange(0, _ROWS * stride, stride, dtype=np.int64)[:, None]
    flat_out[np.minimum(first + steps, np.maximum(last, first - stride))] = INK
    more = np.flatnonzero(run > _ROWS)
    if more.size:
        length = run[more] - _ROWS
        start = first[more] + _ROWS * stride
        # Index steps: +stride along a run, a jump to the next run's first pixel between runs.
        step = np.full(int(length.sum()), stride, dtype=np.int64)
        step[0] = start[0]
        step[(np.cumsum(length) - length)[1:]] = start[1:] - (start[:-1] + stride * (length[:-1] - 1))
        flat_out[np.cumsum(step)] = INK


def _grey(coverage: np.ndarray) -> np.ndarray:
    """Grey level of pixels whose height is ``coverage`` (0..1) covered by ink, rounded (in place)."""
    coverage *= -np.float32(BACKGROUND - INK)
    coverage += np.float32(BACKGROUND + 0.5)
    return coverage.astype(np.uint8)
