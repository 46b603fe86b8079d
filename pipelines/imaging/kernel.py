"""The ``raster`` engine's compiled kernel: one beat at a time, numba-compiled.

The same algorithm, in the same float32 arithmetic and order of operations, as the NumPy reference
``tests/_raster_reference.py`` (tested byte-identical), but each beat is drawn with no
temporary arrays in three short passes:

1. the polyline on the column edges and each column's min/max over its samples;
2. per column, the span's two end rows and their anti-aliased grey levels (four small arrays);
3. the image, row by row: every pixel is white, ink (strictly between its column's end rows) or
   an end row's grey. This pass is branch-free over a row's columns, so LLVM can vectorise it
   (16-bit lanes), where writing each column's span down a white image cannot be.

:func:`render_spans_into` is the general kernel: every beat has its own x range (``left[i]``,
``right[i]``, which may reach outside the image: only the columns inside it are drawn) and either
fits its own min..max to ``[top, bottom]`` (``fit``, the recipe) or maps amplitude ``v`` to row
``y0[i] - v * scale[i]`` (fixed scales, see :mod:`pipelines.imaging.scale`), clipped at the
image's top and bottom edges. :func:`render_into` is its one-box case.

Compiled on first use (a few seconds) and cached next to this file (``cache=True``), so later
processes, dask workers included, load the machine code from disk.
"""
from __future__ import annotations

import math

import numba
import numpy as np

#: Largest image side the kernel draws (its row indices are 16-bit).
MAX_SIZE = 32767


def render_into(values, offsets, out, left, top, right, bottom, line_width):
    """Draw beat ``i`` (``values[offsets[i]:offsets[i + 1]]``, float32) into ``out[i]`` (uint8).

    ``left, top, right, bottom`` is the trace's box in pixels (the same for every beat) and
    ``line_width`` its width, as in :func:`pipelines.imaging.raster.render_beats_box`; inputs are
    validated there. Each beat's min..max fills ``[top, bottom]``.
    """
    n = offsets.size - 1
    unused = np.zeros(n, np.float32)
    render_spans_into(values, offsets, out, np.full(n, float(left)), np.full(n, float(right)), float(top),
                      float(bottom), unused, unused, True, float(line_width))


@numba.njit(cache=True, nogil=True, boundscheck=False)
def render_spans_into(values, offsets, out, left, right, top, bottom, y0, scale, fit,
                      line_width):  # pragma: no cover - compiled
    """Draw beat ``i`` into ``out[i]`` with sample ``j`` at ``x = left[i] + j * (right[i] - left[i]) / (L - 1)``.

    Parameters
    ----------
    values : float32, 1-D; offsets : int64, 1-D
        Beat ``i`` is ``values[offsets[i]:offsets[i + 1]]`` (at least 2 samples).
    out : uint8, ``(n, size, size)``
        Overwritten.
    left, right : float64, ``(n,)``
        x of each beat's first and last sample, ``left[i] < right[i]``; any finite values: only
        the columns ``[0, size)`` are drawn.
    top, bottom : float
        ``fit``: the rows of each beat's max and min (over its drawn columns).
    y0, scale : float32, ``(n,)``
        Not ``fit``: amplitude ``v`` sits at row ``y0[i] - v * scale[i]``.
    fit : bool
    line_width : float
    """
    n = offsets.size - 1
    size = out.shape[1]
    # Pass 1 buffers (at most size columns are drawn): per column edge, the polyline's value and the
    # index of the first sample right of it; per column, the polyline's min and max.
    edge = np.empty(size + 1, np.float32)
    first = np.empty(size + 1, np.int64)
    dx = np.empty(size + 1, np.float64)
    cmin = np.empty(size, np.float32)
    cmax = np.empty(size, np.float32)
    # Pass 2 buffers, over all image columns: the span's end rows and their grey levels; columns
    # a beat does not reach keep rows -2 (never matched) and stay white.
    top_row = np.full(size, -2, np.int16)
    bot_row = np.full(size, -2, np.int16)
    top_grey = np.full(size, 255, np.uint8)
    bot_grey = np.full(size, 255, np.uint8)
    half = np.float32(line_width / 2)
    f_top = np.float32(top)
    f_mid = np.float32((top + bottom) / 2)
    f_height = np.float32(bottom - top)
    f_size = np.float32(size)
    clip = (not fit) or top - line_width / 2 < 0 or bottom + line_width / 2 > size
    grey_scale = -np.float32(255)
    grey_offset = np.float32(255.5)
    prev_first, prev_cols = 0, 0
    for i in range(n):
        # pass 1: column extents of the polyline over the drawn columns
        b_left = left[i]
        b_right = right[i]
        first_col = max(math.floor(b_left), 0)
        end_col = math.ceil(b_right)
        whole = end_col <= size  # the beat's last sample lies in a drawn column
        n_cols = max(min(end_col, size) - first_col, 0)
        for c in range(prev_first, prev_first + prev_cols):
            top_row[c] = -2
            bot_row[c] = -2
        prev_first, prev_cols = first_col, n_cols
        base = offsets[i]
        steps = offsets[i + 1] - base - 1
        per_px = steps / (b_right - b_left)
        for k in range(n_cols + 1):
            dx[k] = min(max(float(first_col + k), b_left), b_right) - b_left
        for k in range(n_cols + 1):
            t = dx[k] * per_px
            j = min(int(t), steps - 1)
            frac = np.float32(t - j)
            v0 = values[base + j]
            edge[k] = (values[base + j + 1] - v0) * frac + v0
            first[k] = base + int(math.ceil(t))
        if whole:
            first[n_cols] = base + steps + 1
        bmin = np.float32(np.inf)
        bmax = np.float32(-np.inf)
        for c in range(n_cols):
            lo_v = min(edge[c], edge[c + 1])
            hi_v = max(edge[c], edge[c + 1])
            for s in range(first[c], first[c + 1]):
                v = values[s]
                lo_v = min(lo_v, v)
                hi_v = max(hi_v, v)
            cmin[c] = lo_v
            cmax[c] = hi_v
            bmin = min(bmin, lo_v)
            bmax = max(bmax, hi_v)
        # pass 2: amplitude -> rows, each column's span and end greys
        if fit:  # the beat's max at the top of the box, its min at the bottom
            rng = bmax - bmin
            if rng <= 0:
                b_scale = np.float32(0)
                b_y0 = f_mid
            else:
                b_scale = f_height / rng
                b_y0 = f_top + bmax * b_scale
        else:
            b_scale = scale[i]
            b_y0 = y0[i]
        y_top = b_y0 - half
        y_bot = b_y0 + half
        for c in range(n_cols):
            lo = y_top - cmax[c] * b_scale
            hi = y_bot - cmin[c] * b_scale
            if clip:
                lo = min(max(lo, np.float32(0)), f_size)
                hi = min(max(hi, np.float32(0)), f_size)
            r_top = min(int(lo), size - 1)
            r_bot = max(int(math.ceil(hi)) - 1, r_top)
            col = first_col + c
            top_row[col] = r_top
            bot_row[col] = r_bot
            top_grey[col] = np.uint8((min(np.float32(r_top) + np.float32(1), hi) - lo) * grey_scale + grey_offset)
            bot_grey[col] = np.uint8((hi - max(np.float32(r_bot), lo)) * grey_scale + grey_offset)
        # pass 3: the image row by row; the bottom end pixel wins where the span is one row tall
        img = out[i]
        for r in range(size):
            row = img[r]
            r16 = np.int16(r)
            for col in range(size):
                a = top_row[col]
                b = bot_row[col]
                v = np.uint8(255)
                if r16 > a and r16 < b:
                    v = np.uint8(0)
                if r16 == a:
                    v = top_grey[col]
                if r16 == b:
                    v = bot_grey[col]
                row[col] = v


@numba.njit(cache=True, nogil=True)
def segment_medians(values, offsets):  # pragma: no cover - compiled
    """Median of each segment ``values[offsets[i]:offsets[i + 1]]`` (non-empty), as float64.

    An even-length segment's median is the mean of its two middle values (as :func:`numpy.median`).
    """
    n = offsets.size - 1
    out = np.empty(n, np.float64)
    for i in range(n):
        out[i] = np.median(values[offsets[i]:offsets[i + 1]])
    return out
