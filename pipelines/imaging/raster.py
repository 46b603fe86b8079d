"""The ``raster`` engine: draw beats as anti-aliased 8-bit images, vectorised over batches of beats.

Each beat is a polyline through its samples: sample ``j`` of a beat of ``L`` samples sits at
``x = left + j * (right - left) / (L - 1)`` and its amplitude ``v`` at
``y = top + (vmax - v) * (bottom - top) / (vmax - vmin)`` (pixel coordinates with the origin at the
image's top-left corner, pixel ``(row, col)`` covering ``[row, row + 1) x [col, col + 1)``), so
the largest sample is at the top ("up is up"). :func:`render_beats` puts that box at ``margin``
of the image side from every edge.

Drawing works per image column, the way an oscilloscope display does. In column ``c`` the
polyline covers the vertical extent ``[ymin, ymax]`` of its points inside ``[c, c + 1)``: the
samples that fall there and the polyline's linearly interpolated values on both column edges, so
no sample is skipped however many samples a beat holds. The column then gets a vertical span
``[ymin - w/2, ymax + w/2]`` (``w`` the line width), and each pixel of the column is darkened by
the fraction of its height the span covers: the span's two end pixels get fractional (anti-aliased)
grey levels, the pixels between are black. Steep strokes are therefore one column wide, and a
slanted stroke's vertical thickness is ``w`` plus its rise over the column. Beats are never
resampled (a sharp R peak keeps its exact height). Output depends only on each beat's own samples,
not on the batch it comes in.

Two implementations of that algorithm give the same bytes (tested): :func:`render_beats_numpy`,
vectorised over batches of beats with NumPy (gathers, min/max and scatters, 128 beats at a time), is
the readable reference; the engine itself runs a numba-compiled kernel
(:mod:`pipelines.imaging.kernel`) that draws one beat at a time with no temporaries, about three
times faster (``benchmarks/bench_render.py`` prints both).

Speed (``benchmarks/bench_render.py``, one thread): see ``docs/benchmarks/render.md``.

Examples
--------
>>> import numpy as np
>>> values = np.array([0, 1, 0, -1, 0, 0, 2, 0], dtype=np.float32)
>>> offsets = np.array([0, 5, 8])
>>> images = render_beats(values, offsets, size=32)
>>> images.shape, images.dtype, int(images.min()), int(images.max())
((2, 32, 32), dtype('uint8'), 0, 255)
"""
from __future__ import annotations

import math

import numpy as np

from ..core.errors import ConfigError, DataError
from .kernel import MAX_SIZE, render_into

#: Grey level of the background and of full ink.
BACKGROUND, INK = 255, 0

#: Beats per vectorised batch: their images (128 x 128 x 128 = 2 MiB) stay in cache while drawn.
_BEAT_CHUNK = 128
#: Interior pixels every column writes at once (see _fill_interior); longer runs are expanded.
_ROWS = 3


def check_beats(values: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate beats given as concatenated ``values`` and ``offsets``; return them as float32/int64.

    Parameters
    ----------
    values : array_like, 1-D
        All beats' samples, concatenated.
    offsets : array_like of int, 1-D, length ``n + 1``
        Beat ``i`` is ``values[offsets[i]:offsets[i + 1]]`` (a pyarrow ``ListArray``'s layout).

    Raises
    ------
    DataError
        (a ``ValueError``) when offsets are not a non-decreasing range inside ``values``, when a
        beat has fewer than 2 samples, or when a beat holds NaN or infinite values; the message
        names the first offending beat (its index in ``offsets``) and how many beats are affected.

    Examples
    --------
    >>> check_beats(np.array([0.0, 1.0, float("nan"), 1.0]), np.array([0, 2, 4]))
    Traceback (most recent call last):
    ...
    pipelines.core.errors.DataError: beat 1: holds NaN or infinite values (1 beat(s) affected); exclude such beats before rendering
    """
    values = np.asarray(values)
    offsets = np.asarray(offsets)
    if values.ndim != 1:
        raise DataError("values", f"must be 1-D, got shape {values.shape}")
    if offsets.ndim != 1 or offsets.size < 1:
        raise DataError("offsets", f"must be 1-D with n + 1 entries, got shape {offsets.shape}")
    if not np.issubdtype(offsets.dtype, np.integer):
        raise DataError("offsets", f"must be integers, got dtype {offsets.dtype}")
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
        raise DataError("values", f"must be real numbers, got dtype {values.dtype}")
    offsets = offsets.astype(np.int64, copy=False)
    if offsets[0] < 0 or offsets[-1] > values.size:
        raise DataError("offsets", f"range [{offsets[0]}, {offsets[-1]}] lies outside values (size {values.size})")
    lengths = np.diff(offsets)
    if (lengths < 0).any():
        bad = int(np.flatnonzero(lengths < 0)[0])
        raise DataError("offsets", f"must be non-decreasing (offsets[{bad}] > offsets[{bad + 1}])")
    short = np.flatnonzero(lengths < 2)
    if short.size:
        i, k = int(short[0]), int(lengths[short[0]])
        raise DataError(f"beat {i}", f"has {k} sample{'' if k == 1 else 's'}; a beat needs at "
                        f"least 2 ({short.size} beat(s) affected)")
    values = np.ascontiguousarray(values, dtype=np.float32)
    used = values[offsets[0]:offsets[-1]]
    finite = np.isfinite(used)
    if not finite.all():
        bad_samples = np.flatnonzero(~finite) + offsets[0]
        beats = np.unique(np.searchsorted(offsets, bad_samples, side="right") - 1)
        raise DataError(f"beat {int(beats[0])}", f"holds NaN or infinite values ({beats.size} beat(s) affected); "
                        "exclude such beats before rendering")
    return values, offsets


def render_beats(values: np.ndarray, offsets: np.ndarray, *, size: int = 128, margin: float = 0.05,
                 line_width: float = 1.5) -> np.ndarray:
    """Draw beats as anti-aliased grayscale images (the fast ``raster`` engine).

    Parameters
    ----------
    values : ndarray, float, 1-D
        All beats' samples, concatenated (any real dtype; computed in float32).
    offsets : ndarray, int, 1-D, length ``n + 1``
        Beat ``i`` is ``values[offsets[i]:offsets[i + 1]]``, as in a pyarrow ``ListArray``.
    size : int
        Image side in pixels.
    margin : float
        Blank fraction of the side on each edge, in ``[0, 0.5)``: the trace's centre line spans
        ``[margin * size, (1 - margin) * size]`` both ways (x: sample index over the width; y: each
        beat's own min..max, largest at the top).
    line_width : float
        Trace width in pixels (> 0).

    Returns
    -------
    ndarray, uint8, shape ``(n, size, size)``
        255 background, dark anti-aliased trace (0 = full ink). A constant beat is a horizontal
        line through the middle.

    Raises
    ------
    DataError
        Bad beats (fewer than 2 samples, NaN/inf, inconsistent offsets); see :func:`check_beats`.
    ConfigError
        ``size``, ``margin`` or ``line_width`` out of range.

    Examples
    --------
    >>> img = render_beats(np.array([0.0, 0.0, 0.0]), np.array([0, 3]), size=16, margin=0.0)[0]
    >>> (img[:, 4] < 255).nonzero()[0].tolist()  # a flat beat: a line in the middle rows
    [7, 8]
    """
    if not 0.0 <= float(margin) < 0.5:
        raise ConfigError(f"render.margin must be in [0, 0.5), got {margin!r}")
    size = _check_size(size)
    lo, hi = margin * size, (1.0 - margin) * size
    return render_beats_box(values, offsets, size=size, box=(lo, lo, hi, hi), line_width=line_width)


def render_beats_box(values: np.ndarray, offsets: np.ndarray, *, size: int, box: tuple[float, float, float, float],
                     line_width: float = 1.5) -> np.ndarray:
    """Like :func:`render_beats`, with the trace's box given in pixels instead of a margin.

    Parameters
    ----------
    box : (left, top, right, bottom)
        Pixel coordinates (edges, origin top-left) of the first sample (``left``), the last sample
        (``right``), each beat's maximum (``top``) and minimum (``bottom``); ``left < right`` and
        ``top < bottom`` inside ``[0, size]``. Useful to draw into another renderer's frame (the
        ``matplotlib`` engine's trace lies in ``RECIPE_BOX`` of :mod:`pipelines.imaging.recipe`).

    Examples
    --------
    >>> img = render_beats_box(np.array([1.0, 0.0]), np.array([0, 2]), size=8, box=(0, 0, 8, 8))[0]
    >>> int(img[0, 0]), int(img[7, 7]), int(img[0, 7])  # a falling diagonal from top-left
    (0, 0, 255)
    """
    size = _check_size(size)
    left, top, right, bottom = (float(b) for b in box)
    if not (0.0 <= left < right <= size and 0.0 <= top < bottom <= size):
        raise ConfigError(f"render box {box!r} must satisfy 0 <= left < right <= {size} "
                          f"and 0 <= top < bottom <= {size}")
    if not (math.isfinite(line_width) and line_width > 0):
        raise ConfigError(f"render.line_width must be a positive number, got {line_width!r}")
    values, offsets = check_beats(values, offsets)
    out = np.empty((offsets.size - 1, size, size), dtype=np.uint8)
    render_into(values, offsets, out, left, top, right, bottom, float(line_width))
    return out


def render_beats_numpy(values: np.ndarray, offsets: np.ndarray, *, size: int,
                       box: tuple[float, float, float, float], line_width: float = 1.5) -> np.ndarray:
    """The NumPy reference of :func:`render_beats_box`: the same pixels, vectorised over beats.

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


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 2 <= size <= MAX_SIZE:
        raise ConfigError(f"render.size must be an integer in [2, {MAX_SIZE}], got {size!r}")
    return int(size)


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
